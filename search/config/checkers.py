"""The checkers every value goes through, from a YAML config, an export or a command-line
flag: one rule and one bound per kind of value, so ``--seed`` and ``seed:`` refuse the same
numbers with the same words.

A checker is ``check(key, value)``: the value normalised, or a ``ValueRefused`` naming the
key and what is allowed. Each keeps its bounds as attributes (``low``, ``high``,
``max_length``, ``options``) so the tests can feed every key its boundary values. This
module imports nothing heavy: the parser uses it before torch is loaded.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from typing import Any

from search.config.documents import short_repr
from search.errors import UserError

Checker = Callable[[str, Any], Any]
"""``check(key, value)``: the value normalised (``ADAM`` -> ``adam``, a scalar -> a one-item
tuple), or a ``UserError`` naming ``key`` and what is allowed."""


class ValueRefused(UserError):
    """A value its key's checker refused: ``expected`` says what is allowed. The message
    names the config key; a command-line flag checked by the same checker says the same in
    argparse's words (``search.cli.parser``)."""

    def __init__(self, key: str, expected: str, value: Any) -> None:
        super().__init__(f"config key '{key}': expected {expected}, got {short_repr(value)}")
        self.key, self.expected, self.value = key, expected, value


def fail(key: str, expected: str, value: Any) -> ValueRefused:
    return ValueRefused(key, expected, value)


def _bounds_text(low: float, high: float, open_low: bool = False,
                 open_high: bool = False) -> str:
    def shown(bound: float) -> str:
        return str(bound) if isinstance(bound, int) else f"{bound:g}"

    return (f" {'>' if open_low else '>='} {shown(low)} and "
            f"{'<' if open_high else '<='} {shown(high)}")


def bounded_int(low: int, high: int) -> Checker:
    """An integer within [low, high] (not a bool, not a float such as 2.0)."""

    def check(key: str, value: Any) -> int:
        bounds = _bounds_text(low, high)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise fail(key, f"an integer{bounds}", value)
        return value

    check.low, check.high = low, high  # type: ignore[attr-defined]
    return check


def bounded_number(low: float, high: float, *, open_low: bool = False,
                   open_high: bool = False) -> Checker:
    """A finite number within [low, high] (``open_*``: the bound itself excluded)."""

    def check(key: str, value: Any) -> float:
        text = _bounds_text(low, high, open_low, open_high)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise fail(key, f"a number{text}", value)
        try:
            number = float(value)
        except OverflowError:  # an integer beyond float range
            raise fail(key, f"a number{text}", value) from None
        below = number <= low if open_low else number < low
        above = number >= high if open_high else number > high
        if below or above or not math.isfinite(number):
            raise fail(key, f"a number{text}", value)
        return number

    check.low, check.high = low, high  # type: ignore[attr-defined]
    check.open_low, check.open_high = open_low, open_high  # type: ignore[attr-defined]
    return check


def boolean(key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise fail(key, "true or false", value)
    return value


def choice(options: tuple[str, ...]) -> Checker:
    """One of ``options``, in any case (normalised to lower case)."""

    def check(key: str, value: Any) -> str:
        if not isinstance(value, str) or value.lower() not in options:
            raise fail(key, "one of " + ", ".join(options), value)
        return value.lower()

    check.options = options  # type: ignore[attr-defined]
    return check


def optional(inner: Checker) -> Checker:
    """``None``, or what ``inner`` accepts."""

    def check(key: str, value: Any) -> Any:
        return None if value is None else inner(key, value)

    check.inner = inner  # type: ignore[attr-defined]
    if hasattr(inner, "item"):  # an optional dimension: one choice is checked as the inner's
        check.item = inner.item  # type: ignore[attr-defined]
    return check


def int_choice(options: tuple[int, ...]) -> Checker:
    def check(key: str, value: Any) -> int:
        if isinstance(value, bool) or value not in options:
            raise fail(key, "one of " + ", ".join(map(str, options)), value)
        return int(value)

    check.options = options  # type: ignore[attr-defined]
    return check


def text_line(max_length: int, *, empty: bool = False) -> Checker:
    """A line of printable text (no newline, no control or bidi character, no undecodable
    byte), at most ``max_length`` characters; non-empty unless ``empty``."""

    def check(key: str, value: Any) -> str:
        expected = (f"a {'' if empty else 'non-empty '}line of printable text (at most "
                    f"{max_length} characters)")
        if (not isinstance(value, str) or (not empty and not value.strip())
                or len(value) > max_length or not value.isprintable()):
            raise fail(key, expected, value)
        return value

    check.max_length, check.empty = max_length, empty  # type: ignore[attr-defined]
    return check


# --------------------------------------------------------------------------- shared values
MAX_SEED = 2**31 - 1
SEED = bounded_int(0, MAX_SEED)
"""A study's seed: ``seed:`` and ``--seed`` (run seeds derive from it: times 100,003 plus
the trial number, far below 2**63)."""
STUDY_NAME = text_line(256)
"""``study:`` and every ``--study``: one printable line, at most 256 characters (Optuna's
column holds 512; a checkpoint's file name is shortened to fit, whatever the name)."""
TRIAL_COUNT = bounded_int(1, 10**9)
"""``n_trials:``, ``--n-trials`` and ``--max-trials``."""
EPOCHS = bounded_int(1, 100000)
"""``train.epochs:`` and ``train --epochs``."""
PATH = text_line(4096)
"""A file or folder a flag names (``--config``, ``-o``, ``--out``...)."""
OPTIONAL_PATH = text_line(4096, empty=True)
"""A folder a flag may leave empty to turn the feature off (``--artifact-dir ''``)."""
MAX_DESIGNS = 1000
"""Most designs one export holds (``export --top``), so ``train --from`` reads it back."""
DESIGN_COUNT = bounded_int(1, MAX_DESIGNS)
"""``export --top`` and ``train --rank``."""
REPEATS = bounded_int(1, 1000)
"""``train --repeats``: each a full training."""
TIMEOUT = bounded_number(0.0, 1e8, open_low=True)
"""``--timeout`` in seconds: positive, finite, at most about three years."""
HEARTBEAT_SECONDS = bounded_int(1, 3600)
"""``--heartbeat-interval``."""
GRACE_SECONDS = bounded_int(2, 86400)
"""``--grace-period``: longer than the heartbeat interval (checked together)."""
PORT = bounded_int(0, 65535)
"""``dashboard --port`` and ``proxy --port`` (0 picks a free one)."""
TOP_CLASSES = bounded_int(1, 1000)
"""``predict --top``: classes shown per image (more than a model has shows them all)."""
TRIALS_PER_GPU = bounded_int(1, 64)
"""``--trials-per-gpu N`` and ``--max-trials-per-gpu``: concurrent trials on one card."""
PROXY_THREADS = bounded_int(1, 1024)
"""``proxy --threads``: storage calls served at once, one database connection each."""


def cpu_count() -> int:
    """The CPUs this process may run on (its affinity, else the machine's)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def threads(key: str, value: Any) -> int:
    """``--threads``: 1 to the CPUs this process may use (more only oversubscribes them, and
    a thread per requested core is started whatever the count)."""
    return bounded_int(1, cpu_count())(key, value)

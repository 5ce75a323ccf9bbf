"""Readers of stored values: Optuna keeps user attrs as loose JSON, so every number, pair and
list is read defensively (a missing, malformed or non-finite value reads as None or empty),
and studies written by any version read without an error."""

from __future__ import annotations

import math
from typing import Any

Bounds = tuple[float, float]


def read_float(value: Any) -> float | None:
    """A finite float, or None for anything missing, malformed or non-finite."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def read_positive_int(value: Any) -> int | None:
    """A positive int, or None for anything missing or malformed."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def read_int(value: Any) -> int | None:
    """An int (not a bool), or None."""
    return int(value) if isinstance(value, int) and not isinstance(value, bool) else None


def read_pair(value: Any) -> Bounds | None:
    """``[low, high]`` of finite numbers, or None."""
    if not isinstance(value, list | tuple) or len(value) != 2:
        return None
    low, high = read_float(value[0]), read_float(value[1])
    return None if low is None or high is None else (low, high)


def read_floats(values: Any) -> tuple[float, ...]:
    """The finite numbers of a stored list (a NaN epoch is not an accuracy)."""
    if not isinstance(values, list | tuple):
        return ()
    return tuple(v for v in (read_float(x) for x in values) if v is not None)


def read_strings(values: Any) -> tuple[str, ...]:
    """The strings of a stored list."""
    if not isinstance(values, list | tuple):
        return ()
    return tuple(v for v in values if isinstance(v, str))


def significant(value: float | None, digits: int) -> float | None:
    """``value`` to ``digits`` significant digits (None stays None)."""
    return None if value is None else float(f"{value:.{digits}g}")


def read_table(text: str, **values: Any) -> dict[str, str]:
    """A reference table written as text, one entry a line (``key  what it holds``, the
    meaning continued on indented lines), as ``{key: meaning}``; ``values`` fill its
    ``{placeholders}``."""
    table: dict[str, str] = {}
    key = ""
    for line in text.format(**values).splitlines():
        if not line.strip():
            continue
        if line[0].isspace():
            table[key] += " " + line.strip()
        else:
            key, _, meaning = line.partition(" ")
            table[key] = meaning.strip()
    return table

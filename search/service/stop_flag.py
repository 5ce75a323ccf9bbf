"""SIGTERM (``docker stop``) and Ctrl-C only set a flag; the worker ends its trial cleanly.

A handler that raised inside a training step could leave a half-written checkpoint or a
trial RUNNING until its heartbeat goes stale; a flag is read at safe points instead. What
the stop did to the running trial is said in one line (``Interruption.line``), and Optuna's
own "Trial N failed" warning, with its traceback, is silenced for such planned endings
(``quiet_optuna_failures``).
"""

from __future__ import annotations

import contextlib
import logging
import re
import signal
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from types import FrameType

_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class StopFlag:
    def __init__(self) -> None:
        self._event = threading.Event()
        self.signal_name: str | None = None

    def is_set(self) -> bool:
        return self._event.is_set()

    def set(self, reason: str = "requested") -> None:
        self.signal_name = self.signal_name or reason
        self._event.set()

    def wait(self, seconds: float) -> bool:
        """Sleep that a stop request cuts short; True when stopping."""
        return self._event.wait(seconds)

    def install(self) -> StopFlag:
        """Route SIGTERM and SIGINT here (main thread only)."""
        for number in _SIGNALS:
            signal.signal(number, self._handle)
        return self

    @contextlib.contextmanager
    def installed(self) -> Iterator[StopFlag]:
        """``install`` for a block; the previous handlers come back after it."""
        previous = {number: signal.getsignal(number) for number in _SIGNALS}
        self.install()
        try:
            yield self
        finally:
            for number, handler in previous.items():
                signal.signal(number, handler)

    def _handle(self, number: int, _frame: FrameType | None) -> None:
        self.set(signal.Signals(number).name)


class WorkerInterrupted(Exception):
    """Raised at a safe point after a stop request; Optuna records the trial as FAIL."""


@dataclass(frozen=True)
class Interruption:
    """Where a stop request caught a trial."""

    number: int
    name: str
    epochs_done: int | None = None
    """Training epochs finished; None while the range test had not finished."""
    checkpoint_epoch: int | None = None
    """The epoch the trial's checkpoint holds; None without a checkpoint."""

    def line(self, resumer: str) -> str:
        """One line for the user: ``resumer`` is who picks the trial up (``the next
        search``, ``the next worker``)."""
        head = f"trial {self.number} ({self.name})"
        if self.epochs_done is None:
            return f"{head} stopped before its range test finished; {resumer} retries it"
        if not self.epochs_done:
            return (f"{head} stopped after its range test; {resumer} retries it, reusing the "
                    "range test")
        head = f"{head} stopped after epoch {self.epochs_done}"
        if self.checkpoint_epoch == self.epochs_done:
            return f"{head}, checkpointed; {resumer} resumes it"
        if self.checkpoint_epoch:
            return (f"{head}, checkpointed at epoch {self.checkpoint_epoch}; {resumer} "
                    "resumes it from there")
        return f"{head}, not checkpointed; {resumer} retrains it from epoch 0"


def interrupted_line(interruption: Interruption | None, resumer: str,
                     signal_name: str | None = None) -> str:
    """``cnnsearch: interrupted; trial 3 (B2FL8Adam) stopped after epoch 2, checkpointed;
    the next search resumes it``."""
    cause = "" if signal_name in (None, "SIGINT") else f" ({signal_name})"
    what = interruption.line(resumer) if interruption else "no trial was running"
    return f"cnnsearch: interrupted{cause}; {what}"


_FAILED = re.compile(r"Trial (\d+) failed with (parameters|value)")
_OPTIMIZE_LOGGER = "optuna.study._optimize"


class _QuietFailures(logging.Filter):
    """Drops Optuna's two "Trial N failed ..." warnings (and the traceback) of trials that
    ended with one of ``kinds``: a planned ending already said in one line."""

    def __init__(self, kinds: tuple[type[BaseException], ...]) -> None:
        super().__init__()
        self.kinds = kinds
        self.quiet: set[int] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        match = _FAILED.match(record.getMessage())
        if match is None:
            return True
        number = int(match[1])
        error = record.exc_info[1] if record.exc_info else None
        if match[2] == "parameters" and isinstance(error, self.kinds):
            self.quiet.add(number)
        return number not in self.quiet


@contextlib.contextmanager
def quiet_optuna_failures(*kinds: type[BaseException]) -> Iterator[None]:
    """Silence Optuna's failure warning for trials ended by ``kinds`` during the block."""
    quiet = _QuietFailures(kinds)
    logger = logging.getLogger(_OPTIMIZE_LOGGER)
    logger.addFilter(quiet)
    try:
        yield
    finally:
        logger.removeFilter(quiet)

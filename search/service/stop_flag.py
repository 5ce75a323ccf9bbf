"""SIGTERM (``docker stop``) and Ctrl-C only set a flag; the worker ends its trial cleanly.

A handler that raised inside a training step could leave a half-written checkpoint or a
trial RUNNING until its heartbeat goes stale; a flag is read at safe points instead.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType


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
        for number in (signal.SIGTERM, signal.SIGINT):
            signal.signal(number, self._handle)
        return self

    def _handle(self, number: int, _frame: FrameType | None) -> None:
        self.set(signal.Signals(number).name)


class WorkerInterrupted(Exception):
    """Raised at a safe point after a stop request; Optuna records the trial as FAIL."""

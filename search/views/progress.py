"""Progress of long work (``search``, ``worker``, ``train``).

On a terminal: one status line rewritten in place (carriage return + clear to end of line)
with the trial k/N, the phase (LRRT or epoch e/E), the current LR, the accuracy and an ETA;
the permanent lines (one per finished trial or run) are printed above it. When the output is
not a terminal (a log file, CI, a pipe): plain log lines, one per epoch, nothing rewritten.
"""

from __future__ import annotations

import io
import shutil
import threading
import time
from collections.abc import Callable
from typing import TextIO

import optuna
from optuna.trial import TrialState

from search.views.results import format_row, trial_row

Clock = Callable[[], float]
FINISHED_STATES = (TrialState.COMPLETE, TrialState.PRUNED)
"""What counts toward a shared ``--max-trials`` budget (a failed trial is retried)."""
CLEAR_TO_END = "\x1b[K"


def is_terminal(out: TextIO) -> bool:
    try:
        return bool(out.isatty())
    except (AttributeError, ValueError):
        return False


def format_duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{seconds:02d}s"
    return f"{seconds}s"


def format_eta(seconds: float | None) -> str:
    return "ETA ?" if seconds is None else f"ETA {format_duration(seconds)}"


class StatusLine:
    """A status line that is rewritten in place on a terminal and silent elsewhere;
    ``log`` prints a permanent line (above the status line on a terminal)."""

    def __init__(self, out: TextIO, *, live: bool | None = None,
                 width: int | None = None) -> None:
        self.out = out
        self.live = is_terminal(out) if live is None else live
        self.width = width
        self._shown = False
        self._lock = threading.Lock()

    def _columns(self) -> int:
        return self.width or shutil.get_terminal_size((100, 24)).columns

    def show(self, text: str) -> None:
        if not self.live:
            return
        text = text[: max(10, self._columns() - 1)]
        with self._lock:
            self.out.write(f"\r{text}{CLEAR_TO_END}")
            self.out.flush()
            self._shown = True

    def clear(self) -> None:
        with self._lock:
            if self._shown:
                self.out.write(f"\r{CLEAR_TO_END}")
                self.out.flush()
                self._shown = False

    def log(self, text: str) -> None:
        self.clear()
        with self._lock:
            self.out.write(text + "\n")
            self.out.flush()

    @property
    def stream(self) -> TextIO:
        """A text stream for other printers (e.g. the per-trial table line): whatever they
        write first clears the status line, so the two never mix on one line."""
        return _ClearingStream(self)


class _ClearingStream(io.TextIOBase):
    def __init__(self, status: StatusLine) -> None:
        self._status = status

    def write(self, text: str) -> int:
        self._status.clear()
        return self._status.out.write(text)

    def flush(self) -> None:
        self._status.out.flush()

    def isatty(self) -> bool:
        return is_terminal(self._status.out)

    def writable(self) -> bool:
        return True


class SearchProgress:
    """Progress of a search (or a worker): hand it to the objective (``objective.progress``)
    for the trial/epoch events and to ``study.optimize`` as a callback for finished trials.

    ``shared=True`` (a worker of a shared study) counts every worker's finished trials, so
    ``k/N`` and the ETA follow the study, not this process; ``finished_before`` is how many
    the study held when this process started.
    """

    def __init__(self, out: TextIO, *, total_trials: int | None = None,
                 timeout: float | None = None, shared: bool = False, finished_before: int = 0,
                 live: bool | None = None, clock: Clock = time.monotonic,
                 width: int | None = None) -> None:
        self.status = StatusLine(out, live=live, width=width)
        self.total = total_trials
        self.timeout = timeout
        self.shared = shared
        self.clock = clock
        self.started = clock()
        self.finished = 0
        """Trials finished since this progress started (study-wide when shared)."""
        self.finished_before = finished_before if shared else 0
        self.trial: tuple[int, str, int] | None = None
        self._trial_started_at = self.started
        self._last_finished_at = self.started
        self.epoch_seconds: list[float] = []
        self._epoch_started = self.started
        self.last_epoch: tuple[int, float, float] | None = None

    @property
    def stream(self) -> TextIO:
        return self.status.stream

    @property
    def live(self) -> bool:
        return self.status.live

    # --- events ---------------------------------------------------------------------------
    def trial_started(self, number: int, name: str, epochs: int) -> None:
        now = self.clock()
        self.trial = (number, name, epochs)
        self._trial_started_at = self._epoch_started = now
        self.epoch_seconds = []
        self.last_epoch = None
        self.status.show(self._prefix() + "  LR range test ...  " + format_eta(self.eta()))

    def epoch(self, epoch: int, epochs: int, lr: float, accuracy: float) -> None:
        now = self.clock()
        self.epoch_seconds.append(now - self._epoch_started)
        self._epoch_started = now
        self.last_epoch = (epoch, lr, accuracy)
        text = (f"{self._prefix()}  epoch {epoch}/{epochs}  lr {lr:.3g}  "
                f"val acc {accuracy:.4f}  {format_eta(self.eta())}")
        if self.live:
            self.status.show(text)
        else:
            self.status.log(text)

    def __call__(self, study: optuna.study.Study, trial: optuna.trial.FrozenTrial) -> None:
        """``study.optimize`` callback: a trial finished."""
        if self.shared:
            count = len(study.get_trials(deepcopy=False, states=FINISHED_STATES))
            self.finished = max(0, count - self.finished_before)
        else:
            self.finished += 1
        self._last_finished_at = self.clock()
        self.trial = None
        self.status.clear()

    def close(self) -> None:
        self.status.clear()

    # --- estimates ------------------------------------------------------------------------
    def trial_remaining(self) -> float | None:
        """Seconds left in the current trial, from its epoch pace (None before an epoch)."""
        if self.trial is None or not self.epoch_seconds:
            return None
        epochs = self.trial[2]
        done = self.last_epoch[0] if self.last_epoch else len(self.epoch_seconds)
        pace = sum(self.epoch_seconds) / len(self.epoch_seconds)
        return max(0.0, (epochs - done) * pace)

    def eta(self) -> float | None:
        """Seconds until the search ends: the trials left at the observed throughput (and
        the current trial's epoch pace), capped by the timeout; None while unknown."""
        now = self.clock()
        elapsed = now - self.started
        current = self.trial_remaining()
        estimate: float | None = None
        if self.total is not None:
            remaining = self.total - self.finished_before - self.finished
            if self.finished > 0:
                per_trial = (self._last_finished_at - self.started) / self.finished
                in_trial = now - self._trial_started_at if self.trial is not None else 0.0
                estimate = max(0.0, remaining * per_trial - in_trial)
                if current is not None:
                    estimate = max(estimate, current)
            elif current is not None:  # no trial finished yet: as many as this one
                in_trial = now - self._trial_started_at
                estimate = current + max(0, remaining - 1) * (in_trial + current)
        elif current is not None:
            estimate = current
        if self.timeout is not None:
            left = max(0.0, self.timeout - elapsed)
            estimate = left if estimate is None else min(estimate, left)
        return estimate

    def _prefix(self) -> str:
        count = self.finished_before + self.finished + 1
        position = f"{count}/{self.total}" if self.total else str(count)
        if self.trial is None:
            return f"trial {position}"
        number, name, _ = self.trial
        return f"trial {position} (#{number} {name})"


class TrainProgress:
    """Progress of ``cnnsearch train``: runs x epochs; live line on a terminal, one plain
    line per epoch otherwise."""

    def __init__(self, out: TextIO, *, runs: int, epochs: int, live: bool | None = None,
                 width: int | None = None) -> None:
        self.status = StatusLine(out, live=live, width=width)
        self.runs, self.epochs = runs, epochs
        self.done = 0
        self.seconds = 0.0

    def eta(self) -> float | None:
        if not self.done:
            return None
        return (self.runs * self.epochs - self.done) * self.seconds / self.done

    def epoch(self, run: int, epoch: int, lr: float, loss: float, val_accuracy: float,
              seconds: float) -> None:
        """``run`` counts from 1."""
        self.done += 1
        self.seconds += seconds
        text = (f"[run {run}/{self.runs}] epoch {epoch}/{self.epochs}  lr {lr:.3g}  "
                f"loss {loss:.4f}  val acc {val_accuracy:.4f}  {seconds:.1f}s  "
                f"{format_eta(self.eta())}")
        if self.status.live:
            self.status.show(text)
        else:
            self.status.log(text)

    def run_finished(self, run: int, best: float, final: float, seconds: float) -> None:
        self.status.log(f"[run {run}/{self.runs}] done: best val acc {best:.4f}, final "
                        f"{final:.4f}, {format_duration(seconds)}")

    def close(self) -> None:
        self.status.clear()


class ProgressLine:
    """One line per finished trial; the study's best so far at the end of each."""

    def __init__(self, total: int | None, out: TextIO) -> None:
        self.total, self.out, self.started = total, out, time.perf_counter()
        self.done = 0

    def __call__(self, study: optuna.study.Study, trial: optuna.trial.FrozenTrial) -> None:
        self.done += 1
        cells = format_row(trial_row(trial))
        count = f"{self.done}/{self.total}" if self.total else str(self.done)
        try:
            best = f"best {study.best_value:.4f}"
        except ValueError:
            best = "best -"
        elapsed = time.perf_counter() - self.started
        print(f"[{count}] trial {cells[0]} {cells[1]:<12} {cells[2]:<22} lrrt {cells[3]:>5}  "
              f"lr {cells[4]:<17} val {cells[5]:>6}  {cells[6]:>6}s  | {best}  "
              f"elapsed {elapsed:.0f}s", file=self.out, flush=True)

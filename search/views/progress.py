"""Progress of long work (``search``, ``worker``, ``lrrt``, ``train``) and where log lines go.

On a terminal: one status line rewritten in place (carriage return + clear to end of line)
with the trial k/N, the phase (LR range test step s/S or epoch e/E), the current LR, the
smoothed loss or the accuracy and an ETA; the permanent lines (one per finished trial or
run) are printed above it. When the output is not a terminal (a log file, CI, a pipe,
``docker compose logs``): plain log lines, one per epoch and one every ~10 % of the LR range
test, nothing rewritten.

What a command may print is an ``Output`` the CLI builds once from ``-q``/``-v`` and hands
to every display (``quiet`` keeps errors and results only); it also knows the status line
shown last, so the log handler the CLI installs (``search.cli.output``) prints log lines
above it, never glued to it.

Why a hand-written status line rather than tqdm or rich: the line is free text whose phase
changes (range-test steps, then epochs, across trials), not a bar over one counter; off a
terminal we want one plain line per epoch for logs, where tqdm writes its carriage-return
refreshes into the file and rich's ``Live`` prints nothing until it stops; tqdm refreshes
from a monitor thread and writes to stderr, rich would be a new dependency that takes over
both streams. What we need is the sixty lines below, tested byte for byte, with the same
clear-then-print hand-off to logging that ``tqdm.contrib.logging`` provides.
"""

from __future__ import annotations

import contextlib
import io
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TextIO

import optuna
from optuna.trial import TrialState

from search.views.results import format_row, trial_row

Clock = Callable[[], float]
FINISHED_STATES = (TrialState.COMPLETE, TrialState.PRUNED)
"""What counts toward a shared ``--max-trials`` budget (a failed trial is retried)."""
CLEAR_TO_END = "\x1b[K"

QUIET, NORMAL, VERBOSE = "quiet", "normal", "verbose"
VERBOSITIES = (QUIET, NORMAL, VERBOSE)
"""``quiet``: errors and results only (no progress, no warnings); ``normal``: progress and
warnings; ``verbose``: Optuna's INFO lines too."""


@dataclass
class Output:
    """What a command prints: built once by the CLI from ``-q``/``-v`` and handed to every
    display and to the services that print (none of them reads a global)."""

    verbosity: str = NORMAL
    status: StatusLine | None = field(default=None, repr=False, compare=False)
    """The live status line shown last: log records are printed above it."""

    def __post_init__(self) -> None:
        if self.verbosity not in VERBOSITIES:
            raise ValueError(f"verbosity must be one of {VERBOSITIES}, got {self.verbosity!r}")

    @property
    def quiet(self) -> bool:
        return self.verbosity == QUIET


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


def lrrt_text(step: int, total_steps: int, lr: float, loss: float) -> str:
    """How far a range test got: ``LR range test 40% (64/160)  lr 0.00109  loss 2.1034``."""
    percent = 100 * step // max(1, total_steps)
    return f"LR range test {percent}% ({step}/{total_steps})  lr {lr:.3g}  loss {loss:.4f}"


def show_ramp(status: StatusLine, text: str, step: int, total_steps: int,
              logged: int) -> int:
    """Show a range test's progress: rewrite the live line, or through a pipe log ``text``
    once per tenth of the ramp. ``logged`` is the tenths already logged; returns it updated."""
    if status.live:
        status.show(text)
        return logged
    tenths = 10 * step // max(1, total_steps)
    if tenths > logged:
        status.log(text)
        return tenths
    return logged


class StatusLine:
    """A status line that is rewritten in place on a terminal and silent elsewhere;
    ``log`` prints a permanent line (above the status line on a terminal)."""

    def __init__(self, out: TextIO, *, live: bool | None = None, width: int | None = None,
                 output: Output | None = None) -> None:
        self.out = out
        self.live = is_terminal(out) if live is None else live
        self.width = width
        self.output = output if output is not None else Output()
        self._shown = False
        self._text = ""
        self.lock = threading.RLock()
        """Held while anything writes around the status line (``search.cli.output``'s log
        handler too)."""

    def _columns(self) -> int:
        return self.width or shutil.get_terminal_size((100, 24)).columns

    def show(self, text: str) -> None:
        if not self.live or self.output.quiet:
            return
        with self.lock:
            self._text = text[: max(10, self._columns() - 1)]
            self._draw()
            self.output.status = self

    def _draw(self) -> None:
        self.out.write(f"\r{self._text}{CLEAR_TO_END}")
        self.out.flush()
        self._shown = True

    def clear(self) -> None:
        with self.lock:
            if self._shown:
                self.out.write(f"\r{CLEAR_TO_END}")
                self.out.flush()
                self._shown = False

    @contextlib.contextmanager
    def lifted(self) -> Iterator[None]:
        """Clear the line for whatever the block prints, then draw it again."""
        with self.lock:
            shown = self._shown
            self.clear()
            try:
                yield
            finally:
                if shown:
                    self._draw()

    def log(self, text: str) -> None:
        if self.output.quiet:
            return
        with self.lock:
            self.clear()
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
        with self._status.lock:
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
                 width: int | None = None, output: Output | None = None) -> None:
        self.status = StatusLine(out, live=live, width=width, output=output)
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
        self.lrrt: tuple[int, int] | None = None
        """(step, total steps) of the current trial's range test, once it reported."""
        self._lrrt_logged = 0  # tenths of the ramp already logged (plain output)

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
        self.lrrt = None
        self._lrrt_logged = 0
        self.status.show(self._prefix() + "  LR range test ...  " + format_eta(self.eta()))

    def lrrt_step(self, step: int, total_steps: int, lr: float, loss: float) -> None:
        """The range test reached ``step`` of ``total_steps`` (``run_range_test``'s
        ``progress``): rewrite the status line, or log a plain line each tenth of the ramp."""
        self.lrrt = (step, total_steps)
        self._epoch_started = self.clock()  # the first epoch's time excludes the test
        eta, left = self.eta(), self.lrrt_remaining()
        text = (f"{self._prefix()}  {lrrt_text(step, total_steps, lr, loss)}  "
                + (f"test ETA {format_duration(left)}" if eta is None and left is not None
                   else format_eta(eta)))
        self._lrrt_logged = show_ramp(self.status, text, step, total_steps, self._lrrt_logged)

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
    def lrrt_remaining(self) -> float | None:
        """Seconds left in the current range test, from its pace so far."""
        if self.trial is None or self.lrrt is None or self.epoch_seconds:
            return None
        step, total = self.lrrt
        if step <= 0:
            return None
        return max(0.0, (self.clock() - self._trial_started_at) * (total - step) / step)

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
                at_least = current if current is not None else self.lrrt_remaining()
                if at_least is not None:
                    estimate = max(estimate, at_least)
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


class RangeTestProgress:
    """Progress of ``cnnsearch lrrt``, one range test: what a search shows of its trial's
    test (step, LR, smoothed loss, time left), live on a terminal, a plain line each tenth
    of the ramp otherwise. ``start`` names the design; then it is ``run_lrrt``'s
    ``progress``."""

    def __init__(self, out: TextIO, *, live: bool | None = None, clock: Clock = time.monotonic,
                 width: int | None = None, output: Output | None = None) -> None:
        self.status = StatusLine(out, live=live, width=width, output=output)
        self.clock = clock
        self.name = ""
        self.started = clock()
        self._logged = 0  # tenths of the ramp already logged (plain output)

    def start(self, name: str) -> None:
        self.name, self.started, self._logged = name, self.clock(), 0
        self.status.show(f"{name}  LR range test ...")

    def __call__(self, step: int, total_steps: int, lr: float, loss: float) -> None:
        left = (None if step <= 0
                else max(0.0, (self.clock() - self.started) * (total_steps - step) / step))
        text = (f"{self.name}  {lrrt_text(step, total_steps, lr, loss)}  test "
                + format_eta(left))
        self._logged = show_ramp(self.status, text, step, total_steps, self._logged)

    def close(self) -> None:
        self.status.clear()


class TrainProgress:
    """Progress of ``cnnsearch train``: runs x epochs; live line on a terminal, one plain
    line per epoch otherwise."""

    def __init__(self, out: TextIO, *, runs: int, epochs: int, live: bool | None = None,
                 width: int | None = None, output: Output | None = None) -> None:
        self.status = StatusLine(out, live=live, width=width, output=output)
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
    """One line per finished trial, with its flags if any; the study's best so far at the
    end of each."""

    def __init__(self, total: int | None, out: TextIO, output: Output | None = None) -> None:
        self.total, self.out, self.started = total, out, time.perf_counter()
        self.output = output if output is not None else Output()
        self.done = 0

    def __call__(self, study: optuna.study.Study, trial: optuna.trial.FrozenTrial) -> None:
        self.done += 1
        if self.output.quiet:
            return
        row = trial_row(trial)
        cells = format_row(row)
        flags = f"  flags: {' '.join(row.flags)}" if row.flags else ""  # the table's column
        count = f"{self.done}/{self.total}" if self.total else str(self.done)
        try:
            best = f"best {study.best_value:.4f}"
        except ValueError:
            best = "best -"
        except RuntimeError:  # multi-objective: no single best; the front's best accuracy
            front = study.best_trials
            best = (f"best {max(t.values[0] for t in front):.4f}, {len(front)} on the front"
                    if front else "best -")
        elapsed = time.perf_counter() - self.started
        # one write: nothing (a log record from another thread) can land inside the line
        self.out.write(f"[{count}] trial {cells[0]} {cells[1]:<12} {cells[2]:<22} "
                       f"lrrt {cells[3]:>5}  lr {cells[4]:<17} val {cells[5]:>6}  "
                       f"{cells[6]:>6}s{flags}  | {best}  elapsed {elapsed:.0f}s\n")
        self.out.flush()

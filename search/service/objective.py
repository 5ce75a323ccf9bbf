"""The Optuna objective: sample, range-test, maybe reject, train (triangular2 by default),
score: the best validation accuracy, and in a multi-objective study also the config's second
objective (``search.method.objective_metrics``). Under ``repeats: skip`` a design a finished trial
already had is not tried again: the trial takes that trial's result
(``search.service.repeats``). Optuna neither reports nor prunes multi-objective
trials, so there the LRRT gate is asked directly (``LRRTPruner.gate``) and nothing else
prunes the training.

Data lives on the device for the worker's lifetime; each trial only builds a model. Every
fact about the trial goes through ``TrialRecorder``; every pruning decision comes from the
``LRRTPruner``'s ``verdict`` and is recorded with its evidence before the trial stops.

What may go wrong around a trial does not crash it: a checkpoint that cannot be used is
discarded (training restarts from epoch 0); a checkpoint or artifact that cannot be written
makes the trial ``degraded``, whatever the writer raised (``OSError`` for a full disk, but
``torch.save`` raises ``RuntimeError`` when the disk fills mid-file); a database away
longer than the storage retries pauses it
(``TrialPaused``: checkpoint kept, retried later); a trial a reaper took over while this
process was cut off is given up (``TrialAbandoned``).
"""

from __future__ import annotations

import logging
import os
import re
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import optuna
import torch
from optuna.trial import FrozenTrial, TrialState

from search.config import SearchConfig
from search.errors import first_line
from search.method.lrrt.result import LRRTResult
from search.method.lrrt.run import run_lrrt
from search.method.objective_metrics import objective_values
from search.method.peak_memory import release_memory
from search.method.precision import resolve_precision
from search.method.prepared_data import DataOnDevice
from search.method.pruner import LRRT_STEP, LRRTPruner
from search.method.recipe import TrainingRun, training_run
from search.method.suggest import sample_trial_config
from search.method.training import EpochReport, TrainingDiverged, TrainingState
from search.method.trial_config import TrialConfig
from search.record import (
    CHECKPOINT_KEY,
    DIVERGED,
    INTERRUPTED,
    OOM,
    REPEAT,
    STORAGE_UNREACHABLE,
    Bounds,
    LRRTSummary,
    TrialRecord,
    TrialRecorder,
    Verdict,
    frozen_trial,
)
from search.service.checkpoints import CheckpointOwner, config_hash, new_checkpoint_key
from search.service.repeats import earlier_trial
from search.service.resilient_storage import is_storage_error, is_taken_over, is_transient
from search.service.stop_flag import Interruption, StopFlag, WorkerInterrupted
from search.service.trial_outcomes import TrialAbandoned, TrialFailed, TrialPaused

if TYPE_CHECKING:
    from search.service.checkpoints import CheckpointStore
    from search.service.devices import Placement

LOGGER = logging.getLogger("cnnsearch.trial")


class LRRTArtifacts(Protocol):
    """Where a trial's full range test goes (``search.service.lrrt_artifacts``), drawn with
    the gate's verdict on it."""

    def upload(self, trial: optuna.Trial, result: LRRTResult,
               verdict: Verdict | None) -> None: ...


class Progress(Protocol):
    """What the objective tells a live display (``search.views.progress.SearchProgress``)."""

    def trial_started(self, number: int, name: str, epochs: int) -> None: ...

    def epoch(self, epoch: int, epochs: int, lr: float, accuracy: float) -> None: ...

    def lrrt_step(self, step: int, total_steps: int, lr: float, loss: float) -> None: ...


@dataclass
class _Running:
    """How far the current trial got, for the line a stop request prints."""

    number: int
    name: str = "?"
    epochs_done: int | None = None
    checkpoint_epoch: int | None = None

    def interruption(self) -> Interruption:
        return Interruption(self.number, self.name, self.epochs_done, self.checkpoint_epoch)


class Objective:
    """Callable passed to ``study.optimize``; one instance per worker process.

    A retried trial (Optuna's heartbeat retry copies params and user attrs) reuses its
    stored LRRT verdict and resumes training from its last epoch checkpoint.
    """

    def __init__(
        self,
        config: SearchConfig,
        data: DataOnDevice,
        pruner: LRRTPruner,
        *,
        artifacts: LRRTArtifacts | None = None,
        checkpoints: CheckpointStore | None = None,
        stop: StopFlag | None = None,
        progress: Progress | None = None,
        placement: Placement | None = None,
    ) -> None:
        self.config = config
        self.placement = placement
        """The card slot this process holds, if any: each trial records it, tells it the
        peak memory its range test measured, and its out-of-memory errors."""
        self.data = data
        self.pruner = pruner
        self.artifacts = artifacts
        self.checkpoints = checkpoints
        self.stop = stop
        self.progress = progress
        self.interrupted_trials: list[int] = []
        """Trials a stop request ended (FAIL ``interrupted``): their retries are queued."""
        self.paused_trials: list[int] = []
        """Trials a database outage ended (FAIL ``storage_unreachable``): likewise (not
        those a reaper took over meanwhile: its own retry is queued)."""
        self.last_interruption: Interruption | None = None
        self._running: _Running | None = None

    def __call__(self, trial: optuna.Trial) -> float | tuple[float, ...]:
        started = time.perf_counter()
        record = TrialRecorder(trial)
        self._running = _Running(trial.number)
        reachable = True
        try:
            values = self._run(trial, record)
            record.told(values if isinstance(values, tuple) else (values,))
            return values
        except (optuna.TrialPruned, TrialFailed, WorkerInterrupted):
            raise
        except Exception as error:
            if is_taken_over(error):
                reachable = False
                raise TrialAbandoned(f"trial {trial.number} was finished by another process "
                                     "while this one was cut off from the database") from None
            if is_transient(error):
                reachable = self._pause(trial, record, error)
                raise TrialPaused(f"storage unreachable: {first_line(error)}") from None
            raise
        finally:
            if reachable:
                self._record_seconds(record, time.perf_counter() - started)
            release_memory(self.data.device)

    def _run(self, trial: optuna.Trial, record: TrialRecorder) -> float | tuple[float, ...]:
        config = sample_trial_config(trial, self.config, self.data.data_seed)
        config = config.with_seed(record.inherited_seed(config.seed))
        key = record.inherited_checkpoint_key(
            new_checkpoint_key(trial.study.study_name, trial.number))
        placement = self.placement if self.placement and self.placement.on_card else None
        record.started(
            config_name=config.name, run_seed=config.seed, checkpoint_key=key,
            device=str(self.data.device), worker=f"{socket.gethostname()}:{os.getpid()}",
            trial_config=config.to_dict(),
            precision=resolve_precision(config.train.precision, self.data.device),
            card=placement.name if placement else None,
            slot=placement.slot if placement else None,
        )
        if self.config.repeats == "skip":
            earlier = earlier_trial(trial, config)
            if earlier is not None:
                return self._repeat(trial, record, earlier)
        assert self._running is not None
        self._running.name = config.name
        if self.progress is not None:
            self.progress.trial_started(trial.number, config.name, config.train.epochs)
        try:
            self._check_stop(trial, record)
            summary, result = self._range_test(trial, record, config)
            verdict = self._verdict(trial, summary.score, LRRT_STEP)  # the gate, asked once
            if result is not None:
                self._upload(trial, record, result, verdict)
            self._stop_if(record, verdict)
            self._running.epochs_done = 0
            self._check_stop(trial, record)
            assert summary.bounds is not None  # the gate rejects designs without bounds
            owner = CheckpointOwner(trial.study.study_name, key, config_hash(config.to_dict()))
            return self._train(trial, record, config, summary.bounds, owner)
        except TrainingDiverged as error:
            record.pruned(Verdict(DIVERGED, str(error)))
            raise optuna.TrialPruned(f"{DIVERGED}: {error}") from error
        except torch.cuda.OutOfMemoryError as error:
            record.failed(OOM, str(error).splitlines()[0])
            if self.placement is not None:  # fewer trials share the card from now on
                ceiling = self.placement.out_of_memory()
                if ceiling is not None:
                    LOGGER.warning("cnnsearch: trial %d ran out of GPU memory; its card "
                                   "now packs at most %d trial(s)", trial.number, ceiling)
            raise TrialFailed(OOM) from None

    def _repeat(self, trial: optuna.Trial, record: TrialRecorder,
                earlier: FrozenTrial) -> float | tuple[float, ...]:
        """Finish a repeat of ``earlier``'s design at once, as it finished: COMPLETE with its
        values, or PRUNED (reason ``repeat``) with its last reported value at its step, so
        that TPE ranks the repeat where that trial stands (``search.service.repeats``
        explains why). No range test, no training."""
        record.repeat(earlier.number)
        if earlier.state == TrialState.COMPLETE:
            values = tuple(earlier.values)
            return values if self.config.multi_objective else values[0]
        if not self.config.multi_objective and earlier.intermediate_values:
            step, value = max(earlier.intermediate_values.items())
            trial.report(value, step)
        why = TrialRecord.from_frozen(earlier).reason or "pruned"
        record.pruned(Verdict(REPEAT, f"same design as trial {earlier.number} ({why}): "
                                      "not tried again"))
        raise optuna.TrialPruned(f"{REPEAT} of trial {earlier.number}")

    def _check_stop(self, trial: optuna.Trial, record: TrialRecorder) -> None:
        if self.stop is not None and self.stop.is_set():
            record.failed(INTERRUPTED)
            self.interrupted_trials.append(trial.number)
            assert self._running is not None
            self.last_interruption = self._running.interruption()
            raise WorkerInterrupted(self.stop.signal_name or "stop requested")

    def _pause(self, trial: optuna.Trial, record: TrialRecorder, error: Exception) -> bool:
        """Wait for the database (a stop request ends the wait), then record the trial as
        ``storage_unreachable`` so that its retry is queued. True once recorded."""
        LOGGER.warning("cnnsearch: storage unreachable after retrying (%s); trial %d paused, "
                       "checkpoint kept; waiting for the database", first_line(error, 100),
                       trial.number)
        while True:
            try:
                record.failed(STORAGE_UNREACHABLE, first_line(error))
                self.paused_trials.append(trial.number)  # its retry is ours to queue
                return True
            except Exception as again:
                if is_taken_over(again):
                    raise TrialAbandoned(f"trial {trial.number} was finished by another "
                                         "process while this one waited for the database"
                                         ) from None
                if not is_transient(again):
                    raise
                if self.stop is not None and self.stop.is_set():
                    assert self._running is not None
                    self.last_interruption = self._running.interruption()
                    return False

    @staticmethod
    def _record_seconds(record: TrialRecorder, seconds: float) -> None:
        try:
            record.seconds(seconds)
        except Exception as error:  # the trial's outcome matters more than its duration
            if not (is_transient(error) or is_taken_over(error)):
                raise

    def _degraded(self, trial: optuna.Trial, record: TrialRecorder, problem: str) -> None:
        if record.degraded(problem):
            LOGGER.warning("cnnsearch: trial %d degraded: %s; training goes on", trial.number,
                           problem)

    def _range_test(self, trial: optuna.Trial, record: TrialRecorder, config: TrialConfig
                    ) -> tuple[LRRTSummary, LRRTResult | None]:
        """The design's range test, recorded (and the test itself, to upload); a previous
        attempt's, reused from its record (nothing to upload)."""
        stored = record.inherited_lrrt()
        if stored is not None:
            record.range_test_reused()
            return stored, None
        result = run_lrrt(config, self.data, progress=self.progress.lrrt_step
                          if self.progress is not None else None)
        record.range_test(result.summary, result.curve.points(), result.n_params)
        if self.placement is not None:  # what auto packing sizes a card's trials by
            self.placement.observe_peak(result.summary.peak_memory_bytes)
        return result.summary, result

    def _upload(self, trial: optuna.Trial, record: TrialRecorder, result: LRRTResult,
                verdict: Verdict | None) -> None:
        if self.artifacts is None:
            return
        try:
            self.artifacts.upload(trial, result, verdict)
        except Exception as error:  # disk full, folder gone: the trial goes on without
            if is_storage_error(error):
                raise  # the database, not the file: paused or given up by __call__
            self._degraded(trial, record, f"artifact: {write_problem(error)}")

    def _verdict(self, trial: optuna.Trial, value: float, step: int) -> Verdict | None:
        """Report ``value`` at ``step`` and ask the pruner: its verdict, None to go on.
        Multi-objective: nothing is reported, the LRRT gate alone judges (at its step)."""
        if self.config.multi_objective:
            return (self.pruner.gate(trial.study, frozen_trial(trial))
                    if step == LRRT_STEP else None)
        trial.report(value, step)
        return self.pruner.verdict(trial.study, frozen_trial(trial))

    @staticmethod
    def _stop_if(record: TrialRecorder, verdict: Verdict | None) -> None:
        """Record the verdict and stop the trial, if there is one."""
        if verdict is not None:
            record.pruned(verdict)
            raise optuna.TrialPruned(f"{verdict.reason}: {verdict.detail}" if verdict.detail
                                     else verdict.reason)

    def _train(self, trial: optuna.Trial, record: TrialRecorder, config: TrialConfig,
               bounds: Bounds, owner: CheckpointOwner) -> float | tuple[float, ...]:
        record.bounds(bounds)
        run, state = self._resume(trial, record, owner,
                                  lambda: training_run(config, self.data, bounds))

        def on_epoch(report: EpochReport, state: TrainingState) -> None:
            self._checkpoint(trial, record, owner, run, state)
            assert self._running is not None
            self._running.epochs_done = state.epochs_done
            if self.progress is not None:
                self.progress.epoch(report.epoch, config.train.epochs, report.lr,
                                    report.val_accuracy)
            record.epochs([r.val_accuracy for r in state.history],
                          [r.lr for r in state.history])
            self._stop_if(record, self._verdict(trial, report.val_accuracy, report.epoch))
            self._check_stop(trial, record)

        try:
            state = run.fit(self.data.val, epochs=config.train.epochs, state=state,
                            on_epoch=on_epoch)
        except (optuna.TrialPruned, TrainingDiverged, torch.cuda.OutOfMemoryError):
            self._forget(owner.key)  # finished for good: no retry will want it
            raise
        # Anything else (a stop request, a database outage, a take-over) keeps the
        # checkpoint: the trial's retry resumes from it.
        self._forget(owner.key)
        return objective_values(self.config.objectives, state.best_val_accuracy, run.model,
                                self.data.val)

    def _checkpoint(self, trial: optuna.Trial, record: TrialRecorder, owner: CheckpointOwner,
                    run: TrainingRun, state: TrainingState) -> None:
        if self.checkpoints is None:
            return
        try:
            self.checkpoints.save(owner, _checkpoint_payload(run, state))
        except Exception as error:  # disk full, read-only folder: train on without it
            self._degraded(trial, record, f"checkpoint: {write_problem(error)}")
            return
        assert self._running is not None
        self._running.checkpoint_epoch = state.epochs_done

    def _resume(self, trial: optuna.Trial, record: TrialRecorder, owner: CheckpointOwner,
                build: Callable[[], TrainingRun]) -> tuple[TrainingRun, TrainingState | None]:
        """A fresh run, or the run a previous attempt checkpointed (its epochs re-reported,
        so the retried trial's curve is complete). A checkpoint that does not load into
        this design is discarded and training starts from epoch 0."""
        run = build()
        if self.checkpoints is None:
            return run, None
        saved = self.checkpoints.load(owner, self.data.device)
        if saved is None:
            return run, None
        try:
            run.load_state_dict(saved)
            state = TrainingState.from_dict(saved["training"])
        except Exception as error:  # a half-loaded run is not trusted: build it again
            self.checkpoints.discard(owner.key, f"it does not fit this design "
                                     f"({first_line(error)})")
            return build(), None
        assert self._running is not None
        self._running.epochs_done = self._running.checkpoint_epoch = state.epochs_done
        record.resumed(state.epochs_done)
        if not self.config.multi_objective:  # Optuna keeps no steps of those
            for report in state.history:
                trial.report(report.val_accuracy, report.epoch)
        return run, state

    @property
    def running_number(self) -> int | None:
        """The number of the trial this objective started last."""
        return self._running.number if self._running is not None else None

    def abandon(self, study: optuna.study.Study, number: int | None) -> str:
        """Give up trial ``number``, which another process finished while this one ran it;
        the line to print. Its checkpoint is kept only for a retry that is still to run or
        running (a reaper queues one, with the same checkpoint key); with none (the trial
        was failed from the dashboard, or its retry has finished and deleted the file this
        process then wrote again) it is deleted: nobody would ever read it."""
        if number is None:
            return "a trial was finished by another process; abandoned"
        trials = study.get_trials(deepcopy=False)
        mine = next((t for t in trials if t.number == number), None)
        key = mine.user_attrs.get(CHECKPOINT_KEY) if mine is not None else None
        head = (f"trial {number} was finished by another process (reaped, or failed from "
                "the dashboard) while this one ran it; abandoned")
        if key is None:
            return head
        retries = [t for t in trials if t.number != number
                   and t.user_attrs.get(CHECKPOINT_KEY) == key]
        live = [t for t in retries if t.state in (TrialState.WAITING, TrialState.RUNNING)]
        if live:
            return f"{head}: its retry, trial {live[0].number}, resumes from the checkpoint"
        self._forget(key)
        if retries:
            return (f"{head}: its retry, trial {retries[-1].number}, has finished; checkpoint "
                    "deleted")
        return f"{head}: nothing retries it; checkpoint deleted"

    def _forget(self, key: str) -> None:
        if self.checkpoints is not None:
            self.checkpoints.delete(key)


def write_problem(error: BaseException) -> str:
    """What went wrong with a file write, in a few words: the OS's words for an ``OSError``
    (``No space left on device``), else the error's type and first line (``torch.save``'s
    ``RuntimeError: ... unexpected pos ...`` on a disk that filled mid-file)."""
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    # Digits out: "unexpected pos 81920" and "... 86016" are one problem, recorded once.
    return f"{type(error).__name__}: {re.sub(r'[0-9]+', '#', first_line(error, 120))}"


def _checkpoint_payload(run: TrainingRun, state: TrainingState) -> dict[str, Any]:
    """Model, optimizer, scheduler, the batch sampler's state (None for uniform) and the
    training state."""
    return {**run.state_dict(), "training": state.to_dict()}

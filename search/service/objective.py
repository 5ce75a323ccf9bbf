"""The Optuna objective: sample, range-test, maybe reject, train with triangular2, score.

Data lives on the device for the worker's lifetime; each trial only builds a model. Every
fact about the trial goes through ``TrialRecorder``; every pruning decision comes from the
``LRRTPruner``'s ``verdict`` and is recorded with its evidence before the trial stops.
"""

from __future__ import annotations

import os
import socket
import time
from typing import TYPE_CHECKING, Any, Protocol

import optuna
import torch

from search.config import SearchConfig
from search.method.lrrt.result import LRRTResult
from search.method.lrrt.run import run_lrrt
from search.method.memory import release_memory
from search.method.prepared_data import DataOnDevice
from search.method.pruner import LRRT_STEP, LRRTPruner
from search.method.recipe import TrainingRun, triangular2_run
from search.method.sampling import lr_range_label, sample_trial_config
from search.method.training import EpochReport, TrainingDiverged, TrainingState, train_epochs
from search.method.trial_config import TrialConfig
from search.record import (
    DIVERGED,
    INTERRUPTED,
    OOM,
    Bounds,
    LRRTSummary,
    TrialRecorder,
    Verdict,
    frozen_trial,
)
from search.service.stop_flag import StopFlag, WorkerInterrupted

if TYPE_CHECKING:
    from search.service.checkpoints import CheckpointStore


class LRRTArtifacts(Protocol):
    """Where a trial's full range test goes (``search.views.lrrt_artifact``)."""

    def upload(self, trial: optuna.Trial, result: LRRTResult) -> None: ...


class Progress(Protocol):
    """What the objective tells a live display (``search.views.progress.SearchProgress``)."""

    def trial_started(self, number: int, name: str, epochs: int) -> None: ...

    def epoch(self, epoch: int, epochs: int, lr: float, accuracy: float) -> None: ...


class TrialFailed(Exception):
    """A trial that cannot finish (e.g. out of memory); the reason is in its record."""


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
    ) -> None:
        self.config = config
        self.data = data
        self.pruner = pruner
        self.artifacts = artifacts
        self.checkpoints = checkpoints
        self.stop = stop
        self.progress = progress
        self.interrupted_trials: list[int] = []

    def __call__(self, trial: optuna.Trial) -> float:
        started = time.perf_counter()
        record = TrialRecorder(trial)
        config = sample_trial_config(trial, self.config)
        config = config.with_seed(record.inherited_seed(config.seed))
        key = record.inherited_checkpoint_key(f"{trial.study.study_name}-{trial.number}")
        record.started(
            config_name=config.name, run_seed=config.seed, checkpoint_key=key,
            device=str(self.data.device), worker=f"{socket.gethostname()}:{os.getpid()}",
            trial_config=config.to_dict(),
        )
        if self.progress is not None:
            self.progress.trial_started(trial.number, config.name, config.train.epochs)
        try:
            self._check_stop(trial, record)
            summary = self._range_test(trial, record, config)
            self._judge(trial, record, summary.score, LRRT_STEP)
            self._check_stop(trial, record)
            assert summary.bounds is not None  # the gate rejects designs without bounds
            return self._train(trial, record, config, summary.bounds, key)
        except TrainingDiverged as error:
            record.pruned(Verdict(DIVERGED, str(error)))
            raise optuna.TrialPruned(f"{DIVERGED}: {error}") from error
        except torch.cuda.OutOfMemoryError as error:
            record.failed(OOM, str(error).splitlines()[0])
            raise TrialFailed(OOM) from None
        finally:
            record.seconds(time.perf_counter() - started)
            release_memory(self.data.device)

    def _check_stop(self, trial: optuna.Trial, record: TrialRecorder) -> None:
        if self.stop is not None and self.stop.is_set():
            record.failed(INTERRUPTED)
            self.interrupted_trials.append(trial.number)
            raise WorkerInterrupted(self.stop.signal_name or "stop requested")

    def _range_test(self, trial: optuna.Trial, record: TrialRecorder,
                    config: TrialConfig) -> LRRTSummary:
        """The design's range test, recorded; reused from a previous attempt's record."""
        stored = record.inherited_lrrt()
        if stored is not None:
            record.range_test_reused()
            return stored
        result = run_lrrt(config, self.data)
        summary = result.summary(
            group=f"{config.dataset.name}|{lr_range_label(config.lr_range)}",
            num_classes=self.data.dataset.num_classes,
        )
        record.range_test(summary, result.curve.points(), result.n_params)
        if self.artifacts is not None:
            self.artifacts.upload(trial, result)
        return summary

    def _judge(self, trial: optuna.Trial, record: TrialRecorder, value: float,
               step: int) -> None:
        """Report ``value`` at ``step``; record the pruner's verdict and stop if it has one."""
        trial.report(value, step)
        verdict = self.pruner.verdict(trial.study, frozen_trial(trial))
        if verdict is not None:
            record.pruned(verdict)
            raise optuna.TrialPruned(f"{verdict.reason}: {verdict.detail}" if verdict.detail
                                     else verdict.reason)

    def _train(self, trial: optuna.Trial, record: TrialRecorder, config: TrialConfig,
               bounds: Bounds, key: str) -> float:
        record.bounds(bounds)
        run = triangular2_run(config, self.data, bounds)
        state = self._resume(trial, record, key, run)

        def on_epoch(report: EpochReport, state: TrainingState) -> None:
            self._checkpoint(key, run, state)
            if self.progress is not None:
                self.progress.epoch(report.epoch, config.train.epochs, report.lr,
                                    report.val_accuracy)
            record.epochs([r.val_accuracy for r in state.history],
                          [r.lr for r in state.history])
            self._judge(trial, record, report.val_accuracy, report.epoch)
            self._check_stop(trial, record)

        try:
            state = train_epochs(run.model, run.optimizer, run.scheduler, run.train,
                                 self.data.val, epochs=config.train.epochs, state=state,
                                 on_epoch=on_epoch)
        except WorkerInterrupted:
            raise  # keep the checkpoint: the retry resumes from it
        except BaseException:
            self._forget(key)
            raise
        self._forget(key)
        return state.best_val_accuracy

    def _checkpoint(self, key: str, run: TrainingRun, state: TrainingState) -> None:
        if self.checkpoints is not None:
            self.checkpoints.save(key, _checkpoint_payload(run, state))

    def _resume(self, trial: optuna.Trial, record: TrialRecorder, key: str,
                run: TrainingRun) -> TrainingState | None:
        """Load the trial's checkpoint if a previous attempt left one, and re-report its
        epochs so the retried trial's curve is complete."""
        if self.checkpoints is None:
            return None
        saved = self.checkpoints.load(key, self.data.device)
        if saved is None:
            return None
        run.model.load_state_dict(saved["model"])
        run.optimizer.load_state_dict(saved["optimizer"])
        run.scheduler.load_state_dict(saved["scheduler"])
        state = TrainingState.from_dict(saved["training"])
        record.resumed(state.epochs_done)
        for report in state.history:
            trial.report(report.val_accuracy, report.epoch)
        return state

    def _forget(self, key: str) -> None:
        if self.checkpoints is not None:
            self.checkpoints.delete(key)


def _checkpoint_payload(run: TrainingRun, state: TrainingState) -> dict[str, Any]:
    return {"model": run.model.state_dict(), "optimizer": run.optimizer.state_dict(),
            "scheduler": run.scheduler.state_dict(), "training": state.to_dict()}

"""The Optuna objective: sample, build, LRRT, maybe reject, train with triangular2, score.

Data lives on the device for the worker's lifetime; each trial only builds a model.
"""

from __future__ import annotations

import os
import socket
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
import torch

from data import DeviceBatches, ImageDataset
from models import build_cnn, count_parameters
from search import pruner as lrrt_attrs
from search.checkpoints import CheckpointStore
from search.config import SearchConfig
from search.lrrt import LRRTResult, run_range_test, summarise
from search.memory import release_memory
from search.optimizers import make_optimizer
from search.pruner import LRRT_STEP, LRRTPruner, chance_threshold
from search.sampling import lr_range_label, sample_trial_config
from search.stop_flag import StopFlag, WorkerInterrupted
from search.training import (
    EpochReport,
    TrainingDiverged,
    TrainingState,
    make_triangular2,
    train_epochs,
)
from search.trial_config import TrialConfig

CURVE_POINTS = 200
"""Points of the smoothed LRRT curve kept in user attrs (the full curve is an artifact)."""


def downsample(values: list[float], points: int = CURVE_POINTS) -> list[float]:
    if len(values) <= points:
        return list(values)
    step = (len(values) - 1) / (points - 1)
    return [values[round(i * step)] for i in range(points)]


def curve_attr(result: LRRTResult) -> dict[str, list[float]]:
    curve = result.curve
    return {
        "lr": downsample(curve.lrs),
        "accuracy": downsample(curve.smoothed_accuracies),
        "loss": downsample(curve.smoothed_losses),
    }


@dataclass
class DataOnDevice:
    """The dataset moved to the device once; train batches are cached per batch size."""

    dataset: ImageDataset
    device: torch.device
    eval_batch_size: int

    def __post_init__(self) -> None:
        self._train: dict[int, DeviceBatches] = {}
        self.val = DeviceBatches(
            self.dataset.val_images, self.dataset.val_labels,
            batch_size=self.eval_batch_size, device=self.device, shuffle=False, seed=0,
        )

    def train(self, batch_size: int, seed: int) -> DeviceBatches:
        if batch_size not in self._train:
            self._train[batch_size] = DeviceBatches(
                self.dataset.train_images, self.dataset.train_labels,
                batch_size=batch_size, device=self.device, shuffle=True, seed=seed,
            )
        batches = self._train[batch_size]
        batches.seed = seed
        return batches


def run_lrrt(config: TrialConfig, data: DataOnDevice) -> LRRTResult:
    """One range test of a design from its seed; pure with respect to Optuna."""
    dataset = data.dataset
    model = build_cnn(config.architecture, dataset.input_shape, dataset.num_classes,
                      seed=config.seed).to(data.device)
    optimizer = make_optimizer(model, config.optimizer, config.lr_range[0],
                               sgd_momentum=config.train.sgd_momentum)
    started = time.perf_counter()
    curve, memory = run_range_test(
        model, optimizer, data.train(config.batch_size, config.seed), data.val,
        lr_range=config.lr_range, epochs=config.lrrt.epochs,
        sma_periods=config.lrrt.sma_periods, divergence_factor=config.lrrt.divergence_factor,
    )
    result = summarise(
        curve, memory, time.perf_counter() - started,
        bound_rule=config.lrrt.bound_rule, compare_rule=config.lrrt.compare_rule,
        disagreement_factor=config.lrrt.disagreement_factor,
    )
    result.n_params = count_parameters(model)
    return result


class TrialFailed(Exception):
    """A trial that cannot finish (e.g. out of memory); the reason is in ``fail_reason``."""


class Objective:
    """Callable passed to ``study.optimize``; one instance per worker process.

    A retried trial (Optuna's heartbeat retry copies params and user attrs) reuses its
    stored LRRT verdict and resumes training from its last epoch checkpoint.
    """

    progress: Any = None
    """A ``search.progress.SearchProgress`` told of each trial and epoch (set by the runner)."""

    def __init__(
        self,
        config: SearchConfig,
        data: DataOnDevice,
        *,
        artifact_store: optuna.artifacts.FileSystemArtifactStore | None = None,
        checkpoints: CheckpointStore | None = None,
        stop: StopFlag | None = None,
    ) -> None:
        self.config = config
        self.data = data
        self.artifact_store = artifact_store
        self.checkpoints = checkpoints
        self.stop = stop
        self.interrupted_trials: list[int] = []

    def __call__(self, trial: optuna.Trial) -> float:
        started = time.perf_counter()
        config = sample_trial_config(trial, self.config)
        seed = int(trial.user_attrs.get("run_seed", config.seed))
        config = config.with_seed(seed)
        self._set_attrs(trial, {
            "config_name": config.name,
            "run_seed": seed,
            "checkpoint_key": trial.user_attrs.get("checkpoint_key",
                                                   f"{trial.study.study_name}-{trial.number}"),
            "device": str(self.data.device),
            "worker": f"{socket.gethostname()}:{os.getpid()}",
            "trial_config": config.to_dict(),
        })
        if self.progress is not None:
            self.progress.trial_started(trial.number, config.name, config.train.epochs)
        try:
            self._check_stop(trial)
            score, bounds, divergence = self._range_test(trial, config)
            self._judge_lrrt(trial, score, divergence)
            self._check_stop(trial)
            return self._train(trial, config, bounds)
        except TrainingDiverged as error:
            raise self._pruned(trial, lrrt_attrs.DIVERGED, str(error)) from error
        except torch.cuda.OutOfMemoryError as error:
            trial.set_user_attr("fail_reason", "oom")
            trial.set_user_attr("fail_detail", str(error).splitlines()[0][:500])
            raise TrialFailed("oom") from None
        finally:
            trial.set_user_attr("seconds", round(time.perf_counter() - started, 3))
            release_memory(self.data.device)

    @staticmethod
    def _set_attrs(trial: optuna.Trial, values: dict[str, Any]) -> None:
        for key, value in values.items():
            trial.set_user_attr(key, value)

    def _check_stop(self, trial: optuna.Trial) -> None:
        if self.stop is not None and self.stop.is_set():
            trial.set_user_attr("fail_reason", "interrupted")
            self.interrupted_trials.append(trial.number)
            raise WorkerInterrupted(self.stop.signal_name or "stop requested")

    def _range_test(
        self, trial: optuna.Trial, config: TrialConfig
    ) -> tuple[float, tuple[float, float] | None, str | None]:
        """Score, bounds and divergence note; reused from the user attrs of a retried trial."""
        stored = trial.user_attrs.get("lrrt")
        if stored is not None and lrrt_attrs.ATTR_SCORE in trial.user_attrs:
            trial.set_user_attr("lrrt_reused", True)
            bounds = stored.get("bounds")
            return (float(trial.user_attrs[lrrt_attrs.ATTR_SCORE]),
                    tuple(bounds) if bounds else None, stored.get("divergence"))
        result = run_lrrt(config, self.data)
        num_classes = self.data.dataset.num_classes
        learned = result.best_smoothed_accuracy >= chance_threshold(
            num_classes, self.config.pruner.chance_margin
        )
        self._set_attrs(trial, {
            "n_params": result.n_params,
            "lrrt": result.summary(),
            "lrrt_curve": curve_attr(result),
            lrrt_attrs.ATTR_SCORE: result.best_smoothed_accuracy,
            lrrt_attrs.ATTR_GROUP: f"{config.dataset.name}|{lr_range_label(config.lr_range)}",
            lrrt_attrs.ATTR_NUM_CLASSES: num_classes,
            lrrt_attrs.ATTR_DIVERGED: result.curve.diverged,
            lrrt_attrs.ATTR_USABLE: result.curve.completed_fraction,
            lrrt_attrs.ATTR_HAS_BOUNDS: result.bounds is not None,
            lrrt_attrs.ATTR_UNSTABLE: result.unstable,
            lrrt_attrs.ATTR_LEARNED: learned,
        })
        if self.artifact_store is not None:
            self._upload_curve(trial, result)
        return result.best_smoothed_accuracy, result.bounds, result.curve.divergence

    def _upload_curve(self, trial: optuna.Trial, result: LRRTResult) -> None:
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / f"lrrt-trial-{trial.number}.json"
            path.write_text(result.to_json())
            artifact_id = optuna.artifacts.upload_artifact(
                artifact_store=self.artifact_store, file_path=str(path),
                study_or_trial=trial, mimetype="application/json",
            )
        trial.set_user_attr("lrrt_artifact_id", artifact_id)
        from search.lrrt_svg import upload_result_svg  # the plot optuna-dashboard previews

        upload_result_svg(self.artifact_store, trial, result)

    def _judge_lrrt(self, trial: optuna.Trial, score: float, divergence: str | None) -> None:
        trial.report(score, LRRT_STEP)
        if trial.should_prune():
            raise self._pruned(trial, self._reason(trial), divergence or "")

    def _train(self, trial: optuna.Trial, config: TrialConfig,
               bounds: tuple[float, float] | None) -> float:
        assert bounds is not None  # the pruner rejects designs without bounds
        low, high = bounds
        trial.set_user_attr("lr_bounds", [low, high])
        dataset = self.data.dataset
        model = build_cnn(config.architecture, dataset.input_shape, dataset.num_classes,
                          seed=config.seed).to(self.data.device)
        optimizer = make_optimizer(model, config.optimizer, low,
                                   sgd_momentum=config.train.sgd_momentum)
        train = self.data.train(config.batch_size, config.seed)
        scheduler = make_triangular2(optimizer, (low, high), steps_per_epoch=len(train),
                                     step_size_epochs=config.train.step_size_epochs)
        key = trial.user_attrs["checkpoint_key"]
        state = self._resume(trial, key, model, optimizer, scheduler)

        def on_epoch(report: EpochReport, state: TrainingState) -> None:
            if self.checkpoints is not None:
                self.checkpoints.save(key, {
                    "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(), "training": state.to_dict(),
                })
            if self.progress is not None:
                self.progress.epoch(report.epoch, config.train.epochs, report.lr,
                                    report.val_accuracy)
            trial.set_user_attr("val_curve", [r.val_accuracy for r in state.history])
            trial.set_user_attr("lr_curve", [r.lr for r in state.history])
            trial.report(report.val_accuracy, report.epoch)
            if trial.should_prune():
                raise self._pruned(trial, self._reason(trial), f"epoch {report.epoch}")
            self._check_stop(trial)

        try:
            state = train_epochs(model, optimizer, scheduler, train, self.data.val,
                                 epochs=config.train.epochs, state=state, on_epoch=on_epoch)
        except WorkerInterrupted:
            raise  # keep the checkpoint: the retry resumes from it
        except BaseException:
            self._forget(key)
            raise
        self._forget(key)
        return state.best_val_accuracy

    def _resume(self, trial: optuna.Trial, key: str, model: torch.nn.Module,
                optimizer: torch.optim.Optimizer,
                scheduler: torch.optim.lr_scheduler.LRScheduler) -> TrainingState | None:
        """Load the trial's checkpoint if a previous attempt left one, and re-report its
        epochs so the retried trial's curve is complete."""
        if self.checkpoints is None:
            return None
        saved = self.checkpoints.load(key, self.data.device)
        if saved is None:
            return None
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        scheduler.load_state_dict(saved["scheduler"])
        state = TrainingState.from_dict(saved["training"])
        trial.set_user_attr("resumed_from_epoch", state.epochs_done)
        for report in state.history:
            trial.report(report.val_accuracy, report.epoch)
        return state

    def _forget(self, key: str) -> None:
        if self.checkpoints is not None:
            self.checkpoints.delete(key)

    @staticmethod
    def _reason(trial: optuna.Trial) -> str:
        pruner = trial.study.pruner
        reason = pruner.pop_reason(trial.number) if isinstance(pruner, LRRTPruner) else None
        return reason or "pruned"

    @staticmethod
    def _pruned(trial: optuna.Trial, reason: str, detail: str) -> optuna.TrialPruned:
        """Record why, and return the exception for the caller to raise."""
        trial.set_user_attr("prune_reason", reason)
        if detail:
            trial.set_user_attr("prune_detail", detail)
        return optuna.TrialPruned(f"{reason}: {detail}" if detail else reason)

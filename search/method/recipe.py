"""Model -> optimizer -> schedule (-> batch sampler, augmenter) for one design, written once
for the range test, the search's training, ``cnnsearch train`` and the benchmarks.

What a ``TrialConfig`` says is built here and nowhere else: the family's network (with
``Standardise`` first when the design normalises its inputs), the optimizer with its own
parameters, the LR schedule (``make_schedule``: triangular2 between the LRRT bounds, or a
fixed-LR schedule from the upper bound), the batch sampler (None for ``uniform``: the plain
shuffled epochs) and the augmenter (None when every transform is off). With the thesis'
defaults the run is exactly the triangular2 training it has always been.

How the steps run on the device is built here too (``build_execution``): the precision
``train.precision`` resolves to there and, with ``train.compile``, the compiled forward. On
a CUDA device the model is ``channels_last``, as the batches are (``DataOnDevice``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from data import DeviceBatches
from data.augment import Augmenter
from models import ThesisCNN, build_cnn
from search.method.batch_selection import BatchSampler, make_batch_sampler
from search.method.normalisation import channel_statistics, standardise_inputs
from search.method.optimizers import make_optimizer
from search.method.prepared_data import DataOnDevice
from search.method.schedules import make_schedule
from search.method.step import Execution
from search.method.training import EpochReport, TrainingState, train_epochs
from search.method.trial_config import TrialConfig


def build_model(config: TrialConfig, data: DataOnDevice, seed: int | None = None) -> ThesisCNN:
    """The design's network on the data's device, initialised from ``seed`` (default: the
    trial's own, so a retry rebuilds the same weights); inputs standardised with the
    training split's statistics when the design says ``normalise``; in the data's memory
    format (``channels_last`` on CUDA)."""
    dataset = data.dataset
    model = build_cnn(config.architecture, dataset.input_shape, dataset.num_classes,
                      seed=config.seed if seed is None else seed).to(data.device)
    if config.normalise:
        standardise_inputs(model, *channel_statistics(dataset.train_images))
    return model.to(memory_format=data.memory_format)


def build_execution(config: TrialConfig, model: torch.nn.Module,
                    data: DataOnDevice) -> Execution:
    """How ``model``'s steps run on the data's device: ``train.precision`` resolved there,
    the forward compiled when ``train.compile`` says so (once: call it once per model)."""
    return Execution.for_model(model, data.device, precision=config.train.precision,
                               compile_mode=config.train.compile)


def build_optimizer(model: ThesisCNN, config: TrialConfig, lr: float) -> torch.optim.Optimizer:
    return make_optimizer(model, config.optimizer, lr, params=config.optimizer_params)


def build_augmenter(config: TrialConfig, train: DeviceBatches,
                    seed: int | None = None) -> Augmenter | None:
    """The design's augmentation on the batches' device; None when it is all off."""
    settings = config.augmentation
    if not settings.enabled:
        return None
    return Augmenter(settings, seed=config.seed if seed is None else seed, device=train.device)


def build_sampler(config: TrialConfig, train: DeviceBatches,
                  seed: int | None = None) -> BatchSampler | None:
    """The design's batch sampler over ``train``; None for ``uniform`` (``train`` itself)."""
    if config.sampling == "uniform":
        return None
    return make_batch_sampler(config.sampling_settings, train,
                              seed=config.seed if seed is None else seed)


@dataclass
class TrainingRun:
    """Everything ``train_epochs`` needs for one training run of a design."""

    model: ThesisCNN
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    train: DeviceBatches
    sampler: BatchSampler | None = None
    augment: Augmenter | None = None
    execution: Execution | None = None
    """How the steps run (default: eager fp32)."""

    def fit(self, val: DeviceBatches, *, epochs: int, state: TrainingState | None = None,
            on_epoch: Callable[[EpochReport, TrainingState], None] | None = None
            ) -> TrainingState:
        """``train_epochs`` of this run (see there for ``state`` and ``on_epoch``)."""
        return train_epochs(self.model, self.optimizer, self.scheduler, self.train, val,
                            epochs=epochs, state=state, on_epoch=on_epoch,
                            sampler=self.sampler, augment=self.augment,
                            execution=self.execution)

    def state_dict(self) -> dict[str, Any]:
        """What a checkpoint holds of the run (the training state aside)."""
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(),
                "sampler": None if self.sampler is None else self.sampler.state_dict(),
                "scaler": None if self.execution is None
                else self.execution.precision.state_dict()}

    def load_state_dict(self, saved: dict[str, Any]) -> None:
        """A checkpoint's run back in place (a checkpoint from before samplers had state
        has no ``sampler``: a loss-based sampler then starts over; one without ``scaler``
        leaves an fp16 run its fresh scale)."""
        self.model.load_state_dict(saved["model"])
        self.optimizer.load_state_dict(saved["optimizer"])
        self.scheduler.load_state_dict(saved["scheduler"])
        if self.sampler is not None and saved.get("sampler") is not None:
            self.sampler.load_state_dict(saved["sampler"])
        if self.execution is not None:
            self.execution.precision.load_state_dict(saved.get("scaler"))


def training_run(config: TrialConfig, data: DataOnDevice, bounds: tuple[float, float],
                 *, seed: int | None = None) -> TrainingRun:
    """A fresh model trained with the design's schedule: triangular2 between ``bounds`` (the
    LRRT's), or a fixed-LR schedule that starts at the upper bound."""
    seed = config.seed if seed is None else seed
    model = build_model(config, data, seed)
    optimizer = build_optimizer(model, config, bounds[0])
    train = data.train(config.batch_size, seed)
    scheduler = make_schedule(optimizer, config.schedule_settings, bounds,
                              steps_per_epoch=len(train))
    return TrainingRun(model, optimizer, scheduler, train,
                       sampler=build_sampler(config, train, seed),
                       augment=build_augmenter(config, train, seed),
                       execution=build_execution(config, model, data))


triangular2_run = training_run
"""The name from before the other schedules: with the default schedule it is that run."""

"""Model -> optimizer -> schedule for one design, written once for the range test, the
search's training, ``cnnsearch train`` and the benchmarks."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from data import DeviceBatches
from models import ThesisCNN, build_cnn
from search.method.optimizers import make_optimizer
from search.method.prepared_data import DataOnDevice
from search.method.training import make_triangular2
from search.method.trial_config import TrialConfig


def build_model(config: TrialConfig, data: DataOnDevice, seed: int | None = None) -> ThesisCNN:
    """The design's network on the data's device, initialised from ``seed`` (default: the
    trial's own, so a retry rebuilds the same weights)."""
    dataset = data.dataset
    return build_cnn(config.architecture, dataset.input_shape, dataset.num_classes,
                     seed=config.seed if seed is None else seed).to(data.device)


def build_optimizer(model: ThesisCNN, config: TrialConfig, lr: float) -> torch.optim.Optimizer:
    return make_optimizer(model, config.optimizer, lr, sgd_momentum=config.train.sgd_momentum)


@dataclass
class TrainingRun:
    """Everything ``train_epochs`` needs for one triangular2 run of a design."""

    model: ThesisCNN
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.CyclicLR
    train: DeviceBatches


def triangular2_run(config: TrialConfig, data: DataOnDevice, bounds: tuple[float, float],
                    *, seed: int | None = None) -> TrainingRun:
    """A fresh model trained with Smith's triangular2 between ``bounds``."""
    seed = config.seed if seed is None else seed
    model = build_model(config, data, seed)
    optimizer = build_optimizer(model, config, bounds[0])
    train = data.train(config.batch_size, seed)
    scheduler = make_triangular2(optimizer, bounds, steps_per_epoch=len(train),
                                 step_size_epochs=config.train.step_size_epochs)
    return TrainingRun(model, optimizer, scheduler, train)

"""What a trial is scored on: the validation accuracy, maximised, and optionally one more
objective to minimise (a multi-objective search, ``objectives`` in the config).

- ``n_params``: the design's parameter count (``models.count_parameters``);
- ``latency_ms``: the measured inference latency on the search's device, the median of
  ``LATENCY_RUNS`` timed forward passes of one evaluation batch (the first
  ``min(train.eval_batch_size, validation size)`` validation images), after
  ``LATENCY_WARMUP`` untimed ones, in eval mode without gradients. It depends on the device
  and its load: compare designs of one study, measured on one kind of device.

``OBJECTIVES`` is the registry the config validates against, with each one's direction.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import torch
from torch import nn

from data import DeviceBatches
from models import count_parameters

PRIMARY_OBJECTIVE = "val_accuracy"
"""Always the first objective: the best validation accuracy of the training."""

LATENCY_WARMUP = 2
LATENCY_RUNS = 5

MAXIMIZE = "maximize"
MINIMIZE = "minimize"


def measure_latency_ms(model: nn.Module, batches: DeviceBatches) -> float:
    """Median milliseconds of one forward pass of the first batch of ``batches``."""
    images, _ = next(iter(batches.epoch(0)))
    was_training = model.training
    model.eval()
    device = images.device
    seconds = []
    with torch.inference_mode():
        for run in range(LATENCY_WARMUP + LATENCY_RUNS):
            _synchronize(device)
            started = time.perf_counter()
            model(images)
            _synchronize(device)
            if run >= LATENCY_WARMUP:
                seconds.append(time.perf_counter() - started)
    model.train(was_training)
    return 1000.0 * statistics.median(seconds)


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


Measure = Callable[[nn.Module, DeviceBatches], float]
"""``(trained model, validation batches) -> the objective's value``."""

OBJECTIVES: dict[str, tuple[str, Measure | None]] = {
    PRIMARY_OBJECTIVE: (MAXIMIZE, None),  # the training's own figure
    "n_params": (MINIMIZE, lambda model, _val: float(count_parameters(model))),
    "latency_ms": (MINIMIZE, measure_latency_ms),
}
"""Objective name -> (direction, how to measure it on the trained model)."""


def directions(names: tuple[str, ...]) -> list[str]:
    return [OBJECTIVES[name][0] for name in names]


def objective_values(names: tuple[str, ...], best_val_accuracy: float, model: nn.Module,
                     val: DeviceBatches) -> float | tuple[float, ...]:
    """The trial's value: the accuracy alone for a single objective (as always), else one
    value per objective, in ``names``' order."""
    if len(names) == 1:
        return best_val_accuracy
    values = [best_val_accuracy]
    for name in names[1:]:
        measure = OBJECTIVES[name][1]
        assert measure is not None
        values.append(measure(model, val))
    return tuple(values)

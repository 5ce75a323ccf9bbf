"""Running the learning-rate range test (METHOD.md §1.2): a short run with a linearly
growing LR, on device-resident batches.

Per batch it records LR, loss and accuracy (``LRRTCurve``), evaluates on the validation set
at each epoch end and stops early on divergence; ``run_lrrt`` pairs the curve with its
summary (``LRRTResult``), what a trial stores. The test trains the design as its training will
(``search.method.recipe``): the same network (input normalisation included), optimizer and
parameters, batch sampling strategy and augmentation, only the LR differs.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from functools import partial

import numpy as np
import torch

from data import DeviceBatches
from data.augment import Augmenter
from models import ThesisCNN, count_parameters
from search.method.batch_selection import BatchSampler
from search.method.evaluation import evaluate
from search.method.lrrt.curve import LRRTCurve, find_divergence
from search.method.lrrt.result import LRRTResult, summarise
from search.method.peak_memory import PeakMemory
from search.method.prepared_data import DataOnDevice
from search.method.recipe import (
    build_augmenter,
    build_execution,
    build_model,
    build_optimizer,
    build_sampler,
)
from search.method.step import Execution, train_step
from search.method.training import epoch_batches
from search.method.trial_config import TrialConfig

CHECK_EVERY = 16
"""Batches between host syncs: divergence is checked in chunks so the GPU never waits per step."""

LRRTProgress = Callable[[int, int, float, float], None]
"""``progress(step, total_steps, lr, smoothed_loss)``, called at the host syncs (every
``CHECK_EVERY`` steps and at each epoch end), never more often: it adds no host sync."""


def run_lrrt(config: TrialConfig, data: DataOnDevice,
             progress: LRRTProgress | None = None) -> LRRTResult:
    """One range test of a design from its seed; pure with respect to Optuna. ``progress``
    is told how far the ramp got (``run_range_test``)."""
    model = build_model(config, data)
    optimizer = build_optimizer(model, config, config.lr_range[0])
    train = data.train(config.batch_size, config.seed)
    started = time.perf_counter()
    curve, memory = run_range_test(
        model, optimizer, train, data.val,
        lr_range=config.lr_range, epochs=config.lrrt.epochs,
        sma_periods=config.lrrt.sma_periods, divergence_factor=config.lrrt.divergence_factor,
        steps=config.lrrt.steps, ramp=config.lrrt.ramp, progress=progress,
        sampler=build_sampler(config, train), augment=build_augmenter(config, train),
        execution=build_execution(config, model, data),
    )
    return summarise(
        curve, bound_rule=config.lrrt.bound_rule, compare_rule=config.lrrt.compare_rule,
        disagreement_factor=config.lrrt.disagreement_factor,
        group=config.lrrt_group, num_classes=data.dataset.num_classes,
        peak_memory_bytes=memory.peak(), memory_kind=memory.kind,
        seconds=time.perf_counter() - started, n_params=count_parameters(model),
    )


def run_range_test(
    model: ThesisCNN,
    optimizer: torch.optim.Optimizer,
    train: DeviceBatches,
    val: DeviceBatches,
    *,
    lr_range: tuple[float, float],
    epochs: float,
    sma_periods: int,
    divergence_factor: float,
    steps: int | None = None,
    ramp: str = "linear",
    progress: LRRTProgress | None = None,
    sampler: BatchSampler | None = None,
    augment: Augmenter | None = None,
    execution: Execution | None = None,
) -> tuple[LRRTCurve, PeakMemory]:
    """Train for ``steps`` batches (else ``epochs``, fractions allowed) with the LR ramping
    from ``lr_range[0]`` to ``lr_range[1]`` over the whole test, linearly (the thesis) or
    geometrically (``ramp="exponential"``), with torch's ``LinearLR``/``ExponentialLR``.

    The caller's model and optimizer are trained in place: the LRRT model is a throwaway,
    the search rebuilds from the seed for training. ``progress`` gets the step, the total,
    the LR and the smoothed loss each time the metrics come to the host anyway.
    ``sampler``, ``augment`` and ``execution`` form and transform the batches and run the
    steps as in ``train_epochs``.
    """
    lr_min, lr_max = lr_range
    steps_per_epoch = len(train)
    total_steps = max(2, steps if steps is not None else math.ceil(epochs * steps_per_epoch))
    curve = LRRTCurve(lr_min, lr_max, steps_per_epoch, total_steps, sma_periods, ramp=ramp)
    scheduler = _ramp(optimizer, curve)
    memory = PeakMemory(train.device).start()
    device = train.device
    losses = torch.empty(total_steps, device=device)
    correct = torch.empty(total_steps, device=device)
    sizes = torch.empty(total_steps, device=device)
    model.train()
    start_weights = _flat_weights(model).clone()
    step, synced, epoch = 0, 0, 0
    epoch_start = 0
    while step < total_steps and not curve.diverged:
        if augment is not None:
            augment.start_epoch(epoch)
        for batch in epoch_batches(train, sampler, epoch):
            images = batch.images if augment is None else augment(batch.images)
            observe = partial(sampler.observe, batch) if sampler and sampler.observes else None
            curve.lrs.append(optimizer.param_groups[0]["lr"])
            losses[step], correct[step] = train_step(model, optimizer, scheduler, images,
                                                     batch.labels, weights=batch.weights,
                                                     on_losses=observe, execution=execution)
            sizes[step] = batch.labels.shape[0]
            step += 1
            if step % CHECK_EVERY == 0 or step == total_steps:
                synced = _sync(curve, losses, correct, sizes, synced, step, divergence_factor,
                               progress)
                memory.sample()
            if step >= total_steps or curve.diverged:
                break
        synced = _sync(curve, losses, correct, sizes, synced, step, divergence_factor,
                       progress)
        epoch += 1
        if not curve.diverged:
            val_loss, val_accuracy = evaluate(model, val, execution)
            curve.epochs.append({
                "epoch": epoch,
                "step": step,
                "lr": curve.lrs[-1],
                "loss": float(np.mean(curve.losses[epoch_start:step])),
                "accuracy": float(np.mean(curve.accuracies[epoch_start:step])),
                "val_loss": val_loss,
                "val_accuracy": val_accuracy,
            })
            epoch_start = step
    curve.weight_change = _relative_change(start_weights, _flat_weights(model))
    return curve, memory


def _flat_weights(model: torch.nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in model.parameters()])


def _relative_change(start: torch.Tensor, end: torch.Tensor) -> float | None:
    """||end - start|| / ||start||; None when it is not a number (diverged weights)."""
    change = float(torch.linalg.vector_norm(end - start) / torch.linalg.vector_norm(start))
    return change if math.isfinite(change) else None


def _ramp(optimizer: torch.optim.Optimizer,
          curve: LRRTCurve) -> torch.optim.lr_scheduler.LRScheduler:
    """The scheduler that moves the LR along the curve's planned ramp, one step a batch."""
    lr_min, lr_max, last = curve.lr_min, curve.lr_max, curve.total_steps - 1
    if curve.ramp == "exponential":
        for group in optimizer.param_groups:
            group["lr"] = group["initial_lr"] = lr_min
        return torch.optim.lr_scheduler.ExponentialLR(optimizer, (lr_max / lr_min) ** (1 / last))
    for group in optimizer.param_groups:
        group["lr"] = group["initial_lr"] = lr_max
    return torch.optim.lr_scheduler.LinearLR(optimizer, start_factor=lr_min / lr_max,
                                             end_factor=1.0, total_iters=last)


def _sync(curve: LRRTCurve, losses: torch.Tensor, correct: torch.Tensor, sizes: torch.Tensor,
          synced: int, step: int, divergence_factor: float,
          progress: LRRTProgress | None = None) -> int:
    """Copy the new chunk of metrics to the host, cut the curve at a divergence and tell
    ``progress`` (the metrics are on the host now: no extra sync)."""
    if step <= synced or curve.diverged:
        return synced
    curve.losses += losses[synced:step].tolist()
    curve.accuracies += (correct[synced:step] / sizes[synced:step]).tolist()
    found = find_divergence(curve.losses, curve.sma_periods, divergence_factor)
    if found is not None:
        cut, reason = found
        curve.diverged = True
        curve.divergence = f"{reason} at step {cut} (lr {curve.lrs[cut]:.3g})"
        curve.divergence_point = curve.divergence_at(cut)  # the evidence outlives the cut
        del curve.lrs[cut:], curve.losses[cut:], curve.accuracies[cut:]
    if progress is not None:
        recent = curve.losses[-curve.sma_periods:]
        loss = sum(recent) / len(recent) if recent else math.nan
        progress(step, curve.total_steps, curve.lrs[-1] if curve.lrs else curve.lr_min, loss)
    return step

"""Running the learning-rate range test (METHOD.md §1.2): a short run with a linearly
growing LR, on device-resident batches.

Per batch it records LR, loss and accuracy (``LRRTCurve``), evaluates on the validation set
at each epoch end and stops early on divergence; ``run_lrrt`` pairs the curve with its
summary (``LRRTResult``), what a trial stores. The test trains the design as its training will
(``search.method.recipe``): the same network (input normalisation included), optimizer and
parameters, batch sampling strategy and augmentation, only the LR differs.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np
import torch

from data import DeviceBatches
from data.augment import Augmenter
from models import ThesisCNN, count_parameters
from search.config import LRRTSettings
from search.method.batch_selection import BatchSampler
from search.method.evaluation import evaluate
from search.method.lrrt.curve import LRRTCurve, find_divergence, limit_reached
from search.method.lrrt.result import LR_FREE_RULE, LRRTResult, summarise
from search.method.optimizers import LR_FREE_BOUNDS
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

LOGGER = logging.getLogger("cnnsearch.lrrt")

CHECK_EVERY = 16
"""Batches between host syncs: divergence is checked in chunks so the GPU never waits per step."""

LRRTProgress = Callable[[int, int, float, float], None]
"""``progress(step, total_steps, lr, smoothed_loss)``, called at the host syncs (every
``CHECK_EVERY`` steps and at each epoch end), never more often: it adds no host sync."""


def ramp_steps(settings: LRRTSettings, train_epochs: int, steps_per_epoch: int) -> int:
    """How many batches the ramp runs: ``steps`` when set, else ``share`` of the trial's
    training batches (at least ``min_steps``), else ``epochs`` epochs (the thesis)."""
    if settings.steps is not None:
        return settings.steps
    if settings.share is not None:
        trial = train_epochs * steps_per_epoch
        steps = max(settings.min_steps, math.ceil(settings.share * trial))
        if steps > BUDGET_SHARE * trial:
            _warn_once(f"cnnsearch: the range test's floor of {settings.min_steps} batches "
                       f"(lrrt.min_steps) is {steps / trial:.0%} of a {trial}-batch trial, "
                       f"over the {BUDGET_SHARE:.0%} a test should cost; train longer or "
                       "lower lrrt.min_steps")
        return steps
    return max(2, math.ceil(settings.epochs * steps_per_epoch))


BUDGET_SHARE = 0.1
"""What a range test should cost at most, as a share of its trial's training batches."""
_WARNED: set[str] = set()


def _warn_once(message: str) -> None:
    if message not in _WARNED:
        _WARNED.add(message)
        LOGGER.warning(message)


def run_lrrt(config: TrialConfig, data: DataOnDevice,
             progress: LRRTProgress | None = None) -> LRRTResult:
    """One range test of a design from its seed; pure with respect to Optuna. ``progress``
    is told how far the ramp got (``run_range_test``).

    An exponential ramp goes past its range (``lrrt.extend_decades``) when the range does
    not hold the answer, at the same rate per batch: upward, on the same run, while the
    loss has not turned up by ``lr_max``; downward, a fresh ramp ending at ``lr_min``, when
    the bounds it read fall under ``lr_min`` (the design diverged at the range's first
    rates). The result is the last ramp measured; its cost is every batch run. An LR-free
    optimizer's test is a gate only: its ramp ends at the LR the optimizer runs at and its
    bounds are that optimizer's (``LR_FREE_BOUNDS``)."""
    started = time.perf_counter()
    settings = config.lrrt
    per_epoch = len(data.train(config.batch_size, config.seed))
    steps = ramp_steps(settings, config.train.epochs, per_epoch)
    lr_free = config.optimizer in LR_FREE_BOUNDS
    extend = (0.0 if lr_free or settings.ramp != "exponential" else settings.extend_decades)
    low, high = config.lr_range
    per_decade = (steps - 1) / math.log10(high / low)
    up = math.ceil(extend * per_decade)
    curve, memory, n_params = _one_ramp(config, data, (low, high * 10 ** (up / per_decade)),
                                        steps + up, progress,
                                        check_limit_from=steps if up else None)
    peak = memory.peak()
    if extend and not _summarise(curve, config, data, lr_free).bounds_within(low):
        down = math.ceil(extend * per_decade)
        curve, below, _ = _one_ramp(config, data, (low / 10 ** (down / per_decade), low),
                                    down + 1, progress)
        curve.extension = "down"
        peak = max(peak, below.peak())
    return _summarise(curve, config, data, lr_free, peak_memory_bytes=peak,
                      memory_kind=memory.kind, seconds=time.perf_counter() - started,
                      n_params=n_params)


def _one_ramp(config: TrialConfig, data: DataOnDevice, lr_range: tuple[float, float],
              steps: int, progress: LRRTProgress | None, check_limit_from: int | None = None
              ) -> tuple[LRRTCurve, PeakMemory, int]:
    """One ramp of the design, from its initial weights."""
    model = build_model(config, data)
    optimizer = build_optimizer(model, config, lr_range[0])
    train = data.train(config.batch_size, config.seed)
    curve, memory = run_range_test(
        model, optimizer, train, data.val, lr_range=lr_range, epochs=1.0,
        sma_periods=config.lrrt.sma_periods, divergence_factor=config.lrrt.divergence_factor,
        steps=steps, ramp=config.lrrt.ramp, progress=progress,
        sampler=build_sampler(config, train), augment=build_augmenter(config, train),
        execution=build_execution(config, model, data),
        check_limit_from=check_limit_from,
    )
    return curve, memory, count_parameters(model)


def _summarise(curve: LRRTCurve, config: TrialConfig, data: DataOnDevice, lr_free: bool,
               **measured: Any) -> LRRTResult:
    """The test's result by the config's rules (an LR-free optimizer's: its own bounds)."""
    settings = config.lrrt
    return summarise(
        curve, bound_rule=LR_FREE_RULE if lr_free else settings.bound_rule,
        compare_rule=None if lr_free else settings.compare_rule,
        disagreement_factor=settings.disagreement_factor, group=config.lrrt_group,
        num_classes=data.dataset.num_classes,
        fixed_bounds=LR_FREE_BOUNDS.get(config.optimizer), **measured,
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
    check_limit_from: int | None = None,
) -> tuple[LRRTCurve, PeakMemory]:
    """Train for ``steps`` batches (else ``epochs``, fractions allowed) with the LR ramping
    from ``lr_range[0]`` to ``lr_range[1]`` over the whole test, linearly (the thesis) or
    geometrically (``ramp="exponential"``), with torch's ``LinearLR``/``ExponentialLR``.

    The caller's model and optimizer are trained in place: the LRRT model is a throwaway,
    the search rebuilds from the seed for training. ``progress`` gets the step, the total,
    the LR and the smoothed loss each time the metrics come to the host anyway.
    ``sampler``, ``augment`` and ``execution`` form and transform the batches and run the
    steps as in ``train_epochs``. From step ``check_limit_from`` on, the test stops as soon
    as its loss has turned up (``limit_reached``): the ramp then ends there (``total_steps``
    and ``lr_max`` become the last step's), so the curve reads as a ramp planned to that
    length.
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
            if step % CHECK_EVERY == 0 or step in (total_steps, check_limit_from):
                synced = _sync(curve, losses, correct, sizes, synced, step, divergence_factor,
                               progress)
                memory.sample()
                if (check_limit_from is not None and step >= check_limit_from
                        and not curve.diverged and limit_reached(curve)):
                    curve.total_steps = total_steps = step
                    curve.lr_max = curve.lrs[-1]
                    curve.extension = "up" if step > check_limit_from else None
            if step >= total_steps or curve.diverged:
                break
        synced = _sync(curve, losses, correct, sizes, synced, step, divergence_factor,
                       progress)
        epoch += 1
        if not curve.diverged:
            val_loss, val_accuracy = evaluate(model, val, execution, optimizer)
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
    if check_limit_from is not None and step > check_limit_from and curve.extension is None:
        curve.extension = "up"  # ran past its range to the cap (or diverged there)
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

"""The learning-rate range test (METHOD.md §1.2): a short run with a linearly growing LR.

Per batch it records LR, loss and accuracy; it smooths them with a simple moving average,
evaluates on the validation set at each epoch end and stops early on divergence. The result
is plain data (JSON round-trip) so a retried trial can reuse it instead of running it again.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch

from data import DeviceBatches
from models import ThesisCNN
from search.evaluation import evaluate
from search.memory import PeakMemory
from search.step import train_step

CHECK_EVERY = 16
"""Batches between host syncs: divergence is checked in chunks so the GPU never waits per step."""


@dataclass
class LRRTCurve:
    """Per-batch and per-epoch measurements of one range test."""

    lr_min: float
    lr_max: float
    steps_per_epoch: int
    total_steps: int
    sma_periods: int
    lrs: list[float] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    accuracies: list[float] = field(default_factory=list)
    epochs: list[dict[str, float]] = field(default_factory=list)
    diverged: bool = False
    divergence: str | None = None

    @property
    def smoothed_losses(self) -> list[float]:
        return simple_moving_average(self.losses, self.sma_periods)

    @property
    def smoothed_accuracies(self) -> list[float]:
        return simple_moving_average(self.accuracies, self.sma_periods)

    @property
    def completed_fraction(self) -> float:
        """Share of the planned ramp that ran before the test stopped."""
        return len(self.lrs) / self.total_steps if self.total_steps else 0.0

    def lr_at_step(self, step: int) -> float:
        return linear_lr(step, self.total_steps, self.lr_min, self.lr_max)


@dataclass
class LRRTResult:
    """The curve plus what the search needs from it: score, bounds and their agreement."""

    curve: LRRTCurve
    best_smoothed_accuracy: float
    best_val_accuracy: float
    bound_rule: str
    bounds: tuple[float, float] | None
    compare_rule: str | None = None
    compare_bounds: tuple[float, float] | None = None
    disagreement: float | None = None
    unstable: bool = False
    peak_memory_bytes: int = 0
    memory_kind: str = "process_rss"
    seconds: float = 0.0
    n_params: int = 0

    def summary(self) -> dict[str, Any]:
        """What goes into the trial's user attrs: small, without the per-batch arrays."""
        return {
            "best_smoothed_accuracy": round(self.best_smoothed_accuracy, 6),
            "best_val_accuracy": round(self.best_val_accuracy, 6),
            "max_batch_accuracy": max(self.curve.accuracies, default=0.0),
            "max_epoch_accuracy": max((e["accuracy"] for e in self.curve.epochs), default=0.0),
            "diverged": self.curve.diverged,
            "divergence": self.curve.divergence,
            "completed_fraction": round(self.curve.completed_fraction, 4),
            "bound_rule": self.bound_rule,
            "bounds": list(self.bounds) if self.bounds else None,
            "compare_rule": self.compare_rule,
            "compare_bounds": list(self.compare_bounds) if self.compare_bounds else None,
            "disagreement": self.disagreement,
            "unstable": self.unstable,
            "peak_memory_bytes": self.peak_memory_bytes,
            "memory_kind": self.memory_kind,
            "seconds": round(self.seconds, 3),
            "n_params": self.n_params,
            "lr_min": self.curve.lr_min,
            "lr_max": self.curve.lr_max,
        }

    def to_json(self) -> str:
        return json.dumps(asdict(self), allow_nan=True)

    @classmethod
    def from_json(cls, text: str) -> LRRTResult:
        values = json.loads(text)
        values["curve"] = LRRTCurve(**values["curve"])
        for key in ("bounds", "compare_bounds"):
            if values.get(key) is not None:
                values[key] = tuple(values[key])
        return cls(**values)


def linear_lr(step: int, total_steps: int, lr_min: float, lr_max: float) -> float:
    """LR of batch ``step`` when the ramp runs from lr_min (step 0) to lr_max (last step)."""
    if total_steps <= 1:
        return lr_min
    return lr_min + (lr_max - lr_min) * step / (total_steps - 1)


def simple_moving_average(values: list[float], periods: int) -> list[float]:
    """Trailing SMA; the first points average what exists so far (no warm-up gap)."""
    if not values:
        return []
    array = np.asarray(values, dtype=float)
    sums = np.cumsum(np.insert(array, 0, 0.0))
    index = np.arange(1, len(array) + 1)
    start = np.maximum(index - periods, 0)
    return ((sums[index] - sums[start]) / (index - start)).tolist()


def find_divergence(losses: list[float], periods: int, factor: float) -> tuple[int, str] | None:
    """First step whose loss is not finite, or whose smoothed loss exceeds ``factor`` times
    the best smoothed loss so far (fastai's 4x rule); None while the test is healthy."""
    # The ratio rule looks only at the finite head, so an earlier blow-up wins over a later NaN.
    finite = next((step for step, loss in enumerate(losses) if not math.isfinite(loss)),
                  len(losses))
    smoothed = np.asarray(simple_moving_average(losses[:finite], periods))
    if len(smoothed) > periods:
        running_min = np.minimum.accumulate(smoothed)
        above = np.nonzero(smoothed[periods:] > factor * running_min[periods:])[0]
        if len(above):
            step = int(above[0]) + periods
            return step, f"smoothed loss {smoothed[step]:.3g} > {factor:g}x minimum"
    if finite < len(losses):
        return finite, "non-finite loss"
    return None


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
) -> tuple[LRRTCurve, PeakMemory]:
    """Train ``epochs`` (fractions allowed) with the LR ramping linearly over the whole test.

    Uses torch's ``LinearLR`` for the ramp. The caller's model and optimizer are trained in
    place: the LRRT model is a throwaway, the search rebuilds from the seed for training.
    """
    lr_min, lr_max = lr_range
    steps_per_epoch = len(train)
    total_steps = max(2, math.ceil(epochs * steps_per_epoch))
    curve = LRRTCurve(lr_min, lr_max, steps_per_epoch, total_steps, sma_periods)
    for group in optimizer.param_groups:
        group["lr"] = lr_max
        group["initial_lr"] = lr_max
    ramp = torch.optim.lr_scheduler.LinearLR(
        optimizer, start_factor=lr_min / lr_max, end_factor=1.0, total_iters=total_steps - 1
    )
    memory = PeakMemory(train.device).start()
    device = train.device
    losses = torch.empty(total_steps, device=device)
    correct = torch.empty(total_steps, device=device)
    sizes = torch.empty(total_steps, device=device)
    model.train()
    step, synced, epoch = 0, 0, 0
    epoch_start = 0
    while step < total_steps and not curve.diverged:
        for images, labels in train.epoch(epoch):
            curve.lrs.append(optimizer.param_groups[0]["lr"])
            losses[step], correct[step] = train_step(model, optimizer, ramp, images, labels)
            sizes[step] = labels.shape[0]
            step += 1
            if step % CHECK_EVERY == 0 or step == total_steps:
                synced = _sync(curve, losses, correct, sizes, synced, step, divergence_factor)
                memory.sample()
            if step >= total_steps or curve.diverged:
                break
        synced = _sync(curve, losses, correct, sizes, synced, step, divergence_factor)
        epoch += 1
        if not curve.diverged:
            val_loss, val_accuracy = evaluate(model, val)
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
    return curve, memory


def _sync(curve: LRRTCurve, losses: torch.Tensor, correct: torch.Tensor, sizes: torch.Tensor,
          synced: int, step: int, divergence_factor: float) -> int:
    """Copy the new chunk of metrics to the host and cut the curve at a divergence."""
    if step <= synced or curve.diverged:
        return synced
    curve.losses += losses[synced:step].tolist()
    curve.accuracies += (correct[synced:step] / sizes[synced:step]).tolist()
    found = find_divergence(curve.losses, curve.sma_periods, divergence_factor)
    if found is not None:
        cut, reason = found
        curve.diverged = True
        curve.divergence = f"{reason} at step {cut} (lr {curve.lrs[cut]:.3g})"
        del curve.lrs[cut:], curve.losses[cut:], curve.accuracies[cut:]
    return step


def summarise(
    curve: LRRTCurve,
    memory: PeakMemory,
    seconds: float,
    *,
    bound_rule: str,
    compare_rule: str | None,
    disagreement_factor: float,
) -> LRRTResult:
    """Score the curve and derive bounds with the configured rule (and the cross-check)."""
    from search.bounds import apply_rule

    smoothed = curve.smoothed_accuracies
    bounds = apply_rule(bound_rule, curve)
    compare = apply_rule(compare_rule, curve) if compare_rule else None
    disagreement = None
    if bounds and compare:
        high, other = bounds[1], compare[1]
        disagreement = max(high, other) / min(high, other)
    return LRRTResult(
        curve=curve,
        best_smoothed_accuracy=max(smoothed, default=0.0),
        best_val_accuracy=max((e["val_accuracy"] for e in curve.epochs), default=0.0),
        bound_rule=bound_rule,
        bounds=bounds,
        compare_rule=compare_rule,
        compare_bounds=compare,
        disagreement=disagreement,
        unstable=disagreement is not None and disagreement > disagreement_factor,
        peak_memory_bytes=memory.peak(),
        memory_kind=memory.kind,
        seconds=seconds,
    )


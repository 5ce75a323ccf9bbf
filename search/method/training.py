"""Training with Smith's cyclical LR, triangular2 policy, using torch's ``CyclicLR``.

The loop is resumable: ``TrainingState`` holds everything a checkpoint needs, so a retried
trial continues from its last finished epoch.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from functools import partial
from typing import Any

import torch

from data import DeviceBatches
from data.augment import Augmenter
from models import ThesisCNN
from search.method.batch_selection import Batch, BatchSampler
from search.method.evaluation import evaluate
from search.method.precision import NONFINITE_PATIENCE
from search.method.schedules import make_triangular2 as make_triangular2  # re-exported
from search.method.step import Execution, train_step

NAN_CHECK_EVERY = 32
"""Batches between host syncs that look for a non-finite loss."""


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite: the trial is pruned as ``diverged``."""


@dataclass
class EpochReport:
    epoch: int
    lr: float
    train_loss: float
    train_accuracy: float
    val_loss: float
    val_accuracy: float
    seconds: float


@dataclass
class TrainingState:
    """What a checkpoint holds besides the tensors: finished epochs and their reports."""

    epochs_done: int = 0
    history: list[EpochReport] = field(default_factory=list)

    @property
    def best_val_accuracy(self) -> float:
        return max((r.val_accuracy for r in self.history), default=0.0)

    def to_dict(self) -> dict[str, Any]:
        return {"epochs_done": self.epochs_done, "history": [asdict(r) for r in self.history]}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainingState:
        return cls(values["epochs_done"], [EpochReport(**r) for r in values["history"]])


def train_epochs(
    model: ThesisCNN,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    train: DeviceBatches,
    val: DeviceBatches,
    *,
    epochs: int,
    state: TrainingState | None = None,
    on_epoch: Callable[[EpochReport, TrainingState], None] | None = None,
    sampler: BatchSampler | None = None,
    augment: Augmenter | None = None,
    execution: Execution | None = None,
) -> TrainingState:
    """Run epochs ``state.epochs_done + 1 .. epochs``; ``on_epoch`` may raise to stop (the
    objective reports to Optuna and raises ``TrialPruned`` there).

    ``sampler`` forms the batches (``search.method.batch_selection``; None: ``train``'s
    shuffled epochs); a loss-based one gets each batch's per-sample losses, and its
    importance weights scale them. ``augment`` transforms each batch's images on the device,
    reseeded at every epoch. With neither, the loop is the plain shuffled one. The reported
    ``train_loss`` is the mean of the batch losses that were minimised (importance-weighted
    for ``adaptive``).

    ``execution`` (default: eager fp32) is how the steps run (``search.method.step``). Under
    fp16 a step whose loss is not finite was skipped by the gradient scaler: it is left out
    of ``train_loss``, and only ``NONFINITE_PATIENCE`` such steps in a row are divergence.
    """
    state = state or TrainingState()
    device = train.device
    losses = _LossTally(device, skips=execution is not None
                        and execution.precision.skips_nonfinite)
    for epoch in range(state.epochs_done, epochs):
        started = time.perf_counter()
        model.train()
        losses.start_epoch()
        correct = torch.zeros((), device=device, dtype=torch.long)
        if augment is not None:
            augment.start_epoch(epoch)
        for index, batch in enumerate(epoch_batches(train, sampler, epoch)):
            images = batch.images if augment is None else augment(batch.images)
            observe = partial(sampler.observe, batch) if sampler and sampler.observes else None
            loss, batch_correct = train_step(model, optimizer, scheduler, images, batch.labels,
                                             weights=batch.weights, on_losses=observe,
                                             execution=execution)
            losses.add(loss, batch.labels.shape[0])
            correct += batch_correct
            if (index + 1) % NAN_CHECK_EVERY == 0:
                losses.check(epoch)
        train_loss = losses.mean(epoch, train.num_samples)
        val_loss, val_accuracy = evaluate(model, val, execution, optimizer)
        report = EpochReport(
            epoch=epoch + 1,
            lr=float(optimizer.param_groups[0]["lr"]),
            train_loss=train_loss,
            train_accuracy=float(correct) / train.num_samples,
            val_loss=val_loss,
            val_accuracy=val_accuracy,
            seconds=time.perf_counter() - started,
        )
        state.history.append(report)
        state.epochs_done = epoch + 1
        if on_epoch is not None:
            on_epoch(report, state)
    return state


class _LossTally:
    """Each epoch's training loss, summed on the device (no host sync per batch). With
    ``skips`` (fp16) a non-finite batch loss is a step the scaler skipped: it is not summed,
    and the longest run of them (across epochs) tells a skip from a divergence."""

    def __init__(self, device: torch.device, *, skips: bool) -> None:
        self.skips = skips
        self.device = device
        self.run = torch.zeros((), device=device, dtype=torch.long)
        self.longest_run = torch.zeros((), device=device, dtype=torch.long)
        self.start_epoch()

    def start_epoch(self) -> None:
        self.total = torch.zeros((), device=self.device)
        self.samples = torch.zeros((), device=self.device)

    def add(self, loss: torch.Tensor, samples: int) -> None:
        if not self.skips:
            self.total += loss * samples
            return
        finite = torch.isfinite(loss)
        self.total += torch.where(finite, loss, 0.0) * samples
        self.samples += finite * samples
        self.run = torch.where(finite, 0, self.run + 1)
        torch.maximum(self.longest_run, self.run, out=self.longest_run)

    def check(self, epoch: int) -> None:
        """``TrainingDiverged`` when the loss is not finite (fp16: not finite for
        ``NONFINITE_PATIENCE`` steps in a row); one host sync."""
        if self.skips:
            steps = int(self.longest_run)
            if steps >= NONFINITE_PATIENCE:
                raise TrainingDiverged(
                    f"non-finite training loss for {steps} consecutive fp16 steps by epoch "
                    f"{epoch + 1} (the gradient scaler skipped them; "
                    f"{NONFINITE_PATIENCE} in a row are divergence)")
        elif not math.isfinite(float(self.total)):
            raise TrainingDiverged(f"non-finite training loss in epoch {epoch + 1}")

    def mean(self, epoch: int, num_samples: int) -> float:
        """The epoch's mean loss per sample, after a last ``check``: over ``num_samples``
        (the epoch's), with ``skips`` over the samples of the steps that counted."""
        self.check(epoch)
        samples = float(self.samples) if self.skips else num_samples
        mean = float(self.total) / samples if samples else math.nan
        if not math.isfinite(mean):  # fp16: not one step of the epoch had a finite loss
            raise TrainingDiverged(f"non-finite training loss in epoch {epoch + 1}")
        return mean


def epoch_batches(train: DeviceBatches, sampler: BatchSampler | None,
                  epoch: int) -> Iterator[Batch]:
    """The batches of epoch ``epoch``: ``sampler``'s, or ``train``'s shuffled ones."""
    if sampler is None:
        return (Batch(images, labels) for images, labels in train.epoch(epoch))
    return sampler.epoch(epoch)

"""Budget accounting in training images, counted where the images are served.

Every strategy trains through ``DeviceBatches``; wrapping them counts exactly the images
that went through a forward and backward pass (LRRT batches included) without touching the
product's training loops. When the budget is spent the wrapper cuts the batch at the budget
and raises ``BudgetExhausted`` on the next request, so no strategy can overspend.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import torch

from data import DeviceBatches
from search.method.prepared_data import DataOnDevice


class BudgetExhausted(RuntimeError):
    """The search's training budget is spent: the running trial is cut, the study stops."""


@dataclass
class Ledger:
    """Images used, evaluation images (not charged), and the best validation accuracy so
    far as a timeline of ``(images, seconds, best)`` points, one per evaluated epoch."""

    budget: float = math.inf
    images: int = 0
    eval_images: int = 0
    best: float = 0.0
    started: float = field(default_factory=time.perf_counter)
    timeline: list[tuple[int, float, float]] = field(default_factory=list)

    @property
    def exhausted(self) -> bool:
        return self.images >= self.budget

    @property
    def seconds(self) -> float:
        return time.perf_counter() - self.started

    def take(self, wanted: int) -> int:
        """Charge up to ``wanted`` images; fewer when that is all the budget has left."""
        remaining = self.budget - self.images
        if remaining <= 0:
            raise BudgetExhausted(f"budget of {self.budget:,.0f} training images spent")
        granted = int(min(wanted, remaining))
        self.images += granted
        return granted

    def observe(self, val_accuracy: float) -> None:
        """A model the search keeps was evaluated: extend the best-so-far timeline."""
        if math.isfinite(val_accuracy):
            self.best = max(self.best, val_accuracy)
        self.timeline.append((self.images, round(self.seconds, 3), self.best))


class CountingBatches:
    """A ``DeviceBatches`` that charges its owner's ledger for every image it serves.

    Training batches are charged against the budget (and cut at it); evaluation batches are
    only counted. Everything else is delegated, so the product's loops see no difference.
    """

    def __init__(self, inner: DeviceBatches, owner: MeteredData, *, training: bool) -> None:
        self._inner = inner
        self._owner = owner
        self._training = training

    def __len__(self) -> int:
        return len(self._inner)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def epoch(self, epoch_index: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for images, labels in self._inner.epoch(epoch_index):
            ledger = self._owner.ledger
            if ledger is not None:
                if self._training:
                    granted = ledger.take(len(labels))
                    if granted < len(labels):
                        images, labels = images[:granted], labels[:granted]
                else:
                    ledger.eval_images += len(labels)
            yield images, labels


@dataclass
class MeteredData(DataOnDevice):
    """The product's ``DataOnDevice`` (data moved to the device once, shared by every
    search of the run) whose batches charge whichever ``ledger`` is current."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.ledger: Ledger | None = None
        self.val = CountingBatches(self.val, self, training=False)  # type: ignore[assignment]

    def train(self, batch_size: int, seed: int) -> DeviceBatches:
        inner = super().train(batch_size, seed)
        return CountingBatches(inner, self, training=True)  # type: ignore[return-value]

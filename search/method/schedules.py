"""Learning-rate schedules by name, built from torch's schedulers.

The training loop calls ``scheduler.step()`` once per batch (``search.method.step``), so
every schedule here advances per batch; what differs is how often its LR changes:

- ``triangular2`` (Smith's cyclical LR between the LRRT bounds, torch's ``CyclicLR``)
  changes every batch;
- the fixed-LR baselines of seed 002 change once per epoch, as torch's ``ExponentialLR``,
  ``StepLR`` and ``MultiStepLR`` do when stepped per epoch: ``exponential`` (x ``gamma``
  each epoch), ``step`` (x ``gamma`` every ``step_size`` epochs), ``multistep`` (x ``gamma``
  at each of ``milestones``) and ``constant``. They are a ``LambdaLR`` whose factor reads the
  epoch off the batch count (``EpochFactor``), so ``last_epoch`` counts batches for every
  schedule and a checkpointed scheduler resumes mid-run like ``CyclicLR`` does.

``SCHEDULES`` is the registry a config validates against; ``make_schedule`` builds one.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from dataclasses import dataclass

import torch

from search.method.optimizers import has_momentum

PER_BATCH = "batch"
PER_EPOCH = "epoch"

LROrBounds = float | tuple[float, float]
"""A single LR (the fixed-LR schedules start there), or the LRRT bounds ``(low, high)``."""


def make_triangular2(
    optimizer: torch.optim.Optimizer,
    bounds: tuple[float, float],
    *,
    steps_per_epoch: int,
    step_size_epochs: float,
) -> torch.optim.lr_scheduler.CyclicLR:
    """Half a cycle = ``step_size_epochs`` epochs of batches (Smith: 2-10); momentum cycles
    inversely only when the optimizer has momentum."""
    cycle_momentum = has_momentum(optimizer)
    momentum = optimizer.defaults.get("momentum", 0.0)
    return torch.optim.lr_scheduler.CyclicLR(
        optimizer,
        base_lr=bounds[0],
        max_lr=bounds[1],
        step_size_up=max(1, round(step_size_epochs * steps_per_epoch)),
        mode="triangular2",
        cycle_momentum=cycle_momentum,
        base_momentum=max(0.0, momentum - 0.1) if cycle_momentum else 0.8,
        max_momentum=momentum if cycle_momentum else 0.9,
    )


@dataclass
class EpochFactor:
    """``LambdaLR`` multiplier of batch ``step``: the per-epoch schedule ``kind`` evaluated at
    epoch ``step // steps_per_epoch``. A plain object, not a closure, so ``LambdaLR`` saves
    it in its ``state_dict``."""

    kind: str
    steps_per_epoch: int
    gamma: float = 1.0
    step_size: int = 1
    milestones: tuple[int, ...] = ()

    def __call__(self, step: int) -> float:
        epoch = step // self.steps_per_epoch
        if self.kind == "exponential":
            return self.gamma ** epoch
        if self.kind == "step":
            return self.gamma ** (epoch // self.step_size)
        if self.kind == "multistep":
            return self.gamma ** bisect.bisect_right(self.milestones, epoch)
        return 1.0


@dataclass(frozen=True)
class ScheduleSettings:
    """Which schedule and its parameters; fields a schedule does not use are ignored."""

    name: str = "triangular2"
    step_size_epochs: float = 4.0
    """triangular2: half a cycle, in epochs (``train.step_size_epochs``'s default)."""
    gamma: float | None = None
    """exponential, step, multistep: LR factor per decay; None takes the schedule's own
    default (``SCHEDULES[name].default_gamma``)."""
    step_size: int = 10
    """step: epochs between decays."""
    milestones: tuple[int, ...] = (15, 30)
    """multistep: the epochs (0-based, as torch's) from which the LR is multiplied again."""

    def __post_init__(self) -> None:
        if self.name not in SCHEDULES:
            raise ValueError(f"unknown schedule {self.name!r}; one of {sorted(SCHEDULES)}")
        if not _positive_number(self.step_size_epochs):
            raise ValueError(f"step_size_epochs must be a positive number, "
                             f"got {self.step_size_epochs!r}")
        if self.gamma is not None and not (_positive_number(self.gamma) and self.gamma <= 1):
            raise ValueError(f"gamma must be in (0, 1], got {self.gamma!r}")
        if not _positive_int(self.step_size):
            raise ValueError(f"step_size must be a positive integer, got {self.step_size!r}")
        milestones = self.milestones
        if (not isinstance(milestones, tuple)
                or not all(_positive_int(m) for m in milestones)
                or list(milestones) != sorted(set(milestones))):
            raise ValueError(f"milestones must be a tuple of increasing positive integers, "
                             f"got {milestones!r}")

    @property
    def stepping(self) -> str:
        """``"batch"`` or ``"epoch"``: how often the LR changes (``scheduler.step()`` is
        called per batch either way)."""
        return SCHEDULES[self.name].stepping

    @property
    def decay(self) -> float:
        """``gamma``, or the schedule's default when it is None."""
        kind = SCHEDULES[self.name]
        return self.gamma if self.gamma is not None else (kind.default_gamma or 1.0)


def _positive_number(value: object) -> bool:
    return (isinstance(value, int | float) and not isinstance(value, bool)
            and 0 < value < float("inf"))


def _positive_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


Builder = Callable[[torch.optim.Optimizer, ScheduleSettings, LROrBounds, int],
                   torch.optim.lr_scheduler.LRScheduler]


@dataclass(frozen=True)
class Schedule:
    """A registry entry: how to build it, how often its LR changes, what LR it needs."""

    build: Builder
    stepping: str
    needs_bounds: bool = False
    default_gamma: float | None = None


def _triangular2(optimizer: torch.optim.Optimizer, settings: ScheduleSettings,
                 lr: LROrBounds, steps_per_epoch: int) -> torch.optim.lr_scheduler.CyclicLR:
    if not isinstance(lr, tuple):
        raise ValueError(f"triangular2 cycles between LR bounds (low, high), got {lr!r}")
    return make_triangular2(optimizer, lr, steps_per_epoch=steps_per_epoch,
                            step_size_epochs=settings.step_size_epochs)


def _per_epoch(optimizer: torch.optim.Optimizer, settings: ScheduleSettings,
               lr: LROrBounds, steps_per_epoch: int) -> torch.optim.lr_scheduler.LambdaLR:
    start = lr[1] if isinstance(lr, tuple) else lr
    for group in optimizer.param_groups:
        group["lr"] = group["initial_lr"] = start
    factor = EpochFactor(settings.name, steps_per_epoch, gamma=settings.decay,
                         step_size=settings.step_size, milestones=settings.milestones)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


SCHEDULES: dict[str, Schedule] = {
    "triangular2": Schedule(_triangular2, PER_BATCH, needs_bounds=True),
    "exponential": Schedule(_per_epoch, PER_EPOCH, default_gamma=0.95),
    "step": Schedule(_per_epoch, PER_EPOCH, default_gamma=0.1),
    "multistep": Schedule(_per_epoch, PER_EPOCH, default_gamma=0.1),
    "constant": Schedule(_per_epoch, PER_EPOCH),
}


def make_schedule(optimizer: torch.optim.Optimizer, settings: ScheduleSettings,
                  bounds_or_lr: LROrBounds, steps_per_epoch: int
                  ) -> torch.optim.lr_scheduler.LRScheduler:
    """The scheduler of ``settings`` for ``optimizer``, to be stepped once per batch.

    ``bounds_or_lr`` is the LRRT's ``(low, high)`` or one LR. triangular2 needs the bounds;
    the fixed-LR schedules start at the LR, or at ``high`` when given bounds, and set it on
    every param group (``lr`` and ``initial_lr``).
    """
    if not _positive_int(steps_per_epoch):
        raise ValueError(f"steps_per_epoch must be a positive integer, got {steps_per_epoch!r}")
    if isinstance(bounds_or_lr, tuple):
        low, high = bounds_or_lr
        if not (_positive_number(low) and _positive_number(high) and low <= high):
            raise ValueError(f"LR bounds must be 0 < low <= high, got {bounds_or_lr!r}")
    elif not _positive_number(bounds_or_lr):
        raise ValueError(f"lr must be a positive number, got {bounds_or_lr!r}")
    return SCHEDULES[settings.name].build(optimizer, settings, bounds_or_lr, steps_per_epoch)

"""An LR range test's measurements as plain data, and the arithmetic on them (no torch).

Per batch: LR, loss and accuracy; per epoch: training and validation loss and accuracy. A
simple moving average smooths the batch values (the thesis' SMA); a divergence cuts the
curve where the loss blew up, so nothing after it is ever read or plotted, except the
batch that triggered the verdict (``LRRTCurve.divergence_point``), kept as evidence.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np

from search.record import CURVE_POINTS, CurvePoints, DivergencePoint


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
    ramp: str = "linear"
    """``linear`` (the thesis) or ``exponential`` (geometric, as LR finders use)."""
    divergence_point: DivergencePoint | None = None
    """The step, LR and smoothed loss that made the test stop (``divergence_at``): the
    curve is cut before it."""
    weight_change: float | None = None
    """How far the ramp moved the weights: ||w_end - w_start|| / ||w_start||. A design whose
    weights stayed put (``WEIGHTS_STILL``) would not train at any rate the ramp tried; one
    whose loss barely moved but whose weights did is a slow starter. None when not measured."""
    extension: str | None = None
    """``up``: the ramp went on past the range it was given, at the same rate, because its
    loss had not turned up by its end; ``down``: it is a second ramp, below the range given,
    because the first one's bounds fell under it (``search.method.lrrt.run.run_lrrt``)."""

    @property
    def smoothed_losses(self) -> list[float]:
        return simple_moving_average(self.losses, self.sma_periods)

    @property
    def smoothed_accuracies(self) -> list[float]:
        return simple_moving_average(self.accuracies, self.sma_periods)

    @property
    def settled_accuracies(self) -> list[float]:
        """The smoothed accuracies whose window is full: what the test's score reads. A
        warm-up point averages only the batches so far, the first one a single batch, where
        an untrained network reaches 0.2 by chance (a ramp that diverges within a window has
        only its last point, the average of every batch it ran)."""
        return self.smoothed_accuracies[self.settled_from:]

    @property
    def settled_from(self) -> int:
        """The first step whose smoothing window is full (the last step of a shorter curve)."""
        return max(min(self.sma_periods, len(self.lrs)) - 1, 0)

    @property
    def completed_fraction(self) -> float:
        """Share of the planned ramp that ran before the test stopped."""
        return len(self.lrs) / self.total_steps if self.total_steps else 0.0

    def lr_at_step(self, step: int) -> float:
        return RAMPS[self.ramp](step, self.total_steps, self.lr_min, self.lr_max)

    def divergence_at(self, step: int) -> DivergencePoint:
        """The batch at ``step`` as ``find_divergence`` saw it, to be read before the curve
        is cut there: its LR and smoothed loss (None when not finite)."""
        smoothed = simple_moving_average(self.losses[:step + 1], self.sma_periods)[-1]
        return DivergencePoint(step, self.lrs[step],
                               smoothed if math.isfinite(smoothed) else None)

    @property
    def best_accuracy_lr(self) -> float | None:
        """LR of the best settled accuracy (the first step reaching it); None when empty."""
        settled = self.settled_accuracies
        return self.lrs[self.settled_from + int(np.argmax(settled))] if settled else None

    @property
    def limit_found(self) -> bool:
        """Whether the test reached an LR where training stops improving: it diverged, or
        its smoothed loss bottomed out before the last ``LIMIT_TAIL`` of the ramp and then
        gave back at least ``LIMIT_GIVE_BACK`` of its fall and ``LIMIT_MIN_RISE`` of its
        minimum (a flat curve's wobble is no turn); or its loss never fell while its
        weights churned (``LIMIT_THRASH``): then the limit is the ramp's first LR. A curve
        still falling at the end of the ramp, or flat with its weights barely moving, has
        found no upper limit: the range was too narrow (or the ramp too short) to say where
        the design stops converging."""
        return self.diverged or limit_index(self) is not None

    def points(self, count: int = CURVE_POINTS) -> CurvePoints:
        """The smoothed curve, ``count`` points at most: what a trial's attrs keep."""
        return CurvePoints(tuple(downsample(self.lrs, count)),
                           tuple(downsample(self.smoothed_accuracies, count)),
                           tuple(downsample(self.smoothed_losses, count)))


def downsample(values: list[float], points: int = CURVE_POINTS) -> list[float]:
    """``points`` values evenly spread over ``values``, first and last included."""
    if len(values) <= points:
        return list(values)
    step = (len(values) - 1) / (points - 1)
    return [values[round(i * step)] for i in range(points)]


def linear_lr(step: int, total_steps: int, lr_min: float, lr_max: float) -> float:
    """LR of batch ``step`` when the ramp runs from lr_min (step 0) to lr_max (last step)."""
    if total_steps <= 1:
        return lr_min
    return lr_min + (lr_max - lr_min) * step / (total_steps - 1)


def exponential_lr(step: int, total_steps: int, lr_min: float, lr_max: float) -> float:
    """LR of batch ``step`` on a geometric ramp from lr_min (step 0) to lr_max (last step)."""
    if total_steps <= 1:
        return lr_min
    return lr_min * (lr_max / lr_min) ** (step / (total_steps - 1))


RAMPS = {"linear": linear_lr, "exponential": exponential_lr}
"""Ramp shapes by the name the YAML uses."""

WEIGHTS_STILL = 2.5e-3
"""A ramp that moved the weights by less than this share of their norm per ``STILL_STEPS``
batches never trained them, whatever its noisy best batch accuracy says
(``pruner.weights_still`` overrides it). Chosen on the issue-9 development seeds 0 and 1:
half the smallest movement of any design there that trained to >= 0.5 (5.3e-3, SGD's slow
start over [1e-4, 1e-2], batch 128). SGD over [1e-6, 1e-5] moved them at most 1.1e-4 and
Adam there 1.8e-3 to 4.3e-3; all the SGD ones and half the Adam ones ended at chance after
eight epochs. A search that trains far longer than eight epochs may lower it: a slow
starter has more time to get going."""

STILL_STEPS = 100
"""The ramp length ``WEIGHTS_STILL`` was measured on: a shorter ramp's movement is scaled up
to it (a ramp moves the weights about in proportion to its batches at the same rates)."""


LIMIT_THRASH = 0.1
"""A ramp whose smoothed loss never fell by ``LIMIT_MIN_RISE`` of its start while it moved
the weights by more than this share of their norm per ``STILL_STEPS`` batches was past its
limit from its first LR: the weights churn and the loss stays put (Adam over [1e-2, 1e-1]
on a three-block design: 0.7-0.8 of the norm, a flat loss, and 0.86 once trained at a
quarter of that first LR). Its limit is the ramp's start. A flat ramp whose weights moved
little is a slow starter (SGD over [1e-4, 1e-2]: 6.6e-3 to 2.3e-2), still open. Chosen on
the issue-9 development seeds: about the geometric middle of the two groups."""


def movement_per_still_steps(weight_change: float, ramp_steps: int | None) -> float:
    """A ramp's weight movement scaled to ``STILL_STEPS`` batches (it grows about in
    proportion to the batches run at the same rates); an unknown length counts as that."""
    return weight_change * STILL_STEPS / (ramp_steps or STILL_STEPS)


def thrashed_flat(curve: LRRTCurve, losses: np.ndarray) -> bool:
    """Whether the loss never fell (by ``LIMIT_MIN_RISE`` of its first full-window value)
    while the weights moved by more than ``LIMIT_THRASH`` (see there)."""
    if curve.weight_change is None:
        return False
    start = losses[curve.settled_from]
    moved = movement_per_still_steps(curve.weight_change, len(curve.lrs))
    return start - losses.min() < LIMIT_MIN_RISE * start and moved > LIMIT_THRASH


LIMIT_TAIL = 0.1
"""A loss minimum in the last tenth of the ramp is no limit: the loss may still be falling."""
LIMIT_GIVE_BACK = 0.25
"""After its minimum the smoothed loss must rise by this share of its fall to count as a
limit (a flat tail is noise, not a turn)."""
LIMIT_MIN_RISE = 0.03
"""... and by at least this share of the minimum itself: a flat curve's smoothed loss
wobbles by about 1 %, which is no turn however small its fall was. Chosen on the issue-9
development seeds 0-2: flat curves rose at most 1.1 % after their minimum, curves that
turned at least 6.5 %; 3 % is about their geometric middle."""


def limit_index(curve: LRRTCurve) -> int | None:
    """Step of the smoothed-loss minimum when the test found an upper limit there (see
    ``LRRTCurve.limit_found``); the last healthy step when it diverged; 0 when it was past
    its limit from the start (``thrashed_flat``); else None."""
    losses = np.asarray(curve.smoothed_losses)
    if len(losses) < 3:
        return None
    lowest = int(np.argmin(losses))
    if curve.diverged:
        return lowest
    fall = losses[0] - losses[lowest]
    rise = losses[lowest:].max() - losses[lowest]
    if (lowest >= (1.0 - LIMIT_TAIL) * curve.total_steps or fall <= 0
            or rise < LIMIT_GIVE_BACK * fall or rise < LIMIT_MIN_RISE * losses[lowest]):
        return 0 if thrashed_flat(curve, losses) else None
    return lowest


def limit_reached(curve: LRRTCurve) -> bool:
    """Whether the curve so far has found its limit, read as if the ramp had been planned to
    end here: what a ramp that may go on past its range asks before each further batch."""
    return limit_index(replace(curve, total_steps=len(curve.lrs))) is not None


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

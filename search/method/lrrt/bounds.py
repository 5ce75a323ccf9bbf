"""Rules that turn an LRRT curve into triangular2 bounds ``(lr_low, lr_high)``.

Each rule is a function with one signature, registered by name so the YAML picks it.
A rule returns None when the curve has too few healthy points to say anything.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from search.method.lrrt.curve import LRRTCurve, limit_index

BoundRule = Callable[[LRRTCurve], tuple[float, float] | None]

TIE = 1e-9
"""Smoothed-accuracy differences below this are rounding in the moving average (it uses
cumulative sums), not a rise: a flat curve has neither a peak nor a rise."""


def thesis_first_epoch(curve: LRRTCurve) -> tuple[float, float] | None:
    """The thesis' worked example: lower = the test's start LR, upper = the LR reached at the
    end of the test's first epoch: ``lr_min + (lr_max - lr_min) * steps_per_epoch /
    total_steps``, i.e. 1/8 of the ramp for an 8-epoch test (over [1e-4, 1e-2]: 0.0013375,
    for any number of batches per epoch). If the test diverged earlier, the last healthy LR."""
    if len(curve.lrs) < 2:
        return None
    first_epoch = min(curve.steps_per_epoch, curve.total_steps)
    if len(curve.lrs) < first_epoch:
        return curve.lr_min, curve.lrs[-1]
    fraction = first_epoch / curve.total_steps
    return curve.lr_min, curve.lr_min + (curve.lr_max - curve.lr_min) * fraction


def _peak_lr(curve: LRRTCurve) -> float | None:
    """LR at the best smoothed accuracy: the largest LR that still helps before the test
    turns ragged or diverges (Smith's 'largest LR that still converges')."""
    smoothed = np.asarray(curve.smoothed_accuracies)
    if len(smoothed) < 2 or smoothed.max() - smoothed.min() <= TIE:
        return None
    return curve.lrs[int(np.argmax(smoothed >= smoothed.max() - TIE))]


def smith_quarter(curve: LRRTCurve) -> tuple[float, float] | None:
    """Smith 2017: upper = largest converging LR, lower = upper / 4."""
    peak = _peak_lr(curve)
    return None if peak is None else (peak / 4.0, peak)


def smith_third(curve: LRRTCurve) -> tuple[float, float] | None:
    """Smith 2017, the other ratio he quotes: lower = upper / 3."""
    peak = _peak_lr(curve)
    return None if peak is None else (peak / 3.0, peak)


def accuracy_rise(curve: LRRTCurve) -> tuple[float, float] | None:
    """Smith's first reading: lower where the smoothed accuracy starts to rise (10 % of its
    total rise), upper where the rise slows (90 %)."""
    smoothed = np.asarray(curve.smoothed_accuracies)
    if len(smoothed) < 2:
        return None
    start, best = smoothed[0], smoothed.max()
    if best - start <= TIE:
        return None
    low = int(np.argmax(smoothed >= start + 0.1 * (best - start) - TIE))
    high = int(np.argmax(smoothed >= start + 0.9 * (best - start) - TIE))
    if high <= low:
        return None
    return curve.lrs[low], curve.lrs[high]


def loss_valley(curve: LRRTCurve) -> tuple[float, float] | None:
    """fastai's ``valley``: the longest stretch over which the smoothed loss keeps falling,
    read halfway down it (fast descent, before the bottom); lower = upper / 4.
    It needs no limit: a curve still falling at the end has its valley inside the ramp."""
    losses = np.asarray(curve.smoothed_losses)
    count = len(losses)
    if count < 3 or losses.max() - losses.min() <= TIE:
        return None
    # longest decreasing subsequence ending at each point, O(n^2) on <= a few hundred points
    length = np.ones(count, dtype=int)
    for i in range(1, count):
        lower = losses[:i] > losses[i]
        if lower.any():
            length[i] = int(np.where(lower, length[:i], 0).max()) + 1
    end = int(np.argmax(length))
    start = end - int(length[end]) + 1  # as fastai: the valley is the subsequence's span
    index = start + (end - start) // 2
    upper = curve.lrs[index]
    return upper / 4.0, upper


def backed_off_limit(limit_backoff: float, open_backoff: float) -> BoundRule:
    """The loss-limit family: upper = the LR where the smoothed loss turns up (or the test
    diverged) divided by ``limit_backoff``; when the ramp found no limit
    (``LRRTCurve.limit_found`` is false), the largest tested LR divided by
    ``open_backoff``; lower = upper / 4."""

    def rule(curve: LRRTCurve) -> tuple[float, float] | None:
        index = limit_index(curve)
        if len(curve.lrs) < 3:
            return None
        upper = (curve.lrs[index] / limit_backoff if index is not None
                 else curve.lrs[-1] / open_backoff)
        return upper / 4.0, upper
    return rule


loss_limit = backed_off_limit(2.0, 1.0)
"""Smith's "largest LR that still converges", read on the loss: where the smoothed loss
turns up, halved to step back from the edge; when the ramp found no limit, the largest LR
tested: the design still converged there, and the range cannot say more."""

SUSTAINED_BACKOFF = 4.0
"""``sustained_limit`` trains at a quarter of the LR where the range test's loss turned up:
a few dozen batches survive rates that eight epochs do not (chosen on development seeds,
BENCHMARKS.md, issue 9)."""
OPEN_BACKOFF = 2.0
"""... and at half the largest tested LR when the ramp found no limit: the test never saw
how that rate behaves over many epochs."""

sustained_limit = backed_off_limit(SUSTAINED_BACKOFF, OPEN_BACKOFF)
"""Bounds that hold under sustained training. ``loss_limit`` steps back half as far and
trusts an open range to its end; over eight epochs both choices collapsed designs to chance
that a smaller upper bound trained."""


BOUND_RULES: dict[str, BoundRule] = {
    "thesis_first_epoch": thesis_first_epoch,
    "smith_quarter": smith_quarter,
    "smith_third": smith_third,
    "accuracy_rise": accuracy_rise,
    "loss_valley": loss_valley,
    "loss_limit": loss_limit,
    "sustained_limit": sustained_limit,
}


def apply_rule(name: str, curve: LRRTCurve) -> tuple[float, float] | None:
    bounds = BOUND_RULES[name](curve)
    if bounds is None or not bounds[0] < bounds[1]:
        return None
    return float(bounds[0]), float(bounds[1])

"""The curve arithmetic: smoothing, the linear ramp, divergence, downsampling."""

from __future__ import annotations

import math

import numpy as np
import pytest

from search.method.lrrt.curve import (
    LRRTCurve,
    downsample,
    find_divergence,
    linear_lr,
    simple_moving_average,
)

# --------------------------------------------------------------------------- SMA


def test_sma_by_hand_including_the_warm_up_head() -> None:
    values = [4.0, 2.0, 6.0, 0.0, 8.0, 1.0]
    # the head averages what exists so far: 4, (4+2)/2, (4+2+6)/3; then a trailing window of 3
    expected = [4.0, 3.0, 4.0, 8 / 3, 14 / 3, 3.0]
    assert simple_moving_average(values, 3) == pytest.approx(expected)


def test_sma_period_one_is_the_identity_and_a_long_period_is_the_running_mean() -> None:
    values = [3.0, 1.0, 2.0, 7.0]
    assert simple_moving_average(values, 1) == pytest.approx(values)
    assert simple_moving_average(values, 100) == pytest.approx([3.0, 2.0, 2.0, 3.25])


def test_sma_of_nothing_is_empty() -> None:
    assert simple_moving_average([], 5) == []


# --------------------------------------------------------------------------- ramp


def test_linear_lr_endpoints_and_midpoint() -> None:
    assert linear_lr(0, 11, 1e-4, 1e-2) == pytest.approx(1e-4)
    assert linear_lr(10, 11, 1e-4, 1e-2) == pytest.approx(1e-2)
    assert linear_lr(5, 11, 1e-4, 1e-2) == pytest.approx((1e-4 + 1e-2) / 2)
    steps = [linear_lr(s, 11, 0.0, 1.0) for s in range(11)]
    assert np.diff(steps) == pytest.approx([0.1] * 10)


def test_linear_lr_of_a_one_step_test_is_the_start() -> None:
    assert linear_lr(0, 1, 1e-3, 1e-1) == 1e-3


def test_curve_lr_at_step_uses_the_planned_ramp() -> None:
    curve = LRRTCurve(lr_min=0.01, lr_max=0.1, steps_per_epoch=10, total_steps=31, sma_periods=5)
    assert curve.lr_at_step(0) == pytest.approx(0.01)
    assert curve.lr_at_step(30) == pytest.approx(0.1)
    assert curve.lr_at_step(15) == pytest.approx(0.055)


def test_completed_fraction() -> None:
    curve = LRRTCurve(1e-4, 1e-2, 10, 40, 5, lrs=[0.0] * 10)
    assert curve.completed_fraction == 0.25


# --------------------------------------------------------------------------- divergence


def falling_then(tail: list[float]) -> list[float]:
    """2.0 falling by 0.075 a step to a minimum of 0.5 at step 20, then ``tail``."""
    return [2.0 - 0.075 * i for i in range(21)] + tail


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_a_non_finite_loss_diverges_at_its_step(bad: float) -> None:
    losses = [2.0, 1.9, 1.8, 1.7, 1.6, 1.5, 1.4, bad, 1.3]
    assert find_divergence(losses, periods=3, factor=4.0) == (7, "non-finite loss")


def test_a_blow_up_after_the_minimum_diverges_where_the_sma_crosses_the_factor() -> None:
    losses = falling_then([2.5] * 10)  # 5x the minimum
    # smoothed (period 3): min 0.575 at step 20; step 21 -> 1.19, 22 -> 1.83, 23 -> 2.5 > 2.3
    found = find_divergence(losses, periods=3, factor=4.0)
    assert found is not None
    step, reason = found
    assert step == 23
    assert "4x" in reason


def test_a_blow_up_below_the_factor_is_not_divergence() -> None:
    assert find_divergence(falling_then([1.9] * 10), periods=3, factor=4.0) is None


def test_a_blow_up_before_a_nan_is_found_at_the_blow_up() -> None:
    """The first failing step wins, whichever rule finds it."""
    found = find_divergence(falling_then([2.5] * 10 + [math.nan]), periods=3, factor=4.0)
    assert found is not None
    step, reason = found
    assert step == 23
    assert "4x" in reason


def test_a_healthy_noisy_curve_does_not_diverge() -> None:
    rng = np.random.default_rng(0)
    steps = np.arange(300)
    losses = 1.0 + 1.3 * np.exp(-steps / 50) + rng.uniform(-0.2, 0.2, len(steps))
    losses[150] *= 10  # one ragged batch is smoothed away
    assert find_divergence(losses.tolist(), periods=10, factor=4.0) is None


def test_the_ratio_rule_waits_for_a_full_sma_window() -> None:
    # a huge second loss inside the warm-up head is not judged by the ratio rule
    assert find_divergence([0.1, 5.0, 5.0], periods=5, factor=4.0) is None


def test_points_downsample_the_smoothed_curve_keeping_both_ends() -> None:
    total = 1000
    lrs = [linear_lr(s, total, 1e-4, 1e-2) for s in range(total)]
    curve = LRRTCurve(1e-4, 1e-2, 100, total, 10, lrs, [2.0] * total, [0.5] * total)
    points = curve.points(200)
    assert len(points.lr) == len(points.accuracy) == len(points.loss) == 200
    assert points.lr[0] == lrs[0] and points.lr[-1] == lrs[-1]
    assert downsample([1.0, 2.0], 200) == [1.0, 2.0]

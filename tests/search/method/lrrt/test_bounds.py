"""Bound rules on hand-made LRRT curves."""

from __future__ import annotations

import math

import numpy as np
import pytest

from search.method.lrrt.bounds import (
    BOUND_RULES,
    accuracy_rise,
    apply_rule,
    loss_limit,
    loss_valley,
    smith_quarter,
    smith_third,
    sustained_limit,
    thesis_first_epoch,
)
from search.method.lrrt.curve import LRRTCurve, limit_index, linear_lr


def ramp_curve(
    accuracies: list[float],
    *,
    lr_range: tuple[float, float] = (1e-4, 1e-2),
    steps_per_epoch: int = 10,
    total_steps: int | None = None,
    sma_periods: int = 1,
) -> LRRTCurve:
    """A curve whose LRs follow the planned linear ramp for ``len(accuracies)`` steps."""
    total = total_steps if total_steps is not None else len(accuracies)
    lrs = [linear_lr(s, total, *lr_range) for s in range(len(accuracies))]
    losses = [2.3 * (1.0 - a) for a in accuracies]
    return LRRTCurve(
        lr_range[0],
        lr_range[1],
        steps_per_epoch,
        total,
        sma_periods,
        lrs,
        losses,
        list(accuracies),
    )


def test_every_rule_is_registered() -> None:
    assert set(BOUND_RULES) == {
        "thesis_first_epoch",
        "smith_quarter",
        "smith_third",
        "accuracy_rise",
        "loss_valley",
        "loss_limit",
        "sustained_limit",
    }


# --------------------------------------------------------------------------- thesis rule


@pytest.mark.parametrize("steps_per_epoch", [1, 2, 10, 391])
def test_thesis_worked_example(steps_per_epoch: int) -> None:
    """8-epoch test over [1e-4, 1e-2]: upper = 1e-4 + (1e-2 - 1e-4) / 8 = 0.0013375."""
    assert 1e-4 + (1e-2 - 1e-4) / 8 == pytest.approx(0.0013375)
    total = 8 * steps_per_epoch
    curve = ramp_curve([0.1] * total, steps_per_epoch=steps_per_epoch)
    low, high = thesis_first_epoch(curve)
    assert low == 1e-4
    assert high == pytest.approx(0.0013375, rel=1e-12)


def test_thesis_rule_is_one_epoch_of_the_ramp_for_other_lengths() -> None:
    curve = ramp_curve([0.2] * 40, lr_range=(1e-2, 1e-1), steps_per_epoch=10)  # 4 epochs
    assert thesis_first_epoch(curve) == pytest.approx((1e-2, 1e-2 + 0.09 / 4))


def test_thesis_rule_for_a_test_of_one_epoch_or_less_is_the_whole_range() -> None:
    curve = ramp_curve([0.2] * 6, steps_per_epoch=10, total_steps=6)  # 0.6 epochs
    assert thesis_first_epoch(curve) == pytest.approx((1e-4, 1e-2))


def test_thesis_rule_after_an_early_divergence_is_the_last_healthy_lr() -> None:
    # planned 8 epochs of 10 steps, but the curve was cut at step 4
    curve = ramp_curve([0.1, 0.2, 0.3, 0.4], steps_per_epoch=10, total_steps=80)
    curve.diverged = True
    assert thesis_first_epoch(curve) == (1e-4, curve.lrs[-1])
    assert curve.lrs[-1] == pytest.approx(linear_lr(3, 80, 1e-4, 1e-2))


def test_thesis_rule_ignores_a_divergence_after_the_first_epoch() -> None:
    curve = ramp_curve([0.3] * 25, steps_per_epoch=10, total_steps=80)
    assert thesis_first_epoch(curve) == pytest.approx((1e-4, 0.0013375))


# --------------------------------------------------------------------------- Smith's ratios


def peaked_accuracies() -> list[float]:
    """Rises to 0.8 at step 30, then falls: the peak LR is step 30's."""
    rise = [0.1 + 0.7 * s / 30 for s in range(31)]
    fall = [0.8 - 0.02 * s for s in range(1, 20)]
    return rise + fall


def test_smith_quarter_and_third_at_the_smoothed_accuracy_peak() -> None:
    curve = ramp_curve(peaked_accuracies())
    peak = curve.lrs[30]
    assert smith_quarter(curve) == pytest.approx((peak / 4, peak))
    assert smith_third(curve) == pytest.approx((peak / 3, peak))


def test_smith_rules_use_the_smoothed_not_the_raw_accuracy() -> None:
    accuracies = peaked_accuracies()
    accuracies[10] = 1.0  # one lucky batch early on
    raw = ramp_curve(accuracies, sma_periods=1)
    smoothed = ramp_curve(accuracies, sma_periods=5)
    assert smith_quarter(raw)[1] == pytest.approx(raw.lrs[10])
    peak_step = int(np.argmax(smoothed.smoothed_accuracies))
    assert peak_step != 10
    assert smith_quarter(smoothed)[1] == pytest.approx(smoothed.lrs[peak_step])


# --------------------------------------------------------------------------- accuracy rise


def test_accuracy_rise_picks_the_10_and_90_percent_points() -> None:
    # flat 0.1 for steps 0..19, a linear climb to 0.9 over steps 20..52, flat after
    accuracies = [0.1] * 20 + [0.1 + 0.8 * s / 33 for s in range(1, 34)] + [0.9] * 20
    curve = ramp_curve(accuracies)
    # 10 % of the 0.8 rise is 0.18, first passed at climb step 4 (index 23: 0.197);
    # 90 % is 0.82, first passed at climb step 30 (index 49: 0.827)
    assert accuracies[22] < 0.18 < accuracies[23]
    assert accuracies[48] < 0.82 < accuracies[49]
    low, high = accuracy_rise(curve)
    assert low == pytest.approx(curve.lrs[23])
    assert high == pytest.approx(curve.lrs[49])


def test_accuracy_rise_counts_a_point_exactly_on_the_threshold() -> None:
    # start 0.0, best 1.0: thresholds 0.1 and 0.9 hit exactly at steps 1 and 9
    curve = ramp_curve([s / 10 for s in range(11)])
    assert accuracy_rise(curve) == pytest.approx((curve.lrs[1], curve.lrs[9]))


def test_accuracy_rise_after_a_dip_measures_from_the_start() -> None:
    accuracies = [0.3, 0.2, 0.25, 0.5, 0.7, 0.8]  # start 0.3, best 0.8: 0.35 and 0.75
    curve = ramp_curve(accuracies)
    assert accuracy_rise(curve) == pytest.approx((curve.lrs[3], curve.lrs[5]))


# --------------------------------------------------------------------------- no answer


@pytest.mark.parametrize("name", sorted(BOUND_RULES))
@pytest.mark.parametrize("length", [0, 1])
def test_rules_return_none_on_too_short_curves(name: str, length: int) -> None:
    curve = ramp_curve([0.5] * length, total_steps=80)
    assert BOUND_RULES[name](curve) is None
    assert apply_rule(name, curve) is None


def test_accuracy_rise_is_none_on_flat_or_falling_curves() -> None:
    assert accuracy_rise(ramp_curve([0.1] * 50)) is None
    assert accuracy_rise(ramp_curve([0.5 - 0.005 * s for s in range(50)])) is None


@pytest.mark.parametrize("sma_periods", [1, 3, 20])
def test_smith_rules_are_none_on_a_flat_curve(sma_periods: int) -> None:
    # the moving average of a constant is not bit-exact; its rounding is no peak
    curve = ramp_curve([0.1] * 50, sma_periods=sma_periods)
    assert smith_quarter(curve) is None
    assert smith_third(curve) is None
    assert accuracy_rise(curve) is None


def test_smith_rules_on_a_plateau_take_its_first_point() -> None:
    accuracies = [0.1 * s for s in range(8)] + [0.7] * 30
    curve = ramp_curve(accuracies, sma_periods=1)
    assert smith_quarter(curve)[1] == pytest.approx(curve.lrs[7])


# --------------------------------------------------------------------------- apply_rule


def test_apply_rule_returns_plain_floats() -> None:
    bounds = apply_rule("smith_third", ramp_curve(peaked_accuracies()))
    assert bounds is not None
    assert all(type(x) is float for x in bounds)


def test_apply_rule_drops_bounds_with_low_not_below_high() -> None:
    # a test that diverged at its second step: thesis upper == the start LR == lower
    curve = ramp_curve([0.2, 0.3], total_steps=80)
    curve.lrs[1] = curve.lrs[0]
    assert thesis_first_epoch(curve) == (1e-4, 1e-4)
    assert apply_rule("thesis_first_epoch", curve) is None


def test_apply_rule_drops_reversed_bounds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(BOUND_RULES, "reversed", lambda curve: (0.1, 0.01))
    assert apply_rule("reversed", ramp_curve([0.1, 0.2])) is None
    monkeypatch.setitem(BOUND_RULES, "ok", lambda curve: (0.01, 0.1))
    assert apply_rule("ok", ramp_curve([0.1, 0.2])) == (0.01, 0.1)


def test_apply_rule_of_an_unknown_name_raises() -> None:
    with pytest.raises(KeyError):
        apply_rule("steepest", ramp_curve([0.1, 0.2]))


def test_rules_give_finite_bounds_inside_the_tested_range() -> None:
    curve = ramp_curve(peaked_accuracies(), sma_periods=4)
    for name in BOUND_RULES:
        bounds = apply_rule(name, curve)
        assert bounds is not None, name
        low, high = bounds
        assert math.isfinite(low) and math.isfinite(high)
        assert 0 < low < high <= curve.lr_max, name


# --------------------------------------------------------------------------- loss rules


def loss_curve(losses: list[float], *, ramp: str = "linear", diverged: bool = False,
               lr_min: float = 1e-4, lr_max: float = 1e-1) -> LRRTCurve:
    """A curve with these per-batch losses (smoothing off) on the planned ramp."""
    total = len(losses)
    curve = LRRTCurve(lr_min, lr_max, total, total, 1, ramp=ramp, diverged=diverged)
    curve.lrs = [curve.lr_at_step(s) for s in range(total)]
    curve.losses = list(losses)
    curve.accuracies = [0.5] * total
    return curve


def u_shaped(total: int = 100, bottom: int = 60) -> list[float]:
    """Falls linearly from 2.3 to 0.3 at ``bottom``, then climbs back to 2.3."""
    return [2.3 - 2.0 * s / bottom if s <= bottom
            else 0.3 + 2.0 * (s - bottom) / (total - 1 - bottom) for s in range(total)]


def test_exponential_ramp_is_geometric() -> None:
    curve = loss_curve([1.0] * 4, ramp="exponential", lr_min=1e-4, lr_max=1e-1)
    assert curve.lrs == pytest.approx([1e-4, 1e-3, 1e-2, 1e-1])


def test_a_u_shaped_loss_has_found_its_limit_at_the_bottom() -> None:
    curve = loss_curve(u_shaped())
    assert curve.limit_found
    low, high = loss_limit(curve)
    assert high == pytest.approx(curve.lrs[60] / 2) and low == pytest.approx(high / 4)


def test_a_loss_still_falling_at_the_end_has_no_limit() -> None:
    falling = [2.3 - 2.0 * s / 99 for s in range(100)]
    curve = loss_curve(falling)
    assert not curve.limit_found
    assert loss_limit(curve)[1] == pytest.approx(1e-1)  # the largest LR tested


def test_a_minimum_in_the_last_tenth_or_a_flat_tail_is_no_limit() -> None:
    assert not loss_curve(u_shaped(bottom=95)).limit_found
    flat_tail = [2.3 - 2.0 * s / 60 if s <= 60 else 0.3 + 0.001 * (s - 60) for s in range(100)]
    assert not loss_curve(flat_tail).limit_found


def test_a_flat_curves_wobble_is_no_limit_however_small_its_fall() -> None:
    """A loss that barely moves (2.31 -> 2.30, then back up by 0.01, under 1 % of itself)
    gives back more than a quarter of its tiny fall: the give-back test alone would call
    that a turn, and a flat ramp's arbitrary minimum a limit."""
    wobble = [2.31 - 0.01 * s / 50 if s <= 50 else 2.30 + 0.01 * (s - 50) / 49
              for s in range(100)]
    assert not loss_curve(wobble).limit_found
    # the same shape 5 % high is a turn: the loss rose by 5 % of its minimum
    turn = [2.31 - 0.01 * s / 50 if s <= 50 else 2.30 + 0.115 * (s - 50) / 49
            for s in range(100)]
    assert loss_curve(turn).limit_found


def test_a_flat_loss_with_churning_weights_was_past_its_limit_from_the_start() -> None:
    """The loss stays at 2.30 while the ramp moved the weights by 0.8 of their norm: the
    rates were already too high, so the limit is the first LR, and the bounds sit below the
    range. The same flat loss with weights that barely moved is a slow starter: open."""
    flat = [2.30 + 0.002 * ((-1) ** s) for s in range(100)]
    churned = loss_curve(flat, ramp="exponential")
    churned.weight_change = 0.8
    assert churned.limit_found and limit_index(churned) == 0
    assert sustained_limit(churned)[1] == pytest.approx(churned.lrs[0] / 4)
    slow = loss_curve(flat, ramp="exponential")
    slow.weight_change = 0.02
    assert not slow.limit_found
    unmeasured = loss_curve(flat)
    assert not unmeasured.limit_found  # no weight movement recorded: no reading
    # a ramp 50 batches long moving them by 0.06 moves them 0.12 per 100: churning
    short = loss_curve(flat[:50])
    short.weight_change = 0.06
    assert short.limit_found
    # a loss that fell by 10 % is no flat curve, however much the weights moved
    falling = loss_curve([2.3 - 0.23 * s / 99 for s in range(100)])
    falling.weight_change = 0.8
    assert not falling.limit_found


def test_a_diverged_curve_found_its_limit() -> None:
    curve = loss_curve([2.3 - 0.02 * s for s in range(40)], diverged=True)
    assert curve.limit_found
    assert loss_limit(curve)[1] == pytest.approx(curve.lrs[39] / 2)


def test_loss_valley_reads_halfway_down_the_longest_fall() -> None:
    # flat, then a fall over steps 20..80, then a rise: the valley is 20..80
    losses = [2.3] * 20 + [2.3 - 2.0 * (s - 20) / 60 for s in range(20, 81)] + [
        0.3 + 0.1 * (s - 80) for s in range(81, 100)]
    curve = loss_curve(losses)
    low, high = loss_valley(curve)
    assert high == pytest.approx(curve.lrs[50], rel=0.05)
    assert low == pytest.approx(high / 4)


def test_loss_rules_need_a_curve() -> None:
    assert loss_valley(loss_curve([2.3] * 50)) is None  # flat: no valley
    assert loss_limit(loss_curve([2.3, 2.2])) is None


def test_sustained_limit_steps_a_quarter_back_from_a_found_limit() -> None:
    curve = loss_curve(u_shaped(), ramp="exponential")
    low, high = sustained_limit(curve)
    assert high == pytest.approx(curve.lrs[60] / 4) and low == pytest.approx(high / 4)
    diverged = loss_curve([2.3 - 0.02 * s for s in range(40)], diverged=True)
    assert sustained_limit(diverged)[1] == pytest.approx(diverged.lrs[39] / 4)


def test_sustained_limit_halves_an_open_range() -> None:
    """A ramp still falling at its end never saw its top LR held for epochs: half of it."""
    curve = loss_curve([2.3 - 2.0 * s / 99 for s in range(100)], ramp="exponential")
    assert not curve.limit_found
    assert sustained_limit(curve) == pytest.approx((1e-1 / 8, 1e-1 / 2))
    assert sustained_limit(loss_curve([2.3, 2.2])) is None

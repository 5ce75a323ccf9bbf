"""The LR range test: smoothing, the linear ramp, divergence, and a real run on tiny data."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
import torch

from search.lrrt import (
    LRRTCurve,
    LRRTResult,
    find_divergence,
    linear_lr,
    run_range_test,
    simple_moving_average,
    summarise,
)
from search.memory import PeakMemory
from search.optimizers import make_optimizer

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
    curve = LRRTCurve(lr_min=0.01, lr_max=0.1, steps_per_epoch=10, total_steps=31,
                      sma_periods=5)
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


# --------------------------------------------------------------------------- real runs


def test_range_test_ramps_linearly_over_fractional_epochs(tiny_data, tiny_model) -> None:
    train, val = tiny_data(n_train=80, batch_size=16)  # 5 batches an epoch
    model = tiny_model()
    optimizer = make_optimizer(model, "adam", 1e-4)
    before = [p.detach().clone() for p in model.parameters()]
    curve, memory = run_range_test(model, optimizer, train, val, lr_range=(1e-4, 1e-2),
                                   epochs=1.5, sma_periods=3, divergence_factor=4.0)
    assert curve.steps_per_epoch == 5
    assert curve.total_steps == 8  # ceil(1.5 * 5)
    assert not curve.diverged and curve.divergence is None
    assert len(curve.lrs) == len(curve.losses) == len(curve.accuracies) == 8
    assert curve.lrs[0] == pytest.approx(1e-4, rel=1e-9)
    assert curve.lrs[-1] == pytest.approx(1e-2, rel=1e-9)
    assert curve.lrs == pytest.approx([linear_lr(s, 8, 1e-4, 1e-2) for s in range(8)],
                                      rel=1e-9)
    assert all(math.isfinite(x) for x in curve.losses)
    assert all(0.0 <= a <= 1.0 for a in curve.accuracies)
    assert curve.completed_fraction == 1.0
    # one entry per (partial) epoch, each with validation metrics
    assert [e["epoch"] for e in curve.epochs] == [1, 2]
    assert [e["step"] for e in curve.epochs] == [5, 8]
    for entry, (start, stop) in zip(curve.epochs, [(0, 5), (5, 8)], strict=True):
        assert entry["lr"] == curve.lrs[stop - 1]
        assert entry["loss"] == pytest.approx(np.mean(curve.losses[start:stop]))
        assert entry["accuracy"] == pytest.approx(np.mean(curve.accuracies[start:stop]))
        assert math.isfinite(entry["val_loss"]) and entry["val_loss"] > 0
        assert 0.0 <= entry["val_accuracy"] <= 1.0
    # the model was trained in place
    assert any(not torch.equal(b, p) for b, p in zip(before, model.parameters(), strict=True))
    assert memory.kind == "process_rss" and memory.peak() > 0


def test_range_test_longer_than_the_check_chunk_keeps_every_step(tiny_data, tiny_model) -> None:
    train, val = tiny_data(n_train=96, batch_size=8)  # 12 batches an epoch
    model = tiny_model(seed=1)
    optimizer = make_optimizer(model, "sgd", 1e-3)
    curve, _ = run_range_test(model, optimizer, train, val, lr_range=(1e-3, 1e-1), epochs=3,
                              sma_periods=5, divergence_factor=4.0)
    assert curve.total_steps == 36
    assert len(curve.lrs) == len(curve.losses) == 36
    assert np.diff(curve.lrs) == pytest.approx([(1e-1 - 1e-3) / 35] * 35, rel=1e-6)
    assert [e["step"] for e in curve.epochs] == [12, 24, 36]


def test_range_test_learns_the_tiny_task(tiny_data, tiny_model) -> None:
    train, val = tiny_data(n_train=128, batch_size=16)
    model = tiny_model(filters=4)
    optimizer = make_optimizer(model, "adam", 1e-3)
    curve, memory = run_range_test(model, optimizer, train, val, lr_range=(1e-3, 2e-2),
                                   epochs=4, sma_periods=4, divergence_factor=4.0)
    assert not curve.diverged
    assert curve.epochs[-1]["val_accuracy"] >= 0.9
    result = summarise(curve, memory, 0.5, bound_rule="thesis_first_epoch",
                       compare_rule="smith_quarter", disagreement_factor=10.0)
    assert result.best_smoothed_accuracy > 0.5
    assert result.best_val_accuracy == max(e["val_accuracy"] for e in curve.epochs)
    assert result.bounds is not None and result.bounds[0] == pytest.approx(1e-3)


def test_a_huge_lr_range_diverges_and_cuts_the_curve(tiny_data, tiny_model) -> None:
    train, val = tiny_data(n_train=96, batch_size=8)
    model = tiny_model()
    optimizer = make_optimizer(model, "sgd", 1.0)
    curve, _ = run_range_test(model, optimizer, train, val, lr_range=(1.0, 1e4), epochs=4,
                              sma_periods=2, divergence_factor=4.0)
    assert curve.diverged
    assert curve.divergence is not None
    match = re.search(r"at step (\d+)", curve.divergence)
    assert match is not None
    cut = int(match.group(1))
    assert 0 < cut < curve.total_steps
    assert len(curve.lrs) == len(curve.losses) == len(curve.accuracies) == cut
    assert all(math.isfinite(x) for x in curve.losses)
    assert find_divergence(curve.losses, curve.sma_periods, 4.0) is None
    assert curve.completed_fraction == cut / curve.total_steps
    # no validation entry for an epoch that diverged
    assert all(entry["step"] <= cut for entry in curve.epochs)


# --------------------------------------------------------------------------- results


def synthetic_curve() -> LRRTCurve:
    """80 steps over [1e-4, 1e-2], accuracy rising to the last step, loss falling."""
    total = 80
    lrs = [linear_lr(s, total, 1e-4, 1e-2) for s in range(total)]
    accuracies = [0.1 + 0.8 * s / (total - 1) for s in range(total)]
    losses = [2.3 - 2.0 * s / (total - 1) for s in range(total)]
    epochs = [{"epoch": e + 1, "step": 10 * (e + 1), "lr": lrs[10 * e + 9], "loss": 1.0,
               "accuracy": 0.5, "val_loss": 1.2, "val_accuracy": 0.3 + 0.05 * e}
              for e in range(8)]
    return LRRTCurve(1e-4, 1e-2, 10, total, 5, lrs, losses, accuracies, epochs)


def test_summarise_scores_and_bounds() -> None:
    curve = synthetic_curve()
    memory = PeakMemory(torch.device("cpu")).start()
    result = summarise(curve, memory, 1.25, bound_rule="thesis_first_epoch",
                       compare_rule="smith_quarter", disagreement_factor=10.0)
    assert result.best_smoothed_accuracy == pytest.approx(max(curve.smoothed_accuracies))
    assert result.best_val_accuracy == pytest.approx(0.65)
    assert result.bounds == pytest.approx((1e-4, 0.0013375))
    assert result.compare_bounds == pytest.approx((1e-2 / 4, 1e-2))
    assert result.disagreement == pytest.approx(1e-2 / 0.0013375)
    assert not result.unstable
    assert result.seconds == 1.25
    assert result.peak_memory_bytes > 0


def test_summarise_flags_unstable_when_upper_bounds_disagree_beyond_the_factor() -> None:
    memory = PeakMemory(torch.device("cpu")).start()
    kwargs = {"bound_rule": "thesis_first_epoch", "compare_rule": "smith_quarter"}
    # the two upper bounds differ by ~7.5x
    assert summarise(synthetic_curve(), memory, 0.0, disagreement_factor=5.0,
                     **kwargs).unstable
    assert not summarise(synthetic_curve(), memory, 0.0, disagreement_factor=8.0,
                         **kwargs).unstable


def test_summarise_without_a_compare_rule_has_no_disagreement() -> None:
    result = summarise(synthetic_curve(), PeakMemory(torch.device("cpu")).start(), 0.0,
                       bound_rule="smith_third", compare_rule=None, disagreement_factor=1.5)
    assert result.compare_bounds is None
    assert result.disagreement is None
    assert not result.unstable
    assert result.bounds == pytest.approx((1e-2 / 3, 1e-2))


def test_result_json_round_trip() -> None:
    result = summarise(synthetic_curve(), PeakMemory(torch.device("cpu")).start(), 2.5,
                       bound_rule="thesis_first_epoch", compare_rule="accuracy_rise",
                       disagreement_factor=10.0)
    assert result.bounds is not None and result.compare_bounds is not None
    restored = LRRTResult.from_json(result.to_json())
    assert restored == result
    assert isinstance(restored.curve, LRRTCurve)
    assert isinstance(restored.bounds, tuple)
    assert restored.curve.smoothed_accuracies == result.curve.smoothed_accuracies


def test_result_json_round_trip_of_a_diverged_curve_without_bounds() -> None:
    curve = LRRTCurve(1.0, 10.0, 4, 40, 3, lrs=[1.0], losses=[2.3], accuracies=[0.25],
                      diverged=True, divergence="non-finite loss at step 1 (lr 1.23)")
    result = summarise(curve, PeakMemory(torch.device("cpu")).start(), 0.1,
                       bound_rule="thesis_first_epoch", compare_rule=None,
                       disagreement_factor=10.0)
    assert result.bounds is None
    assert LRRTResult.from_json(result.to_json()) == result


def test_summary_is_small_and_json_friendly() -> None:
    result = summarise(synthetic_curve(), PeakMemory(torch.device("cpu")).start(), 0.0,
                       bound_rule="thesis_first_epoch", compare_rule="smith_quarter",
                       disagreement_factor=10.0)
    summary = result.summary()
    assert summary["bounds"] == pytest.approx([1e-4, 0.0013375])
    assert summary["max_epoch_accuracy"] == 0.5
    assert summary["completed_fraction"] == 1.0
    assert not any(isinstance(v, list) and len(v) > 2 for v in summary.values())

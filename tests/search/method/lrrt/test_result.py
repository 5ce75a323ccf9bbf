"""Scoring a curve, deriving its bounds, and the result's JSON round trip."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from search.method.lrrt.curve import LRRTCurve, linear_lr
from search.method.lrrt.result import LRRTResult, summarise
from search.record import UNKNOWN_GROUP, LRRTSummary

# --------------------------------------------------------------------------- results


def synthetic_curve() -> LRRTCurve:
    """80 steps over [1e-4, 1e-2], accuracy rising to the last step, loss falling."""
    total = 80
    lrs = [linear_lr(s, total, 1e-4, 1e-2) for s in range(total)]
    accuracies = [0.1 + 0.8 * s / (total - 1) for s in range(total)]
    losses = [2.3 - 2.0 * s / (total - 1) for s in range(total)]
    epochs = [
        {
            "epoch": e + 1,
            "step": 10 * (e + 1),
            "lr": lrs[10 * e + 9],
            "loss": 1.0,
            "accuracy": 0.5,
            "val_loss": 1.2,
            "val_accuracy": 0.3 + 0.05 * e,
        }
        for e in range(8)
    ]
    return LRRTCurve(1e-4, 1e-2, 10, total, 5, lrs, losses, accuracies, epochs)


def test_summarise_scores_and_bounds() -> None:
    curve = synthetic_curve()
    result = summarise(
        curve,
        seconds=1.25,
        peak_memory_bytes=4096,
        bound_rule="thesis_first_epoch",
        compare_rule="smith_quarter",
        disagreement_factor=10.0,
    )
    assert result.summary.score == pytest.approx(max(curve.settled_accuracies))
    assert result.summary.best_val_accuracy == pytest.approx(0.65)
    assert result.summary.bounds == pytest.approx((1e-4, 0.0013375))
    assert result.summary.compare_bounds == pytest.approx((1e-2 / 4, 1e-2))
    assert result.summary.disagreement == pytest.approx(1e-2 / 0.0013375)
    assert not result.summary.unstable
    assert result.summary.seconds == 1.25
    assert result.summary.peak_memory_bytes > 0


def test_the_score_reads_only_full_windows_not_a_lucky_first_batch() -> None:
    """An untrained network whose first batch happened to score 0.3 and then sat at 0.1:
    the warm-up points (one batch, two batches, ...) are no score; the full windows are."""
    total, periods = 40, 10
    lrs = [linear_lr(s, total, 1e-4, 1e-2) for s in range(total)]
    accuracies = [0.3] + [0.1] * (total - 1)
    curve = LRRTCurve(1e-4, 1e-2, total, total, periods, lrs, [2.3] * total, accuracies)
    result = summarise(curve, bound_rule="loss_limit", compare_rule=None,
                       disagreement_factor=10.0)
    assert max(curve.smoothed_accuracies) == pytest.approx(0.3)  # the lucky first batch
    assert result.summary.score == pytest.approx(0.12)  # (0.3 + 9 x 0.1) / 10
    assert curve.best_accuracy_lr == lrs[periods - 1]
    # a test that diverged within its first window: the average of every batch it ran
    short = LRRTCurve(1e-4, 1e-2, total, total, periods, lrs[:4], [2.3] * 4,
                      [0.3, 0.1, 0.1, 0.1], diverged=True)
    assert max(short.settled_accuracies) == pytest.approx(0.15)
    assert short.best_accuracy_lr == lrs[3]


def test_summarise_flags_unstable_when_upper_bounds_disagree_beyond_the_factor() -> None:
    kwargs = {"bound_rule": "thesis_first_epoch", "compare_rule": "smith_quarter"}
    # the two upper bounds differ by ~7.5x
    assert summarise(synthetic_curve(), disagreement_factor=5.0, **kwargs).summary.unstable
    assert not summarise(synthetic_curve(), disagreement_factor=8.0, **kwargs).summary.unstable


def test_summarise_without_a_compare_rule_has_no_disagreement() -> None:
    result = summarise(
        synthetic_curve(),
        seconds=0.0,
        bound_rule="smith_third",
        compare_rule=None,
        disagreement_factor=1.5,
    )
    assert result.summary.compare_bounds is None
    assert result.summary.disagreement is None
    assert not result.summary.unstable
    assert result.summary.bounds == pytest.approx((1e-2 / 3, 1e-2))


def test_result_json_round_trip() -> None:
    result = summarise(
        synthetic_curve(),
        seconds=2.5,
        bound_rule="thesis_first_epoch",
        compare_rule="accuracy_rise",
        disagreement_factor=10.0,
    )
    assert result.summary.bounds is not None and result.summary.compare_bounds is not None
    restored = LRRTResult.from_json(result.to_json())
    assert restored == result
    assert isinstance(restored.curve, LRRTCurve)
    assert isinstance(restored.summary.bounds, tuple)
    assert restored.curve.smoothed_accuracies == result.curve.smoothed_accuracies


def test_result_json_round_trip_of_a_diverged_curve_without_bounds() -> None:
    curve = LRRTCurve(
        1.0,
        10.0,
        4,
        40,
        3,
        lrs=[1.0],
        losses=[2.3],
        accuracies=[0.25],
        diverged=True,
        divergence="non-finite loss at step 1 (lr 1.23)",
    )
    result = summarise(
        curve,
        seconds=0.1,
        bound_rule="thesis_first_epoch",
        compare_rule=None,
        disagreement_factor=10.0,
    )
    assert result.summary.bounds is None
    assert LRRTResult.from_json(result.to_json()) == result


def test_summary_is_the_records_view_of_the_test() -> None:
    result = summarise(
        synthetic_curve(),
        bound_rule="thesis_first_epoch",
        compare_rule="smith_quarter",
        disagreement_factor=10.0,
        group="fashion-mnist|0.0001-0.01",
        num_classes=10,
    )
    summary = result.summary
    assert summary.score == pytest.approx(max(result.curve.settled_accuracies))
    assert (summary.group, summary.num_classes) == ("fashion-mnist|0.0001-0.01", 10)
    assert summary.bounds == pytest.approx((1e-4, 0.0013375))
    assert summary.lr_range == (1e-4, 1e-2)
    assert summary.max_epoch_accuracy == 0.5
    assert summary.completed_fraction == 1.0
    attrs = summary.to_attrs()
    assert not any(isinstance(v, list) and len(v) > 2 for v in attrs.values())
    assert summary.ramp_steps == len(result.curve.lrs)
    again = LRRTSummary.from_attrs(attrs)
    assert again is not None and again.ramp_steps == summary.ramp_steps
    assert again.weight_change == summary.weight_change


def test_the_json_keeps_the_artifact_s_names_and_reads_one_written_before_the_summary() -> None:
    """The artifact's keys are those ``cnnsearch lrrt`` has always written (plus the group
    and class count); one written before them reads with both unknown, the rest read off
    its curve."""
    result = summarise(synthetic_curve(), bound_rule="thesis_first_epoch",
                       compare_rule="smith_quarter", disagreement_factor=10.0, seconds=1.5,
                       group="g", num_classes=10, n_params=123)
    written = json.loads(result.to_json())
    assert written["best_smoothed_accuracy"] == result.summary.score
    assert written["best_val_accuracy"] == pytest.approx(0.65)
    assert written["n_params"] == 123 and written["bounds"] == list(result.summary.bounds)
    older = {key: value for key, value in written.items() if key not in ("group", "num_classes")}
    read = LRRTResult.from_json(json.dumps(older))
    assert (read.summary.group, read.summary.num_classes) == (UNKNOWN_GROUP, 0)
    assert read.summary == replace(result.summary, group=UNKNOWN_GROUP, num_classes=0)
    assert read.curve == result.curve and read.n_params == 123

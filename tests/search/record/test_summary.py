"""``LRRTSummary``: written to flat attrs from its fields and read back from them, the score
last; older layouts (a nested ``lrrt`` attr, 0.0 for what was never measured, no divergence
point) read; the chance threshold."""

from __future__ import annotations

from dataclasses import fields

import pytest

from search.record import (
    LRRT_PREFIX,
    UNKNOWN_GROUP,
    DivergencePoint,
    LRRTSummary,
    chance_threshold,
    summary_attrs,
)


def full_summary() -> LRRTSummary:
    """A summary with every field away from its default."""
    return LRRTSummary(
        score=0.61, group="fashion-mnist|0.0001-0.01", num_classes=10,
        lr_range=(1e-4, 1e-2), best_val_accuracy=0.55, max_batch_accuracy=0.7,
        max_epoch_accuracy=0.6, diverged=True, divergence="non-finite loss at step 9 (lr 0.005)",
        completed_fraction=0.5, bound_rule="thesis_first_epoch", bounds=(1e-4, 1.3e-3),
        compare_rule="smith_quarter", compare_bounds=(2.5e-3, 1e-2), disagreement=7.5,
        unstable=True, peak_memory_bytes=4096, memory_kind="process_rss", seconds=1.25,
        divergence_point=DivergencePoint(9, 0.005, None), limit_found=True,
        best_accuracy_lr=0.004, weight_change=0.02, ramp_steps=18)


def test_every_fact_is_one_flat_attr_and_reads_back_as_written() -> None:
    summary = full_summary()
    attrs = summary.to_attrs()
    assert set(attrs) == set(summary_attrs())
    assert list(attrs)[-1] == "lrrt_score"  # its presence makes the summary exist
    assert attrs["num_classes"] == 10 and attrs["lrrt_group"] == summary.group
    assert attrs["lrrt_bounds"] == [1e-4, 1.3e-3]  # JSON lists, as Optuna stores them
    assert LRRTSummary.from_attrs(attrs) == summary


def test_every_field_has_a_key_of_its_own_and_a_meaning() -> None:
    reference = summary_attrs()
    assert len(reference) == len(fields(LRRTSummary))
    assert all(key.startswith(LRRT_PREFIX) or key == "num_classes" for key in reference)
    assert all(meaning.strip() for meaning in reference.values())


@pytest.mark.parametrize("missing", ["lrrt_score", "num_classes"])
def test_without_a_score_or_a_class_count_there_is_no_summary(missing: str) -> None:
    attrs = full_summary().to_attrs()
    del attrs[missing]
    assert LRRTSummary.from_attrs(attrs) is None
    assert LRRTSummary.from_attrs({**full_summary().to_attrs(), "num_classes": True}) is None


def test_absent_facts_take_their_defaults_and_malformed_ones_read_as_unknown() -> None:
    read = LRRTSummary.from_attrs({"lrrt_score": 0.3, "num_classes": 4, "lrrt_bounds": "x",
                                   "lrrt_ramp_steps": -3, "lrrt_seconds": float("nan")})
    assert read == LRRTSummary(score=0.3, group=UNKNOWN_GROUP, num_classes=4)
    assert read.completed_fraction == 1.0 and read.memory_kind == ""


def test_a_nested_summary_of_an_older_version_is_read() -> None:
    attrs = {"num_classes": 10, "lrrt_group": "g", "lrrt_has_bounds": False,
             "lrrt": {"best_smoothed_accuracy": 0.42, "lr_min": 0.01, "lr_max": 0.1,
                      "bound_rule": "thesis_first_epoch", "bounds": [0.01, 0.02],
                      "diverged": False, "unstable": True}}
    read = LRRTSummary.from_attrs(attrs)
    assert read is not None and read.score == 0.42 and read.lr_range == (0.01, 0.1)
    assert read.bounds is None  # lrrt_has_bounds: false
    assert read.unstable and read.bound_rule == "thesis_first_epoch"


def test_zeros_written_for_a_test_that_ended_before_an_epoch_are_unknown() -> None:
    attrs = {**full_summary().to_attrs(), "lrrt_best_val_accuracy": 0.0,
             "lrrt_max_epoch_accuracy": 0.0}
    read = LRRTSummary.from_attrs(attrs)
    assert read is not None and read.best_val_accuracy is None
    assert read.max_epoch_accuracy is None


def test_an_older_summary_reads_its_divergence_point_from_the_text() -> None:
    attrs = LRRTSummary(score=0.3, group="g", num_classes=10, diverged=True,
                        divergence="smoothed loss 94.6 > 4x minimum at step 73 (lr 0.0826)"
                        ).to_attrs()
    del attrs["lrrt_divergence_point"]
    read = LRRTSummary.from_attrs(attrs)
    assert read is not None and read.divergence_point == DivergencePoint(73, 0.0826, 94.6)


def test_the_chance_threshold_is_the_margin_of_the_way_from_chance_to_perfect() -> None:
    assert chance_threshold(10) == pytest.approx(0.19)
    assert chance_threshold(2, 0.0) == pytest.approx(0.5)
    assert chance_threshold(4, 0.5) == pytest.approx(0.625)

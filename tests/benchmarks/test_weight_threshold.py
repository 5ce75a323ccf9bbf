"""``benchmarks.weight_threshold``: the sweep judges with the product's gate."""

from __future__ import annotations

from benchmarks.weight_threshold import sweep
from search.method.lrrt.curve import LRRTCurve
from search.method.lrrt.result import curve_facts
from search.record import LRRTSummary


def design(moved: float, score: float, chance_level: bool) -> dict:
    steps = 30
    lrs = [1e-6 * 10 ** (i / (steps - 1)) for i in range(steps)]
    curve = LRRTCurve(1e-6, 1e-5, steps, steps, 1, lrs=lrs,
                      losses=[2.3 - 0.01 * i for i in range(steps)],  # still falling: open
                      accuracies=[score] * steps, ramp="exponential", weight_change=moved)
    summary = LRRTSummary(score=score, group="g", num_classes=10, **{
        **curve_facts(curve), "bound_rule": "sustained_limit", "bounds": (2.5e-6, 5e-6)})
    return {"summary": summary, "chance_level": chance_level}


def test_a_threshold_above_a_designs_movement_rejects_it_whatever_its_score() -> None:
    # 30-batch ramps: judged per 100 batches, 1e-4 -> 3.3e-4 and 5e-3 -> 1.7e-2
    designs = [design(1e-4, 0.25, True),  # lucky batches, weights still: chance after all
               design(5e-3, 0.12, False)]  # a slow starter: low score, weights moving
    low, middle, high = sweep(designs, [1e-5, 1e-3, 3e-2])
    assert (low["caught"], low["false_rejections"]) == (0, 0)
    assert (middle["caught"], middle["false_rejections"]) == (1, 0)
    assert (high["caught"], high["false_rejections"]) == (1, 1)

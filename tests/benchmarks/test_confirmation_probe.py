"""``benchmarks.confirmation_probe``: which designs it probes and how it tallies them."""

from __future__ import annotations

from benchmarks.confirmation_probe import doubtful, tally
from search.method.lrrt.curve import LRRTCurve
from search.method.lrrt.result import LRRTResult, curve_facts
from search.record import LRRTSummary

RANGE = (1e-3, 1e-2)


def result(losses: list[float], score: float, diverged: bool = False) -> LRRTResult:
    steps = len(losses)
    lrs = [RANGE[0] * 10 ** (i / (steps - 1)) for i in range(steps)]
    curve = LRRTCurve(*RANGE, steps, steps, 1, lrs=lrs, losses=losses,
                      accuracies=[score] * steps, diverged=diverged, ramp="exponential")
    return LRRTResult(curve, LRRTSummary(score=score, group="g", num_classes=10,
                                         **curve_facts(curve)))


FALLING = [2.0 - 0.05 * i for i in range(30)]  # no limit: an open ramp
TURNED = [2.0 - 0.1 * i for i in range(11)] + [1.0 + 0.1 * i for i in range(19)]


def test_doubtful_means_the_ramp_never_ran_at_the_chosen_rates() -> None:
    inside = (2e-3, 8e-3)
    assert doubtful(result(FALLING, 0.12), inside, RANGE, 0.19)  # low score, open ramp
    assert not doubtful(result(FALLING, 0.5), inside, RANGE, 0.19)  # it learned
    assert not doubtful(result(TURNED, 0.12), inside, RANGE, 0.19)  # a limit, bounds inside
    below = (1e-4, 4e-4)
    assert doubtful(result(TURNED, 0.12), below, RANGE, 0.19)
    assert doubtful(result(TURNED, 0.5, diverged=True), below, RANGE, 0.19)
    assert not doubtful(result(TURNED, 0.5, diverged=True), inside, RANGE, 0.19)
    assert not doubtful(result(FALLING, 0.12), None, RANGE, 0.19)


def test_tally_counts_catches_and_designs_that_train_but_fail() -> None:
    def row(truth_chance: bool, fresh: float, continued: float) -> dict:
        marks = ("10", "25", "50")
        return {"chance_level": truth_chance, "threshold": 0.19,
                "fresh": dict.fromkeys(marks, fresh), "continued": dict.fromkeys(marks, continued)}
    figures = tally([row(True, 0.1, 0.3), row(False, 0.1, 0.5), row(False, 0.6, 0.5)])
    assert (figures["doubtful"], figures["chance_level"], figures["good"]) == (3, 1, 2)
    assert figures["fresh_50"] == {"caught": 1, "good_failed": 1}
    assert figures["continued_10"] == {"caught": 0, "good_failed": 0}

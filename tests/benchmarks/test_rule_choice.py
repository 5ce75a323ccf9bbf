"""``benchmarks.rule_choice``'s arithmetic: reading the oracle grid and the loss's fall."""

from __future__ import annotations

import pytest

from benchmarks.rule_choice import grid_accuracy, loss_fall, loss_limit_backoff
from search.method.lrrt.curve import LRRTCurve

ORACLE = {"0.25": 0.5, "0.5": 0.6, "1": 0.7, "2": 0.8, "4": 0.4}


def test_grid_accuracy_interpolates_in_log_lr_and_flags_the_outside() -> None:
    assert grid_accuracy(ORACLE, 0.01, 0.02) == (pytest.approx(0.8), False)
    middle, outside = grid_accuracy(ORACLE, 0.01, 0.01 * 2 ** 1.5)  # halfway from x2 to x4
    assert middle == pytest.approx(0.6) and not outside
    assert grid_accuracy(ORACLE, 0.01, 0.1) == (pytest.approx(0.4), True)
    assert grid_accuracy(ORACLE, 0.01, 0.001) == (pytest.approx(0.5), True)


def curve(losses: list[float], diverged: bool = False) -> LRRTCurve:
    steps = len(losses)
    lrs = [1e-3 * 10 ** (i / (steps - 1)) for i in range(steps)]
    return LRRTCurve(1e-3, 1e-2, steps, steps, 1, lrs=lrs, losses=losses,
                     accuracies=[0.5] * steps, diverged=diverged, ramp="exponential")


def test_loss_fall_is_the_share_of_the_start_that_was_lost() -> None:
    assert loss_fall(curve([2.0, 1.5, 1.0, 1.2])) == pytest.approx(0.5)
    assert loss_fall(curve([2.0, 2.1, 2.2])) == 0.0


def test_backoff_moves_only_a_found_limit() -> None:
    # a valley at step 10 of 30 that gives back most of its fall: a limit
    turned = curve([2.0 - 0.1 * i for i in range(11)] + [1.0 + 0.1 * i for i in range(19)])
    halved, quartered = loss_limit_backoff(2.0)(turned), loss_limit_backoff(4.0)(turned)
    assert halved is not None and quartered is not None
    assert quartered[1] == pytest.approx(halved[1] / 2)
    falling = curve([2.0 - 0.05 * i for i in range(30)])  # no limit: the largest LR tested
    assert loss_limit_backoff(4.0)(falling) == loss_limit_backoff(2.0)(falling)
    assert loss_limit_backoff(2.0, 2.0)(falling)[1] == pytest.approx(falling.lrs[-1] / 2)

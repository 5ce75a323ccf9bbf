"""The benchmark's bookkeeping: images charged at the source, cut at the budget, and the
numbers read off a timeline. Fast: tiny tensors, no training."""

from __future__ import annotations

import math

import pytest
import torch

from benchmarks.common.budget import BudgetExhausted, CountingBatches, Ledger
from benchmarks.common.metrics import best_at, median_or_none, summary, to_target
from data import DeviceBatches


class Owner:
    def __init__(self, ledger: Ledger | None) -> None:
        self.ledger = ledger


def batches(count: int = 10, batch_size: int = 4) -> DeviceBatches:
    images = torch.zeros(count, 1, 2, 2, dtype=torch.uint8)
    return DeviceBatches(images, torch.arange(count) % 2, batch_size=batch_size, device="cpu",
                         shuffle=True, seed=0)


def test_training_batches_are_charged_and_cut_at_the_budget() -> None:
    ledger = Ledger(budget=14)
    counted = CountingBatches(batches(), Owner(ledger), training=True)  # type: ignore[arg-type]
    assert [len(y) for _x, y in counted.epoch(0)] == [4, 4, 2]
    served = []
    with pytest.raises(BudgetExhausted):
        for _x, y in counted.epoch(1):
            served.append(len(y))
    assert served == [4]  # 10 + 4 = 14: the budget ends exactly, the next batch is refused
    assert ledger.images == 14 and ledger.exhausted


def test_a_batch_that_would_overrun_is_truncated() -> None:
    ledger = Ledger(budget=6)
    counted = CountingBatches(batches(), Owner(ledger), training=True)  # type: ignore[arg-type]
    iterator = counted.epoch(0)
    assert len(next(iterator)[1]) == 4
    images, labels = next(iterator)
    assert len(labels) == len(images) == 2
    with pytest.raises(BudgetExhausted):
        next(iterator)


def test_evaluation_batches_are_counted_not_charged() -> None:
    ledger = Ledger(budget=1)
    counted = CountingBatches(batches(), Owner(ledger), training=False)  # type: ignore[arg-type]
    assert sum(len(y) for _x, y in counted.epoch(0)) == 10
    assert (ledger.images, ledger.eval_images) == (0, 10)
    assert len(counted) == 3 and counted.num_samples == 10  # delegated


def test_observe_keeps_the_best_so_far() -> None:
    ledger = Ledger()
    ledger.images = 5
    ledger.observe(0.5)
    ledger.images = 9
    ledger.observe(0.3)
    ledger.observe(math.nan)
    assert [(i, b) for i, _s, b in ledger.timeline] == [(5, 0.5), (9, 0.5), (9, 0.5)]


TIMELINE = [(100, 1.0, 0.4), (200, 2.0, 0.7), (300, 3.0, 0.8)]


def test_best_at_and_to_target_read_the_timeline() -> None:
    assert best_at(TIMELINE, 50) == 0.0
    assert best_at(TIMELINE, 250) == 0.7
    assert to_target(TIMELINE, 0.75) == (300, 3.0)
    assert to_target(TIMELINE, 0.9) is None


def test_an_unreached_target_counts_as_infinitely_far() -> None:
    assert median_or_none([10, None, 30]) == 30
    assert median_or_none([10, None, None]) is None


def _metrics(strategy: str, images: int | None) -> dict:
    return {"strategy": strategy, "seed": 0, "budget": 1000, "chance_images": 0,
            "best_at": {"0.25": 0.5, "0.5": 0.6, "1.0": 0.7},
            "to_target": {"0.7": None if images is None else [images, 1.0]}}


def test_headline_compares_ours_with_the_best_other() -> None:
    metrics = [_metrics("ours", 200), _metrics("tpe_median", 500), _metrics("random", None)]
    head = summary(metrics, ("ours", "tpe_median", "random"), (0.7,))["headline"]["0.7"]
    assert head["best_other"] == "tpe_median"
    assert head["ratio"] == pytest.approx(0.4) and head["target_met"]
    metrics[0] = _metrics("ours", 300)
    head = summary(metrics, ("ours", "tpe_median", "random"), (0.7,))["headline"]["0.7"]
    assert not head["target_met"]


def test_a_variant_of_ours_is_never_the_baseline() -> None:
    metrics = [_metrics("ours", 200), _metrics("ours_sh", 100), _metrics("tpe_sh", 500)]
    head = summary(metrics, ("ours", "ours_sh", "tpe_sh"), (0.7,))["headline"]["0.7"]
    assert head["best_other"] == "tpe_sh" and head["ratio"] == pytest.approx(0.4)


def test_when_no_other_reaches_the_target_the_ratio_is_only_bounded() -> None:
    metrics = [_metrics("ours", 400), _metrics("random", None)]
    head = summary(metrics, ("ours", "random"), (0.7,))["headline"]["0.7"]
    assert head["ratio"] is None and head["ratio_below"] == pytest.approx(0.4)
    assert head["target_met"] is True
    metrics[0] = _metrics("ours", 700)
    head = summary(metrics, ("ours", "random"), (0.7,))["headline"]["0.7"]
    assert head["target_met"] is None  # 0.7 of the budget: theirs could be 1.1 or 10x

"""The model card's numbers: Wilson's interval, the confusion matrix, per-class accuracy and
the most confident mistakes, on small cases worked by hand."""

from __future__ import annotations

import pytest
import torch

from search.trained.card_data import (
    confidently_wrong,
    confusion_matrix,
    per_class,
    wilson_interval,
)


@pytest.mark.parametrize("correct, total, low, high", [
    (50, 100, 0.4038, 0.5962),   # the textbook case
    (0, 10, 0.0, 0.2775),        # stays inside [0, 1] where the normal interval would not
    (10, 10, 0.7225, 1.0),
    (1542, 10000, 0.1473, 0.1614),
])
def test_wilson_interval(correct: int, total: int, low: float, high: float) -> None:
    got = wilson_interval(correct, total)
    assert got == pytest.approx((low, high), abs=5e-5)
    assert 0.0 <= got[0] <= correct / total <= got[1] <= 1.0


def test_confusion_matrix_and_per_class() -> None:
    labels = torch.tensor([0, 0, 1, 1, 1, 2])
    predicted = torch.tensor([0, 1, 1, 1, 0, 2])
    matrix = confusion_matrix(labels, predicted, 4)
    assert matrix == [[1, 1, 0, 0], [1, 2, 0, 0], [0, 0, 1, 0], [0, 0, 0, 0]]
    rows = per_class(matrix, ("a", "b", "c", "d"))
    assert [(r["class"], r["images"], r["correct"]) for r in rows] == [
        ("a", 2, 1), ("b", 3, 2), ("c", 1, 1), ("d", 0, 0)]
    assert rows[1]["accuracy"] == pytest.approx(2 / 3) and rows[3]["accuracy"] is None


def test_confidently_wrong_is_most_confident_first() -> None:
    labels = torch.tensor([0, 0, 1, 1])
    logits = torch.tensor([[5.0, 0.0], [0.0, 3.0], [0.0, 9.0], [4.0, 0.0]])
    wrong = confidently_wrong(labels, logits, count=5)
    assert [entry["index"] for entry in wrong] == [3, 1]  # 4 apart beats 3 apart
    assert wrong[0]["label"] == 1 and wrong[0]["predicted"] == 0
    assert wrong[0]["confidence"] == pytest.approx(1 / (1 + torch.exp(torch.tensor(-4.0))))
    assert confidently_wrong(labels, logits, count=1) == wrong[:1]

"""The model card: drawn offline in real Chromium with no console error, its confusion matrix
visible and holding the counts of model_card.json, its per-class table and mistakes grid
as computed; and the HTML built from hand-made card data (no test split, many classes).

With ``CNNSEARCH_DOCS_SCREENSHOTS=docs/`` the card's screenshot is also written as
``docs/model-card.png`` (docs/model-in-use.md shows it)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from search.views.model_card import build_model_card
from tests.browser import browser_missing, chromium, open_model_card
from tests.conftest import needs_fashion_mnist


@pytest.mark.skipif(browser_missing() is not None, reason=browser_missing() or "")
@needs_fashion_mnist
def test_the_model_card_in_chromium(tiny_model_folder: dict, tmp_path: Path) -> None:
    card = tiny_model_folder["card"]
    with chromium() as browser:
        view = open_model_card(browser, tiny_model_folder["folder"] / "model_card.html",
                               screenshot=tmp_path / "card.png")
    assert view.errors == [] and view.offline_requests == []
    assert view.confusion_visible
    assert view.confusion == card["confusion"]
    assert sum(map(sum, view.confusion)) == card["images"] == 10000
    assert view.wrong_images == len(card["confidently_wrong"]) > 0
    assert [row[0] for row in view.per_class] == card["classes"]
    for shown, row in zip(view.per_class, card["per_class"]):
        assert shown[1:] == [str(row["images"]), str(row["correct"]), f"{row['accuracy']:.4f}"]
    assert f"test accuracy {card['accuracy']:.4f}" in view.text
    assert f"{card['interval']['low']:.4f}, {card['interval']['high']:.4f}" in view.text
    provenance = tiny_model_folder["manifest"]["provenance"]
    assert "visual" in view.text and str(provenance["trial"]) in view.text
    assert (tmp_path / "card.png").stat().st_size > 20_000


def card(classes: int, evaluated_on: str = "test") -> dict:
    """Card data as card_data writes it, made by hand."""
    names = [f"class {k}" for k in range(classes)]
    confusion = np.eye(classes, dtype=int) * 3
    confusion[0, 1] = 1
    return {
        "name": "B1FL4Adam", "dataset": "imagefolder:x", "split": "thesis",
        "design": {"input_shape": [3, 8, 8], "optimizer": "adam", "batch_size": 8,
                   "schedule": "triangular2"},
        "provenance": {"study": "s", "trial": 3, "lr_bounds": [1e-3, 4e-3], "seeds": [0, 1]},
        "selected_seed": 1,
        "runs": [{"seed": seed, "final_val_accuracy": 0.9, "test_accuracy": None,
                  "history": [{"epoch": 1, "val_accuracy": 0.8, "train_loss": 1.0}]}
                 for seed in (0, 1)],
        "evaluated_on": evaluated_on, "images": int(confusion.sum()),
        "correct": int(np.trace(confusion)),
        "accuracy": float(np.trace(confusion) / confusion.sum()),
        "interval": {"method": "Wilson", "low": 0.8, "high": 0.99},
        "classes": names,
        "per_class": [{"class": name, "images": int(confusion[k].sum()),
                       "correct": int(confusion[k, k]),
                       "accuracy": float(confusion[k, k] / confusion[k].sum())}
                      for k, name in enumerate(names)],
        "confusion": confusion.tolist(),
        "confidently_wrong": [{"index": 5, "label": 0, "predicted": 1, "confidence": 0.75}],
    }


def test_a_card_without_a_test_split_says_so() -> None:
    page = build_model_card(card(3, "validation"), [np.zeros((3, 8, 8), np.uint8)])
    assert "keeps no test split" in page and "validation accuracy" in page
    assert 'alt="validation image 5, a class 0 taken for a class 1"' in page
    assert "data:image/png;base64," in page and "http" not in page.split("<script>")[0]


def test_a_card_of_many_classes_leaves_the_counts_out_of_the_cells() -> None:
    few, many = build_model_card(card(3), [np.zeros((1, 8, 8), np.uint8)]), build_model_card(
        card(100), [np.zeros((1, 8, 8), np.uint8)])
    assert '"texttemplate":"%{z}"' in few and '"texttemplate":"%{z}"' not in many

"""The numbers of a model card (``model_card.json``), from the selected run's logits on the
test split: accuracy with its confidence interval, per-class accuracy, the confusion matrix,
the images it gets most confidently wrong; plus the design, its provenance and every
repeat's training curves. ``search.views.model_card`` draws them.

The interval is Wilson's score interval (95 %) over the test images: it treats the images as
independent draws with the model fixed, so it says how precisely this many images pin the
model's accuracy down, not how much another training run would vary (the repeats' spread
shows that). Wilson's rather than the normal approximation because it stays inside [0, 1]
and keeps its coverage near 0 and 1, where good models are.
"""

from __future__ import annotations

import math
from statistics import NormalDist
from typing import Any

import torch

from search.trained.inference import probabilities
from search.trained.manifest import Manifest

CARD_FORMAT = "cnnsearch-model-card/1"
CARD_JSON, CARD_HTML = "model_card.json", "model_card.html"
CONFIDENCE = 0.95
INTERVAL_METHOD = "Wilson score interval, 95 %, over the evaluated images"
WRONG_SHOWN = 16
"""Images in the card's grid of confident mistakes."""


def wilson_interval(correct: int, total: int, confidence: float = CONFIDENCE
                    ) -> tuple[float, float]:
    """Wilson's score interval for ``correct`` successes in ``total`` trials."""
    if total <= 0:
        return 0.0, 1.0
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    p = correct / total
    denominator = 1 + z * z / total
    centre = (p + z * z / (2 * total)) / denominator
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / denominator
    low = 0.0 if correct == 0 else max(0.0, centre - half)  # exact at the ends
    high = 1.0 if correct == total else min(1.0, centre + half)
    return low, high


def confusion_matrix(labels: torch.Tensor, predicted: torch.Tensor,
                     num_classes: int) -> list[list[int]]:
    """Counts: row = true class, column = predicted class."""
    flat = labels.long() * num_classes + predicted.long()
    counts = torch.bincount(flat, minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes).tolist()


def per_class(confusion: list[list[int]], classes: tuple[str, ...]) -> list[dict[str, Any]]:
    """Each class' images, correct predictions and accuracy (recall), from the matrix."""
    rows = []
    for index, (name, row) in enumerate(zip(classes, confusion)):
        images = sum(row)
        rows.append({"class": name, "images": images, "correct": row[index],
                     "accuracy": row[index] / images if images else None})
    return rows


def confidently_wrong(labels: torch.Tensor, logits: torch.Tensor,
                      count: int = WRONG_SHOWN) -> list[dict[str, Any]]:
    """The ``count`` wrong predictions with the highest probability on the predicted class,
    most confident first (ties: the lower image index)."""
    probs = probabilities(logits)
    confidence, predicted = probs.max(dim=1)
    wrong = torch.nonzero(predicted != labels).flatten().tolist()
    wrong.sort(key=lambda i: (-float(confidence[i]), i))
    return [{"index": i, "label": int(labels[i]), "predicted": int(predicted[i]),
             "confidence": float(confidence[i])} for i in wrong[:count]]


def card_data(manifest: Manifest, histories: dict[int, list[dict[str, Any]]],
              labels: torch.Tensor, logits: torch.Tensor, evaluated_on: str) -> dict[str, Any]:
    """The card's JSON: ``logits`` of the selected run on the ``evaluated_on`` split
    (``test``, or ``validation`` when the split keeps no test images), ``histories`` the
    epochs of each run by seed."""
    predicted = logits.argmax(dim=1)
    correct = int((predicted == labels).sum())
    total = len(labels)
    low, high = wilson_interval(correct, total)
    confusion = confusion_matrix(labels, predicted, len(manifest.classes))
    design = manifest.design
    runs = []
    for run in manifest.runs:
        entry: dict[str, Any] = {"seed": run.seed, "final_val_accuracy": run.final_val_accuracy,
                                 "test_accuracy": run.test_accuracy,
                                 "history": histories.get(run.seed, [])}
        if run.test_accuracy is not None and evaluated_on == "test":
            run_correct = round(run.test_accuracy * total)
            entry["test_interval"] = list(wilson_interval(run_correct, total))
        runs.append(entry)
    return {
        "format": CARD_FORMAT,
        "name": manifest.name,
        "dataset": manifest.dataset,
        "split": manifest.split,
        "design": {"architecture": design.architecture.to_dict(), "optimizer": design.optimizer,
                   "batch_size": design.batch_size, "schedule": design.schedule,
                   "sampling": design.sampling, "normalise": design.normalise,
                   "augmentation": {"flip": design.flip, "translate": design.translate,
                                    "erase": design.erase},
                   "weight_decay": design.weight_decay,
                   "input_shape": list(manifest.preprocessing.input_shape)},
        "provenance": manifest.provenance,
        "selected_seed": manifest.selected_seed,
        "runs": runs,
        "evaluated_on": evaluated_on,
        "images": total,
        "correct": correct,
        "accuracy": correct / total if total else None,
        "interval": {"method": INTERVAL_METHOD, "confidence": CONFIDENCE, "low": low,
                     "high": high},
        "classes": list(manifest.classes),
        "per_class": per_class(confusion, manifest.classes),
        "confusion": confusion,
        "confidently_wrong": confidently_wrong(labels, logits),
    }

"""The cost and accuracy of a rejection, against ground truth.

Each configuration of the grid (blocks x filters x optimizer x LR range) gets the product's
LRRT and the ``LRRTPruner`` verdict, and is then trained to the end regardless (triangular2
between the LRRT's bounds, no pruning): that run is the ground truth. A configuration
"ends at chance level" when its best validation accuracy stays under the pruner's chance
threshold. The verdict is asked of a real study in which the earlier configurations are the
peers, as in a search, because ``below_peers`` depends on them; the figures are given both
for the peer-free reasons (diverged, chance_level) and for all reasons.

Shorter LRRTs (variants) are judged against the same ground truth: only their test runs.
"""

from __future__ import annotations

import itertools
import random
import time
from dataclasses import dataclass, replace
from typing import Any

import optuna
from optuna.trial import TrialState

from benchmarks.budget import Ledger, MeteredData
from benchmarks.settings import (
    BLOCKS,
    FILTERS,
    LR_RANGES,
    OPTIMIZERS,
    BenchSettings,
    search_config,
)
from models import Architecture
from search.method.lrrt.result import LRRTResult
from search.method.lrrt.run import run_lrrt
from search.method.pruner import LRRT_STEP, LRRTPruner, chance_threshold
from search.method.recipe import triangular2_run
from search.method.sampling import lr_range_label
from search.method.training import TrainingDiverged, train_epochs
from search.method.trial_config import TrialConfig
from search.record import CHANCE_LEVEL, DIVERGED, TrialRecorder, frozen_trial
from search.service.study import build_pruner

PEER_FREE = (DIVERGED, CHANCE_LEVEL)
"""Reasons that depend on the configuration alone, not on which peers came before it."""


@dataclass
class Measured:
    """The images and seconds one piece of work took."""

    images: int
    seconds: float


def grid(settings: BenchSettings, seed: int = 0) -> list[TrialConfig]:
    """The whole space as ``TrialConfig`` s, in a seeded random order (the order peers
    arrive in a search); ``settings.rejection_configs`` > 0 keeps only the first ones."""
    config = search_config(settings, seed)
    designs = list(itertools.product(BLOCKS, FILTERS, OPTIMIZERS, LR_RANGES))
    random.Random(seed).shuffle(designs)
    if settings.rejection_configs > 0:
        designs = designs[: settings.rejection_configs]
    return [
        TrialConfig(
            dataset=config.dataset,
            architecture=Architecture(blocks=b, filters=f, fc_units=config.space.fc_units[0],
                                      l2=config.model.l2),
            optimizer=o, lr_range=r, batch_size=settings.batch_size, seed=1000 + index,
            lrrt=config.lrrt, train=config.train,
        )
        for index, (b, f, o, r) in enumerate(designs)
    ]


def _measure(data: MeteredData, work: Any) -> tuple[Any, Measured]:
    data.ledger = ledger = Ledger()
    started = time.perf_counter()
    try:
        value = work()
    finally:
        data.ledger = None
    return value, Measured(ledger.images, time.perf_counter() - started)


def verdict(study: optuna.Study, pruner: LRRTPruner, config: TrialConfig,
            result: LRRTResult, num_classes: int) -> str | None:
    """Ask the real pruner about a test, exactly as the objective does: the recorded summary,
    a report at the LRRT step, the pruner's verdict. The trial stays in the study as a later
    peer."""
    trial = study.ask()
    summary = result.summary(group=f"{config.dataset.name}|{lr_range_label(config.lr_range)}",
                             num_classes=num_classes)
    TrialRecorder(trial).range_test(summary, result.curve.points(), result.n_params)
    trial.report(result.best_smoothed_accuracy, LRRT_STEP)
    found = pruner.verdict(study, frozen_trial(trial))
    study.tell(trial, state=TrialState.PRUNED if found else TrialState.COMPLETE,
               values=None if found else [result.best_smoothed_accuracy])
    return found.reason if found else None


def train_to_end(config: TrialConfig, result: LRRTResult, data: MeteredData
                 ) -> tuple[float, float, tuple[float, float]]:
    """Triangular2 between the LRRT's bounds for every epoch, no pruning: (best, final)
    validation accuracy. A test without bounds (it diverged at once) trains over its whole
    range, the only bounds it offers; a NaN loss ends the run at the accuracy it had."""
    low, high = result.bounds or config.lr_range
    run = triangular2_run(config, data, (low, high))
    history: list[float] = []
    try:
        train_epochs(run.model, run.optimizer, run.scheduler, run.train, data.val,
                     epochs=config.train.epochs,
                     on_epoch=lambda report, _state: history.append(report.val_accuracy))
    except TrainingDiverged:
        pass
    return max(history, default=0.0), (history[-1] if history else 0.0), (low, high)


def measure_rejection(settings: BenchSettings, data: MeteredData,
                      progress: Any = print) -> dict[str, Any]:
    """Ground truth for every grid configuration, the LRRT verdicts, and the summary."""
    num_classes = data.dataset.num_classes
    base = search_config(settings, 0)
    threshold = chance_threshold(num_classes, base.pruner.chance_margin)
    configs = grid(settings)
    variants = (settings.lrrt_epochs, *settings.rejection_lrrt_variants)
    studies = {v: (optuna.create_study(direction="maximize", pruner=build_pruner(base)))
               for v in variants}
    rows = []
    for index, config in enumerate(configs):
        result, lrrt_cost = _measure(data, lambda c=config: run_lrrt(c, data))
        (best, final, bounds), train_cost = _measure(
            data, lambda c=config, r=result: train_to_end(c, r, data))
        row: dict[str, Any] = {
            "config": config.name, "lr_range": list(config.lr_range),
            "lrrt_score": round(result.best_smoothed_accuracy, 4),
            "lrrt_diverged": result.curve.diverged, "bounds": list(bounds),
            "best_val_accuracy": best, "final_val_accuracy": final,
            "chance_level": best < threshold,
            "train_images": train_cost.images, "train_seconds": round(train_cost.seconds, 3),
            "lrrt": {},
        }
        for lrrt_epochs in variants:
            if lrrt_epochs == settings.lrrt_epochs:
                variant, cost = result, lrrt_cost
            else:
                shorter = replace(config, lrrt=search_config(
                    settings, 0, lrrt_epochs=lrrt_epochs).lrrt)
                variant, cost = _measure(data, lambda c=shorter: run_lrrt(c, data))
            study = studies[lrrt_epochs]
            reason = verdict(study, study.pruner, config, variant, num_classes)  # type: ignore
            row["lrrt"][str(lrrt_epochs)] = {
                "reason": reason, "images": cost.images, "seconds": round(cost.seconds, 3),
                "diverged": variant.curve.diverged,
            }
        rows.append(row)
        progress(f"  rejection {index + 1}/{len(configs)} {config.name} "
                 f"{lr_range_label(config.lr_range)}: best val {best:.3f}, "
                 + ", ".join(f"LRRT {k} ep -> {v['reason'] or 'kept'}"
                             for k, v in row["lrrt"].items()))
    return {"threshold": threshold, "rows": rows,
            "summary": {str(v): summarise(rows, str(v), settings) for v in variants}}


def summarise(rows: list[dict[str, Any]], variant: str, settings: BenchSettings
              ) -> dict[str, Any]:
    """Recall on chance-level configs, false rejections of good ones, and cost, for one
    LRRT length. The cost of a rejection is the LRRT it ran; the full trial it replaces is
    that same LRRT plus the training epochs (what the configuration cost when kept)."""
    chance = [r for r in rows if r["chance_level"]]
    good = [r for r in rows if not r["chance_level"]]
    out: dict[str, Any] = {"configs": len(rows), "chance_level": len(chance), "good": len(good)}
    for label, reasons in (("peer_free", PEER_FREE), ("all_reasons", None)):
        def rejected(row: dict[str, Any], reasons: tuple[str, ...] | None = reasons) -> bool:
            reason = row["lrrt"][variant]["reason"]
            return reason is not None and (reasons is None or reason in reasons)

        caught = sum(rejected(r) for r in chance)
        wrong = sum(rejected(r) for r in good)
        out[label] = {
            "recall": caught / len(chance) if chance else None,
            "caught": caught,
            "false_rejection_rate": wrong / len(good) if good else None,
            "false_rejections": wrong,
        }
    image_ratios, second_ratios = [], []
    for row in rows:
        if row["lrrt"][variant]["reason"] is None:
            continue
        lrrt = row["lrrt"][variant]
        image_ratios.append(lrrt["images"] / (lrrt["images"] + row["train_images"]))
        second_ratios.append(lrrt["seconds"] / (lrrt["seconds"] + row["train_seconds"]))
    out["rejections"] = len(image_ratios)
    out["cost_images_mean"] = _mean(image_ratios)
    out["cost_images_max"] = max(image_ratios, default=None)
    out["cost_seconds_mean"] = _mean(second_ratios)
    # An LRRT that runs to its end costs lrrt_epochs / (lrrt_epochs + epochs) of the trial.
    out["planned_cost_images"] = float(variant) / (float(variant) + settings.epochs)
    return out


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None

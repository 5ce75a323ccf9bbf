"""Does the range test reject what will not train, keep what will, rank designs, and choose
good bounds? The protocol of issue 9, on any dataset the product reads.

    python -m benchmarks.rejection --config FILE [FILE ...] --out DIR
                                   [--seeds dev|report|0,1,2] [--oracle-configs 16]
                                   [--quick] [--threads 1]

Each ``--config`` is an ordinary cnnsearch search config: its dataset and sizes, and the
cartesian product of its space (blocks x filters x optimizer x LR range x batch size ...) is
a grid of designs. Several configs are parts of one protocol whose rows are pooled; the
oracle grid is drawn from the first part only. The default is
``benchmarks/protocols/fashion-mnist.yaml`` (48 designs that should train) plus
``fashion-mnist-extremes.yaml`` (24 designs whose LR range sits a decade below or above:
without them no design ends at chance and recall cannot be measured). ``--extremes`` derives
such a part from the first config, for any dataset (``extremes_of``).
For each data seed, every design in a seeded order gets

- the product's range test (``run_lrrt``) and the gate's verdict, asked of a real
  ``LRRTPruner`` on a study whose earlier designs are its peers, as in a search;
- its ground truth: triangular2 between the test's bounds (its LR range when the test gave
  none) for ``train.epochs``, no pruning; it "ends at chance level" when its best
  validation accuracy stays under the gate's chance threshold;
- 1-epoch screening at equal cost: a fresh model trained at one fixed LR (the geometric
  middle of its range) on as many images as its range test used, then validated;
- its parameter count;

and a stratified subset of ``--oracle-configs`` designs is also trained at upper bounds
x0.25, x0.5, x2 and x4 the chosen one (same lower/upper ratio): the bound regret is how far
the chosen bounds' best accuracy is under the best of that grid, in accuracy points.
With ``--replicate`` every design is trained a second time: how far the ground truth agrees
with itself (ranks and chance-level labels) is the ceiling any score or gate is judged under.

Development seeds (``dev``: 0, 1, 2) are for choosing rules and thresholds; reporting seeds
(``report``: 100, 101, 102) are run once with the chosen defaults and reported. Each measured
piece is cached in ``DIR/cache.jsonl`` keyed by what it depends on, so an interrupted run
resumes and rules that choose the same bounds share their training runs. Writes
``DIR/summary.json`` (pooled figures and per-seed ones) and ``DIR/rows.json``.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import math
import random
import shlex
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import torch
from optuna.trial import TrialState

from benchmarks.budget import Ledger, MeteredData
from benchmarks.metrics import bootstrap_median
from search.config import SearchConfig, load_config
from search.config.space import lr_range_label
from search.method.lrrt.curve import limit_index
from search.method.lrrt.result import LRRTResult
from search.method.lrrt.result import summarise as score_curve
from search.method.lrrt.run import run_lrrt
from search.method.prepared_data import load_data
from search.method.pruner import LRRT_STEP, LRRTPruner, chance_threshold
from search.method.recipe import build_model, build_optimizer, triangular2_run
from search.method.suggest import sample_trial_config
from search.method.training import TrainingDiverged, train_epochs
from search.method.trial_config import TrialConfig
from search.record import CHANCE_LEVEL, DIVERGED, TrialRecorder, frozen_trial
from search.record import design_key as record_design_key
from search.service.study import build_pruner

optuna.logging.set_verbosity(optuna.logging.WARNING)

DEFAULT_CONFIGS = (Path("benchmarks/protocols/fashion-mnist.yaml"),
                   Path("benchmarks/protocols/fashion-mnist-extremes.yaml"))
DEV_SEEDS = (0, 1, 2)
REPORT_SEEDS = (100, 101, 102)
ORACLE_FACTORS = (0.25, 0.5, 2.0, 4.0)
PEER_FREE = (DIVERGED, CHANCE_LEVEL)
"""Reasons that depend on the design alone, not on which peers came before it."""
REPLICATE_OFFSET = 7_919
"""The replicate's seed is the design's plus this (a prime: no other design's seed)."""
AT_LR_MAX = 0.9
"""An upper bound at >= this share of the range's lr_max "sits at the end of the ramp"."""


# --------------------------------------------------------------------------- the grid

def designs(config: SearchConfig, seed: int) -> list[TrialConfig]:
    """Every design of the config's space, in a seeded random order (the order peers arrive
    in a search), each with its own init seed; built by the product's own sampling."""
    space = config.space
    choices = {
        "blocks": space.blocks, "filters": space.filters, "fc_units": space.fc_units,
        "batch_norm": space.batch_norm, "dropout": space.dropout,
        "optimizer": space.optimizer,
        "lr_range": tuple(lr_range_label(r) for r in space.lr_range),
        "batch_size": space.batch_size,
    }
    names = list(choices)
    combos = list(itertools.product(*(choices[n] for n in names)))
    random.Random(seed).shuffle(combos)
    out = []
    for index, combo in enumerate(combos):
        trial_config = sample_trial_config(optuna.trial.FixedTrial(dict(zip(names, combo,
                                                                             strict=True))),
                                           replace(config, seed=seed))
        out.append(trial_config.with_seed(seed * 100_003 + index))
    return out


def design_key(config: TrialConfig) -> str:
    """What tells two designs of one grid apart: the product's design identity."""
    return record_design_key(config.to_dict())


def design_base(seed: int, config: TrialConfig) -> str:
    """The cache key prefix of one design on one data seed: every piece measured of it."""
    return _digest(seed, design_key(config), config.to_dict())


def stratified(rows: list[dict[str, Any]], count: int) -> list[dict[str, Any]]:
    """``count`` designs spread over optimizer x LR range x outcome (kept first), so the
    oracle grid sees every kind of design, not just the most common one."""
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault((row["optimizer"], row["lr_range_label"], row["chance_level"]),
                          []).append(row)
    ordered = [groups[k] for k in sorted(groups, key=lambda k: (k[2], k[0], k[1]))]
    chosen: list[dict[str, Any]] = []
    while len(chosen) < count and any(ordered):
        for group in ordered:
            if group and len(chosen) < count:
                chosen.append(group.pop(0))
    return chosen


EXTREME_DECADES = (2, 1)
"""A derived extremes grid's low range spans lr_min / 10**2 .. lr_min / 10**1 of the
config's smallest rate; its high range 5 x .. 50 x its largest."""


def extremes_of(config: SearchConfig) -> SearchConfig:
    """The config's grid moved to LR ranges where its designs should not train: a decade
    under its smallest rate and a decade over its largest, at its largest batch size (the
    cheapest test). For the default grid this is ``fashion-mnist-extremes.yaml``."""
    low = min(r[0] for r in config.space.lr_range)
    high = max(r[1] for r in config.space.lr_range)
    space = replace(config.space,
                    lr_range=((low / 10 ** EXTREME_DECADES[0], low / 10 ** EXTREME_DECADES[1]),
                              (high * 5, high * 50)),
                    batch_size=(max(config.space.batch_size),))
    return replace(config, space=space)


# --------------------------------------------------------------------------- measuring

LRRT_KEY = "lrrt-w"
"""Cache key of a range test; ``lrrt`` entries predate its weight movement, which the gate
reads, so they are measured again (same seed: same curve, now with the movement)."""


def cached_lrrt(cache: Cache, base: str) -> dict[str, Any]:
    """A design's cached range test, the newest kind there is."""
    return cache.values.get(f"{LRRT_KEY}|{base}") or cache.values[f"lrrt|{base}"]


def read_with_current_rules(stored: dict[str, Any], config: TrialConfig) -> LRRTResult:
    """A cached range test, its score and bounds read again from its curve by today's
    rules: the curve is what was measured, so a rule change re-reads every cached test, and
    only designs whose bounds moved are trained again (the training cache is keyed by the
    bounds)."""
    cached = LRRTResult.from_json(json.dumps(stored))
    result = score_curve(cached.curve, bound_rule=config.lrrt.bound_rule,
                         compare_rule=config.lrrt.compare_rule,
                         disagreement_factor=config.lrrt.disagreement_factor,
                         peak_memory_bytes=cached.summary.peak_memory_bytes,
                         memory_kind=cached.summary.memory_kind,
                         seconds=cached.summary.seconds or 0.0, n_params=cached.n_params)
    return result


class Cache:
    """Measured pieces by key, appended to a JSON-lines file: a run resumes where it was."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.values: dict[str, Any] = {}
        if path.exists():
            for line in path.read_text().splitlines():
                if line.strip():
                    entry = json.loads(line)
                    self.values[entry["key"]] = entry["value"]

    def get(self, key: str, compute: Callable[[], Any]) -> Any:
        if key not in self.values:
            self.values[key] = compute()
            with self.path.open("a") as handle:
                handle.write(json.dumps({"key": key, "value": self.values[key]}) + "\n")
        return self.values[key]


def _digest(*parts: object) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _metered(data: MeteredData, work: Callable[[], Any]) -> tuple[Any, int, float]:
    data.ledger = ledger = Ledger()
    started = time.perf_counter()
    try:
        value = work()
    finally:
        data.ledger = None
    return value, ledger.images, time.perf_counter() - started


def train_to_end(config: TrialConfig, data: MeteredData, bounds: tuple[float, float]
                 ) -> dict[str, Any]:
    """Triangular2 between ``bounds`` for every epoch, no pruning. A NaN loss ends the run
    at the accuracies it had."""

    def work() -> list[float]:
        run = triangular2_run(config, data, bounds)
        history: list[float] = []
        try:
            train_epochs(run.model, run.optimizer, run.scheduler, run.train, data.val,
                         epochs=config.train.epochs,
                         on_epoch=lambda report, _state: history.append(report.val_accuracy))
        except TrainingDiverged:
            pass
        return history

    history, images, seconds = _metered(data, work)
    return {"history": history, "best": max(history, default=0.0),
            "final": history[-1] if history else 0.0, "images": images,
            "seconds": round(seconds, 3)}


def screen(config: TrialConfig, data: MeteredData, images: int) -> dict[str, Any]:
    """1-epoch screening at equal cost: one fixed LR (the range's geometric middle) for
    ``images`` training images, then the validation accuracy."""
    from search.method.evaluation import evaluate
    from search.method.step import train_step

    lr = math.sqrt(config.lr_range[0] * config.lr_range[1])

    def work() -> float:
        model = build_model(config, data)
        optimizer = build_optimizer(model, config, lr)
        constant = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _step: 1.0)
        batches = data.train(config.batch_size, config.seed)
        seen, epoch, loss = 0, 0, torch.zeros(())
        while seen < images:
            for batch, labels in batches.epoch(epoch):
                loss, _ = train_step(model, optimizer, constant, batch, labels)
                seen += labels.shape[0]
                if seen >= images:
                    break
            epoch += 1
        if not math.isfinite(float(loss)):
            return 0.0
        return evaluate(model, data.val)[1]

    accuracy, used, seconds = _metered(data, work)
    return {"lr": lr, "accuracy": accuracy, "images": used, "seconds": round(seconds, 3)}


def gate_verdict(study: optuna.Study, pruner: LRRTPruner, config: TrialConfig,
                 result: LRRTResult, num_classes: int) -> str | None:
    """Ask the real pruner about a test exactly as the objective does (recorded summary,
    report at the LRRT step, verdict); the trial stays in the study as a later peer."""
    trial = study.ask()
    summary = replace(result.summary, group=config.lrrt_group, num_classes=num_classes)
    TrialRecorder(trial).range_test(summary, result.curve.points(), result.n_params)
    trial.report(result.summary.score, LRRT_STEP)
    found = pruner.verdict(study, frozen_trial(trial))
    study.tell(trial, state=TrialState.PRUNED if found else TrialState.COMPLETE,
               values=None if found else [result.summary.score])
    return found.reason if found else None


@dataclass(frozen=True)
class Protocol:
    config: SearchConfig
    config_path: str
    seeds: tuple[int, ...]
    role: str
    oracle_configs: int
    max_designs: int = 0
    """0 = the whole grid; quick mode takes the first few."""
    replicate: bool = False
    """Train every design a second time (another init and batch order, same data and
    bounds): how far the ground truth itself reproduces caps any score's rank correlation
    with it, and any gate's recall and false rejections against it."""
    parts: tuple[tuple[str, SearchConfig], ...] = ()
    """Further grids (path, config) measured after the first and pooled with it."""

    def all_parts(self) -> tuple[tuple[str, SearchConfig], ...]:
        return ((self.config_path, self.config), *self.parts)


def measure_seed(protocol: Protocol, seed: int, cache: Cache, device: torch.device,
                 log: Callable[[str], None]) -> list[dict[str, Any]]:
    """Every design of every part's grid on one data seed, then the oracle grid on a subset
    of the first part's."""
    rows: list[dict[str, Any]] = []
    for index, (path, config) in enumerate(protocol.all_parts()):
        part = replace(protocol, config=config, config_path=path,
                       oracle_configs=protocol.oracle_configs if index == 0 else 0)
        rows += [{**row, "part": path} for row in measure_part(part, seed, cache, device, log)]
    return rows


def measure_part(protocol: Protocol, seed: int, cache: Cache, device: torch.device,
                 log: Callable[[str], None]) -> list[dict[str, Any]]:
    """Every design of one grid on one data seed, then the oracle grid on a subset."""
    config = protocol.config
    dataset = load_data(config.dataset, seed)
    data = MeteredData(dataset, device, eval_batch_size=config.train.eval_batch_size)
    num_classes = dataset.num_classes
    threshold = chance_threshold(num_classes, config.pruner.chance_margin)
    study = optuna.create_study(direction="maximize", pruner=build_pruner(config))
    grid = designs(config, seed)
    if protocol.max_designs:
        grid = grid[: protocol.max_designs]
    rows = []
    for index, trial_config in enumerate(grid):
        base = design_base(seed, trial_config)

        def lrrt(c: TrialConfig = trial_config) -> dict[str, Any]:
            result, images, seconds = _metered(data, lambda: run_lrrt(c, data))
            return {"result": json.loads(result.to_json()), "images": images,
                    "seconds": round(seconds, 3)}

        measured = cache.get(f"{LRRT_KEY}|{base}", lrrt)
        result = read_with_current_rules(measured["result"], trial_config)
        reason = gate_verdict(study, study.pruner, trial_config, result,  # type: ignore[arg-type]
                              num_classes)
        bounds = result.summary.bounds or trial_config.lr_range
        truth = cache.get(f"train|{base}|{_digest(bounds)}",
                          lambda c=trial_config, b=bounds: train_to_end(c, data, b))
        screening = cache.get(f"screen|{base}|{measured['images']}",
                              lambda c=trial_config, n=measured["images"]: screen(c, data, n))
        curve = result.curve
        limit = limit_index(curve)
        row = {
            "seed": seed, "design": design_key(trial_config), "key": base,
            "name": trial_config.name,
            "optimizer": trial_config.optimizer, "lr_range": list(trial_config.lr_range),
            "lr_range_label": lr_range_label(trial_config.lr_range),
            "batch_size": trial_config.batch_size, "n_params": result.n_params,
            "lrrt_score": result.summary.score,
            "lrrt_val_accuracy": result.summary.best_val_accuracy,
            "lrrt_images": measured["images"], "lrrt_seconds": measured["seconds"],
            "lrrt_steps": curve.total_steps, "diverged": curve.diverged,
            "limit_found": limit is not None, "bounds": list(result.summary.bounds or []) or None,
            "trained_bounds": list(bounds), "reason": reason,
            "best_val_accuracy": truth["best"], "final_val_accuracy": truth["final"],
            "history": truth["history"], "train_images": truth["images"],
            "train_seconds": truth["seconds"],
            "chance_level": truth["best"] < threshold, "threshold": threshold,
            "screening_accuracy": screening["accuracy"], "screening_lr": screening["lr"],
            "screening_images": screening["images"],
        }
        rows.append(row)
        log(f"seed {seed} {index + 1}/{len(grid)} {row['design']}: lrrt "
            f"{row['lrrt_score']:.3f} -> {reason or 'kept'}, best val "
            f"{row['best_val_accuracy']:.3f}, screening {row['screening_accuracy']:.3f}")
    configs = {design_key(c): c for c in grid}
    for row in rows if protocol.replicate else ():
        trial_config = configs[row["design"]]
        bounds = tuple(row["trained_bounds"])
        again = cache.get(f"replicate|{row['key']}|{_digest(bounds)}",
                          lambda c=trial_config.with_seed(trial_config.seed + REPLICATE_OFFSET),
                          b=bounds: train_to_end(c, data, b))
        row["replicate_best_val_accuracy"] = again["best"]
        row["replicate_chance_level"] = again["best"] < threshold
        log(f"seed {seed} replicate {row['design']}: best val {row['best_val_accuracy']:.3f} "
            f"then {again['best']:.3f}")
    for row in stratified([r for r in rows if r["bounds"]], protocol.oracle_configs):
        trial_config = configs[row["design"]]
        base = row["key"]
        low, high = row["bounds"]
        grid_accuracy = {"1": row["best_val_accuracy"]}
        for factor in ORACLE_FACTORS:
            scaled = (low * factor, high * factor)
            measured = cache.get(f"train|{base}|{_digest(scaled)}",
                                 lambda c=trial_config, b=scaled: train_to_end(c, data, b))
            grid_accuracy[f"{factor:g}"] = measured["best"]
        row["oracle"] = grid_accuracy
        row["bound_regret"] = 100.0 * (max(grid_accuracy.values()) - row["best_val_accuracy"])
        log(f"seed {seed} oracle {row['design']}: " + ", ".join(
            f"x{k} {v:.3f}" for k, v in grid_accuracy.items()))
    return rows


# --------------------------------------------------------------------------- figures

def spearman(xs: Sequence[float], ys: Sequence[float]) -> float | None:
    """Spearman's rank correlation (average ranks for ties); None under 3 points or with a
    constant side."""
    if len(xs) < 3:
        return None

    def ranks(values: Sequence[float]) -> np.ndarray:
        array = np.asarray(values, dtype=float)
        order = array.argsort(kind="mergesort")
        ranked = np.empty(len(array))
        ranked[order] = np.arange(len(array), dtype=float)
        for value in np.unique(array):  # ties share their mean rank
            tied = array == value
            ranked[tied] = ranked[tied].mean()
        return ranked

    a, b = ranks(xs), ranks(ys)
    if a.std() == 0 or b.std() == 0:
        return None
    return float(np.corrcoef(a, b)[0, 1])


def figures(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The summary's figures for a set of rows, with the counts behind each."""
    chance = [r for r in rows if r["chance_level"]]
    good = [r for r in rows if not r["chance_level"]]
    rejected = [r for r in rows if r["reason"]]
    gate = _gate_rates(rows)
    caught, wrong = gate["caught"], gate["false_rejections"]
    free_caught = sum(1 for r in chance if r["reason"] in PEER_FREE)
    free_wrong = sum(1 for r in good if r["reason"] in PEER_FREE)
    costs = [r["lrrt_images"] / (r["lrrt_images"] + r["train_images"]) for r in rejected]
    truth = [r["best_val_accuracy"] for r in rows]
    regrets = [r["bound_regret"] for r in rows if "bound_regret" in r]
    limited = [r for r in rows if r["limit_found"] and r["bounds"]]
    at_max = sum(1 for r in limited if r["bounds"][1] >= AT_LR_MAX * r["lr_range"][1])
    return {
        "recall": gate["recall"],
        "false_rejection_rate": gate["false_rejection_rate"],
        "cost_fraction": statistics.median(costs) if costs else None,
        "spearman": spearman([r["lrrt_score"] for r in rows], truth),
        "spearman_lrrt_val": spearman([r["lrrt_val_accuracy"] for r in rows], truth),
        "spearman_one_epoch": spearman([r["screening_accuracy"] for r in rows], truth),
        "spearman_params": spearman([r["n_params"] for r in rows], truth),
        "bound_regret_median": statistics.median(regrets) if regrets else None,
        "upper_at_lr_max": at_max,
        "spearman_within": spearman_within(rows),
        "truth_reliability": truth_reliability(rows),
        "counts": {
            "designs": len(rows), "chance_level": len(chance), "good": len(good),
            "rejected": len(rejected), "caught": caught, "false_rejections": wrong,
            "peer_free_recall": free_caught / len(chance) if chance else None,
            "peer_free_false_rejection_rate": free_wrong / len(good) if good else None,
            "rejection_costs": len(costs), "oracle_designs": len(regrets),
            "limit_found": len(limited), "upper_at_lr_max": at_max,
            "lrrt_steps_median": statistics.median(r["lrrt_steps"] for r in rows)
            if rows else None,
            "planned_cost_fraction": statistics.median(
                r["lrrt_images"] / (r["lrrt_images"] + r["train_images"]) for r in rows)
            if rows else None,
        },
    }


WITHIN = ("optimizer", "lr_range_label", "batch_size")
"""Design factors the ranking is also read within: where the score orders and where not."""


def spearman_within(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Spearman of the LRRT score and of 1-epoch screening with the ground truth among the
    designs sharing one value of each factor in ``WITHIN`` (optimizer, LR range, batch)."""
    out: dict[str, dict[str, Any]] = {}
    for factor in WITHIN:
        for value in sorted({str(r[factor]) for r in rows}):
            group = [r for r in rows if str(r[factor]) == value]
            truth = [r["best_val_accuracy"] for r in group]
            out.setdefault(factor, {})[value] = {
                "designs": len(group),
                "spearman": spearman([r["lrrt_score"] for r in group], truth),
                "spearman_one_epoch": spearman([r["screening_accuracy"] for r in group], truth)}
    return out


def truth_reliability(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    """How well the ground truth agrees with itself over two trainings of each design, and
    what that caps; None without replicates.

    Ranks: Spearman of the two trainings, and each score's against their mean. Labels: how
    often both trainings agree on "ends at chance level"; the recall and false-rejection
    rate of the second training used as a gate against the first (what even a full second
    training reaches: a ceiling for any gate); and the range test's gate on the designs
    whose two trainings agree, where the label is not a coin flip."""
    both = [r for r in rows if "replicate_best_val_accuracy" in r]
    if not both:
        return None
    mean = [(r["best_val_accuracy"] + r["replicate_best_val_accuracy"]) / 2 for r in both]
    labelled = [r for r in both if "replicate_chance_level" in r]
    agreed = [r for r in labelled if r["chance_level"] == r["replicate_chance_level"]]
    second_as_gate = [{**r, "reason": "replicate" if r["replicate_chance_level"] else None}
                      for r in labelled]
    return {
        "designs": len(both),
        "chance_label_agreement": len(agreed) / len(labelled) if labelled else None,
        "replicate_as_gate": _gate_rates(second_as_gate),
        "gate_where_labels_agree": _gate_rates(agreed),
        "spearman_truth_replicate": spearman([r["best_val_accuracy"] for r in both],
                                             [r["replicate_best_val_accuracy"] for r in both]),
        "spearman_vs_mean_truth": spearman([r["lrrt_score"] for r in both], mean),
        "spearman_one_epoch_vs_mean_truth": spearman([r["screening_accuracy"] for r in both],
                                                     mean),
        "spearman_params_vs_mean_truth": spearman([r["n_params"] for r in both], mean),
    }


def _gate_rates(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Recall of the chance-level rows and false-rejection rate of the others, with counts."""
    chance = [r for r in rows if r["chance_level"]]
    good = [r for r in rows if not r["chance_level"]]
    caught = sum(1 for r in chance if r["reason"])
    wrong = sum(1 for r in good if r["reason"])
    return {"recall": caught / len(chance) if chance else None,
            "false_rejection_rate": wrong / len(good) if good else None,
            "chance_level": len(chance), "good": len(good), "caught": caught,
            "false_rejections": wrong}


OVER_SEEDS = ("recall", "false_rejection_rate", "cost_fraction", "spearman",
              "spearman_one_epoch", "spearman_params", "bound_regret_median")
"""Figures also given as a median over seeds, with a bootstrap interval."""


def with_seed_medians(rows: list[dict[str, Any]], seeds: Sequence[int]) -> dict[str, Any]:
    """``figures`` of the rows pooled, each seed's, and the median over seeds of each."""
    per_seed = {str(seed): figures([r for r in rows if r["seed"] == seed]) for seed in seeds}
    return {
        **figures(rows),
        "over_seeds": {k: bootstrap_median([s[k] for s in per_seed.values()
                                            if s[k] is not None]) for k in OVER_SEEDS},
        "per_seed": per_seed,
    }


def summarise(protocol: Protocol, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Pooled figures, each part's and each seed's, and medians over seeds."""
    parts = [path for path, _ in protocol.all_parts()]
    return {
        **with_seed_medians(rows, protocol.seeds),
        "per_part": {path: with_seed_medians([r for r in rows
                                              if r.get("part", parts[0]) == path],
                                             protocol.seeds)
                     for path in parts} if len(parts) > 1 else {},
        "seeds": list(protocol.seeds),
        "seed_role": protocol.role,
        "config": protocol.config_path,
        "configs": parts,
        "method": {"lrrt": asdict(protocol.config.lrrt),
                   "pruner": asdict(protocol.config.pruner)},
    }


# --------------------------------------------------------------------------- command line

def parse_seeds(text: str) -> tuple[tuple[int, ...], str]:
    if text == "dev":
        return DEV_SEEDS, "development"
    if text == "report":
        return REPORT_SEEDS, "reporting"
    return tuple(int(s) for s in text.split(",")), "custom"


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, nargs="+", default=list(DEFAULT_CONFIGS),
                        help="cnnsearch search configs, one grid each, pooled (default: "
                        + " ".join(str(p) for p in DEFAULT_CONFIGS) + ")")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seeds", default="dev",
                        help="dev (0,1,2), report (100,101,102) or a list like 0,1")
    parser.add_argument("--oracle-configs", type=int, default=16)
    parser.add_argument("--extremes", action="store_true",
                        help="add a part derived from the first config: its designs over LR "
                        "ranges a decade too low and too high (for a dataset without an "
                        "extremes config of its own)")
    parser.add_argument("--replicate", action="store_true",
                        help="train each design twice (the ground truth's own "
                        "reproducibility: ranks and chance-level labels)")
    parser.add_argument("--quick", action="store_true",
                        help="smoke size: 4 designs, 1 training epoch, 2 oracle designs")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    configs = [load_config(path) for path in args.config]
    seeds, role = parse_seeds(args.seeds)
    max_designs = 0
    if args.quick:
        configs = [replace(c, train=replace(c.train, epochs=1)) for c in configs]
        seeds, max_designs = seeds[:1], 4
        args.oracle_configs = min(args.oracle_configs, 2)
    paths = [str(path) for path in args.config]
    if args.extremes:
        configs.append(extremes_of(configs[0]))
        paths.append(f"{paths[0]}#extremes")
    protocol = Protocol(configs[0], paths[0], seeds, role, args.oracle_configs, max_designs,
                        parts=tuple(zip(paths[1:], configs[1:], strict=True)),
                        replicate=args.replicate)
    args.out.mkdir(parents=True, exist_ok=True)
    cache = Cache(args.out / "cache.jsonl")
    started = time.perf_counter()

    def log(message: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)

    rows = []
    for seed in seeds:
        rows += measure_seed(protocol, seed, cache, torch.device(args.device), log)
    summary = summarise(protocol, rows)
    summary["wall_seconds"] = round(time.perf_counter() - started, 1)
    summary["command"] = "python -m benchmarks.rejection " + shlex.join(
        sys.argv[1:] if argv is None else argv)
    (args.out / "rows.json").write_text(json.dumps(rows, indent=1))
    (args.out / "summary.json").write_text(json.dumps(summary, indent=1))
    log(f"done in {summary['wall_seconds']:.0f} s: {args.out / 'summary.json'}")
    return summary


if __name__ == "__main__":
    main()

"""Choose the range test's method on development seeds only (issue 20): its length, how far
it may go past its range, and how far its bounds back off from the limit it finds.

    python -m benchmarks.rejection.choose --tables SEED=DIR [SEED=DIR ...] --out FILE
        [--config benchmarks/protocols/contest.yaml] [--tests-only]

Each ``--tables`` folder holds the development table of one data seed
(``benchmarks.replay.table``: every design trained over the LR grid). For each ramp
variant (``RAMPS``: ``lrrt.share`` x
``lrrt.extend_decades``) every design of the config's grid and of its extremes gets the
product's range test (cached beside the tables); each bound rule of ``BACKOFFS`` reads its
bounds off the same curve. A design's outcome at those bounds is read off the table: its
training at the grid LR nearest the upper bound (the same triangular2 family, ``g/4`` to
``g``; a grid point the table lacks is trained then, and cached). Nothing here is ever run
on reporting seeds.

Per variant: the gate's recall and false rejections against the labels at its bounds (and
the trivial rule's), Spearman of the score with the outcome, the median regret against the
best grid LR and the median log2 multiplier of that best over the chosen upper bound, and
the median cost of a test as a share of its trial.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import optuna
import torch

from benchmarks.common.budget import MeteredData
from benchmarks.common.measure import (
    SPAN,
    Cache,
    best,
    grid_index,
    grid_lr,
    lrrt_key,
    range_test,
    train_history,
    training_key,
)
from benchmarks.rejection.figures import gate_rates, spearman
from benchmarks.rejection.protocol import designs, extremes_of, gate_verdict, trivial_verdict
from search.config import SearchConfig, load_config
from search.method.lrrt.bounds import backed_off_limit
from search.method.lrrt.result import LRRTResult
from search.method.prepared_data import load_data
from search.method.pruner import chance_threshold
from search.service.study import build_pruner

RAMPS = {"share6-ext0": (0.06, 0.0), "share6-ext1": (0.06, 1.0),
         "share6-ext2": (0.06, 2.0), "share4-ext1": (0.04, 1.0)}
"""Ramp variants: (``lrrt.share``, ``lrrt.extend_decades``), all with ``min_steps`` 30."""
BACKOFFS = {"sustained_limit": (4.0, 2.0), "limit/3,open/1.5": (3.0, 1.5),
            "loss_limit": (2.0, 1.0), "limit/2,open/2": (2.0, 2.0),
            "limit/1.5,open/1": (1.5, 1.0)}
"""Bound rules of the loss-limit family: (backoff from a found limit, from an open end)."""


def outcome(design: Any, upper: float, data: MeteredData, cache: Cache) -> float:
    """Best validation accuracy of the design trained at the grid LR nearest ``upper``."""
    lr = grid_lr(grid_index(upper))
    measured = cache.get(training_key(design, (lr / 4, lr)),
                         lambda: train_history(design, data, (lr / 4, lr)))
    return best(measured)


def oracle(design: Any, cache: Cache) -> tuple[float, float] | None:
    """(best accuracy, its LR) over every grid point the table holds for the design."""
    found = [(best(v), grid_lr(i)) for i in range(-12, 20)
             if (v := cache.values.get(training_key(design, (grid_lr(i) / 4, grid_lr(i)))))]
    return max(found) if found else None


def evaluate(config: SearchConfig, parts: list[SearchConfig], seed: int, cache: Cache,
             tests: Cache, log: Any, tests_only: bool = False) -> dict[str, Any]:
    """Every (ramp variant, bound rule) on one development seed."""
    dataset = load_data(config.dataset, seed)
    data = MeteredData(dataset, torch.device("cpu"), eval_batch_size=1024)
    threshold = chance_threshold(dataset.num_classes, config.pruner.chance_margin)
    trial_images = config.dataset.train_size * config.train.epochs  # type: ignore[operator]
    out: dict[str, Any] = {}
    for ramp, (share, extend) in RAMPS.items():
        lrrt = replace(config.lrrt, steps=None, share=share, min_steps=30,
                       extend_decades=extend)
        for rule, (limit_backoff, open_backoff) in BACKOFFS.items():
            rows = []
            for index, part in enumerate(parts):
                part = replace(part, lrrt=lrrt)
                study = optuna.create_study(direction="maximize", pruner=build_pruner(part))
                for design in designs(part, seed):
                    measured = tests.get(lrrt_key(design), lambda d=design: range_test(d, data))
                    if tests_only:
                        continue
                    result = LRRTResult.from_json(json.dumps(measured["result"]))
                    bounds = apply_rule_with(result, limit_backoff, open_backoff)
                    result = replace(result, summary=replace(result.summary, bounds=bounds))
                    reason = gate_verdict(study, design, result, dataset.num_classes)
                    upper = (bounds or design.lr_range)[1]
                    truth = outcome(design, upper, data, cache)
                    best_point = oracle(design, cache) if index == 0 else None
                    rows.append({
                        "part": index, "reason": reason,
                        "trivial_reason": trivial_verdict(result,
                                                          config.pruner.weights_still),
                        "chance_level": truth < threshold,
                        "chance_probability": float(truth < threshold),
                        "score": result.summary.score, "truth": truth,
                        "cost": measured["images"] / (measured["images"] + trial_images),
                        "regret": None if best_point is None else 100 * (best_point[0] - truth),
                        "log2_multiplier": None if best_point is None
                        else math.log2(best_point[1] / upper),
                        "interior": best_point is not None
                        and SPAN[0] < grid_index(best_point[1]) < SPAN[1],
                    })
            if tests_only:
                break
            main = [r for r in rows if r["part"] == 0]
            regrets = [r["regret"] for r in main if r["regret"] is not None]
            out[f"{ramp}|{rule}"] = {
                "gate": gate_rates(rows), "trivial": gate_rates(rows, "trivial_reason"),
                "spearman": spearman([r["score"] for r in main], [r["truth"] for r in main]),
                "regret_median": statistics.median(regrets) if regrets else None,
                "log2_multiplier_median": statistics.median(
                    r["log2_multiplier"] for r in main if r["log2_multiplier"] is not None),
                "cost_median": statistics.median(r["cost"] for r in rows),
                "designs": len(rows),
            }
            log(f"seed {seed} {ramp} {rule}: {json.dumps(out[f'{ramp}|{rule}']['gate'])} "
                f"regret {out[f'{ramp}|{rule}']['regret_median']}")
    return out


def apply_rule_with(result: LRRTResult, limit_backoff: float, open_backoff: float
                    ) -> tuple[float, float] | None:
    """The bounds a loss-limit rule with these backoffs reads off the test's curve (an
    LR-free optimizer keeps its own)."""
    if result.summary.bound_rule == "lr_free":
        return result.summary.bounds
    bounds = backed_off_limit(limit_backoff, open_backoff)(result.curve)
    return None if bounds is None or not bounds[0] < bounds[1] else (float(bounds[0]),
                                                                      float(bounds[1]))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tables", nargs="+", required=True, help="SEED=DIR ...")
    parser.add_argument("--config", type=Path,
                        default=Path("benchmarks/protocols/contest.yaml"))
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--tests-only", action="store_true",
                        help="only run (and cache) the range tests of every variant")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    config = load_config(args.config)
    parts = [config, extremes_of(config)]
    results = {}
    for item in args.tables:
        seed, folder = item.split("=", 1)
        cache = Cache(Path(folder) / "cache.jsonl")
        tests = Cache(Path(folder) / "choice-tests.jsonl")
        results[seed] = evaluate(config, parts, int(seed), cache, tests,
                                 lambda m: print(f"[{time.strftime('%H:%M:%S')}] {m}",
                                                 flush=True), args.tests_only)
    args.out.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()

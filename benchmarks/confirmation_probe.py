"""Would a short confirmation run settle what the range test cannot? A development-seed
study for issue 9, run on the output of ``benchmarks.rejection`` (never on reporting seeds).

    python -m benchmarks.confirmation_probe --config FILE RUN_DIR --out FILE.json
                                            [--bound-rule sustained_limit]

The gate cannot judge a design whose ramp never ran at the rates it would train at: a low
score over an open ramp (a slow starter, or a range too small), or bounds below the range
tested (the ramp turned or diverged at its first rates). For each such "doubtful" design of
the run, this trains a fresh model (the design's seed) at a constant LR equal to its chosen
upper bound, and the range test's own model on from the end of its ramp, and reads the
validation accuracy after 10, 25 and 50 batches; the design's ground truth (eight epochs of
triangular2 at its bounds) comes from the run's cache, or is trained and cached. A
confirmation earns its place if it passes the doubtful designs that train and fails those
that end at chance. Writes one row per doubtful design and the tallies.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

import torch

from benchmarks.budget import MeteredData
from benchmarks.rejection import (
    Cache,
    _digest,
    cached_lrrt,
    design_base,
    design_key,
    designs,
    train_to_end,
)
from search.config import load_config
from search.method.evaluation import evaluate
from search.method.lrrt.bounds import BOUND_RULES, apply_rule
from search.method.lrrt.result import LRRTResult
from search.method.lrrt.run import run_range_test
from search.method.prepared_data import load_data
from search.method.recipe import build_model, build_optimizer
from search.method.step import train_step
from search.method.trial_config import TrialConfig
from search.record import chance_threshold

MARKS = (10, 25, 50)
"""Batches after which the confirmation reads the validation accuracy."""


def doubtful(result: LRRTResult, bounds: tuple[float, float] | None,
             lr_range: tuple[float, float], threshold: float) -> bool:
    """The range test did not run at the rates its bounds chose, and could not tell."""
    if bounds is None:
        return False
    below = bounds[1] < lr_range[0]
    unseen = not result.curve.limit_found or below
    return (result.summary.score < threshold and unseen) or (
        result.curve.diverged and below)


def constant_run(model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                 data: MeteredData, config: TrialConfig, lr: float,
                 first_epoch: int) -> dict[int, float]:
    """Validation accuracy after each of ``MARKS`` batches at a constant ``lr``."""
    for group in optimizer.param_groups:
        group["lr"] = group["initial_lr"] = lr
    constant = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _step: 1.0)
    batches = data.train(config.batch_size, config.seed)
    read: dict[int, float] = {}
    done, epoch = 0, first_epoch
    while done < MARKS[-1]:
        for images, labels in batches.epoch(epoch):
            loss, _ = train_step(model, optimizer, constant, images, labels)
            done += 1
            if done in MARKS:
                read[done] = evaluate(model, data.val)[1] if math.isfinite(float(loss)) else 0.0
            if done >= MARKS[-1]:
                break
        epoch += 1
    return read


def probe(config_path: Path, run_dir: Path, bound_rule: str | None
          ) -> list[dict[str, Any]]:
    config = load_config(config_path)
    rule = bound_rule or config.lrrt.bound_rule
    rows = json.loads((run_dir / "rows.json").read_text())
    cache = Cache(run_dir / "cache.jsonl")
    out = []
    for seed in sorted({r["seed"] for r in rows}):
        dataset = load_data(config.dataset, seed)
        data = MeteredData(dataset, torch.device("cpu"),
                           eval_batch_size=config.train.eval_batch_size)
        threshold = chance_threshold(dataset.num_classes, config.pruner.chance_margin)
        for trial_config in designs(config, seed):
            base = design_base(seed, trial_config)
            result = LRRTResult.from_json(json.dumps(cached_lrrt(cache, base)["result"]))
            bounds = apply_rule(rule, result.curve)
            if bounds is None or not doubtful(result, bounds, trial_config.lr_range,
                                              threshold):
                continue
            truth = cache.get(f"train|{base}|{_digest(bounds)}",
                              lambda c=trial_config, b=bounds: train_to_end(c, data, b))
            model = build_model(trial_config, data)
            optimizer = build_optimizer(model, trial_config, trial_config.lr_range[0])
            lrrt = trial_config.lrrt
            run_range_test(model, optimizer, data.train(trial_config.batch_size,
                                                        trial_config.seed), data.val,
                           lr_range=trial_config.lr_range, epochs=lrrt.epochs,
                           sma_periods=lrrt.sma_periods,
                           divergence_factor=lrrt.divergence_factor, steps=lrrt.steps,
                           ramp=lrrt.ramp)
            continued = constant_run(model, optimizer, data, trial_config, bounds[1], 1000)
            fresh_model = build_model(trial_config, data)
            fresh = constant_run(fresh_model, build_optimizer(fresh_model, trial_config,
                                                              bounds[1]),
                                 data, trial_config, bounds[1], 0)
            row = {"seed": seed, "design": design_key(trial_config),
                   "score": result.summary.score, "bounds": list(bounds),
                   "limit_found": result.curve.limit_found, "diverged": result.curve.diverged,
                   "truth": truth["best"], "chance_level": truth["best"] < threshold,
                   "fresh": fresh, "continued": continued, "threshold": threshold}
            print(json.dumps(row), flush=True)
            out.append(row)
    return out


def tally(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """For each kind of confirmation and length: chance-level designs it fails (caught) and
    designs that train that it fails too (false rejections it would add)."""
    chance = [r for r in rows if r["chance_level"]]
    good = [r for r in rows if not r["chance_level"]]
    figures: dict[str, Any] = {"doubtful": len(rows), "chance_level": len(chance),
                               "good": len(good)}
    for kind in ("fresh", "continued"):
        for mark in MARKS:
            def fails(r: dict[str, Any], k: str = kind, m: int = mark) -> bool:
                return r[k][str(m)] < r["threshold"]
            figures[f"{kind}_{mark}"] = {"caught": sum(map(fails, chance)),
                                         "good_failed": sum(map(fails, good))}
    return figures


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--bound-rule", choices=sorted(BOUND_RULES),
                        help="bounds by this rule instead of the config's (a development run "
                        "made with an earlier default)")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    rows = probe(args.config, args.run_dir, args.bound_rule)
    rows = json.loads(json.dumps(rows))  # mark keys as the file will have them
    result = {"tally": tally(rows), "rows": rows}
    args.out.write_text(json.dumps(result, indent=1))
    print(json.dumps(result["tally"], indent=1))
    return result


if __name__ == "__main__":
    main()

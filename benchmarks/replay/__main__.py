"""Search efficiency over many seeds, replayed on measured tables (issue 20).

    python -m benchmarks.replay --tables DIR [DIR ...] --out DIR
        [--config benchmarks/protocols/contest.yaml] [--data-seeds 0,1] [--seeds 100]
        [--budget-trials 30] [--strategies ours,tpe_sh,...]
    python -m benchmarks.replay --quick [--out DIR]

``--quick`` is the smoke size ``make test`` runs: it records a tiny table of the protocol
(two designs, 300 images, two epochs) in ``OUT/table`` and replays 3 seeds of every
strategy on it (default ``OUT``: ``benchmarks/out/replay-quick``).

Each ``--tables`` folder is the output of ``python -m benchmarks.replay.table`` (its
``cache.jsonl``); together they must hold every data seed asked for. Every strategy of
``benchmarks.replay.search`` searches each data seed's table once per replay seed, until
``--budget-trials`` full trials' training images are spent. Targets are relative to the
space: the 95th and 99th percentiles of the trial values the baselines' space holds (every
design at every grid LR of the span), per data seed. Writes ``results.json`` (every run's
timeline and trials) and ``summary.json``: per strategy the budget to each target (median
over all runs, 90 % bootstrap interval), the area under the best-so-far curve, the share of
the budget spent on chance-level trials (one definition for all: no training epoch above
the chance threshold), and ours' budget-to-target over the best fair baseline's, with a
90 % bootstrap interval of that ratio.
"""

from __future__ import annotations

import argparse
import json
import math
import shlex
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common.measure import Cache
from benchmarks.common.metrics import BOOTSTRAP, best_at, bootstrap_median, to_target
from benchmarks.replay.report import write_report
from benchmarks.replay.search import STRATEGIES, STRATEGY_KEYS, Table, load_table, replay
from search.config import load_config

PERCENTILES = (95.0, 99.0)
CURVE_POINTS = 101


def load_tables(config_path: Path, folders: list[Path], data_seeds: list[int]
                ) -> list[Table]:
    from data import load_dataset  # noqa: F401  (the class count comes from the dataset)
    from search.method.prepared_data import load_data

    config = load_config(config_path)
    cache = Cache(Path("/nonexistent"))
    for folder in folders:
        cache.values.update(Cache(folder / "cache.jsonl").values)
    num_classes = load_data(config.dataset, data_seeds[0]).num_classes
    return [load_table(config, seed, cache, num_classes) for seed in data_seeds]


def quick_table(config_path: Path, out: Path) -> Path:
    """A tiny copy of the protocol (two designs, 300 images, two epochs) and its table."""
    import yaml

    from benchmarks.replay.table import main as record

    raw = yaml.safe_load(config_path.read_text())
    raw["dataset"].update({"train_size": 300, "val_size": 200})
    raw["space"].update({"blocks": [1], "filters": [2], "batch_size": [50],
                         "fc_units": [16]})
    raw["lrrt"].update({"share": 0.25, "min_steps": 5, "sma_periods": 3})
    raw["train"].update({"epochs": 2, "step_size_epochs": 0.5})
    out.mkdir(parents=True, exist_ok=True)
    path = out / "quick.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    record(["--config", str(path), "--seeds", "0", "--out", str(out / "table")])
    return path


def run_summary(run: dict[str, Any], targets: dict[str, float]) -> dict[str, Any]:
    """One run's figures: images to each target, area under its best-so-far curve (as a
    share of the budget), chance-level images."""
    timeline = [tuple(point) for point in run["timeline"]]
    budget = run["budget"]
    xs = np.linspace(0, budget, CURVE_POINTS)
    curve = [best_at(timeline, x) for x in xs]  # type: ignore[arg-type]
    return {
        "to_target": {name: (to_target(timeline, value) or [None])[0]  # type: ignore
                      for name, value in targets.items()},
        "auc": float(np.trapezoid(curve, xs) / budget),
        "curve": curve,
        "chance_share": sum(t["images"] for t in run["trials"] if t["chance_level"]) / budget,
        "trials": len(run["trials"]),
        "rejected_at_lrrt": run["rejected_at_lrrt"],
        "best": curve[-1],
    }


def ratio_interval(ours: list[float | None], theirs: list[float | None], seed: int = 0
                   ) -> dict[str, Any]:
    """Median of ours over median of theirs (images to a target; None: never reached,
    +inf), with a 90 % bootstrap interval (each side's runs resampled independently). A
    resample where only theirs never reached counts as 0, where only ours did as +inf, where
    neither did it is left out; the point is None when their median is infinite."""
    a = np.asarray([math.inf if v is None else v for v in ours], dtype=float)
    b = np.asarray([math.inf if v is None else v for v in theirs], dtype=float)
    rng = np.random.default_rng(seed)
    ma = np.median(rng.choice(a, size=(BOOTSTRAP, len(a))), axis=1)
    mb = np.median(rng.choice(b, size=(BOOTSTRAP, len(b))), axis=1)
    kept = ~(np.isinf(ma) & np.isinf(mb))
    ratios = np.where(np.isinf(mb[kept]), 0.0,
                      np.divide(ma[kept], mb[kept], where=~np.isinf(mb[kept]),
                                out=np.zeros(kept.sum())))
    ratios = np.where(np.isinf(ma[kept]) & ~np.isinf(mb[kept]), math.inf, ratios)
    point_a, point_b = float(np.median(a)), float(np.median(b))

    def shown(value: float) -> float | None:
        return None if math.isnan(value) or math.isinf(value) else value

    def at(q: float) -> float:  # "nearest": an interpolation between infinities is no number
        return float(np.percentile(ratios, q, method="nearest")) if len(ratios) else math.nan

    return {"ratio": shown(point_a / point_b) if math.isfinite(point_b) else None,
            "low": shown(at(5)), "high": shown(at(95)), "unbounded_above": at(95) == math.inf}


def summarise(runs: list[dict[str, Any]], strategies: tuple[str, ...]) -> dict[str, Any]:
    per: dict[str, Any] = {}
    for key in strategies:
        mine = [r for r in runs if r["strategy"] == key]
        if not mine:
            continue
        figures = [r["figures"] for r in mine]
        curves = np.asarray([f["curve"] for f in figures])
        per[key] = {
            "runs": len(mine),
            "to_target": {name: {**bootstrap_median([f["to_target"][name] for f in figures]),
                                 "reached": sum(f["to_target"][name] is not None
                                                for f in figures)}
                          for name in figures[0]["to_target"]},
            "auc": bootstrap_median([f["auc"] for f in figures]),
            "best": bootstrap_median([f["best"] for f in figures]),
            "chance_share": statistics.median(f["chance_share"] for f in figures),
            "trials": statistics.median(f["trials"] for f in figures),
            "rejected_at_lrrt": statistics.median(f["rejected_at_lrrt"] for f in figures),
            "median_curve": np.median(curves, axis=0).round(5).tolist(),
            "curve_low": np.percentile(curves, 5, axis=0).round(5).tolist(),
            "curve_high": np.percentile(curves, 95, axis=0).round(5).tolist(),
        }
    fair = [s.key for s in STRATEGIES if s.key in per and not s.key.startswith("ours")]
    headline: dict[str, Any] = {}
    for name in next(iter(per.values()))["to_target"] if per else ():
        for ours in [k for k in per if k.startswith("ours")]:
            best = min(fair, key=lambda k: math.inf if per[k]["to_target"][name]["median"]
                       is None else per[k]["to_target"][name]["median"], default=None)
            if best is None:
                continue
            values = {k: [r["figures"]["to_target"][name] for r in runs if r["strategy"] == k]
                      for k in (ours, best)}
            headline.setdefault(name, {})[ours] = {
                "best_fair_baseline": best, **ratio_interval(values[ours], values[best])}
    return {"strategies": per, "headline": headline}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tables", type=Path, nargs="+")
    parser.add_argument("--config", type=Path,
                        default=Path("benchmarks/protocols/contest.yaml"))
    parser.add_argument("--data-seeds", default="0")
    parser.add_argument("--seeds", type=int, default=100, help="replay seeds per data seed")
    parser.add_argument("--budget-trials", type=float, default=30.0)
    parser.add_argument("--strategies", default=",".join(STRATEGY_KEYS))
    parser.add_argument("--out", type=Path)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    if args.quick:
        args.out = args.out or Path("benchmarks/out/replay-quick")
        args.config = quick_table(args.config, args.out)
        args.tables, args.data_seeds, args.seeds = [args.out / "table"], "0", 3
        args.budget_trials = 4.0
    if args.tables is None or args.out is None:
        parser.error("--tables and --out are required (or --quick)")
    started = time.perf_counter()
    data_seeds = [int(s) for s in args.data_seeds.split(",")]
    strategies = tuple(args.strategies.split(","))
    unknown = [s for s in strategies if s not in STRATEGY_KEYS]
    if unknown:
        parser.error(f"unknown strategies {unknown}; known: {', '.join(STRATEGY_KEYS)}")
    tables = load_tables(args.config, args.tables, data_seeds)
    runs = []
    for table in tables:
        targets = {f"p{p:g}": table.target(p) for p in PERCENTILES}
        for strategy in strategies:
            for seed in range(args.seeds):
                run = replay(strategy, table, seed, args.budget_trials)
                run["targets"] = targets
                run["figures"] = run_summary(run, targets)
                runs.append(run)
            print(f"[{time.strftime('%H:%M:%S')}] data seed {table.data_seed} {strategy}: "
                  f"{args.seeds} runs", flush=True)
    summary = summarise(runs, strategies)
    summary.update({
        "targets": {str(t.data_seed): {f"p{p:g}": t.target(p) for p in PERCENTILES}
                    for t in tables},
        "data_seeds": data_seeds, "seeds": args.seeds, "budget_trials": args.budget_trials,
        "labels": {s.key: s.label for s in STRATEGIES if s.key in strategies},
        "wall_seconds": round(time.perf_counter() - started, 1),
        "command": "python -m benchmarks.replay " + shlex.join(
            sys.argv[1:] if argv is None else argv),
    })
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(
        [{k: v for k, v in r.items() if k != "figures"} for r in runs]))
    (args.out / "summary.json").write_text(json.dumps(summary, indent=1))
    write_report(args.out, summary, title="Replayed searches")
    return summary


if __name__ == "__main__":
    main()

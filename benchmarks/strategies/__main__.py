"""Search strategies run live, to confirm the replay benchmark (issue 20).

    python -m benchmarks.strategies [--config benchmarks/protocols/contest.yaml]
        [--data-seed 0] [--seeds 0,1,2] [--budget-trials 30] [--strategies ours,tpe_sh,...]
        [--out DIR] [--replay DIR] [--reuse FILE ...] [--quick]

Each strategy (``benchmarks.strategies.runs``) searches the protocol's space on one data
seed with real trainings, once per seed, with the budget the replay uses. ``--replay``
names the replay benchmark's output on the same tables: its targets are used, and each
strategy's live runs are set beside its replayed ones (agreement: every live run's best at
the budget and area under the curve inside the replayed runs' 5-95 % range). Writes
``results.json``, ``summary.json`` and ``table.md`` to ``--out`` (default
``benchmarks/out/strategies``; ``--quick``, a smoke size, writes to
``benchmarks/out/strategies-quick`` unless ``--out`` says otherwise). Every result records
the hash of the code it was measured with; ``--reuse`` takes earlier runs of the same
strategy, seed, sizes and code instead of measuring them again, and refuses any other.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks.common.code_version import code_hash
from benchmarks.replay.__main__ import run_summary, summarise
from benchmarks.replay.report import write_report
from benchmarks.strategies.runs import LIVE_STRATEGIES, load, run_search
from search.config import SearchConfig, load_config

QUICK = {"train_size": 300, "val_size": 200, "epochs": 2, "budget_trials": 3.0,
         "strategies": ("ours", "tpe_sh", "lrfree_sh", "tpe_sh_constant")}


def sizes(config: SearchConfig, budget_trials: float) -> dict[str, Any]:
    """What two runs must share to be comparable (and so reusable)."""
    return {"dataset": [config.dataset.name, config.dataset.train_size,
                        config.dataset.val_size], "epochs": config.train.epochs,
            "budget_trials": budget_trials, "space": repr(config.space),
            "lrrt": repr(config.lrrt), "pruner": repr(config.pruner)}


def reusable(files: list[Path], wanted: dict[str, Any], code: str) -> dict[tuple, dict]:
    """Earlier runs of the same sizes and code by (strategy, data seed, seed); a file
    measured otherwise is refused with the reason."""
    found: dict[tuple, dict] = {}
    for path in files:
        earlier = json.loads(path.read_text())
        if earlier.get("code") != code:
            raise ValueError(f"--reuse {path}: measured by other code "
                             f"({earlier.get('code')}, now {code})")
        differ = [k for k in wanted if earlier["sizes"].get(k) != wanted[k]]
        if differ:
            raise ValueError(f"--reuse {path}: measured with other {', '.join(differ)}")
        for run in earlier["runs"]:
            found.setdefault((run["strategy"], run["data_seed"], run["seed"]), run)
    return found


def agreement(live: list[dict[str, Any]], replayed: list[dict[str, Any]]) -> dict[str, Any]:
    """Per strategy: the replayed runs' 5-95 % range of best-at-budget and area under the
    curve, the live runs' values, and whether every live one lies inside."""
    out: dict[str, Any] = {}
    for strategy in sorted({r["strategy"] for r in live}):
        mine = [r["figures"] for r in live if r["strategy"] == strategy]
        theirs = [r["figures"] for r in replayed if r["strategy"] == strategy]
        if not theirs:
            continue
        entry: dict[str, Any] = {"live_runs": len(mine), "replayed_runs": len(theirs)}
        inside = True
        for key in ("best", "auc"):
            low, high = np.percentile([f[key] for f in theirs], [5, 95])
            values = [f[key] for f in mine]
            entry[key] = {"replay_range": [float(low), float(high)], "live": values}
            inside = inside and all(low - 1e-9 <= v <= high + 1e-9 for v in values)
        entry["agrees"] = inside
        out[strategy] = entry
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path,
                        default=Path("benchmarks/protocols/contest.yaml"))
    parser.add_argument("--data-seed", type=int, default=0)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--budget-trials", type=float,
                        help="full trials' images per search (default 30; quick: 3)")
    parser.add_argument("--strategies", default=",".join(LIVE_STRATEGIES))
    parser.add_argument("--out", type=Path)
    parser.add_argument("--replay", type=Path, help="the replay's output on the same tables")
    parser.add_argument("--reuse", type=Path, nargs="+", default=[])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    config = load_config(args.config)
    strategies = tuple(args.strategies.split(","))
    budget = args.budget_trials or 30.0
    out = args.out or Path("benchmarks/out/strategies")
    if args.quick:
        dataset = replace(config.dataset, train_size=QUICK["train_size"],
                          val_size=QUICK["val_size"])
        config = replace(config, dataset=dataset,
                         train=replace(config.train, epochs=QUICK["epochs"]),
                         lrrt=replace(config.lrrt, steps=None, share=0.25, min_steps=5))
        budget = args.budget_trials or QUICK["budget_trials"]
        out = args.out or Path("benchmarks/out/strategies-quick")
        if args.strategies == parser.get_default("strategies"):
            strategies = QUICK["strategies"]
    unknown = [s for s in strategies if s not in LIVE_STRATEGIES]
    if unknown:
        parser.error(f"unknown strategies {unknown}; known: {', '.join(LIVE_STRATEGIES)}")
    code, wanted = code_hash(), sizes(config, budget)
    try:  # refuse runs of other sizes or code before any work
        earlier = reusable(args.reuse, wanted, code)
    except ValueError as problem:
        print(f"error: {problem}", file=sys.stderr)
        raise SystemExit(2) from None
    replayed: list[dict[str, Any]] = []
    targets: dict[str, float] | None = None
    if args.replay is not None:
        summary = json.loads((args.replay / "summary.json").read_text())
        targets = summary["targets"][str(args.data_seed)]
        replayed = [r for r in json.loads((args.replay / "results.json").read_text())
                    if r["data_seed"] == args.data_seed]
    started = time.perf_counter()
    data = None
    runs = []
    for seed in (int(s) for s in args.seeds.split(",")):
        for strategy in strategies:
            run = earlier.get((strategy, args.data_seed, seed))
            if run is None:
                data = data or load(config, args.data_seed, args.device)
                run = run_search(strategy, config, seed, data, budget)
            runs.append(run)
            print(f"[{time.strftime('%H:%M:%S')}] {strategy} seed {seed}: "
                  f"{len(run['trials'])} trials, best "
                  f"{max((p[2] for p in run['timeline']), default=0.0):.4f}", flush=True)
    if targets is None:  # no replay to read targets from: the best any run reached
        best = max((p[2] for r in runs for p in r["timeline"]), default=0.0)
        targets = {"best_seen": best}
    for run in runs:
        run["figures"] = run_summary(run, targets)
    for run in replayed:
        run["figures"] = run_summary(run, targets)
    summary = summarise(runs, strategies)
    summary.update({
        "targets": {str(args.data_seed): targets}, "data_seeds": [args.data_seed],
        "agreement": agreement(runs, replayed) if replayed else {},
        "wall_seconds": round(time.perf_counter() - started, 1),
        "command": "python -m benchmarks.strategies " + shlex.join(
            sys.argv[1:] if argv is None else argv),
    })
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(
        {"code": code, "sizes": wanted,
         "runs": [{k: v for k, v in r.items() if k != "figures"} for r in runs]}))
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    write_report(out, summary, title="Live searches")
    return summary


if __name__ == "__main__":
    main()

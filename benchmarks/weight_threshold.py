"""How far must a range test move the weights before its score means anything? The
development-seed choice of ``WEIGHTS_STILL`` (issue 9), reproducible from the runs.

    python -m benchmarks.weight_threshold --run CONFIG RUN_DIR [--run CONFIG RUN_DIR ...]

Each ``RUN_DIR`` is the output of ``benchmarks.rejection`` with the config it ran. A range
test cached before the weight movement was recorded is run again from its seed (same
curve: the score is checked) and cached with it. Prints the movement of every design (per
``STILL_STEPS`` batches, as the gate judges it) with its outcome, the threshold the rule
gives (half the smallest movement of any design that trained to >= ``USEFUL``), and, for a
sweep of thresholds, how many chance-level designs the product's gate then catches and how
many designs that train it rejects.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks.budget import MeteredData
from benchmarks.rejection import LRRT_KEY, Cache, cached_lrrt, design_base, design_key, designs
from search.config import load_config
from search.method.lrrt.result import LRRTResult
from search.method.lrrt.run import run_lrrt
from search.method.prepared_data import load_data
from search.method.pruner import GateRules, lrrt_verdict, weight_movement

USEFUL = 0.5
"""A design that trained to this validation accuracy is one the gate must never reject."""
MARGIN = 2.0
"""The threshold is the smallest useful movement divided by this."""


def movements(config_path: Path, run_dir: Path) -> list[dict[str, Any]]:
    """Every design of the run: its range test (with weight movement) and outcome."""
    config = load_config(config_path)
    rows = {(r["seed"], r["design"]): r for r in
            json.loads((run_dir / "rows.json").read_text())}
    cache = Cache(run_dir / "cache.jsonl")
    out = []
    for seed in sorted({seed for seed, _ in rows}):
        data: MeteredData | None = None
        for trial_config in designs(config, seed):
            key = design_key(trial_config)
            base = design_base(seed, trial_config)
            stored = cached_lrrt(cache, base)
            if stored["result"]["curve"].get("weight_change") is None and not stored[
                    "result"]["curve"]["diverged"]:
                if data is None:
                    data = MeteredData(load_data(config.dataset, seed), torch.device("cpu"),
                                       eval_batch_size=config.train.eval_batch_size)
                again = run_lrrt(trial_config, data)
                if abs(again.summary.score
                       - stored["result"]["best_smoothed_accuracy"]) > 1e-9:
                    raise RuntimeError(f"{key}: the range test did not reproduce")
                stored = cache.get(f"{LRRT_KEY}|{base}", lambda r=again: {
                    **stored, "result": json.loads(r.to_json())})
            result = LRRTResult.from_json(json.dumps(stored["result"]))
            summary = replace(result.summary, group="g", num_classes=10)
            row = rows[(seed, key)]
            out.append({"seed": seed, "design": key, "summary": summary,
                        "weight_change": weight_movement(summary),
                        "best": row["best_val_accuracy"], "chance_level": row["chance_level"],
                        "lr_range": list(trial_config.lr_range)})
    return out


def sweep(designs_: list[dict[str, Any]], thresholds: list[float]) -> list[dict[str, Any]]:
    """The product's gate (``chance_needs_limit``) at each threshold: catches and false
    rejections against each design's ground truth."""
    table = []
    for still in thresholds:
        rules = replace(GateRules(), weights_still=still)
        caught = wrong = 0
        for d in designs_:
            rejected = lrrt_verdict(d["summary"], [], rules) is not None
            caught += rejected and d["chance_level"]
            wrong += rejected and not d["chance_level"]
        table.append({"weights_still": still, "caught": caught, "false_rejections": wrong})
    return table


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", nargs=2, action="append", metavar=("CONFIG", "RUN_DIR"),
                        required=True)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    found = [d for config, run in args.run for d in movements(Path(config), Path(run))]
    moved = [d for d in found if d["weight_change"] is not None]
    useful = min(d["weight_change"] for d in moved if d["best"] >= USEFUL)
    chosen = useful / MARGIN
    grid = sorted({float(f"{x:.2g}") for x in np.geomspace(1e-5, 2e-2, 25)} | {chosen})
    summary = {
        "designs": len(found), "chance_level": sum(d["chance_level"] for d in found),
        "smallest_useful_movement": useful, "chosen": chosen,
        "movements": [{k: d[k] for k in ("seed", "design", "weight_change", "best",
                                         "chance_level")} for d in moved],
        "sweep": sweep(found, grid),
    }
    for d in sorted(moved, key=lambda d: d["weight_change"])[:40]:
        print(f"{d['weight_change']:.2e}  {d['design']:<36} best {d['best']:.3f}"
              f"{'  chance' if d['chance_level'] else ''}")
    print(f"smallest movement of a design that trained to >= {USEFUL}: {useful:.2e}; "
          f"threshold {chosen:.2e}")
    for line in summary["sweep"]:
        print(f"  {line['weights_still']:.2e}: caught {line['caught']}, "
              f"false rejections {line['false_rejections']}")
    if args.out:
        args.out.write_text(json.dumps(summary, indent=1))
    return summary


if __name__ == "__main__":
    main()

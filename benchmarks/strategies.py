"""Search efficiency of ours against Optuna's standard pruners at equal image budgets.

    python -m benchmarks.strategies [--quick] [--out DIR] [--seeds 0 1 2] ...

Four strategies search one space (blocks, filters, optimizer, LR) on a Fashion-MNIST
subset, each with the same budget of training images, for several seeds (the LRRT's
rejections are checked against ground truth by ``benchmarks.rejection``). Writes
``table.md``, ``results.json``, ``budget_curves.html`` and ``budget_curves.png`` to
``--out``. ``--quick`` is the smoke-test size (minutes on 2 cores); the default is the full
run that BENCHMARKS.md reports.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import optuna
import torch

from benchmarks.budget import MeteredData
from benchmarks.metrics import run_metrics, summary
from benchmarks.report import write_html, write_png, write_table
from benchmarks.settings import DATASET, FULL, QUICK, BenchSettings
from benchmarks.strategy_runs import STRATEGY_KEYS, run_search
from data import load_dataset

DEFAULT_OUT = Path("benchmarks/results/strategies")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke-test size (CI)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--seeds", type=int, nargs="+")
    parser.add_argument("--strategies", nargs="+", choices=STRATEGY_KEYS)
    parser.add_argument("--train-size", type=int)
    parser.add_argument("--val-size", type=int)
    parser.add_argument("--epochs", type=int, help="training epochs per trial")
    parser.add_argument("--budget-trials", type=float,
                        help="budget per search, in full fixed-LR trials (epochs x train size)")
    parser.add_argument("--target", type=float, help="validation accuracy to reach")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default 1)")
    parser.add_argument("--reuse", type=Path, nargs="+", default=[],
                        help="results.json files whose runs (same strategy, seed and sizes; "
                        "the first file that has one wins) are taken instead of measured: "
                        "re-run one strategy after a change that touches only it, or merge "
                        "runs split over processes")
    return parser.parse_args(argv)


def settings_from(args: argparse.Namespace) -> BenchSettings:
    base = QUICK if args.quick else FULL
    return base.with_overrides(
        seeds=tuple(args.seeds) if args.seeds else None,
        strategies=tuple(args.strategies) if args.strategies else STRATEGY_KEYS,
        train_size=args.train_size, val_size=args.val_size, epochs=args.epochs,
        budget_trials=args.budget_trials, target=args.target,
        device=args.device, threads=args.threads,
    )


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as info:
            cpu = next(line.split(":", 1)[1].strip() for line in info
                       if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    return (f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__} "
            f"({torch.get_num_threads()} threads), optuna {optuna.__version__}, "
            f"Python {platform.python_version()}, load average at start {load}")


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


SIZES = ("mode", "train_size", "val_size", "epochs", "batch_size", "budget_trials",
         "lrrt_epochs", "sma_periods", "data_seed", "budget")
"""The settings two runs must share to be comparable (and so reusable)."""


def reusable_runs(files: list[Path], settings: BenchSettings) -> dict[tuple[str, int], dict]:
    """Runs of earlier results with the same sizes, by (strategy, seed), first file first.
    A file measured at other sizes is refused: its runs would not be comparable."""
    wanted = settings.to_dict()
    found: dict[tuple[str, int], dict] = {}
    for path in files:
        earlier = json.loads(path.read_text())
        differ = [k for k in SIZES if earlier["settings"].get(k) != wanted[k]]
        if differ:
            raise ValueError(f"--reuse {path}: measured with other {', '.join(differ)}")
        for result in earlier["runs"]:
            found.setdefault((result["strategy"], result["seed"]), result)
    return found


def run(settings: BenchSettings, out: Path, command: str,
        earlier: dict[tuple[str, int], dict] | None = None) -> dict[str, Any]:
    """Measure every strategy x seed, taking those in ``earlier`` (``reusable_runs``)."""
    earlier = earlier or {}
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(settings.threads)
    started = time.perf_counter()
    description = machine()
    data: MeteredData | None = None
    if any((strategy, seed) not in earlier for seed in settings.seeds
           for strategy in settings.strategies):  # a merge of reused runs needs no data
        dataset = load_dataset(DATASET, train_size=settings.train_size,
                               val_size=settings.val_size, seed=settings.data_seed)
        data = MeteredData(dataset, torch.device(settings.device), eval_batch_size=1024)
    log(f"{settings.mode} mode: budget {settings.budget:,} training images per search, "
        f"strategies {', '.join(settings.strategies)}, seeds {settings.seeds}")
    runs = []
    for seed in settings.seeds:
        for strategy in settings.strategies:
            reused = earlier.get((strategy, seed))
            assert reused or data is not None
            result = reused or run_search(strategy, settings, seed, data).to_dict()
            runs.append(result)
            trials = result["trials"]
            origin = " (reused)" if reused else ""
            log(f"{strategy} seed {seed}{origin}: {len(trials)} trials, best "
                f"{max((p[2] for p in result['timeline']), default=0.0):.4f}, "
                f"{result['images']:,} images, {result['seconds']:.0f} s")
    targets = (settings.target, *settings.extra_targets)
    metrics = [run_metrics(r, targets) for r in runs]
    results = {
        "command": command,
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "machine": description + f"; at end {', '.join(f'{v:.1f}' for v in os.getloadavg())}",
        "wall_seconds": round(time.perf_counter() - started, 1),
        "settings": settings.to_dict(),
        "runs": runs,
        "metrics": metrics,
        "summary": summary(metrics, settings.strategies, targets),
    }
    (out / "results.json").write_text(json.dumps(results, indent=1, default=str))
    write_table(out / "table.md", results)
    write_html(out / "budget_curves.html", results)
    if not write_png(out / "budget_curves.png", results):
        log("matplotlib not installed: budget_curves.png skipped (pip install matplotlib)")
    log(f"done in {results['wall_seconds']:.0f} s: {out / 'table.md'}")
    return results


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    command = "python -m benchmarks.strategies " + shlex.join(
        sys.argv[1:] if argv is None else argv)
    settings = settings_from(args)
    try:  # refuse runs of other sizes before any work
        earlier = reusable_runs(args.reuse, settings)
    except ValueError as problem:
        print(f"error: {problem}", file=sys.stderr)
        raise SystemExit(2) from None
    run(settings, args.out, command.strip(), earlier)
    print((args.out / "table.md").read_text())


if __name__ == "__main__":
    main()

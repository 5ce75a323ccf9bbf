"""Mini-batch sampling strategies (issue 12): does Adaptive Sampling lower the training loss
faster than uniform batches, per epoch and per second?

    python -m benchmarks.micro.batch_selection [--quick] [--out DIR] [--seeds 0 1 2] ...

``uniform``, ``obs`` (Online Batch Selection) and ``adaptive`` (seed 004's Adaptive
Sampling, with its importance weights) train the same small thesis CNN on a Fashion-MNIST
subset with Adam at a constant LR 1e-3 (seed 004's Adam setting), for batch sizes 256 and
1024 and several seeds, through the product's own ``train_epochs``. After every epoch the
training loss is measured in eval mode on a fixed subset of the training images (the same
for every strategy: the batch losses a strategy minimises are biased towards what it
samples). Writes ``results.json``, ``table.md`` and ``loss_curves.png`` (loss against epochs
and against seconds, medians of the seeds) to ``--out``. ``--quick`` is a smoke-test size
(seconds); the default is the full run BENCHMARKS.md reports (about 10 minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import shlex
import statistics
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch

from data import DeviceBatches, load_dataset
from models import Architecture, build_cnn
from search.method.batch_selection import BatchSamplingSettings, make_batch_sampler
from search.method.evaluation import evaluate
from search.method.optimizers import make_optimizer
from search.method.training import EpochReport, TrainingState, train_epochs

DEFAULT_OUT = Path("benchmarks/results/sampling")
STRATEGIES = ("uniform", "obs", "adaptive")
COLOURS = {"uniform": "#1f77b4", "obs": "#2ca02c", "adaptive": "#d62728"}
LR = 1e-3


@dataclass(frozen=True)
class SamplingBench:
    mode: str
    train_size: int
    val_size: int
    probe_size: int
    """Training images whose eval-mode loss is the curve (the first ones of the subset)."""
    epochs: int
    batch_sizes: tuple[int, ...]
    seeds: tuple[int, ...]
    blocks: int
    filters: int
    fc_units: int
    threads: int = 1
    device: str = "cpu"

    def architecture(self) -> Architecture:
        return Architecture(blocks=self.blocks, filters=self.filters, fc_units=self.fc_units,
                            batch_norm="before", l2=0.0)


FULL = SamplingBench(mode="full", train_size=8000, val_size=1000, probe_size=2000, epochs=6,
                     batch_sizes=(256, 1024), seeds=(0, 1, 2), blocks=2, filters=8,
                     fc_units=64)
QUICK = SamplingBench(mode="quick", train_size=480, val_size=100, probe_size=200, epochs=3,
                      batch_sizes=(32, 128), seeds=(0,), blocks=1, filters=2, fc_units=16)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke-test size (seconds)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--seeds", type=int, nargs="+")
    parser.add_argument("--batch-sizes", type=int, nargs="+")
    parser.add_argument("--epochs", type=int, help="epochs per run, the first a uniform pass")
    parser.add_argument("--train-size", type=int)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    return parser.parse_args(argv)


def settings_from(args: argparse.Namespace) -> SamplingBench:
    settings = QUICK if args.quick else FULL
    overrides: dict[str, Any] = {"device": args.device, "threads": args.threads}
    if args.seeds:
        overrides["seeds"] = tuple(args.seeds)
    if args.batch_sizes:
        overrides["batch_sizes"] = tuple(args.batch_sizes)
    if args.epochs:
        overrides["epochs"] = args.epochs
    if args.train_size:
        overrides["train_size"] = args.train_size
        overrides["probe_size"] = min(settings.probe_size, args.train_size)
    return replace(settings, **overrides)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def run_one(settings: SamplingBench, dataset: Any, strategy: str, batch_size: int,
            seed: int) -> dict[str, Any]:
    """One training run; the curve has a point before training (epoch 0) and after each
    epoch: probe loss, the minimised batch loss, and cumulative seconds of ``train_epochs``
    (training plus the probe's evaluation, the same for every strategy)."""
    device = torch.device(settings.device)
    train = DeviceBatches(dataset.train_images, dataset.train_labels, batch_size=batch_size,
                          device=device, shuffle=True, seed=seed)
    probe = DeviceBatches(dataset.train_images[:settings.probe_size],
                          dataset.train_labels[:settings.probe_size], batch_size=1024,
                          device=device, shuffle=False, seed=0)
    val = DeviceBatches(dataset.val_images, dataset.val_labels, batch_size=1024,
                        device=device, shuffle=False, seed=0)
    model = build_cnn(settings.architecture(), dataset.input_shape, dataset.num_classes,
                      seed=seed).to(device)
    optimizer = make_optimizer(model, "adam", LR)
    constant = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _step: 1.0)
    sampler = make_batch_sampler(BatchSamplingSettings(strategy=strategy), train)
    probe_loss, _ = evaluate(model, probe)
    curve = [{"epoch": 0, "seconds": 0.0, "probe_loss": probe_loss, "batch_loss": None,
              "epoch_seconds": 0.0}]

    def on_epoch(report: EpochReport, _state: TrainingState) -> None:
        curve.append({"epoch": report.epoch,
                      "seconds": curve[-1]["seconds"] + report.seconds,
                      "probe_loss": report.val_loss, "batch_loss": report.train_loss,
                      "epoch_seconds": report.seconds})

    _sync(device)
    train_epochs(model, optimizer, constant, train, probe, epochs=settings.epochs,
                 on_epoch=on_epoch, sampler=sampler)
    val_loss, val_accuracy = evaluate(model, val)
    return {"strategy": strategy, "batch_size": batch_size, "seed": seed, "curve": curve,
            "val_loss": val_loss, "val_accuracy": val_accuracy}


def _median_curve(runs: list[dict[str, Any]], key: str) -> list[float]:
    return [statistics.median(r["curve"][e][key] for r in runs)
            for e in range(len(runs[0]["curve"]))]


def _crossing(xs: list[float], losses: list[float], target: float) -> float | None:
    """First x where the piecewise-linear (x, log loss) curve reaches ``target``."""
    for k in range(1, len(xs)):
        if losses[k] <= target:
            high, low = math.log(losses[k - 1]), math.log(losses[k])
            share = 1.0 if high == low else (high - math.log(target)) / (high - low)
            return xs[k - 1] + min(1.0, max(0.0, share)) * (xs[k] - xs[k - 1])
    return None


def summarise(runs: list[dict[str, Any]], settings: SamplingBench) -> list[dict[str, Any]]:
    """Per batch size and strategy: median curves, the loss uniform ends at and when each
    strategy reaches it, seconds per sampled epoch and its overhead over uniform."""
    rows = []
    for batch_size in settings.batch_sizes:
        group = {s: [r for r in runs if r["batch_size"] == batch_size and r["strategy"] == s]
                 for s in STRATEGIES}
        uniform_final = _median_curve(group["uniform"], "probe_loss")[-1]
        # epochs after the first (the first is the same shuffled pass for every strategy)
        per_epoch = {s: statistics.median(p["epoch_seconds"] for r in g
                                          for p in r["curve"][2:]) for s, g in group.items()}
        for strategy, members in group.items():
            losses = _median_curve(members, "probe_loss")
            seconds = _median_curve(members, "seconds")
            epochs = list(range(len(losses)))
            rows.append({
                "batch_size": batch_size, "strategy": strategy,
                "probe_loss": losses, "seconds": seconds,
                "final_loss": losses[-1],
                "final_loss_range": [min(r["curve"][-1]["probe_loss"] for r in members),
                                     max(r["curve"][-1]["probe_loss"] for r in members)],
                "epochs_to_uniform_final": _crossing(epochs, losses, uniform_final),
                "seconds_to_uniform_final": _crossing(seconds, losses, uniform_final),
                "seconds_per_epoch": per_epoch[strategy],
                "overhead_vs_uniform": per_epoch[strategy] / per_epoch["uniform"] - 1.0,
                "val_accuracy": statistics.median(r["val_accuracy"] for r in members),
            })
    return rows


def _number(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def write_table(path: Path, results: dict[str, Any]) -> None:
    settings = results["settings"]
    epochs = settings["epochs"]
    lines = [
        f"Fashion-MNIST {settings['train_size']:,} training images, loss in eval mode on "
        f"{settings['probe_size']:,} of them; Adam LR {LR:g}; medians of seeds "
        f"{', '.join(map(str, settings['seeds']))}. Epoch 1 is the same shuffled pass for "
        "every strategy.",
        "",
        "| batch | strategy | loss, epoch 1 | loss, epoch " + str(epochs // 2 + 1)
        + f" | loss, epoch {epochs} (range) | epochs to uniform's final | seconds to "
        "uniform's final | s / epoch | overhead vs uniform | val accuracy |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in results["summary"]:
        low, high = row["final_loss_range"]
        lines.append(
            f"| {row['batch_size']} | {row['strategy']} | {row['probe_loss'][1]:.4f} | "
            f"{row['probe_loss'][epochs // 2 + 1]:.4f} | {row['final_loss']:.4f} "
            f"({low:.4f}-{high:.4f}) | {_number(row['epochs_to_uniform_final'], '.2f')} | "
            f"{_number(row['seconds_to_uniform_final'], '.1f')} | "
            f"{row['seconds_per_epoch']:.2f} | {row['overhead_vs_uniform']:+.1%} | "
            f"{row['val_accuracy']:.4f} |")
    path.write_text("\n".join(lines) + "\n")


def write_png(path: Path, results: dict[str, Any]) -> bool:
    """Loss against epochs and against seconds, one row per batch size; False without
    matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        from matplotlib import pyplot, ticker
    except ImportError:
        return False
    sizes = results["settings"]["batch_sizes"]
    figure, panels = pyplot.subplots(len(sizes), 2, figsize=(12, 4.2 * len(sizes)), dpi=100,
                                     squeeze=False)
    for row, batch_size in zip(panels, sizes, strict=True):
        for axes, axis in zip(row, ("epoch", "seconds"), strict=True):
            for strategy in STRATEGIES:
                colour = COLOURS[strategy]
                for run in results["runs"]:
                    if run["batch_size"] == batch_size and run["strategy"] == strategy:
                        axes.plot([p[axis] for p in run["curve"]],
                                  [p["probe_loss"] for p in run["curve"]],
                                  color=colour, alpha=0.25, linewidth=1)
                summary = next(s for s in results["summary"] if s["batch_size"] == batch_size
                               and s["strategy"] == strategy)
                xs = (list(range(len(summary["probe_loss"]))) if axis == "epoch"
                      else summary["seconds"])
                axes.plot(xs, summary["probe_loss"], color=colour, linewidth=2.5,
                          marker="o", markersize=3, label=strategy)
            axes.set_yscale("log")
            axes.yaxis.set_major_formatter(ticker.FormatStrFormatter("%.2g"))
            axes.yaxis.set_minor_formatter(ticker.FormatStrFormatter("%.2g"))
            axes.set_xlabel("epoch" if axis == "epoch" else "seconds (train_epochs wall time)")
            axes.set_ylabel("training loss (eval mode)")
            axes.set_title(f"batch {batch_size}: median of seeds (thick), each seed (thin)")
            axes.grid(alpha=0.3, which="both")
            axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path)
    pyplot.close(figure)
    return True


def machine() -> str:
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    return (f"{platform.machine()} {os.cpu_count()} CPUs, {platform.system()}, "
            f"torch {torch.__version__}, Python {platform.python_version()}; load average "
            f"{load}")


def run(settings: SamplingBench, out: Path, command: str) -> dict[str, Any]:
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(settings.threads)
    started = time.perf_counter()
    machine_at_start = machine()
    log(f"# {command}: {settings.mode} mode; {machine_at_start}")
    dataset = load_dataset("fashion-mnist", train_size=settings.train_size,
                           val_size=settings.val_size)
    runs = []
    for batch_size in settings.batch_sizes:
        for seed in settings.seeds:
            for strategy in STRATEGIES:  # interleaved: drift in load hits every strategy
                result = run_one(settings, dataset, strategy, batch_size, seed)
                runs.append(result)
                final = result["curve"][-1]
                log(f"batch {batch_size} seed {seed} {strategy}: loss "
                    f"{final['probe_loss']:.4f} after {final['seconds']:.1f} s")
    results = {
        "command": command,
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "machine": machine_at_start,
        "load_at_end": ", ".join(f"{v:.1f}" for v in os.getloadavg()),
        "settings": {**asdict(settings), "lr": LR, "optimizer": "adam",
                     "architecture": settings.architecture().to_dict(),
                     "sampling": asdict(BatchSamplingSettings(strategy="adaptive"))},
        "runs": runs,
        "summary": summarise(runs, settings),
    }
    results["wall_seconds"] = round(time.perf_counter() - started, 1)
    (out / "results.json").write_text(json.dumps(results, indent=1))
    write_table(out / "table.md", results)
    if not write_png(out / "loss_curves.png", results):
        log("matplotlib not installed: loss_curves.png skipped")
    log(f"done in {results['wall_seconds']:.0f} s: {out / 'table.md'}")
    return results


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    command = "python -m benchmarks.micro.batch_selection " + shlex.join(
        sys.argv[1:] if argv is None else argv)
    run(settings_from(args), args.out, command.strip())
    print((args.out / "table.md").read_text())


if __name__ == "__main__":
    main()

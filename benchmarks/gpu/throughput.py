"""Training throughput of trials sharing one device: images/s summed over 1, 2, 4 and 8
concurrent trials x {eager, compiled} x {fp32, bf16}, and the share of the card's dense peak
that is (``benchmarks.gpu.peaks``: the datasheet's, and a measured matmul peak).

    python -m benchmarks.gpu.throughput --device cuda [--concurrency 1 2 4 8] [--seconds 5]
    python -m benchmarks.gpu.throughput --smoke      # the CPU smoke run of make test

Each concurrent trial is a process of its own, as ``--trials-per-gpu`` runs them: it trains
a design of the demo's space (``configs/fashion-mnist.yaml``: B2FL8Adam by default, batch
64, Fashion-MNIST's 1x28x28 images and 10 classes; random pixels, which cost what real ones
do) with the search's own step (``search.method.step``: its precision, its compiled
forward, channels_last and cuDNN's benchmark on a card). The processes are started once per
concurrency and build the four variants, each warmed up for one epoch (compilation, cuDNN's
algorithm search, the last batch's other shape); then, in each of ``--rounds`` rounds, each
variant trains for ``--seconds`` between two barriers, syncing the device every 32 steps as
the training does. A round's throughput is the images all processes trained over the wall
time from the first start to the last end; a row is the median over the rounds, which
interleave the variants so that a change in the machine's load hits them alike. The FLOPs of
one training step (forward and backward) are counted once by ``torch.utils.flop_counter``
for the TFLOP/s columns.

Writes ``throughput.json`` (every row and the card) and ``throughput.md`` (the table) under
``--out`` (default ``benchmarks/out/gpu``, not in git); with a GPU, the issue's goals are
judged at the end of the table.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import queue
import statistics
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import optuna
import torch

from benchmarks.gpu.peaks import half_precision, measured_matmul_tflops, table_peak

DEMO_CONFIG = Path(__file__).resolve().parents[2] / "configs" / "fashion-mnist.yaml"
IMAGE_SHAPE = (1, 28, 28)
CLASSES = 10
SYNC_EVERY = 32
"""Steps between host syncs, as the training's non-finite check does."""
PACKED_GOAL = 3.0
"""The issue's goal: packed bf16 trials train at least 3x the images/s of one eager fp32."""
PEAK_GOAL = 0.10
"""... and use at least 10 % of the card's dense bf16 peak, summed over the trials."""


@dataclass(frozen=True)
class Variant:
    compile: str
    """``off`` or a ``train.compile`` mode."""
    precision: str

    @property
    def label(self) -> str:
        return f"{'eager' if self.compile == 'off' else 'compiled'} {self.precision}"


@dataclass(frozen=True)
class Setup:
    """What every process of a run trains and for how long."""

    device: str
    design: str
    images: int
    seconds: float
    threads: int = 1
    rounds: int = 1


def demo_design(name: str, device: torch.device, variant: Variant):
    """The demo space's design called ``name`` (``B2FL8Adam``...), trained as ``variant``."""
    from search.config import load_config
    from search.method.suggest import sample_trial_config

    config = load_config(DEMO_CONFIG)
    for blocks in config.space.blocks:
        for filters in config.space.filters:
            for optimizer in config.space.optimizer:
                params = {"blocks": blocks, "filters": filters, "optimizer": optimizer,
                          "lr_range": "0.0001-0.01"}
                trial = optuna.trial.FixedTrial(params)
                design = sample_trial_config(trial, config)
                if design.name == name:
                    train = replace(design.train, precision=variant.precision,
                                    compile=variant.compile)
                    return replace(design, train=train)
    raise SystemExit(f"benchmarks.gpu.throughput: no design {name!r} in {DEMO_CONFIG.name}")


def synthetic_data(device: torch.device, images: int):
    """Random uint8 images of Fashion-MNIST's shape, on ``device`` as a search holds them."""
    from data import ImageDataset
    from search.method.prepared_data import DataOnDevice

    generator = torch.Generator().manual_seed(0)
    train = torch.randint(0, 256, (images, *IMAGE_SHAPE), generator=generator,
                          dtype=torch.uint8)
    labels = torch.randint(0, CLASSES, (images,), generator=generator)
    dataset = ImageDataset("synthetic", train, labels, train[:256], labels[:256],
                           tuple(str(k) for k in range(CLASSES)))
    return DataOnDevice(dataset, device, eval_batch_size=256)


def step_flops(config, data) -> int:
    """FLOPs of one training step (forward and backward) of ``config``'s model."""
    from torch.utils.flop_counter import FlopCounterMode

    from search.method.recipe import build_model

    model = build_model(config, data)
    batch = next(iter(data.train(config.batch_size, 0).epoch(0)))
    counter = FlopCounterMode(display=False)
    with counter:
        loss = torch.nn.functional.cross_entropy(model(batch[0]), batch[1])
        loss.backward()
    return int(counter.get_total_flops())


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _process(setup: Setup, variants: list[Variant], start, stop, results) -> None:
    """One concurrent trial: every variant built and warmed up first, then ``setup.rounds``
    rounds in which each variant trains for ``setup.seconds`` between two barriers and
    reports (its index, the round, images, start, end, a compile fallback)."""
    from search.method.recipe import training_run
    from search.method.step import train_step
    from search.service.devices import use_fast_kernels

    torch.set_num_threads(setup.threads)
    device = torch.device(setup.device)
    use_fast_kernels(device)
    data = synthetic_data(device, setup.images)

    def one_epoch(run, epoch: int, until: float | None = None) -> int:
        trained = 0
        for index, (images, labels) in enumerate(run.train.epoch(epoch)):
            loss, _ = train_step(run.model, run.optimizer, run.scheduler, images, labels,
                                 execution=run.execution)
            trained += labels.shape[0]
            if (index + 1) % SYNC_EVERY == 0:
                float(loss)
                if until is not None and time.monotonic() >= until:
                    break
        _sync(device)
        return trained

    runs = []
    for variant in variants:
        run = training_run(demo_design(setup.design, device, variant), data, (1e-3, 1e-2))
        one_epoch(run, 0)  # warm-up: compilation, cuDNN's search, both batch shapes
        runs.append(run)
    epochs = [1] * len(runs)
    for round_ in range(setup.rounds):
        for index, run in enumerate(runs):
            start.wait()
            began = time.monotonic()
            until, trained = began + setup.seconds, 0
            while time.monotonic() < until:
                trained += one_epoch(run, epochs[index], until)
                epochs[index] += 1
            ended = time.monotonic()
            results.put((index, round_, trained, began, ended,
                         run.execution.forward.failure))
            stop.wait()


def _collect(results: Any, processes: list, count: int, timeout: float) -> list[tuple]:
    """``count`` reports from the processes; an error when one of them died first."""
    got: list[tuple] = []
    deadline = time.monotonic() + timeout
    while len(got) < count:
        try:
            got.append(results.get(timeout=1.0))
        except queue.Empty:
            dead = [p.exitcode for p in processes if not p.is_alive()]
            if dead:
                raise RuntimeError(f"a benchmark process died (exit code {dead[0]})") from None
            if time.monotonic() > deadline:
                raise TimeoutError(f"no report after {timeout:.0f} s") from None
    return got


def measure(setup: Setup, concurrency: int, variants: list[Variant]) -> list[dict[str, Any]]:
    """Rows of ``concurrency`` processes training each variant together: the median over
    the rounds, which interleave the variants so that a change in the machine's load hits
    them alike."""
    context = multiprocessing.get_context("spawn")
    start, stop = context.Barrier(concurrency), context.Barrier(concurrency)
    results = context.Queue()
    processes = [context.Process(target=_process, args=(setup, variants, start, stop, results))
                 for _ in range(concurrency)]
    for process in processes:
        process.start()
    rates: list[list[float]] = [[] for _ in variants]
    images: list[int] = [0] * len(variants)
    seconds: list[float] = [0.0] * len(variants)
    fell_back: list[set[str]] = [set() for _ in variants]
    try:
        for _round in range(setup.rounds):
            for index, variant in enumerate(variants):
                # the first one waits for every warm-up: compiling may take minutes
                got = _collect(results, processes, concurrency, setup.seconds + 1800)
                wall = max(g[4] for g in got) - min(g[3] for g in got)
                trained = sum(g[2] for g in got)
                rates[index].append(trained / wall)
                images[index] += trained
                seconds[index] += wall
                fell_back[index] |= {g[5] for g in got if g[5]}
                print(f"  {concurrency} x {variant.label}: {trained / wall:,.0f} images/s",
                      file=sys.stderr, flush=True)
    finally:
        for process in processes:
            process.join(timeout=60)
            if process.is_alive():
                process.kill()
                process.join()
    return [{"concurrency": concurrency, "compile": variant.compile,
             "precision": variant.precision, "images": images[index],
             "seconds": round(seconds[index], 3),
             "images_per_second": statistics.median(rates[index]),
             "per_trial": statistics.median(rates[index]) / concurrency,
             "rounds": [round(rate, 1) for rate in rates[index]],
             "fell_back": sorted(fell_back[index])}
            for index, variant in enumerate(variants)]


def run(setup: Setup, concurrency: list[int], variants: list[Variant]) -> dict[str, Any]:
    """Every row, the card and its peaks, the FLOPs of a step, the goals where judged."""
    from search.service.devices import use_fast_kernels

    device = torch.device(setup.device)
    use_fast_kernels(device)
    torch.set_num_threads(setup.threads)  # the matmul peak with a trial's threads
    card = (torch.cuda.get_device_name(device) if device.type == "cuda"
            else f"CPU, {setup.threads} torch thread(s) a trial")
    peaks = table_peak(card) if device.type == "cuda" else None
    half = half_precision(peaks)
    half_dtype = torch.bfloat16 if half == "bf16" else torch.float16
    measured = {half: measured_matmul_tflops(device, half_dtype),
                "fp32": measured_matmul_tflops(device, torch.float32)}
    # A card's dense peak is its tensor cores' (bf16, else fp16); a CPU's is fp32's.
    reference = half if device.type == "cuda" else "fp32"
    config = demo_design(setup.design, device, variants[0])
    flops = step_flops(config, synthetic_data(device, 512))
    rows = []
    for count in concurrency:
        print(f"{count} concurrent trial(s) on {card}", file=sys.stderr, flush=True)
        rows.extend(measure(setup, count, variants))
    one_eager = next((r for r in rows if r["concurrency"] == 1 and r["compile"] == "off"
                      and r["precision"] == "fp32"), None)
    for row in rows:
        achieved = row["images_per_second"] / config.batch_size * flops / 1e12
        row["tflops"] = achieved
        row["share_of_table_peak"] = achieved / peaks[reference] if peaks else None
        row["share_of_matmul_peak"] = achieved / measured[reference]
        row["speedup"] = (row["images_per_second"] / one_eager["images_per_second"]
                          if one_eager else None)
    return {"device": str(device), "card": card, "torch": torch.__version__,
            "design": setup.design, "batch_size": config.batch_size,
            "image_shape": list(IMAGE_SHAPE), "step_flops": flops,
            "seconds_per_variant": setup.seconds, "rounds": setup.rounds,
            "images_in_memory": setup.images,
            "table_peak_tflops": peaks, "measured_matmul_tflops": measured,
            "reference_precision": reference, "rows": rows,
            "goals": goals(rows) if device.type == "cuda" else None}


def goals(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The issue's two goals on the best packed (concurrency > 1) bf16 row."""
    packed = [r for r in rows if r["concurrency"] > 1 and r["precision"] in ("bf16", "fp16")]
    best = max(packed, key=lambda r: r["images_per_second"], default=None)
    if best is None:
        return {"judged": False}
    share = best["share_of_table_peak"]
    return {"judged": True, "best": {k: best[k] for k in ("concurrency", "compile",
                                                           "precision")},
            "speedup": best["speedup"], "speedup_goal": PACKED_GOAL,
            "speedup_met": best["speedup"] is not None and best["speedup"] >= PACKED_GOAL,
            "share_of_table_peak": share, "peak_goal": PEAK_GOAL,
            "peak_met": None if share is None else share >= PEAK_GOAL}


def table(result: dict[str, Any]) -> str:
    """The markdown table of ``run``'s result."""
    peaks = result["table_peak_tflops"]
    half = result["reference_precision"]
    measured = result["measured_matmul_tflops"]
    lines = [f"Card: {result['card']}; torch {result['torch']}; design {result['design']}, "
             f"batch {result['batch_size']}, {result['step_flops'] / 1e6:.1f} MFLOP a step; "
             f"{result['seconds_per_variant']:g} s a variant"
             + (f", median of {result['rounds']} interleaved rounds"
                if result.get("rounds", 1) > 1 else "") + ".",
             f"Dense {half} peak: datasheet "
             + (f"{peaks[half]:g} TFLOPS" if peaks else "not listed")
             + f", measured matmul {measured[half]:.3g} TFLOPS"
             + ("" if half == "fp32" else f" (fp32: {measured['fp32']:.3g})") + ".", "",
             "| trials | step | precision | images/s | per trial | x 1 eager fp32 | TFLOP/s "
             f"| % datasheet {half} peak | % matmul peak |",
             "|---:|---|---|---:|---:|---:|---:|---:|---:|"]
    for row in result["rows"]:
        step = "eager" if row["compile"] == "off" else f"compiled ({row['compile']})"
        if row["fell_back"]:
            step += " -> eager"
        datasheet = (f"{100 * row['share_of_table_peak']:.2f}"
                     if row["share_of_table_peak"] is not None else "-")
        speedup = f"{row['speedup']:.2f}" if row["speedup"] is not None else "-"
        lines.append(f"| {row['concurrency']} | {step} | {row['precision']} | "
                     f"{row['images_per_second']:,.0f} | {row['per_trial']:,.0f} | {speedup} | "
                     f"{row['tflops']:.3g} | {datasheet} | "
                     f"{100 * row['share_of_matmul_peak']:.2f} |")
    judged = result.get("goals") or {}
    if judged.get("judged"):
        best = judged["best"]
        lines += ["", f"Goals (best packed row: {best['concurrency']} x {best['compile']} "
                  f"{best['precision']}): {judged['speedup']:.2f}x one eager fp32 trial "
                  f"(goal >= {PACKED_GOAL:g}x: {'met' if judged['speedup_met'] else 'missed'})"
                  + ("" if judged["share_of_table_peak"] is None else
                     f"; {100 * judged['share_of_table_peak']:.1f} % of the dense peak (goal "
                     f">= {100 * PEAK_GOAL:g} %: "
                     f"{'met' if judged['peak_met'] else 'missed'})") + "."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda", help="cuda, cuda:N or cpu")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--compile-mode", default="reduce-overhead",
                        choices=("default", "reduce-overhead"),
                        help="the compiled variant's train.compile")
    parser.add_argument("--steps", choices=("eager", "compiled", "both"), default="both")
    parser.add_argument("--precisions", nargs="+", default=["fp32", "bf16"],
                        choices=("fp32", "bf16", "fp16"))
    parser.add_argument("--seconds", type=float, default=5.0,
                        help="training time measured per variant and concurrency")
    parser.add_argument("--images", type=int, default=5120,
                        help="images each process holds (an epoch: images / 64 steps)")
    parser.add_argument("--rounds", type=int, default=1,
                        help="rounds interleaving the variants; each row is their median")
    parser.add_argument("--design", default="B2FL8Adam", help="a design of the demo space")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per process")
    parser.add_argument("--smoke", action="store_true",
                        help="CPU, 1 and 2 trials, eager, 1 s a variant: that it runs and "
                        "writes well-formed output (make test)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out/gpu"))
    args = parser.parse_args(argv)
    if args.smoke:
        args.device, args.concurrency, args.steps = "cpu", [1, 2], "eager"
        args.seconds, args.images = 1.0, 640
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("benchmarks.gpu.throughput: no CUDA GPU is visible (use --device cpu or "
              "--smoke)", file=sys.stderr)
        return 2
    modes = {"eager": ["off"], "compiled": [args.compile_mode],
             "both": ["off", args.compile_mode]}[args.steps]
    variants = [Variant(mode, precision) for mode in modes for precision in args.precisions]
    setup = Setup(str(device), args.design, args.images, args.seconds, args.threads,
                  max(1, args.rounds))
    result = run(setup, sorted(set(args.concurrency)), variants)
    result["command"] = "python -m benchmarks.gpu.throughput " + " ".join(
        sys.argv[1:] if argv is None else argv)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "throughput.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / "throughput.md").write_text(table(result))
    print(table(result))
    print(f"wrote {args.out / 'throughput.json'} and {args.out / 'throughput.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())


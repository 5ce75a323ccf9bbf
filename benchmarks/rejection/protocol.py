"""Does the range test reject what will not train, keep what will, rank designs, and choose
good bounds? The fair-contest protocol (issue 20), on any dataset the product reads.

    python -m benchmarks.rejection --config FILE [FILE ...] --out DIR [--extremes]
        [--seeds dev|report|0,1,2] [--trainings 3] [--oracle-designs 0] [--quick]

Each ``--config`` is an ordinary cnnsearch search config: the cartesian product of its
space (blocks x filters x optimizer x batch size x LR range ...) is a grid of designs.
Several configs are parts of one protocol, pooled; ``--extremes`` adds a part derived from
the first config whose LR ranges sit a decade too low and too high (``extremes_of``), so
that some designs end at chance and the gate's recall can be measured. The default is
``benchmarks/protocols/contest.yaml`` with its extremes. For each data seed, every design in
a seeded order gets:

- the product's range test (``run_lrrt``, extensions included) and the gate's verdict from
  a real ``LRRTPruner`` on a study whose earlier designs are its peers, as in a search;
- the trivial rule's verdict (``trivial_verdict``) on the plain, unextended ramp;
- its ground truth: ``--trainings`` full trainings between the test's bounds (its LR range
  when it gave none), each from other initial weights; the majority of their labels (best
  validation accuracy under the chance threshold) is the design's label, fixed before any
  gate is scored, and the share of trainings at chance its probability;
- fair screening at equal cost (``screen``): the first images of the training it would
  have without a range test (triangular2 over its LR range, or an LR-free optimizer's own
  bounds), as many as its range test used; and the old constant-LR screening, labelled;

and every design of the first part whose test gave bounds gets the oracle: trainings at
the LRs of the table's grid around its upper bound (same lower/upper ratio), widened past
an edge while the best sits there, so the best multiplier is interior; its best point is
trained again for the regret's noise floor. Trainings are shared with
``benchmarks.replay.table`` (same keys: give both the same ``--out`` to reuse them).

Development seeds (``dev``: 0, 1) choose rules and defaults; reporting seeds (``report``:
300, 301, 302) are run once with the chosen ones. Writes ``DIR/summary.json`` (figures
pooled, per part and per seed, ``benchmarks.rejection.figures``) and ``DIR/rows.json``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import random
import shlex
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import optuna
import torch
from optuna.trial import TrialState

from benchmarks.common.budget import Ledger, MeteredData
from benchmarks.common.measure import (
    Cache,
    best,
    digest,
    grid_index,
    grid_lr,
    lrrt_key,
    range_test,
    run_seed,
    train_history,
    training_key,
    widened_grid,
)
from benchmarks.rejection.figures import summarise
from search.config import SearchConfig, load_config
from search.config.space import lr_range_label
from search.method.lrrt.curve import limit_index, movement_per_still_steps
from search.method.lrrt.result import LRRTResult
from search.method.optimizers import LR_FREE_BOUNDS
from search.method.prepared_data import load_data
from search.method.pruner import LRRT_STEP, LRRTPruner, chance_threshold
from search.method.suggest import sample_trial_config
from search.method.trial_config import TrialConfig
from search.record import TrialRecorder, frozen_trial
from search.service.study import build_pruner

optuna.logging.set_verbosity(optuna.logging.WARNING)

DEFAULT_CONFIGS = (Path("benchmarks/protocols/contest.yaml"),)
DEV_SEEDS = (0, 1)
REPORT_SEEDS = (300, 301, 302)
"""Never run before issue 20's reporting run (issue 9 used 0-2, 20-29 and 100-105)."""
ORACLE_REACH = 2
"""The oracle starts at the grid points within this many factors of 2 of the chosen upper
bound, then widens past an edge while the best sits there (up to ``WIDEST``)."""
TRIVIAL_EARLY = 0.1
"""The trivial rule rejects a ramp that diverged within this share of its length ..."""


# --------------------------------------------------------------------------- the grid

def designs(config: SearchConfig, seed: int) -> list[TrialConfig]:
    """Every design of the config's space (LR ranges included), in a seeded random order
    (the order peers arrive in a search), built by the product's own sampling, each with
    the run seed its trainings share with the replay table (``run_seed``)."""
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
    out, seen = [], set()
    for combo in combos:
        trial_config = sample_trial_config(
            optuna.trial.FixedTrial(dict(zip(names, combo, strict=True))),
            replace(config, seed=seed), seed)
        identity = (trial_config.name, trial_config.lr_range, trial_config.batch_size,
                    digest(trial_config.to_dict()))
        if identity not in seen:  # an LR-free design ignores the LR ranges: one each
            seen.add(identity)
            out.append(trial_config.with_seed(run_seed(trial_config)))
    return out


def design_key(config: TrialConfig) -> str:
    """What tells two designs of one grid apart (the config name alone does not)."""
    return (f"{config.name}|{lr_range_label(config.lr_range)}|b{config.batch_size}"
            f"|{digest(config.architecture.to_dict())[:6]}")


EXTREME_DECADES = (2, 1)
"""A derived extremes grid's low range spans lr_min / 10**2 .. lr_min / 10**1 of the
config's smallest rate; its high range 5 x .. 50 x its largest."""


def extremes_of(config: SearchConfig) -> SearchConfig:
    """The config's grid moved to LR ranges where its designs should not train: a decade
    under its smallest rate and a decade over its largest, at its largest batch size (the
    cheapest test)."""
    low = min(r[0] for r in config.space.lr_range)
    high = max(r[1] for r in config.space.lr_range)
    space = replace(config.space,
                    lr_range=((low / 10 ** EXTREME_DECADES[0], low / 10 ** EXTREME_DECADES[1]),
                              (high * 5, high * 50)),
                    batch_size=(max(config.space.batch_size),))
    return replace(config, space=space)


# --------------------------------------------------------------------------- measuring

def trivial_verdict(result: LRRTResult, still: float) -> str | None:
    """The trivial rule the gate must beat: reject a design whose plain ramp diverged within
    its first ``TRIVIAL_EARLY`` or left its weights still (moved by less than ``still`` of
    their norm per hundred batches); keep every other."""
    curve = result.curve
    if curve.diverged and curve.completed_fraction <= TRIVIAL_EARLY:
        return "diverged_early"
    if curve.weight_change is not None and movement_per_still_steps(
            curve.weight_change, len(curve.lrs)) < still:
        return "weights_still"
    return None


def screen(config: TrialConfig, data: MeteredData, images: int, *, constant: bool
           ) -> dict[str, Any]:
    """Screening at equal cost: ``images`` training images, then the validation accuracy.
    Fair (``constant=False``): the start of the training the design would have without a
    range test, triangular2 over its LR range (an LR-free optimizer: its own bounds), the
    trial's step size. Constant (the old, labelled variant): one LR held, the range's
    geometric middle."""
    from search.method.evaluation import evaluate
    from search.method.recipe import build_model, build_optimizer, training_run
    from search.method.step import train_step

    low, high = LR_FREE_BOUNDS.get(config.optimizer, config.lr_range)
    data.ledger = ledger = Ledger()
    try:
        if constant:
            lr = math.sqrt(config.lr_range[0] * config.lr_range[1])
            model = build_model(config, data)
            optimizer = build_optimizer(model, config, lr)
            schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _step: 1.0)
            batches = data.train(config.batch_size, config.seed)
        else:
            run = training_run(config, data, (low, high))
            model, optimizer, schedule, batches = (run.model, run.optimizer, run.scheduler,
                                                   run.train)
        seen, epoch, loss = 0, 0, torch.zeros(())
        while seen < images:
            for batch, labels in batches.epoch(epoch):
                loss, _ = train_step(model, optimizer, schedule, batch, labels)
                seen += labels.shape[0]
                if seen >= images:
                    break
            epoch += 1
        finite = math.isfinite(float(loss))
        accuracy = evaluate(model, data.val, optimizer=optimizer)[1] if finite else 0.0
    finally:
        data.ledger = None
    return {"accuracy": accuracy, "images": ledger.images}


def gate_verdict(study: optuna.Study, config: TrialConfig, result: LRRTResult,
                 num_classes: int) -> str | None:
    """Ask the real pruner about a test exactly as the objective does (recorded summary,
    report at the LRRT step, verdict); the trial stays in the study as a later peer."""
    pruner = study.pruner
    assert isinstance(pruner, LRRTPruner)
    trial = study.ask()
    summary = replace(result.summary, group=config.lrrt_group, num_classes=num_classes)
    TrialRecorder(trial).range_test(summary, result.curve.points(), result.n_params)
    trial.report(summary.score, LRRT_STEP)
    found = pruner.verdict(study, frozen_trial(trial))
    study.tell(trial, state=TrialState.PRUNED if found else TrialState.COMPLETE,
               values=None if found else [summary.score])
    return found.reason if found else None


@dataclass(frozen=True)
class Protocol:
    parts: tuple[tuple[str, SearchConfig], ...]
    """(path, config) of each grid; the oracle is drawn from the first."""
    seeds: tuple[int, ...]
    role: str
    trainings: int = 3
    oracle_designs: int = 0
    """0: every design of the first part; else a stratified subset of that many."""
    max_designs: int = 0
    """0: the whole grid; quick mode takes the first few."""


def measure_part(path: str, config: SearchConfig, protocol: Protocol, seed: int,
                 cache: Cache, device: torch.device, oracle: bool,
                 log: Callable[[str], None]) -> list[dict[str, Any]]:
    """Every design of one grid on one data seed (then the oracle, for the first part)."""
    dataset = load_data(config.dataset, seed)
    data = MeteredData(dataset, device, eval_batch_size=config.train.eval_batch_size)
    num_classes = dataset.num_classes
    threshold = chance_threshold(num_classes, config.pruner.chance_margin)
    study = optuna.create_study(direction="maximize", pruner=build_pruner(config))
    grid = designs(config, seed)[: protocol.max_designs or None]
    plain_lrrt = replace(config.lrrt, extend_decades=0.0)
    rows = []
    for index, design in enumerate(grid):
        measured = cache.get(lrrt_key(design), lambda d=design: range_test(d, data))
        result = LRRTResult.from_json(json.dumps(measured["result"]))
        reason = gate_verdict(study, design, result, num_classes)
        plain = replace(design, lrrt=plain_lrrt)
        plain_measured = (measured if plain == design else
                          cache.get(lrrt_key(plain), lambda d=plain: range_test(d, data)))
        trivial = trivial_verdict(LRRTResult.from_json(json.dumps(plain_measured["result"])),
                                  config.pruner.weights_still)
        bounds = result.summary.bounds or design.lr_range
        runs = [cache.get(training_key(design, bounds, k),
                          lambda d=design, b=bounds, r=k: train_history(d, data, b, r))
                for k in range(protocol.trainings)]
        screening = {name: cache.get(
            f"screen-{name}|" + digest(lrrt_key(design), measured["images"]),
            lambda d=design, n=measured["images"], c=(name == "constant"):
            screen(d, data, n, constant=c)) for name in ("fair", "constant")}
        bests = [best(r) for r in runs]
        chance_votes = sum(b < threshold for b in bests)
        curve = result.curve
        row = {
            "seed": seed, "part": path, "design": design_key(design),
            "name": design.name, "optimizer": design.optimizer,
            "lr_range": list(design.lr_range), "lr_range_label": lr_range_label(design.lr_range),
            "family": f"{design.optimizer}|{lr_range_label(design.lr_range)}",
            "batch_size": design.batch_size, "n_params": result.n_params,
            "lrrt_score": result.summary.score,
            "lrrt_val_accuracy": result.summary.best_val_accuracy,
            "lrrt_images": measured["images"], "lrrt_steps": len(curve.lrs),
            "extension": curve.extension, "measured_range": [curve.lr_min, curve.lr_max],
            "diverged": curve.diverged, "limit_found": limit_index(curve) is not None,
            "bounds": list(result.summary.bounds) if result.summary.bounds else None,
            "trained_bounds": list(bounds), "reason": reason, "trivial_reason": trivial,
            "trainings": bests, "history": runs[0]["history"],
            "train_images": runs[0]["images"],
            "best_val_accuracy": bests[0],
            "mean_best_val_accuracy": sum(bests) / len(bests),
            "chance_probability": chance_votes / len(bests),
            "chance_level": chance_votes * 2 > len(bests),
            "threshold": threshold,
            "screening_accuracy": screening["fair"]["accuracy"],
            "screening_constant_accuracy": screening["constant"]["accuracy"],
            "screening_images": screening["fair"]["images"],
        }
        rows.append(row)
        log(f"seed {seed} {index + 1}/{len(grid)} {row['design']}: lrrt "
            f"{row['lrrt_score']:.3f} ({curve.extension or 'in range'}) -> "
            f"{reason or 'kept'} (trivial: {trivial or 'kept'}), trainings "
            + " ".join(f"{b:.3f}" for b in bests)
            + f", screening {row['screening_accuracy']:.3f}")
    if oracle:
        configs = {design_key(d): d for d in grid}
        chosen = [r for r in rows if r["bounds"] and r["optimizer"] not in LR_FREE_BOUNDS]
        if protocol.oracle_designs:
            chosen = stratified(chosen, protocol.oracle_designs)
        for row in chosen:
            row.update(measure_oracle(configs[row["design"]], row, data, cache, log))
    return rows


def measure_oracle(design: TrialConfig, row: dict[str, Any], data: MeteredData,
                   cache: Cache, log: Callable[[str], None]) -> dict[str, Any]:
    """The design trained at the grid's LRs around its chosen upper bound ``u`` (each as
    triangular2 between ``g/4`` and ``g``: the lower/upper ratio of the product's bound
    rules), widened past an edge while the best sits there; the regret of the chosen
    bounds against the best, in accuracy points, read on an independent training of each
    (their second), and the noise floor: the same regret for the grid's best LR itself."""
    upper = row["bounds"][1]
    centre = grid_index(upper)

    def measure(index: int) -> dict[str, Any]:
        lr = grid_lr(index)
        return cache.get(training_key(design, (lr / 4, lr)),
                         lambda: train_history(design, data, (lr / 4, lr)))

    measured, top, (low, high) = widened_grid((centre - ORACLE_REACH, centre + ORACLE_REACH),
                                              measure)
    top_lr = grid_lr(top)
    again = cache.get(training_key(design, (top_lr / 4, top_lr), 1),
                      lambda: train_history(design, data, (top_lr / 4, top_lr), 1))
    ceiling = max(best(m) for m in measured.values())
    chosen = row["trainings"][1] if len(row["trainings"]) > 1 else row["trainings"][0]
    log(f"oracle {row['design']}: best x{top_lr / upper:.3g} of the chosen {upper:.3g} "
        f"({best(measured[top]):.3f} vs {row['trainings'][0]:.3f})")
    return {
        "oracle": {f"{grid_lr(i):.6g}": best(m) for i, m in sorted(measured.items())},
        "oracle_best_multiplier": top_lr / upper,
        "oracle_interior": low < top < high,
        "bound_regret": 100.0 * (ceiling - chosen),
        "regret_noise_floor": 100.0 * (ceiling - best(again)),
    }


def stratified(rows: list[dict[str, Any]], count: int) -> list[dict[str, Any]]:
    """``count`` designs spread over optimizer x LR range x outcome (kept first), so the
    oracle sees every kind of design, not just the most common one."""
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
                        + " ".join(str(p) for p in DEFAULT_CONFIGS) + " with --extremes)")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seeds", default="dev",
                        help="dev (0,1), report (300,301,302) or a list like 0,1")
    parser.add_argument("--trainings", type=int, default=3,
                        help="trainings per design; its label is their majority (default 3)")
    parser.add_argument("--oracle-designs", type=int, default=0,
                        help="designs of the first part given the oracle (0: all)")
    parser.add_argument("--extremes", action="store_true",
                        help="add a part derived from the first config: its designs over LR "
                        "ranges a decade too low and too high (default on with the default "
                        "config)")
    parser.add_argument("--quick", action="store_true",
                        help="smoke size: 4 designs a part, 1 training epoch, 2 trainings")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    configs = [load_config(path) for path in args.config]
    paths = [str(path) for path in args.config]
    if args.extremes or args.config == list(DEFAULT_CONFIGS):
        configs.append(extremes_of(configs[0]))
        paths.append(f"{paths[0]}#extremes")
    seeds, role = parse_seeds(args.seeds)
    max_designs, trainings = 0, args.trainings
    if args.quick:
        configs = [replace(c, train=replace(c.train, epochs=1)) for c in configs]
        seeds, max_designs, trainings = seeds[:1], 4, min(trainings, 2)
        args.oracle_designs = args.oracle_designs or 2
    protocol = Protocol(tuple(zip(paths, configs, strict=True)), seeds, role, trainings,
                        args.oracle_designs, max_designs)
    args.out.mkdir(parents=True, exist_ok=True)
    cache = Cache(args.out / "cache.jsonl")
    started = time.perf_counter()

    def log(message: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)

    rows = []
    for seed in seeds:
        for index, (path, config) in enumerate(protocol.parts):
            rows += measure_part(path, config, protocol, seed, cache, torch.device(args.device),
                                 index == 0, log)
    summary = summarise(rows, seeds=seeds, parts=paths)
    summary.update({
        "seed_role": role, "config": paths[0], "configs": paths,
        "trainings": trainings,
        "method": {"lrrt": asdict(configs[0].lrrt), "pruner": asdict(configs[0].pruner)},
        "wall_seconds": round(time.perf_counter() - started, 1),
        "command": "python -m benchmarks.rejection " + shlex.join(
            sys.argv[1:] if argv is None else argv),
    })
    (args.out / "rows.json").write_text(json.dumps(rows, indent=1))
    (args.out / "summary.json").write_text(json.dumps(summary, indent=1))
    log(f"done in {summary['wall_seconds']:.0f} s: {args.out / 'summary.json'}")
    return summary

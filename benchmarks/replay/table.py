"""The measured table the replay benchmark searches and the rejection protocol's oracle reads.

    python -m benchmarks.replay.table --config benchmarks/protocols/contest.yaml \\
        --seeds 0,1 --out benchmarks/out/table-dev [--parts grid,lrfree,ours] [--quick]

For each data seed (a stratified subset of the dataset) and each design of the config's
space (architecture x optimizer x batch size; its LR ranges aside), the table holds:

- ``grid``: a full training with triangular2 between ``g/4`` and ``g`` for every LR ``g``
  of ``LR_GRID`` inside the baselines' span, per-epoch validation accuracies; the grid is
  widened one point at a time past an edge while its best point sits on that edge, so the
  best is interior (an uncensored oracle for the range test's bounds);
- ``lrfree``: the same design trained by each LR-free optimizer at its own default LR
  (``LR_FREE``), with the same triangular2 multiplier cycle;
- ``ours``: for each of the config's LR ranges, the product's range test (``run_lrrt``,
  stored whole, so bound rules and gates can be re-read) and a full training between the
  bounds it chose.

Every training of one design on one data seed starts from the same initial weights and
batch order (``run_seed``), so two LRs or two bound choices differ in their LR alone.
Each piece is appended to ``OUT/cache.jsonl`` as it is measured (an interrupted run
resumes), keyed by what it depends on.
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import optuna
import torch

from benchmarks.common.budget import MeteredData
from benchmarks.common.measure import (
    LR_FREE,
    SPAN,
    Cache,
    best,
    design_name,
    grid_lr,
    lrrt_key,
    range_test,
    run_seed,
    train_history,
    training_key,
    widened_grid,
)
from search.config import SearchConfig, load_config
from search.method.prepared_data import load_data
from search.method.suggest import sample_trial_config
from search.method.trial_config import TrialConfig


def designs(config: SearchConfig, data_seed: int) -> list[TrialConfig]:
    """Every design of the config's space, with its first LR range (the trainings of the
    table do not depend on it) and its table run seed, built by the product's sampling."""
    space = config.space
    choices = {"blocks": space.blocks, "filters": space.filters, "fc_units": space.fc_units,
               "optimizer": space.optimizer, "batch_size": space.batch_size}
    names = list(choices)
    out = []
    for combo in itertools.product(*(choices[n] for n in names)):
        params = dict(zip(names, combo, strict=True))
        trial_config = sample_trial_config(optuna.trial.FixedTrial(
            {**params, "lr_range": _range_label(space.lr_range[0])}), replace(config,
                                                                               seed=data_seed),
            data_seed)
        out.append(trial_config.with_seed(run_seed(trial_config)))
    return out


def _range_label(lr_range: tuple[float, float]) -> str:
    from search.config.space import lr_range_label

    return lr_range_label(lr_range)


def record_grid(config: TrialConfig, data: MeteredData, cache: Cache,
                log: Callable[[str], None]) -> dict[int, dict[str, Any]]:
    """The design's trainings over the grid's span, widened past an edge while its best
    point sits there (up to ``WIDEST``)."""

    def measure(index: int) -> dict[str, Any]:
        lr = grid_lr(index)
        measured = cache.get(training_key(config, (lr / 4, lr)),
                             lambda: train_history(config, data, (lr / 4, lr)))
        log(f"{design_name(config)} lr {lr:.3g}: best {best(measured):.3f} "
            f"({measured['seconds']:.0f} s)")
        return measured

    return widened_grid(SPAN, measure)[0]


def record_lrfree(config: TrialConfig, data: MeteredData, cache: Cache,
                  log: Callable[[str], None]) -> dict[str, dict[str, Any]]:
    """The design (its optimizer replaced) trained by each LR-free optimizer."""
    out = {}
    for name, lr in LR_FREE.items():
        other = replace(config, optimizer=name)
        out[name] = cache.get(training_key(other, (lr / 4, lr)),
                              lambda o=other, x=lr: train_history(o, data, (x / 4, x)))
        log(f"{design_name(other)}: best {best(out[name]):.3f}")
    return out


def record_ours(config: TrialConfig, search: SearchConfig, data: MeteredData, cache: Cache,
                log: Callable[[str], None], trainings: int = 1) -> dict[str, Any]:
    """For each of the config's LR ranges: the product's range test, and ``trainings`` full
    trainings between the bounds it read (its range when it read none)."""
    from search.method.lrrt.result import LRRTResult

    out = {}
    for lr_range in search.space.lr_range:
        design = replace(config, lr_range=lr_range, lrrt=search.lrrt)
        measured = cache.get(lrrt_key(design), lambda d=design: range_test(d, data))
        result = LRRTResult.from_json(json.dumps(measured["result"]))
        bounds = result.summary.bounds or tuple(lr_range)
        runs = [cache.get(training_key(design, bounds, k),
                          lambda d=design, b=bounds, r=k: train_history(d, data, b, r))
                for k in range(trainings)]
        out[_range_label(lr_range)] = {"lrrt": measured, "bounds": list(bounds), "runs": runs}
        log(f"{design_name(design)} {_range_label(lr_range)}: lrrt "
            f"{result.summary.score:.3f} bounds {bounds[0]:.3g}..{bounds[1]:.3g} "
            f"({measured['images']} images) -> best "
            + ", ".join(f"{best(r):.3f}" for r in runs))
    return out


PARTS = ("grid", "lrfree", "ours")


def record_seed(config: SearchConfig, data_seed: int, cache: Cache, parts: tuple[str, ...],
                device: torch.device, log: Callable[[str], None],
                max_designs: int = 0) -> Iterator[TrialConfig]:
    dataset = load_data(config.dataset, data_seed)
    data = MeteredData(dataset, device, eval_batch_size=config.train.eval_batch_size)
    grid = designs(config, data_seed)
    for trial_config in grid[: max_designs or None]:
        if "grid" in parts:
            record_grid(trial_config, data, cache, log)
        if "lrfree" in parts and trial_config.optimizer == config.space.optimizer[0]:
            record_lrfree(trial_config, data, cache, log)
        if "ours" in parts:
            record_ours(trial_config, config, data, cache, log)
        yield trial_config


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path,
                        default=Path("benchmarks/protocols/contest.yaml"))
    parser.add_argument("--seeds", default="0", help="data seeds, e.g. 0,1")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--parts", default=",".join(PARTS))
    parser.add_argument("--max-designs", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    config = load_config(args.config)
    cache = Cache(args.out / "cache.jsonl")
    parts = tuple(args.parts.split(","))

    def log(message: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)

    for seed in (int(s) for s in args.seeds.split(",")):
        for _ in record_seed(config, seed, cache, parts, torch.device(args.device),
                             lambda m, s=seed: log(f"seed {s} {m}"), args.max_designs):
            pass


if __name__ == "__main__":
    main()

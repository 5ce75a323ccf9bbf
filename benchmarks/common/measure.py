"""What every benchmark of the fair contest measures the same way: a design's training and
range test on one data seed, cached by what they depend on (issue 20).

Every training of one design on one data seed starts from the same initial weights and
batch order (``run_seed``), so two LRs or two bound choices differ in their LR alone; a
replicate ``k`` starts from other ones. The keys are written out field by field, so that a
setting added to the product later does not invalidate what was measured before it.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from benchmarks.common.budget import Ledger, MeteredData
from search.method.recipe import training_run
from search.method.training import TrainingDiverged
from search.method.trial_config import TrialConfig

GRID_BASE = 1.0e-4
GRID_FACTOR = 2.0
SPAN = (0, 10)
"""Grid indices the baselines sample: ``1e-4 * 2**i`` for i in 0..10, 1e-4 to 0.1024 (the
span of the thesis' two LR ranges, [1e-4, 1e-2] and [1e-2, 1e-1])."""
WIDEST = (-7, 14)
"""How far the grid may widen to make its best point interior: 7.8e-7 to 1.64."""
REPLICATE_SEED = 7_919
"""Replicate ``k`` of a training uses ``run_seed + k * REPLICATE_SEED``."""
LR_FREE = {"prodigy": 1.0, "schedulefree_adamw": 0.0025}
"""LR-free optimizers and the LR each is meant to run at (Prodigy's multiplier of its own
estimate, 1.0; Schedule-Free AdamW's default, 0.0025)."""


def grid_lr(index: int) -> float:
    return GRID_BASE * GRID_FACTOR ** index


def grid_index(lr: float) -> int:
    """The grid point nearest ``lr`` on a log scale."""
    return round(math.log(lr / GRID_BASE, GRID_FACTOR))


def digest(*parts: object) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


class Cache:
    """Measured pieces by key, appended to a JSON-lines file: a run resumes where it was."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.values: dict[str, Any] = {}
        if path.exists():
            for line in path.read_text().splitlines():
                if line.strip():
                    entry = json.loads(line)
                    self.values[entry["key"]] = entry["value"]

    def get(self, key: str, compute: Callable[[], Any]) -> Any:
        if key not in self.values:
            self.values[key] = compute()
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a") as handle:
                handle.write(json.dumps({"key": key, "value": self.values[key]}) + "\n")
        return self.values[key]


def training_identity(config: TrialConfig) -> dict[str, Any]:
    """What a training run's outcome depends on besides its LR bounds and seed: the data,
    the network, the optimizer and its parameters, the batch size and the schedule. Written
    out key by key (not ``to_dict``) so that settings added to the product later do not
    change the key of a run measured before them."""
    train = config.train
    return {
        "dataset": {k: getattr(config.dataset, k) for k in (
            "name", "train_size", "val_size", "image_size", "split", "val_fraction")},
        "data_seed": config.data_seed,
        "architecture": config.architecture.to_dict(),
        "optimizer": config.optimizer,
        "params": [config.momentum, config.beta1, config.beta2, config.weight_decay],
        "batch_size": config.batch_size,
        "train": [train.epochs, train.step_size_epochs, train.sgd_momentum],
        "schedule": config.schedule,
        "sampling": config.sampling,
        "inputs": [config.normalise, config.flip, config.translate, config.erase],
    }


def design_name(config: TrialConfig) -> str:
    """``B2FL8Adam/b64``: the design as the tables name it (its LR range aside)."""
    return f"{config.name}/b{config.batch_size}"


def run_seed(config: TrialConfig, replicate: int = 0) -> int:
    """One initial weights and batch order per design and data seed, shared by every LR."""
    base = int(digest(training_identity(config)), 16) % 2**31
    return (base + replicate * REPLICATE_SEED) % 2**31


def training_key(config: TrialConfig, bounds: tuple[float, float], replicate: int = 0) -> str:
    return "train|" + digest(training_identity(config), [float(b) for b in bounds], replicate)


def train_history(config: TrialConfig, data: MeteredData, bounds: tuple[float, float],
                  replicate: int = 0) -> dict[str, Any]:
    """A full training between ``bounds``: the validation accuracy after each epoch (a
    non-finite loss ends it where it was: the epochs it never reached are missing)."""
    seed = run_seed(config, replicate)
    data.ledger = ledger = Ledger()
    started = time.perf_counter()
    history: list[float] = []
    diverged = False
    try:
        run = training_run(config, data, bounds, seed=seed)
        run.fit(data.val, epochs=config.train.epochs,
                on_epoch=lambda report, _state: history.append(round(report.val_accuracy, 5)))
    except TrainingDiverged:
        diverged = True
    finally:
        data.ledger = None
    return {"history": history, "diverged": diverged, "images": ledger.images,
            "seconds": round(time.perf_counter() - started, 2)}


def best(measured: dict[str, Any]) -> float:
    return max(measured["history"], default=0.0)


def widened_grid(span: tuple[int, int], measure: Callable[[int], dict[str, Any]]
                 ) -> tuple[dict[int, dict[str, Any]], int, tuple[int, int]]:
    """``measure`` at every grid index of ``span``, then one index further past an edge
    while the best point sits on it (up to ``WIDEST``), so the best is interior unless the
    widest grid stops it. Returns the measurements by index, the best index (the lower LR
    on a tie) and the span reached."""
    low, high = span
    measured = {index: measure(index) for index in range(low, high + 1)}
    while True:
        top = max(measured, key=lambda i: (best(measured[i]), -i))
        if top == low and low > WIDEST[0]:
            low -= 1
            measured[low] = measure(low)
        elif top == high and high < WIDEST[1]:
            high += 1
            measured[high] = measure(high)
        else:
            return measured, top, (low, high)


def lrrt_key(config: TrialConfig) -> str:
    """A range test's cache key: the design, its LR range and every range-test setting."""
    return "lrrt|" + digest(training_identity(config), list(config.lr_range),
                            asdict(config.lrrt))


def range_test(config: TrialConfig, data: MeteredData) -> dict[str, Any]:
    """The product's range test of the design, stored whole (curve, score, bounds) with
    the training images it cost."""
    from search.method.lrrt.run import run_lrrt  # the product's test, as a search runs it

    data.ledger = ledger = Ledger()
    try:
        result = run_lrrt(config, data)
    finally:
        data.ledger = None
    return {"result": json.loads(result.to_json()), "images": ledger.images}



"""The search strategies run live: the replay benchmark's studies (the same samplers and
pruners, ``benchmarks.replay.search``), with every trial really trained.

What differs from a replay is what a replay simplifies: each trial has its own initial
weights (``seed * 100_003 + trial number``, as the product derives them), the baselines'
LR is used as sampled (not snapped to the table's grid), and ours runs the product's own
``Objective`` (range test, gate, triangular2 between its bounds, the Median pruner). Budgets
are counted where the images are served (``MeteredData``): training images only.

The constant-LR recipe (the canonical Optuna + PyTorch example) stays as a second, labelled
variant of each baseline (``*_constant``): the LR held for the whole trial.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import optuna
import torch
from optuna.trial import TrialState

from benchmarks.common.budget import BudgetExhausted, Ledger, MeteredData
from benchmarks.common.measure import LR_FREE
from benchmarks.replay.search import (
    OURS,
    chance_level,
    make_study,
    ours_config,
    sample_design,
    sample_lr,
)
from search.config import SearchConfig
from search.method.pruner import LRRT_STEP, LRRTPruner, chance_threshold, pruner_label
from search.method.recipe import training_run
from search.method.training import EpochReport, TrainingDiverged, TrainingState
from search.record import DIVERGED, TrialRecorder, Verdict
from search.service.objective import Objective

optuna.logging.set_verbosity(optuna.logging.WARNING)

CONSTANT = "_constant"
"""Suffix of a baseline's constant-LR variant (``tpe_sh_constant``...)."""
LIVE_STRATEGIES = ("ours", "ours_sh", "ours_promote", "tpe_median", "tpe_sh",
                   "tpe_hyperband", "screening", "random", "lrfree_sh", "tpe_median_constant",
                   "tpe_sh_constant")


class MeteredLRRTPruner(LRRTPruner):
    """The product's ``LRRTPruner`` (same settings, same verdicts) that also feeds each
    training epoch's validation accuracy to the ledger: the objective reports every epoch
    and asks the pruner, so this is the one place that sees them all without editing it."""

    def __init__(self, base: LRRTPruner, ledger: Ledger) -> None:
        self.__dict__.update(vars(base))
        self.ledger = ledger

    def verdict(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> Verdict | None:
        step = trial.last_step
        if step is not None and step != LRRT_STEP:
            self.ledger.observe(trial.intermediate_values[step])
        return super().verdict(study, trial)


@dataclass
class LiveObjective:
    """A baseline's trial: sample the design and an LR (or an LR-free optimizer), train it
    with triangular2 between ``lr/4`` and ``lr`` (constant at ``lr`` for a ``*_constant``
    variant), report each epoch and let the study's pruner decide."""

    strategy: str
    config: SearchConfig
    data: MeteredData
    seed: int
    ledger: Ledger

    def __call__(self, trial: optuna.Trial) -> float:
        if self.strategy == "lrfree_sh":
            design = sample_design(trial, self.config, self.data.data_seed or 0,
                                   optimizers=tuple(LR_FREE))
            lr = LR_FREE[design.optimizer]
        else:
            design = sample_design(trial, self.config, self.data.data_seed or 0)
            lr = sample_lr(trial)
        bounds = (lr, lr) if self.strategy.endswith(CONSTANT) else (lr / 4, lr)
        run = training_run(design, self.data, bounds, seed=self.seed * 100_003 + trial.number)

        def on_epoch(report: EpochReport, _state: TrainingState) -> None:
            self.ledger.observe(report.val_accuracy)
            trial.report(report.val_accuracy, report.epoch)
            if trial.should_prune():
                TrialRecorder(trial).pruned(Verdict(pruner_label(trial.study.pruner),
                                                    f"epoch {report.epoch}"))
                raise optuna.TrialPruned(f"epoch {report.epoch}")

        try:
            state = run.fit(self.data.val, epochs=self.config.train.epochs, on_epoch=on_epoch)
        except TrainingDiverged as error:  # as ours: a non-finite loss prunes the trial
            TrialRecorder(trial).pruned(Verdict(DIVERGED, str(error)))
            raise optuna.TrialPruned(str(error)) from error
        return state.best_val_accuracy


def run_search(strategy: str, config: SearchConfig, seed: int, data: MeteredData,
               budget_trials: float) -> dict[str, Any]:
    """Run trials until ``budget_trials`` full trials' training images are spent, one at a
    time; the same record as a replay's (``benchmarks.replay.search.replay``)."""
    full_trial = config.dataset.train_size * config.train.epochs  # type: ignore[operator]
    ledger = Ledger(budget=budget_trials * full_trial)
    data.ledger = ledger
    base = strategy.removesuffix(CONSTANT)
    search = ours_config(config, strategy, seed) if strategy in OURS else None
    study = make_study(base, seed, config.train.epochs, search)
    objective: Callable[[optuna.Trial], Any]
    if search is not None:
        study.pruner = MeteredLRRTPruner(study.pruner, ledger)  # type: ignore[arg-type]
        objective = Objective(search, data, study.pruner)  # type: ignore[arg-type]
    else:
        objective = LiveObjective(strategy, config, data, seed, ledger)
    records: list[dict[str, Any]] = []

    def metered(trial: optuna.Trial) -> Any:
        used = ledger.images
        record: dict[str, Any] = {"number": trial.number, "state": "complete"}
        records.append(record)
        try:
            return objective(trial)
        except BudgetExhausted:
            record["state"] = "cut"
            trial.study.stop()
            raise optuna.TrialPruned("cut: budget spent") from None
        except optuna.TrialPruned:
            record["state"] = "pruned"
            raise
        finally:
            record["images"] = ledger.images - used

    def stop_when_spent(study: optuna.Study, _trial: optuna.trial.FrozenTrial) -> None:
        if ledger.exhausted:
            study.stop()

    started = time.perf_counter()
    try:
        study.optimize(metered, callbacks=[stop_when_spent], gc_after_trial=False)
    finally:
        data.ledger = None
    threshold = chance_threshold(data.dataset.num_classes)
    for record, trial in zip(records, study.trials, strict=True):
        epochs = [v for step, v in sorted(trial.intermediate_values.items())
                  if step != LRRT_STEP and math.isfinite(v)]
        record["epochs"] = epochs
        record["reason"] = trial.user_attrs.get("prune_reason")
        record["chance_level"] = record["state"] != "cut" and chance_level(epochs, threshold)
    return {
        "strategy": strategy, "seed": seed, "data_seed": data.data_seed,
        "budget": ledger.budget, "images": ledger.images, "eval_images": ledger.eval_images,
        "seconds": round(time.perf_counter() - started, 2),
        "timeline": [(images, 0.0, value) for images, _s, value in ledger.timeline],
        "trials": records,
        "complete": sum(t.state == TrialState.COMPLETE for t in study.trials),
        "rejected_at_lrrt": sum(1 for r in records if not r["epochs"]
                                and r["state"] == "pruned" and search is not None),
    }


def load(config: SearchConfig, data_seed: int, device: str) -> MeteredData:
    from search.method.prepared_data import load_data

    dataset = load_data(config.dataset, data_seed)
    return MeteredData(dataset, torch.device(device), eval_batch_size=1024, data_seed=data_seed)

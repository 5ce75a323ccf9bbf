"""Search strategies replayed on a measured table: real Optuna samplers and pruners, the
trainings read from the table instead of run.

Each strategy is the study it would be live (its sampler, its pruner, the product's
``LRRTPruner`` for ours) and an objective that samples a design with the same
``suggest_*`` calls as live, then reports the table's per-epoch validation accuracies with
``trial.report`` and lets the pruner decide after each. Every image a live search would
train on is charged to the budget: the range test's, and each epoch's training images;
evaluation is free, as in the live benchmark. A search stops when the budget is spent.

A fair contest (issue 20): every strategy trains with the same schedule family, triangular2
between ``lr/4`` and ``lr``, from the same initial weights per design; the baselines sample
one LR log-uniformly over the span of ours' LR ranges (snapped to the table's grid); the
LR-free strategy samples the design and an LR-free optimizer.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import optuna
from optuna.trial import TrialState

from benchmarks.common.budget import BudgetExhausted, Ledger
from benchmarks.common.measure import (
    LR_FREE,
    SPAN,
    Cache,
    design_name,
    grid_index,
    grid_lr,
    lrrt_key,
    training_key,
)
from benchmarks.replay.table import designs
from search.config import SearchConfig
from search.config.space import lr_range_label
from search.method.lrrt.result import LRRTResult
from search.method.pruner import LRRT_STEP, LRRTPruner, chance_threshold
from search.method.suggest import sample_trial_config
from search.record import TrialRecorder, Verdict, frozen_trial
from search.service.study import build_pruner, build_sampler

optuna.logging.set_verbosity(optuna.logging.WARNING)

TPE_STARTUP_TRIALS = 5
"""As the product's ``tpe`` sampler: every TPE strategy gets the same settings."""


@dataclass
class Measured:
    """One training of the table: validation accuracy per epoch, images per epoch."""

    history: list[float]
    images_per_epoch: int

    @classmethod
    def from_cache(cls, value: dict[str, Any], epochs: int) -> Measured:
        ran = max(len(value["history"]), 1)
        # a run stopped by a non-finite loss charged the images it trained on
        per_epoch = value["images"] // ran if value["history"] else value["images"]
        return cls(list(value["history"]), per_epoch if value["history"] else value["images"])


@dataclass
class OursEntry:
    """A design tested over one LR range: its range test and its training at the bounds."""

    lrrt: LRRTResult
    lrrt_images: int
    training: Measured | None


@dataclass
class Table:
    """What one data seed's searches may read."""

    config: SearchConfig
    data_seed: int
    num_classes: int
    epochs: int
    grid: dict[str, dict[int, Measured]] = field(default_factory=dict)
    lrfree: dict[str, Measured] = field(default_factory=dict)
    """By the LR-free design's name (``B2FL8Prodigy/b64``)."""
    ours: dict[tuple[str, str], OursEntry] = field(default_factory=dict)

    @property
    def full_trial_images(self) -> int:
        """One design trained to the end: the unit the budget is written in."""
        return self.config.dataset.train_size * self.epochs  # type: ignore[operator]

    def values(self) -> list[float]:
        """Every trial value the baselines' space holds (grid points inside the span)."""
        return [best_of(m) for points in self.grid.values()
                for index, m in points.items() if SPAN[0] <= index <= SPAN[1]]

    def target(self, percentile: float) -> float:
        values = sorted(self.values())
        rank = min(len(values) - 1, max(0, math.ceil(percentile / 100 * len(values)) - 1))
        return values[rank]

    def nearest_grid(self, design: str, lr: float) -> Measured | None:
        points = self.grid.get(design, {})
        if not points:
            return None
        index = min(points, key=lambda i: abs(i - math.log(lr / grid_lr(0), 2)))
        return points[index] if abs(index - grid_index(lr)) <= 1 else None


def best_of(measured: Measured) -> float:
    return max(measured.history, default=0.0)


def load_table(config: SearchConfig, data_seed: int, cache: Cache, num_classes: int) -> Table:
    """The table of one data seed from the cache the recorder wrote (missing pieces are
    simply absent: a strategy that needs one raises ``KeyError``)."""
    epochs = config.train.epochs
    table = Table(config, data_seed, num_classes, epochs)
    for design in designs(config, data_seed):
        name = design_name(design)
        points = {}
        for index in range(-12, 20):
            lr = grid_lr(index)
            value = cache.values.get(training_key(design, (lr / 4, lr)))
            if value is not None:
                points[index] = Measured.from_cache(value, epochs)
        table.grid[name] = points
        for optimizer, lr in LR_FREE.items():
            other = replace(design, optimizer=optimizer)
            value = cache.values.get(training_key(other, (lr / 4, lr)))
            if value is not None:
                table.lrfree[design_name(other)] = Measured.from_cache(value, epochs)
        for lr_range in config.space.lr_range:
            tested = replace(design, lr_range=lr_range, lrrt=config.lrrt)
            measured = cache.values.get(lrrt_key(tested))
            if measured is None:
                continue
            result = LRRTResult.from_json(json.dumps(measured["result"]))
            bounds = result.summary.bounds or tuple(lr_range)
            trained = cache.values.get(training_key(tested, bounds, 0))
            table.ours[(name, lr_range_label(lr_range))] = OursEntry(
                result, measured["images"],
                Measured.from_cache(trained, epochs) if trained else None)
    return table


# --------------------------------------------------------------------------- strategies

class OneEpochScreening(optuna.pruners.BasePruner):
    """1-epoch screening (Egele et al. 2024), the cheap baseline that is hard to beat: every
    design trains one epoch; only one whose epoch-1 accuracy is the best seen so far goes on
    to the end. Later epochs are never pruned."""

    def prune(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> bool:
        if trial.last_step != 1:
            return False
        value = trial.intermediate_values[1]
        others = [t.intermediate_values[1]
                  for t in study.get_trials(deepcopy=False,
                                            states=(TrialState.COMPLETE, TrialState.PRUNED))
                  if 1 in t.intermediate_values]
        return bool(others) and value <= max(others)


def sample_design(trial: optuna.Trial, config: SearchConfig, data_seed: int,
                  optimizers: tuple[str, ...] | None = None) -> Any:
    """A design of the space as the product's sampling draws it, its LR range aside (the
    baselines sample an LR instead); ``optimizers`` replaces the space's (LR-free ones)."""
    space = config.space
    params = {"blocks": space.blocks, "filters": space.filters,
              "optimizer": optimizers or space.optimizer, "batch_size": space.batch_size}
    chosen = {k: (v[0] if len(v) == 1 else trial.suggest_categorical(k, list(v)))
              for k, v in params.items()}
    fixed = optuna.trial.FixedTrial({**chosen, "lr_range": lr_range_label(space.lr_range[0])})
    if optimizers:
        config = replace(config, space=replace(space, optimizer=optimizers))
    return sample_trial_config(fixed, config, data_seed)


def sample_lr(trial: optuna.Trial) -> float:
    """The baselines' LR: log-uniform over the span of ours' LR ranges."""
    return trial.suggest_float("lr", grid_lr(SPAN[0]), grid_lr(SPAN[1]), log=True)


def chance_level(epochs: list[float], threshold: float) -> bool:
    """The one definition of a chance-level trial, for every strategy: none of its training
    epochs scored above the chance threshold (a range test's own validation does not count;
    a trial rejected before any epoch counts as chance level)."""
    return max(epochs, default=0.0) < threshold

@dataclass(frozen=True)
class Strategy:
    key: str
    label: str
    fair: bool = True
    """A fair baseline: same schedule family, same budget accounting."""


STRATEGIES = (
    Strategy("ours", "TPE + LRRT gate + triangular2 between LRRT bounds + Median (ours)"),
    Strategy("ours_sh", "ours, SuccessiveHalving after the gate"),
    Strategy("ours_promote", "ours, only the top third of range-test scores go on (rung 0)"),
    Strategy("tpe_median", "TPE + MedianPruner, sampled LR, triangular2 [lr/4, lr]"),
    Strategy("tpe_sh", "TPE + SuccessiveHalving (rf 3), sampled LR, triangular2"),
    Strategy("tpe_hyperband", "TPE + Hyperband, sampled LR, triangular2"),
    Strategy("screening", "TPE + 1-epoch screening, sampled LR, triangular2"),
    Strategy("random", "Random search, no pruning, sampled LR, triangular2"),
    Strategy("lrfree_sh", "TPE + LR-free optimizer (Prodigy, Schedule-Free AdamW) + SH"),
)
STRATEGY_KEYS = tuple(s.key for s in STRATEGIES)
OURS = {"ours": {}, "ours_sh": {"after_lrrt": "successive_halving",
                                "after_lrrt_warmup_epochs": 0},
        "ours_promote": {"promotion_eta": 3}}
"""Our strategies: the product's config with these pruner settings."""


class ReplayObjective:
    """Samples a design, charges and reports what the table says its training did."""

    def __init__(self, strategy: str, table: Table, ledger: Ledger,
                 search: SearchConfig | None) -> None:
        self.strategy = strategy
        self.table = table
        self.ledger = ledger
        self.search = search
        self.threshold = chance_threshold(table.num_classes)
        self.trials: list[dict[str, Any]] = []

    def __call__(self, trial: optuna.Trial) -> float:
        record: dict[str, Any] = {"number": trial.number, "images": 0, "epochs": [],
                                  "state": "complete"}
        self.trials.append(record)
        images = self.ledger.images
        try:
            return self._run(trial, record)
        except optuna.TrialPruned:
            record["state"] = "pruned"
            raise
        except BudgetExhausted:
            record["state"] = "cut"
            trial.study.stop()
            raise optuna.TrialPruned("cut: budget spent") from None
        finally:
            record["images"] = self.ledger.images - images
            record["chance_level"] = record["state"] != "cut" and chance_level(
                record["epochs"], self.threshold)

    def _run(self, trial: optuna.Trial, record: dict[str, Any]) -> float:
        if self.search is not None:
            return self._ours(trial, record)
        if self.strategy == "lrfree_sh":
            design = self._design(trial, optimizers=tuple(LR_FREE))
            measured = self.table.lrfree[design_name(design)]
            record["design"] = design_name(design)
        else:
            design = self._design(trial)
            lr = sample_lr(trial)
            index = min(max(grid_index(lr), SPAN[0]), SPAN[1])
            measured = self.table.grid[design_name(design)][index]
            record["design"] = f"{design_name(design)}@{grid_lr(index):.3g}"
        return self._train(trial, record, measured, start_step=1)

    def _design(self, trial: optuna.Trial, optimizers: tuple[str, ...] | None = None) -> Any:
        return sample_design(trial, self.table.config, self.table.data_seed, optimizers)

    def _ours(self, trial: optuna.Trial, record: dict[str, Any]) -> float:
        assert self.search is not None
        design = sample_trial_config(trial, self.search, self.table.data_seed)
        name = design_name(design)
        entry = self.table.ours[(name, lr_range_label(design.lr_range))]
        record["design"] = f"{name}|{lr_range_label(design.lr_range)}"
        self.ledger.take(entry.lrrt_images)
        summary = replace(entry.lrrt.summary, group=design.lrrt_group,
                          num_classes=self.table.num_classes)
        TrialRecorder(trial).range_test(summary, entry.lrrt.curve.points(),
                                        entry.lrrt.n_params)
        trial.report(summary.score, LRRT_STEP)
        pruner = trial.study.pruner
        assert isinstance(pruner, LRRTPruner)
        verdict = pruner.verdict(trial.study, frozen_trial(trial))
        if verdict is not None:
            record["reason"] = verdict.reason
            TrialRecorder(trial).pruned(verdict)
            raise optuna.TrialPruned(verdict.reason)
        measured = entry.training
        if measured is None:  # a development variant: its bounds read off the grid
            upper = summary.bounds[1] if summary.bounds else design.lr_range[1]
            measured = self.table.nearest_grid(name, upper)
            if measured is None:
                raise KeyError(f"no training of {name} near {upper:.3g} in the table")
        return self._train(trial, record, measured, start_step=1)

    def _train(self, trial: optuna.Trial, record: dict[str, Any], measured: Measured,
               start_step: int) -> float:
        for epoch, accuracy in enumerate(measured.history, start=start_step):
            self.ledger.take(measured.images_per_epoch)
            self.ledger.observe(accuracy)
            record["epochs"].append(accuracy)
            trial.report(accuracy, epoch)
            if trial.should_prune():
                record["reason"] = "epoch"
                if isinstance(trial.study.pruner, LRRTPruner):
                    verdict = trial.study.pruner.verdict(trial.study, frozen_trial(trial))
                    TrialRecorder(trial).pruned(verdict or Verdict("pruned"))
                raise optuna.TrialPruned(f"epoch {epoch}")
        if len(measured.history) < self.table.epochs:  # a non-finite loss ended it
            self.ledger.take(measured.images_per_epoch)
            record["reason"] = "diverged"
            raise optuna.TrialPruned("diverged")
        return max(measured.history, default=0.0)


def ours_config(base: SearchConfig, strategy: str, seed: int) -> SearchConfig:
    """The product's config of the protocol for one search seed (its TPE seeded by it),
    with the strategy's pruner settings; every trial trains (``repeats: allow``), as the
    baselines' do."""
    pruner = replace(base.pruner, **{k: v for k, v in OURS[strategy].items()
                                     if hasattr(base.pruner, k)})
    return replace(base, seed=seed, pruner=pruner, repeats="allow")


def make_study(strategy: str, seed: int, epochs: int,
               search: SearchConfig | None) -> optuna.Study:
    name = f"replay-{strategy}-{seed}"
    if search is not None:
        return optuna.create_study(study_name=name, direction="maximize",
                                   sampler=build_sampler(search, seed),
                                   pruner=build_pruner(search))
    if strategy == "random":
        return optuna.create_study(study_name=name, direction="maximize",
                                   sampler=optuna.samplers.RandomSampler(seed=seed),
                                   pruner=optuna.pruners.NopPruner())
    sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=TPE_STARTUP_TRIALS)
    pruners: dict[str, Callable[[], optuna.pruners.BasePruner]] = {
        # what ours wraps (median, 3 startup trials, warm-up 1 epoch past the LRRT step)
        "tpe_median": lambda: optuna.pruners.MedianPruner(n_startup_trials=3,
                                                          n_warmup_steps=2),
        "tpe_sh": lambda: optuna.pruners.SuccessiveHalvingPruner(min_resource=1,
                                                                 reduction_factor=3),
        "tpe_hyperband": lambda: optuna.pruners.HyperbandPruner(
            min_resource=1, max_resource=epochs, reduction_factor=3),
        "screening": OneEpochScreening,
        "lrfree_sh": lambda: optuna.pruners.SuccessiveHalvingPruner(min_resource=1,
                                                                    reduction_factor=3),
    }
    return optuna.create_study(study_name=name, direction="maximize", sampler=sampler,
                               pruner=pruners[strategy]())


def replay(strategy: str, table: Table, seed: int, budget_trials: float) -> dict[str, Any]:
    """One search of ``strategy`` on the table until ``budget_trials`` full trials' images
    are spent: its best-so-far timeline and its trials."""
    ledger = Ledger(budget=budget_trials * table.full_trial_images)
    search = ours_config(table.config, strategy, seed) if strategy in OURS else None
    study = make_study(strategy, seed, table.epochs, search)
    objective = ReplayObjective(strategy, table, ledger, search)

    def stop_when_spent(study: optuna.Study, _trial: optuna.trial.FrozenTrial) -> None:
        if ledger.exhausted:
            study.stop()

    study.optimize(objective, callbacks=[stop_when_spent], gc_after_trial=False,
                   n_trials=10_000)
    states = [t.state for t in study.trials]
    return {
        "strategy": strategy, "seed": seed, "data_seed": table.data_seed,
        "budget": ledger.budget, "images": ledger.images,
        "timeline": [(images, 0.0, value) for images, _s, value in ledger.timeline],
        "trials": objective.trials,
        "complete": states.count(TrialState.COMPLETE),
        "rejected_at_lrrt": sum(1 for t in objective.trials
                                if not t["epochs"] and t["state"] == "pruned"),
    }

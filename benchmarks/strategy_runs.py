"""The search strategies, each one Optuna study run until the budget is spent.

1. ``ours``: TPE + ``LRRTPruner`` (its default MedianPruner after the LRRT) + triangular2
   between LRRT-derived bounds: the product's own ``Objective``, unchanged.
   ``ours_sh`` is the same with ``after_lrrt: successive_halving`` (rungs from epoch 1).
2. ``tpe_median``: TPE + MedianPruner, a log-uniform fixed LR, constant schedule (the
   canonical Optuna + PyTorch recipe). The MedianPruner is built with the same settings as
   the one ours wraps, so the only differences are the LRRT step and the LR schedule.
3. ``tpe_hyperband``: TPE + HyperbandPruner over the epochs, same fixed-LR space.
4. ``random``: random search, no pruning, fixed LR.

Every strategy uses the same data tensors, batch size, epochs per trial, model builder,
optimizers and per-trial init seeds (``seed * 100_003 + trial number``, as ours derives).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import optuna
import torch
from optuna.trial import TrialState

from benchmarks.budget import BudgetExhausted, Ledger, MeteredData
from benchmarks.settings import (
    BLOCKS,
    FC_UNITS,
    FILTERS,
    FIXED_LR,
    L2,
    OPTIMIZERS,
    SGD_MOMENTUM,
    BenchSettings,
    search_config,
)
from models import Architecture, build_cnn
from search.config import PrunerSettings, SearchConfig
from search.method.optimizers import make_optimizer
from search.method.pruner import LRRT_STEP, LRRTPruner, chance_threshold, pruner_label
from search.method.training import EpochReport, TrainingDiverged, TrainingState, train_epochs
from search.record import DIVERGED, TrialRecord, TrialRecorder, Verdict
from search.service.objective import Objective
from search.service.study import build_pruner, build_sampler

optuna.logging.set_verbosity(optuna.logging.WARNING)

TPE_STARTUP_TRIALS = 5
"""As ``search.service.study.build_sampler``: every TPE strategy gets the same sampler settings."""


@dataclass(frozen=True)
class Strategy:
    key: str
    label: str


STRATEGIES = (
    Strategy("ours", "TPE + LRRTPruner + LRRT triangular2 (ours)"),
    Strategy("ours_sh", "ours, SuccessiveHalving after the gate instead of Median"),
    Strategy("tpe_median", "TPE + MedianPruner, fixed LR"),
    Strategy("tpe_hyperband", "TPE + HyperbandPruner, fixed LR"),
    Strategy("tpe_sh", "TPE + SuccessiveHalvingPruner (ASHA-style, rf 3), fixed LR"),
    Strategy("screening", "TPE + 1-epoch screening, fixed LR"),
    Strategy("random", "Random search, no pruning, fixed LR"),
)
STRATEGY_KEYS = tuple(s.key for s in STRATEGIES)
OURS = {"ours": "median", "ours_sh": "successive_halving"}
"""Our strategies: the product's ``Objective``, by the pruner that judges training epochs."""


@dataclass
class SearchRun:
    """One strategy x seed: the timeline and every trial, as plain data for results.json."""

    strategy: str
    seed: int
    budget: int
    images: int
    eval_images: int
    seconds: float
    timeline: list[tuple[int, float, float]]
    trials: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


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


class FixedLRObjective:
    """The canonical recipe: sample the design and one LR, train with that LR held
    constant, report validation accuracy each epoch and let the study's pruner decide."""

    def __init__(self, settings: BenchSettings, data: MeteredData, seed: int,
                 ledger: Ledger) -> None:
        self.settings = settings
        self.data = data
        self.seed = seed
        self.ledger = ledger

    def __call__(self, trial: optuna.Trial) -> float:
        blocks = trial.suggest_categorical("blocks", list(BLOCKS))
        filters = trial.suggest_categorical("filters", list(FILTERS))
        name = trial.suggest_categorical("optimizer", list(OPTIMIZERS))
        lr = trial.suggest_float("lr", *FIXED_LR, log=True)
        run_seed = self.seed * 100_003 + trial.number
        dataset = self.data.dataset
        architecture = Architecture(blocks=blocks, filters=filters, fc_units=FC_UNITS, l2=L2)
        model = build_cnn(architecture, dataset.input_shape, dataset.num_classes,
                          seed=run_seed).to(self.data.device)
        optimizer = make_optimizer(model, name, lr, sgd_momentum=SGD_MOMENTUM)
        constant = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _step: 1.0)
        train = self.data.train(self.settings.batch_size, run_seed)

        def on_epoch(report: EpochReport, _state: TrainingState) -> None:
            self.ledger.observe(report.val_accuracy)
            trial.report(report.val_accuracy, report.epoch)
            if trial.should_prune():
                TrialRecorder(trial).pruned(Verdict(pruner_label(trial.study.pruner),
                                                    f"epoch {report.epoch}"))
                raise optuna.TrialPruned(f"epoch {report.epoch}")

        try:
            state = train_epochs(model, optimizer, constant, train, self.data.val,
                                 epochs=self.settings.epochs, on_epoch=on_epoch)
        except TrainingDiverged as error:  # as ours: a NaN loss prunes the trial
            TrialRecorder(trial).pruned(Verdict(DIVERGED, str(error)))
            raise optuna.TrialPruned(str(error)) from error
        return state.best_val_accuracy


def metered(objective: Callable[[optuna.Trial], float], ledger: Ledger
            ) -> Callable[[optuna.Trial], float]:
    """Charge each trial's images and seconds to its user attrs; cut the trial that runs
    into the end of the budget (recorded as pruned, ``bench_cut``) and stop the study."""

    def run(trial: optuna.Trial) -> float:
        images, started, cut = ledger.images, time.perf_counter(), False
        try:
            return objective(trial)
        except BudgetExhausted as error:
            cut = True
            trial.study.stop()
            raise optuna.TrialPruned("cut: budget spent") from error
        finally:
            TrialRecorder(trial).bench(images=ledger.images - images,
                                       seconds=time.perf_counter() - started, cut=cut)

    return run


def _study(strategy: str, settings: BenchSettings, seed: int, ledger: Ledger,
           ours: SearchConfig | None = None) -> optuna.Study:
    """A strategy's in-memory study: its sampler and pruner (ours': from its ``ours``
    config). Named, because Hyperband assigns brackets by hashing the study name: a random
    name would change the run."""
    name = f"bench-{strategy}-seed{seed}"
    if ours is not None:
        pruner = MeteredLRRTPruner(build_pruner(ours), ledger)
        sampler = build_sampler(ours, seed)
        return optuna.create_study(study_name=name, direction="maximize", sampler=sampler,
                                   pruner=pruner)
    if strategy == "random":
        sampler: optuna.samplers.BaseSampler = optuna.samplers.RandomSampler(seed=seed)
        pruner_: optuna.pruners.BasePruner = optuna.pruners.NopPruner()
    else:
        sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=TPE_STARTUP_TRIALS)
        if strategy == "tpe_median":
            # What ours wraps (search.method.pruner.make_wrapped_pruner("median", 3, 1)); the steps
            # here are epochs 1..E as in ours, so warm-up 2 prunes from epoch 2 in both.
            pruner_ = optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=2)
        elif strategy == "tpe_hyperband":
            pruner_ = optuna.pruners.HyperbandPruner(
                min_resource=1, max_resource=settings.epochs, reduction_factor=3)
        elif strategy == "tpe_sh":
            pruner_ = optuna.pruners.SuccessiveHalvingPruner(min_resource=1,
                                                             reduction_factor=3)
        elif strategy == "screening":
            pruner_ = OneEpochScreening()
        else:
            raise ValueError(f"unknown strategy {strategy!r}")
    return optuna.create_study(study_name=name, direction="maximize", sampler=sampler,
                               pruner=pruner_)


def run_search(strategy: str, settings: BenchSettings, seed: int, data: MeteredData
               ) -> SearchRun:
    """Run trials until the budget is spent; one trial at a time, as on a 2-core box."""
    ledger = Ledger(budget=settings.budget)
    data.ledger = ledger
    ours = search_config(settings, seed, after_lrrt=OURS[strategy]) if strategy in OURS else None
    study = _study(strategy, settings, seed, ledger, ours)
    if ours is not None:
        objective: Callable[[optuna.Trial], float] = Objective(ours, data, study.pruner)
    else:
        objective = FixedLRObjective(settings, data, seed, ledger)

    def stop_when_spent(study: optuna.Study, _trial: optuna.trial.FrozenTrial) -> None:
        if ledger.exhausted:
            study.stop()

    try:
        study.optimize(metered(objective, ledger), callbacks=[stop_when_spent],
                       gc_after_trial=False)
    finally:
        data.ledger = None
    threshold = chance_threshold(data.dataset.num_classes, PrunerSettings().chance_margin)
    return SearchRun(
        strategy=strategy, seed=seed, budget=settings.budget, images=ledger.images,
        eval_images=ledger.eval_images, seconds=round(ledger.seconds, 2),
        timeline=ledger.timeline,
        trials=[trial_record(t, threshold) for t in study.trials],
    )


def trial_record(trial: optuna.trial.FrozenTrial, threshold: float) -> dict[str, Any]:
    """What the table needs of one trial: cost, outcome, and whether it ended at chance.

    A trial "ended at chance level" when no model it evaluated (training epochs, and for
    ours also the LRRT's end-of-epoch validation) got above the pruner's chance threshold;
    the trial cut by the end of the budget is neither finished nor wasted, just cut.
    """
    record = TrialRecord.from_frozen(trial)
    epochs = [v for step, v in trial.intermediate_values.items() if step != LRRT_STEP]
    seen = [v for v in epochs if math.isfinite(v)]
    if record.lrrt is not None and record.lrrt.best_val_accuracy is not None:
        seen.append(record.lrrt.best_val_accuracy)
    cut = record.bench_cut
    if cut:
        state = "cut"
    elif trial.state == TrialState.COMPLETE:
        state = "complete"
    elif trial.state == TrialState.PRUNED:
        state = "pruned"
    else:
        state = trial.state.name.lower()
    return {
        "number": trial.number,
        "state": state,
        "reason": record.pruned_because.reason if record.pruned_because else None,
        "params": trial.params,
        "config_name": record.config_name,
        "lr_bounds": list(record.lr_bounds) if record.lr_bounds else None,
        "epochs": len(epochs),
        "best_val_accuracy": max(epochs, default=None),
        "images": record.bench_images,
        "seconds": record.bench_seconds,
        "chance_level": (not cut) and max(seen, default=0.0) < threshold,
    }

"""Repeated designs, with the real objective on tiny data and real Optuna studies: under
``repeats: skip`` a design sampled again takes its earlier trial's result with no range test
and no training; the search stops once nothing new is left to try."""

from __future__ import annotations

import json

import optuna
import pytest
import torch
from optuna.trial import TrialState

from search.config import parse_config
from search.method.optuna_samplers import MAX_CONSECUTIVE_REPEATS
from search.method.prepared_data import DataOnDevice
from search.record import PRUNE_REASON, REPEAT, TrialRecord
from search.service.objective import Objective
from search.service.repeats import RepeatGuard
from search.service.study import build_pruner, build_sampler
from tests.search.service.test_objective import tiny_dataset


def config(*, repeats: str | None = None, sampler: str = "random",
           objectives: list[str] | None = None, lr_range: list | None = None,
           **space: object):
    raw: dict = {
        "study": "repeats",
        "sampler": sampler,
        "dataset": {"name": "fashion-mnist"},  # the tiny data below stand in for it
        "space": {"blocks": [1], "filters": [4], "optimizer": ["adam"],
                  "lr_range": lr_range or [[1.0e-3, 3.0e-2]], "batch_size": [16],
                  "fc_units": [16], **space},
        "model": {"l2": 0.0},
        "lrrt": {"epochs": 1, "sma_periods": 4, "bound_rule": "smith_quarter",
                 "compare_rule": None},
        "pruner": {"warmup_trials": 100, "after_lrrt": "none"},
        "train": {"epochs": 2, "step_size_epochs": 1},
    }
    if repeats is not None:
        raw["repeats"] = repeats
    if objectives is not None:
        raw["objectives"] = objectives
    return parse_config(raw)


class Ran:
    """A progress display that notes which trials ran a range test and trained."""

    def __init__(self) -> None:
        self.current: int | None = None
        self.range_tested: set[int] = set()
        self.trained: set[int] = set()

    def trial_started(self, number: int, name: str, epochs: int) -> None:
        self.current = number

    def lrrt_step(self, step: int, total_steps: int, lr: float, loss: float) -> None:
        assert self.current is not None
        self.range_tested.add(self.current)

    def epoch(self, epoch: int, epochs: int, lr: float, accuracy: float) -> None:
        assert self.current is not None
        self.trained.add(self.current)


@pytest.fixture(scope="module")
def data() -> DataOnDevice:
    return DataOnDevice(tiny_dataset(), torch.device("cpu"), eval_batch_size=64)


def study_for(search_config, storage=None) -> optuna.Study:
    from search.method.objective_metrics import directions

    return optuna.create_study(directions=directions(search_config.objectives),
                               storage=storage, sampler=build_sampler(search_config),
                               pruner=build_pruner(search_config))


def test_a_repeated_design_takes_the_earlier_result_without_a_range_test_or_training(
    data: DataOnDevice, tmp_path,
) -> None:
    search_config = config(filters=[4, 8])
    assert search_config.repeats == "skip"  # the default
    study = study_for(search_config, storage=f"sqlite:///{tmp_path / 'repeats.db'}")
    ran = Ran()
    objective = Objective(search_config, data, study.pruner, progress=ran)
    study.enqueue_trial({"filters": 8})
    study.enqueue_trial({"filters": 8})
    study.optimize(objective, n_trials=2)

    first, second = (TrialRecord.from_frozen(t) for t in study.trials)
    assert first.state == second.state == TrialState.COMPLETE
    assert ran.range_tested == ran.trained == {0}  # trial 1 neither range-tested nor trained
    assert second.value == first.value and second.repeat_of == 0
    assert second.reason == "repeat of 0" and first.reason == ""
    assert second.config_name == first.config_name == "B1FL8Adam"
    assert second.lrrt is None and second.lr_bounds is None and not second.val_curve
    assert study.trials[1].intermediate_values == {}  # the pruners' curves: once
    assert study.best_trial.number == 0


def test_allow_trains_a_repeated_design_again(data: DataOnDevice) -> None:
    search_config = config(repeats="allow", filters=[4, 8])
    study = study_for(search_config)
    ran = Ran()
    objective = Objective(search_config, data, study.pruner, progress=ran)
    study.enqueue_trial({"filters": 4})
    study.enqueue_trial({"filters": 4})
    study.optimize(objective, n_trials=2)
    assert ran.range_tested == ran.trained == {0, 1}
    assert all(TrialRecord.from_frozen(t).repeat_of is None for t in study.trials)


def test_a_repeat_of_a_pruned_design_is_pruned_where_that_trial_was(
    data: DataOnDevice,
) -> None:
    # An LR so small the ramp cannot move the weights: the gate rejects it at chance.
    search_config = config(lr_range=[[1.0e-9, 2.0e-9]], optimizer=["sgd"], batch_size=[32])
    study = study_for(search_config)
    ran = Ran()
    objective = Objective(search_config, data, study.pruner, progress=ran)
    study.optimize(objective, n_trials=2)  # one design: no parameter sampled at all

    first, second = study.trials
    assert first.state == second.state == TrialState.PRUNED
    assert ran.range_tested == {0} and not ran.trained
    repeat = TrialRecord.from_frozen(second)
    assert repeat.repeat_of == 0 and repeat.reason == "repeat of 0"
    assert second.user_attrs[PRUNE_REASON] == REPEAT
    assert "chance_level" in repeat.detail
    assert second.intermediate_values == first.intermediate_values  # TPE ranks it alike


def test_a_multi_objective_repeat_takes_every_value(data: DataOnDevice) -> None:
    search_config = config(objectives=["val_accuracy", "n_params"], filters=[4, 8])
    study = study_for(search_config)
    objective = Objective(search_config, data, study.pruner, progress=Ran())
    study.enqueue_trial({"filters": 4})
    study.enqueue_trial({"filters": 4})
    study.optimize(objective, n_trials=2)
    first, second = study.trials
    assert second.values == first.values
    assert TrialRecord.from_frozen(second).repeat_of == 0


def test_tpe_stops_once_every_design_was_tried(data: DataOnDevice) -> None:
    search_config = config(sampler="tpe", filters=[4, 8])
    study = study_for(search_config)
    ran = Ran()
    objective = Objective(search_config, data, study.pruner, progress=ran)
    guard = RepeatGuard(search_config)
    study.optimize(objective, n_trials=30, callbacks=[guard])
    designs = {json.dumps(t.params, sort_keys=True) for t in study.trials}
    trained = [t.number for t in study.trials
               if TrialRecord.from_frozen(t).repeat_of is None]
    assert len(designs) == 2 and len(trained) == 2 and ran.trained == set(trained)
    assert len(study.trials) < 30
    assert guard.line == "search stops: all 2 designs of the space have been tried"
    assert guard.check(study) is not None  # a search started again stops at once


def test_grid_trains_each_design_once_where_grid_points_repeat_one(
    data: DataOnDevice,
) -> None:
    """momentum applies to SGD only: the grid's 4 points are 3 designs; each trains once
    and the search stops when the third has."""
    search_config = config(sampler="grid", optimizer=["adam", "sgd"], momentum=[0.0, 0.9])
    study = study_for(search_config)
    ran = Ran()
    objective = Objective(search_config, data, study.pruner, progress=ran)
    guard = RepeatGuard(search_config)
    study.optimize(objective, n_trials=50, callbacks=[guard])
    finished = [t for t in study.trials if t.state in (TrialState.COMPLETE,
                                                        TrialState.PRUNED)]
    trained = [t for t in finished if TrialRecord.from_frozen(t).repeat_of is None]
    assert len({json.dumps(t.params, sort_keys=True) for t in trained}) == len(trained) == 3
    assert ran.range_tested == {t.number for t in trained}
    assert len(study.trials) <= 4
    assert guard.line is not None and "all 3 designs" in guard.line


def test_a_sampler_that_keeps_repeating_is_stopped(data: DataOnDevice) -> None:
    search_config = config(filters=[4, 8, 16])
    study = study_for(search_config)
    ran = Ran()
    objective = Objective(search_config, data, study.pruner, progress=ran)
    for _ in range(MAX_CONSECUTIVE_REPEATS + 5):
        study.enqueue_trial({"filters": 4})
    guard = RepeatGuard(search_config)
    study.optimize(objective, n_trials=MAX_CONSECUTIVE_REPEATS + 5, callbacks=[guard])
    finished = [t for t in study.trials if t.state == TrialState.COMPLETE]
    assert len(finished) == MAX_CONSECUTIVE_REPEATS + 1 and ran.trained == {0}
    assert guard.line is not None
    assert f"{MAX_CONSECUTIVE_REPEATS} times in a row" in guard.line
    assert "1 of the 3 designs" in guard.line

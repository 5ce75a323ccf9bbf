"""A multi-objective search in this process: the study's directions and metric names, the
LRRT gate still rejecting designs that do not train (Optuna neither reports nor prunes such
trials), and each completed trial's values."""

from __future__ import annotations

import optuna
import pytest
import torch
from optuna.trial import TrialState

from data import ImageDataset
from search.config import parse_config
from search.errors import UserError
from search.method.prepared_data import DataOnDevice
from search.record import DIVERGED, TrialRecord
from search.service.objective import Objective
from search.service.study import open_search_study
from tests.search.conftest import TINY_CLASSES, quadrant_images


def config(objectives: list[str] | None = None):
    raw = {
        "study": "multi",
        "dataset": {"name": "fashion-mnist"},  # the data below stand in for it
        "space": {"blocks": [1], "filters": [2, 4], "optimizer": ["adam"],
                  "lr_range": [[1.0e-3, 3.0e-2], [5.0, 10.0]], "batch_size": [16],
                  "fc_units": [16]},
        "model": {"l2": 0.0},
        "lrrt": {"epochs": 2, "sma_periods": 4, "bound_rule": "smith_quarter",
                 "compare_rule": None},
        "pruner": {"warmup_trials": 100, "after_lrrt": "median", "min_usable_fraction": 0.5,
                   "after_lrrt_startup_trials": 0, "after_lrrt_warmup_epochs": 0},
        "train": {"epochs": 2, "step_size_epochs": 1},
    }
    if objectives is not None:
        raw["objectives"] = objectives
    return parse_config(raw)


@pytest.fixture(scope="module")
def data() -> DataOnDevice:
    train_images, train_labels = quadrant_images(256, seed=0)
    val_images, val_labels = quadrant_images(64, seed=1)
    dataset = ImageDataset("tiny", train_images, train_labels, val_images, val_labels,
                           tuple(str(k) for k in range(TINY_CLASSES)))
    return DataOnDevice(dataset, torch.device("cpu"), eval_batch_size=64)


@pytest.mark.parametrize("second", ["n_params", "latency_ms"])
def test_the_gate_rejects_and_the_rest_score_every_objective(data: DataOnDevice,
                                                              second: str) -> None:
    search = config(["val_accuracy", second])
    storage = optuna.storages.InMemoryStorage()
    study = open_search_study("multi", storage, search)
    assert [d.name for d in study.directions] == ["MAXIMIZE", "MINIMIZE"]
    assert study.metric_names == ["val_accuracy", second]
    for filters, lr_range in ((4, "0.001-0.03"), (2, "5-10"), (2, "0.001-0.03")):
        study.enqueue_trial({"filters": filters, "lr_range": lr_range})
    study.optimize(Objective(search, data, study.pruner), n_trials=3)  # type: ignore[arg-type]
    records = [TrialRecord.from_frozen(t) for t in study.trials]
    assert [r.state for r in records] == [TrialState.COMPLETE, TrialState.PRUNED,
                                          TrialState.COMPLETE]
    assert records[1].reason == DIVERGED and records[1].rejected_at_lrrt
    for record in (records[0], records[2]):
        assert len(record.values) == 2 and record.value == record.values[0]
        assert record.value == record.best_val_accuracy  # the epochs are recorded
        assert record.last_step is None  # nothing reported to Optuna
        assert not record.rejected_at_lrrt and record.trained_bounds is not None
        if second == "n_params":
            assert record.values[1] == record.n_params
        else:
            assert record.values[1] is not None and record.values[1] > 0
    if second == "n_params":
        assert records[0].values[1] > records[2].values[1]  # 4 filters against 2


def test_a_study_keeps_its_objectives(data: DataOnDevice) -> None:
    storage = optuna.storages.InMemoryStorage()
    open_search_study("multi", storage, config(["val_accuracy", "n_params"]))
    with pytest.raises(UserError):
        open_search_study("multi", storage, config())
    single = open_search_study("single", storage, config())
    assert [d.name for d in single.directions] == ["MAXIMIZE"]
    assert single.metric_names == ["val_accuracy"]  # not "Objective 0" in the dashboard

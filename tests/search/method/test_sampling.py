"""Sampling: the only place that calls trial.suggest_*; a TrialConfig rebuilds the design."""

from __future__ import annotations

from dataclasses import replace

import optuna

from search.config import load_config
from search.method.sampling import lr_range_label, sample_trial_config
from search.method.trial_config import TrialConfig
from tests.conftest import ROOT


def test_sampled_config_round_trips_and_keeps_the_data_seed() -> None:
    config = replace(load_config(ROOT / "configs/fashion-mnist.yaml"), seed=7)
    study = optuna.create_study(direction="maximize")
    trial = study.ask()
    sampled = sample_trial_config(trial, config)
    assert set(trial.params) == {"blocks", "filters", "optimizer", "lr_range"}
    assert sampled.data_seed == 7
    assert sampled.seed == 7 * 100_003 + trial.number
    assert TrialConfig.from_dict(sampled.to_dict()) == sampled
    assert lr_range_label(sampled.lr_range) == trial.params["lr_range"]


def test_fixed_trial_pins_every_dimension() -> None:
    config = load_config(ROOT / "configs/fashion-mnist.yaml")
    fixed = optuna.trial.FixedTrial({"blocks": 3, "filters": 16, "optimizer": "sgd",
                                     "lr_range": "0.01-0.1"})
    sampled = sample_trial_config(fixed, config)
    assert (sampled.architecture.blocks, sampled.architecture.filters) == (3, 16)
    assert sampled.lr_range == (0.01, 0.1)
    assert sampled.name == "B3FL16SGD"
    assert sampled.batch_size == 64  # a one-choice dimension is fixed, not sampled


def test_lr_range_labels_read_well() -> None:
    assert lr_range_label((1e-4, 1e-2)) == "0.0001-0.01"

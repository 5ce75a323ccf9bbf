"""Sampling: the only place that calls trial.suggest_*; a TrialConfig rebuilds the design."""

from __future__ import annotations

from dataclasses import replace

import optuna

from search.config import load_config
from search.config.space import lr_range_label
from search.method.suggest import sample_trial_config
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


# --------------------------------------------------------------------------- dimensions
def space_config(**space: object):
    """A config whose space is the thesis default plus ``space``."""
    from search.config import parse_config

    raw = {"study": "dims", "dataset": {"name": "fashion-mnist"},
           "space": {"optimizer": ["adam"], "lr_range": [[1.0e-4, 1.0e-2]], **space},
           "train": {"sgd_momentum": 0.9}}
    return parse_config(raw)


def test_the_default_space_is_the_thesis_design_and_training() -> None:
    """Every new dimension at its default: nothing more is sampled, and the design trains
    as it always did (momentum from train.sgd_momentum, triangular2, uniform batches)."""
    config = space_config(optimizer=["adam", "sgd"])
    trial = optuna.create_study().ask()
    sampled = sample_trial_config(trial, config)
    assert set(trial.params) == {"optimizer"}
    architecture = sampled.architecture
    assert (architecture.family, architecture.blocks, architecture.filters) == ("thesis", 2, 32)
    assert (architecture.activation, architecture.batch_norm, architecture.l1) == (
        "relu", "none", 0.0)
    assert architecture.l2 == config.model.l2
    assert (sampled.schedule, sampled.sampling, sampled.normalise) == (
        "triangular2", "uniform", False)
    assert not sampled.augmentation.enabled
    assert sampled.weight_decay == 0.0
    params = sampled.optimizer_params
    assert params.betas == (0.9, 0.999) and params.weight_decay == 0.0
    assert params.momentum == 0.9  # train.sgd_momentum (Adam has no use for it)
    assert sampled.name == f"B2FL32{'SGD' if sampled.optimizer == 'sgd' else 'Adam'}"


def test_each_dimension_reaches_the_trial_config() -> None:
    config = space_config(
        architecture=["thesis", "vgg"], depth=[11, 13], filters=[4, 8],
        activation=["relu", "relu6"], batch_norm=[False, "after"], l2=[0.0, 0.001],
        l1=[0.0, 1e-5], optimizer=["adam", "sgd"], momentum=[0.6, 0.9], beta1=[0.8, 0.9],
        beta2=[0.99, 0.999], weight_decay=[0.0, 1e-4], batch_size=[32, 64],
        normalise=[False, True], flip=[0.0, 0.5], translate=[0, 2], erase=[0.0, 0.25],
        schedule=["triangular2", "exponential"], sampling=["uniform", "adaptive"],
    )
    fixed = optuna.trial.FixedTrial({
        "architecture": "vgg", "depth": 13, "filters": 8, "activation": "relu6",
        "batch_norm": "after", "l2": 0.001, "l1": 1e-5, "optimizer": "sgd", "momentum": 0.6,
        "weight_decay": 1e-4, "batch_size": 32, "normalise": True, "flip": 0.5,
        "translate": 2, "erase": 0.25, "schedule": "exponential", "sampling": "adaptive",
        "dropout": 0.0,
    })
    sampled = sample_trial_config(fixed, config)
    architecture = sampled.architecture
    assert (architecture.family, architecture.depth, architecture.filters) == ("vgg", 13, 8)
    assert architecture.blocks is None  # thesis only: not sampled for vgg
    assert (architecture.activation, architecture.batch_norm) == ("relu6", "after")
    assert (architecture.l2, architecture.l1) == (0.001, 1e-5)
    assert sampled.name == "VGG13W8SGD"
    assert sampled.optimizer_params.momentum == 0.6 and sampled.weight_decay == 1e-4
    assert (sampled.beta1, sampled.beta2) == (None, None)  # Adam's only
    assert sampled.batch_size == 32 and sampled.normalise
    augmentation = sampled.augmentation
    assert (augmentation.flip_p, augmentation.translate_pad, augmentation.erase_p) == (
        0.5, 2, 0.25)
    assert sampled.schedule_settings.name == "exponential"
    assert sampled.sampling_settings.strategy == "adaptive"
    assert TrialConfig.from_dict(sampled.to_dict()) == sampled


def test_conditional_dimensions_are_sampled_only_where_they_apply() -> None:
    config = space_config(
        architecture=["thesis", "lenet5", "vgg", "resnet18"], blocks=[1, 2], depth=[11, 13],
        filters=[4, 8], optimizer=["adam", "sgd", "rmsprop"], momentum=[0.6, 0.9],
        beta1=[0.8, 0.9], beta2=[0.99, 0.999],
    )
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    seen = set()
    for _ in range(40):
        trial = study.ask()
        sampled = sample_trial_config(trial, config)
        family, optimizer = sampled.architecture.family, sampled.optimizer
        seen.add((family, optimizer))
        assert ("blocks" in trial.params) == (family == "thesis")
        assert ("depth" in trial.params) == (family == "vgg")
        assert ("filters" in trial.params) == (family in ("thesis", "vgg", "resnet18"))
        assert ("momentum" in trial.params) == (optimizer == "sgd")
        assert ("beta1" in trial.params) == ("beta2" in trial.params) == (optimizer == "adam")
        assert (sampled.momentum is None) == (optimizer != "sgd")
        study.tell(trial, 0.5)
    assert {family for family, _ in seen} == {"thesis", "lenet5", "vgg", "resnet18"}


def test_batch_norm_false_keeps_each_family_its_own() -> None:
    config = space_config(architecture=["thesis", "resnet18"], filters=[4])
    for family, expected in (("thesis", "none"), ("resnet18", "before")):
        fixed = optuna.trial.FixedTrial({"architecture": family})
        assert sample_trial_config(fixed, config).architecture.batch_norm == expected
    forced = space_config(architecture=["resnet18"], batch_norm=["none"], filters=[4])
    sampled = sample_trial_config(optuna.trial.FixedTrial({}), forced)
    assert sampled.architecture.batch_norm == "none"


def test_pretrained_keeps_its_backbone_layers() -> None:
    config = space_config(architecture=["pretrained"], activation=["relu6", "elu"],
                          batch_norm=["after"], weights=["none"], backbone=["resnet18"])
    trial = optuna.create_study().ask()
    sampled = sample_trial_config(trial, config)
    assert "activation" not in trial.params and "batch_norm" not in trial.params
    assert sampled.name == "ScratchResNet18Adam"


def test_a_legacy_design_reads_back_as_it_trained() -> None:
    """Exports written before the new dimensions: the thesis' training, SGD's momentum
    from train.sgd_momentum."""
    import json

    document = json.loads((ROOT / "tests/fixtures/legacy_study/export.json").read_text())
    for entry in document["configs"]:
        config = TrialConfig.from_dict(entry["config"])
        assert config.name == entry["name"]
        assert (config.schedule, config.sampling, config.normalise) == (
            "triangular2", "uniform", False)
        assert config.momentum is None
        assert config.optimizer_params.momentum == config.train.sgd_momentum == 0.9
        assert config.architecture.batch_norm == "none"

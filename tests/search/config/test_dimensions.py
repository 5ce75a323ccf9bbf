"""The space dimensions and settings added for issue 12 (families, activations, batch norm
places, optimizer parameters, normalisation, augmentation, schedules, batch sampling,
objectives): each checked like the others, each left out of a study's fingerprint at its
default, so studies made before them still open."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from search.config import load_config, parse_config
from search.errors import UserError
from tests.conftest import ROOT

BASE: dict[str, Any] = {
    "study": "dims",
    "dataset": {"name": "fashion-mnist"},
    "space": {"blocks": [2], "filters": [4], "optimizer": ["adam"],
              "lr_range": [[1.0e-4, 1.0e-2]]},
}

DEFAULTS: dict[str, Any] = {
    "space": {"architecture": ["thesis"], "depth": [11], "backbone": ["resnet50"],
              "weights": ["imagenet"], "activation": ["relu"], "l2": None, "l1": [0.0],
              "momentum": None, "beta1": [0.9], "beta2": [0.999], "weight_decay": [0.0],
              "normalise": [False], "flip": [0.0], "translate": [0], "erase": [0.0],
              "schedule": ["triangular2"], "sampling": ["uniform"]},
    "train": {"translate_mode": "reflect",
              "decay": {"gamma": None, "step_size": 10, "milestones": [15, 30]},
              "sampling": {"selection_pressure": 100.0, "beta": 10, "delta_p": 0.9,
                           "delta_q": 0.1}},
}


def config(**sections: dict) -> Any:
    raw = copy.deepcopy(BASE)
    for name, values in sections.items():
        raw.setdefault(name, {}).update(values)
    return parse_config(raw)


def error_of(**sections: dict) -> str:
    with pytest.raises(UserError) as raised:
        config(**sections)
    return str(raised.value)


def test_every_new_key_at_its_default_keeps_the_fingerprint() -> None:
    plain = config()
    written = config(space=DEFAULTS["space"], train=DEFAULTS["train"])
    assert written.fingerprint() == plain.fingerprint()
    explicit = parse_config({**copy.deepcopy(BASE), "objectives": ["val_accuracy"]})
    assert explicit.fingerprint() == plain.fingerprint()


@pytest.mark.parametrize("change", [
    {"space": {"architecture": ["thesis", "vgg"]}}, {"space": {"activation": ["relu6"]}},
    {"space": {"l2": [0.001]}}, {"space": {"momentum": [0.6]}},
    {"space": {"schedule": ["exponential"]}}, {"space": {"sampling": ["obs"]}},
    {"space": {"normalise": [True]}}, {"space": {"flip": [0.5]}},
    {"train": {"decay": {"gamma": 0.9}}}, {"train": {"sampling": {"beta": 5}}},
    {"train": {"translate_mode": "zero"}},
])
def test_a_new_key_away_from_its_default_changes_the_fingerprint(change: dict) -> None:
    assert config(**change).fingerprint() != config().fingerprint()


def test_objectives() -> None:
    assert config().objectives == ("val_accuracy",) and not config().multi_objective
    raw = {**copy.deepcopy(BASE), "objectives": ["val_accuracy", "latency_ms"]}
    both = parse_config(raw)
    assert both.objectives == ("val_accuracy", "latency_ms") and both.multi_objective
    assert parse_config(raw).fingerprint() != config().fingerprint()
    for bad in (["n_params"], ["val_accuracy", "n_params", "latency_ms"],
                ["val_accuracy", "val_accuracy"], ["val_accuracy", "flops"]):
        with pytest.raises(UserError, match="'objectives"):
            parse_config({**copy.deepcopy(BASE), "objectives": bad})


def test_new_dimensions_are_checked_like_the_others() -> None:
    assert "space.architecture[0]" in error_of(space={"architecture": ["alexnet"]})
    assert "space.activation[0]" in error_of(space={"activation": ["gelu"]})
    assert "space.depth[0]" in error_of(space={"depth": [12]})
    assert "space.momentum[0]" in error_of(space={"momentum": [1.0]})
    assert "space.translate[0]" in error_of(space={"translate": [-1]})
    assert "space.schedule[0]" in error_of(space={"schedule": ["cosine"]})
    assert "space.sampling[0]" in error_of(space={"sampling": ["importance"]})
    assert "train.decay.milestones" in error_of(train={"decay": {"milestones": [30, 15]}})
    assert "train.sampling.selection_pressure" in error_of(
        train={"sampling": {"selection_pressure": 0.5}})
    assert "space.l2" in error_of(space={"l2": [2.0]})


def test_batch_norm_takes_places_and_booleans() -> None:
    space = config(space={"batch_norm": [False, "Before", "after", True]}).space
    assert space.batch_norm == (False, "before", "after", True)


def test_blocks_and_filters_default_to_the_thesis_best_design() -> None:
    raw = copy.deepcopy(BASE)
    del raw["space"]["blocks"], raw["space"]["filters"]
    space = parse_config(raw).space
    assert (space.blocks, space.filters) == ((2,), (32,))


@pytest.mark.parametrize("name", ["cifar10-resnet18-seed002.yaml",
                                  "fashion-mnist-multiobjective.yaml"])
def test_shipped_issue_12_configs(name: str) -> None:
    loaded = load_config(ROOT / "configs" / name)
    if "seed002" in name:
        space = loaded.space
        assert (space.architecture, space.activation, space.optimizer) == (
            ("resnet18",), ("relu6",), ("sgd",))
        assert (space.momentum, space.batch_size, space.schedule) == (
            (0.6,), (64,), ("exponential",))
        assert loaded.train.epochs == 25
    else:
        assert loaded.objectives == ("val_accuracy", "n_params")
        assert loaded.n_trials is not None and loaded.n_trials >= 8

"""A study's fingerprint: equal for equal settings, different for another search, blind to
its budget and seed and to keys added since at their defaults; the keys that differ named."""

from __future__ import annotations

import re
from typing import Any

import pytest

from search.config import (
    parse_config,
)
from tests.search.config.conftest import (
    raw,
)


def test_fingerprint_is_stable_for_equal_configs() -> None:
    first = parse_config(raw())
    second = parse_config(raw())
    assert first.fingerprint() == second.fingerprint()
    # key order in the YAML does not matter
    reordered = dict(reversed(list(raw().items())))
    assert parse_config(reordered).fingerprint() == first.fingerprint()
    assert re.fullmatch(r"[0-9a-f]{16}", first.fingerprint())


@pytest.mark.parametrize(
    "changes",
    [{"space__blocks": [2, 4]}, {"space__lr_range": [[1e-4, 1e-2]]}, {"sampler": "random"},
     {"lrrt__epochs": 2}, {"dataset__name": "mnist"}],
)
def test_fingerprint_differs_for_different_configs(changes: dict[str, Any]) -> None:
    assert parse_config(raw(**changes)).fingerprint() != parse_config(raw()).fingerprint()


@pytest.mark.parametrize(
    "changes",
    [{"n_trials": 50}, {"seed": 7}, {"dataset__download": True},
     {"n_trials": 3, "seed": 1}],
)
def test_budget_and_seed_are_not_part_of_the_fingerprint(changes: dict[str, Any]) -> None:
    """A study is resumed with another budget or seed; the legacy fingerprint (what studies
    made before stored) still tells them apart."""
    changed, plain = parse_config(raw(**changes)), parse_config(raw())
    assert changed.fingerprint() == plain.fingerprint()
    assert changed.legacy_fingerprint() != plain.legacy_fingerprint()


def test_identity_differences_name_the_keys_with_both_values() -> None:
    from search.config.settings import identity_differences

    stored = parse_config(raw())
    new = parse_config(raw(space__blocks=[4], train={"epochs": 3, "decay": {"gamma": 0.5}},
                           n_trials=9, seed=3))
    assert identity_differences(stored, new) == [
        ("space.blocks", (2, 3), (4,)),
        ("train.epochs", 50, 3),
        ("train.decay.gamma", None, 0.5),
    ]
    assert identity_differences(stored, parse_config(raw(n_trials=9))) == []


def test_dataset_split_is_a_later_key_left_out_of_the_fingerprint_at_its_default() -> None:
    """Studies made before ``dataset.split`` existed keep their fingerprint: absent, or at
    its default (holdout), the new keys change nothing; any other value does."""
    config = parse_config(raw())
    assert config.dataset.split == "holdout"
    assert config.dataset.val_fraction is None and config.dataset.test_fraction is None
    default = parse_config(raw(dataset={"name": "fashion-mnist", "split": "holdout",
                                        "val_fraction": None, "test_fraction": None}))
    assert default.fingerprint() == config.fingerprint()
    for changed in ({"split": "thesis"}, {"val_fraction": 0.2}):
        other = parse_config(raw(dataset={"name": "fashion-mnist", **changed}))
        assert other.fingerprint() != config.fingerprint()
    assert parse_config(raw(dataset__split="THESIS")).dataset.split == "thesis"

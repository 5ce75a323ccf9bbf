"""The samplers by name: grid and brute_force enumerate a small space, each design once, then
stop; the count of designs follows the sampling's rules; a grid too large is a config error."""

from __future__ import annotations

import json

import optuna
import pytest

from search.config import parse_config
from search.config.space import design_count, grid_points
from search.errors import UserError
from search.method.optuna_samplers import MAX_GRID_POINTS, SAMPLERS
from search.method.suggest import sample_trial_config
from search.service.study import build_sampler


def space_config(sampler: str, **space: object):
    raw = {"study": "samplers", "dataset": {"name": "fashion-mnist"}, "sampler": sampler,
           "space": {"optimizer": ["adam"], "lr_range": [[1.0e-4, 1.0e-2]], **space}}
    return parse_config(raw)


def enumerate_designs(config, n_trials: int = 200) -> list[str]:
    """Run the config's sampler against an objective that only samples: the designs it
    tried, in order (each as its sampled parameters)."""
    study = optuna.create_study(direction="maximize", sampler=build_sampler(config))

    def objective(trial: optuna.Trial) -> float:
        sample_trial_config(trial, config)
        return 0.0

    study.optimize(objective, n_trials=n_trials)
    return [json.dumps(t.params, sort_keys=True) for t in study.trials]


def test_the_registry_offers_the_samplers_of_a_small_categorical_space() -> None:
    assert set(SAMPLERS) == {"tpe", "random", "grid", "brute_force"}


def test_grid_tries_every_design_of_a_small_space_once_then_stops() -> None:
    config = space_config("grid", blocks=[2, 3, 4], filters=[4, 8],
                          lr_range=[[1.0e-4, 1.0e-2], [1.0e-2, 1.0e-1]])
    assert design_count(config) == grid_points(config) == 12
    designs = enumerate_designs(config)
    assert len(designs) == 12 and len(set(designs)) == 12  # stopped by itself, no repeat


def test_grid_order_is_the_study_seed_s_in_every_process() -> None:
    """Optuna numbers grid points by their place in the shuffled grid, so every process of a
    study must shuffle alike: the process's own seed does not change the order."""
    config = space_config("grid", blocks=[2, 3, 4], filters=[4, 8])
    first = build_sampler(config)
    other = build_sampler(config, seed=12345)
    assert first._all_grids == other._all_grids  # type: ignore[attr-defined]


def test_brute_force_follows_conditional_dimensions_each_design_once() -> None:
    """momentum applies to SGD only, beta1 to Adam only: 2 + 3 designs, not 2 x 2 x 3."""
    config = space_config("brute_force", optimizer=["adam", "sgd"], momentum=[0.0, 0.9],
                          beta1=[0.8, 0.85, 0.9])
    assert design_count(config) == 5 and grid_points(config) == 12
    designs = enumerate_designs(config)
    assert len(designs) == 5 and len(set(designs)) == 5


def test_design_count_matches_an_enumeration_of_a_mixed_space() -> None:
    config = space_config("brute_force", architecture=["thesis", "lenet5", "vgg"],
                          blocks=[1, 2], depth=[11, 13], activation=["relu", "elu"],
                          optimizer=["adam", "sgd", "rmsprop"], momentum=[0.0, 0.5])
    designs = enumerate_designs(config, n_trials=500)
    assert len(set(designs)) == len(designs) == design_count(config)


def test_a_grid_too_large_to_hold_is_a_one_line_config_error() -> None:
    with pytest.raises(UserError) as caught:
        space_config("grid", blocks=list(range(1, 9)), filters=list(range(1, 101)),
                     dropout=[i / 1000 for i in range(200)])
    message = str(caught.value)
    assert "'sampler'" in message and str(MAX_GRID_POINTS) in message
    assert "\n" not in message
    # The same space is fine for a sampler that does not hold a grid.
    assert space_config("brute_force", blocks=list(range(1, 9)),
                        filters=list(range(1, 101)), dropout=[0.0, 0.5]).sampler == \
        "brute_force"


def test_the_repeat_policy_is_not_part_of_a_study_s_identity() -> None:
    """A study searched with repeats: allow may go on under skip, and back."""
    skip = space_config("tpe")
    allow = parse_config({**skip.raw, "repeats": "allow"})
    assert (skip.repeats, allow.repeats) == ("skip", "allow")
    assert allow.fingerprint() == skip.fingerprint()

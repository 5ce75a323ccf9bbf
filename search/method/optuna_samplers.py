"""Samplers by the name the YAML uses: the registry the config validates against.

A factory takes the process's sampler seed, the study's seed (the config's) and the
space's sampled dimensions (``search.config.space.sampled_dimensions``). ``tpe`` and
``random`` draw designs and may draw one twice; ``grid`` and ``brute_force`` enumerate the
space, each design once, and stop the search when they have tried them all (Optuna's own
``study.stop()``).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import optuna

TPE_STARTUP_TRIALS = 5

MAX_GRID_POINTS = 100_000
"""Most points ``grid`` may enumerate: Optuna's ``GridSampler`` holds all of them in memory
(a larger space: ``brute_force``, which walks only the combinations that apply)."""

SamplerFactory = Callable[[int, int, Mapping[str, Sequence[Any]]], optuna.samplers.BaseSampler]


def _tpe(seed: int, _study_seed: int, _dimensions: Mapping[str, Sequence[Any]]
         ) -> optuna.samplers.BaseSampler:
    # constant_liar: processes sharing a study treat each other's running trials as bad
    # results, so they do not all sample next to the same promising design.
    return optuna.samplers.TPESampler(seed=seed, constant_liar=True,
                                      n_startup_trials=TPE_STARTUP_TRIALS)


def _random(seed: int, _study_seed: int, _dimensions: Mapping[str, Sequence[Any]]
            ) -> optuna.samplers.BaseSampler:
    return optuna.samplers.RandomSampler(seed=seed)


def _grid(_seed: int, study_seed: int, dimensions: Mapping[str, Sequence[Any]]
          ) -> optuna.samplers.BaseSampler:
    """Every combination of the sampled dimensions' choices, in an order shuffled by the
    study's seed. Every process of a study shuffles alike (Optuna numbers grid points by
    their place in that order, and skips those any process has finished), so the
    process's own seed is not used."""
    return optuna.samplers.GridSampler({name: list(values) for name, values in
                                        dimensions.items()}, seed=study_seed)


def _brute_force(seed: int, _study_seed: int, _dimensions: Mapping[str, Sequence[Any]]
                 ) -> optuna.samplers.BaseSampler:
    """Optuna's define-by-run enumeration: it follows the parameters a design suggests, so
    a dimension that does not apply (``momentum`` for Adam) multiplies nothing."""
    with warnings.catch_warnings():  # experimental in Optuna: not the user's concern
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.samplers.BruteForceSampler(seed=seed)


SAMPLERS: dict[str, SamplerFactory] = {
    "tpe": _tpe,
    "random": _random,
    "grid": _grid,
    "brute_force": _brute_force,
}

EXHAUSTIVE_SAMPLERS = ("grid", "brute_force")
"""Samplers that enumerate the space rather than draw from it."""

REPEAT_POLICIES = ("skip", "allow")
"""What a trial that samples a design already tried does (the config's ``repeats``):
``skip`` finishes it at once with the earlier trial's result
(``search.service.repeats``), ``allow`` trains it again (seed-variance studies)."""

MAX_CONSECUTIVE_REPEATS = 20
"""Under ``repeats: skip``, a ``tpe`` or ``random`` search stops after this many repeats in a
row: the sampler keeps proposing designs already tried, though some are left."""


def make_sampler(name: str, *, seed: int, study_seed: int,
                 dimensions: Mapping[str, Sequence[Any]]) -> optuna.samplers.BaseSampler:
    return SAMPLERS[name](seed, study_seed, dimensions)

"""Samplers by the name the YAML uses: the registry the config validates against."""

from __future__ import annotations

from collections.abc import Callable

import optuna

TPE_STARTUP_TRIALS = 5

SAMPLERS: dict[str, Callable[[int], optuna.samplers.BaseSampler]] = {
    # constant_liar: processes sharing a study treat each other's running trials as bad
    # results, so they do not all sample next to the same promising design.
    "tpe": lambda seed: optuna.samplers.TPESampler(seed=seed, constant_liar=True,
                                                   n_startup_trials=TPE_STARTUP_TRIALS),
    "random": lambda seed: optuna.samplers.RandomSampler(seed=seed),
}

"""The only place that calls ``trial.suggest_*``: search space in, ``TrialConfig`` out.

A dimension is sampled only when it has more than one choice and applies to the design
drawn so far (``search.config.space`` says what applies to which design, and holds the
space's arithmetic: choices, grid points, distinct designs), so every parameter Optuna
records means something for its trial. Parameter names are the space's keys, so the
dashboard's columns read as the YAML does.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import optuna

from models import FAMILY_FIELDS, Architecture
from search.config import SearchConfig
from search.config.space import FIXED_LAYER_FAMILIES, dimension_choices, lr_range_label
from search.method.optimizers import (
    BETAS_OPTIMIZERS,
    LR_FREE_BOUNDS,
    MOMENTUM_OPTIMIZERS,
    lr_free_ramp,
)
from search.method.trial_config import TrialConfig


def _pick(trial: optuna.trial.BaseTrial, name: str,
          choices: Mapping[str, tuple[Any, ...]]) -> Any:
    values = choices[name]
    return values[0] if len(values) == 1 else trial.suggest_categorical(name, list(values))


def _architecture(trial: optuna.trial.BaseTrial,
                  choices: Mapping[str, tuple[Any, ...]]) -> Architecture:
    family = str(_pick(trial, "architecture", choices))
    values: dict[str, Any] = {"family": family}
    for name in FAMILY_FIELDS[family]:  # the fields that shape it: space keys of that name
        values[name] = _pick(trial, name, choices)
    if family not in FIXED_LAYER_FAMILIES:
        values["activation"] = _pick(trial, "activation", choices)
        batch_norm = _pick(trial, "batch_norm", choices)
        # false: no batch norm added, so each family keeps its own (none; the ResNets' before)
        values["batch_norm"] = None if batch_norm is False else batch_norm
    return Architecture(
        **values,
        dropout=float(_pick(trial, "dropout", choices)),
        l2=float(_pick(trial, "l2", choices)),
        l1=float(_pick(trial, "l1", choices)),
    )


def sample_trial_config(trial: optuna.trial.BaseTrial, config: SearchConfig,
                        data_seed: int | None = None) -> TrialConfig:
    """Sample one design; the run seed derives from the config's seed and the trial number
    so a retried trial rebuilds the same initial weights. ``data_seed``: the seed of the
    images it trains on, the study's (``DataOnDevice.data_seed``); default the config's."""
    choices = dimension_choices(config)
    ranges = {lr_range_label(r): r for r in config.space.lr_range}
    architecture = _architecture(trial, choices)
    optimizer = str(_pick(trial, "optimizer", choices))
    momentum = beta1 = beta2 = None
    if optimizer in MOMENTUM_OPTIMIZERS:
        momentum = float(_pick(trial, "momentum", choices))
    if optimizer in BETAS_OPTIMIZERS:
        beta1 = float(_pick(trial, "beta1", choices))
        beta2 = float(_pick(trial, "beta2", choices))
    return TrialConfig(
        dataset=config.dataset,
        architecture=architecture,
        optimizer=optimizer,
        lr_range=(lr_free_ramp(optimizer) if optimizer in LR_FREE_BOUNDS
                  else ranges[str(_pick(trial, "lr_range", choices))]),
        batch_size=int(_pick(trial, "batch_size", choices)),
        seed=config.seed * 100_003 + trial.number,
        lrrt=config.lrrt,
        train=config.train,
        data_seed=config.seed if data_seed is None else data_seed,
        schedule=str(_pick(trial, "schedule", choices)),
        sampling=str(_pick(trial, "sampling", choices)),
        normalise=bool(_pick(trial, "normalise", choices)),
        flip=float(_pick(trial, "flip", choices)),
        translate=int(_pick(trial, "translate", choices)),
        erase=float(_pick(trial, "erase", choices)),
        momentum=momentum,
        beta1=beta1,
        beta2=beta2,
        weight_decay=float(_pick(trial, "weight_decay", choices)),
    )

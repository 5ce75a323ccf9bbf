"""The only place that calls ``trial.suggest_*``: search space in, ``TrialConfig`` out.

A dimension is sampled only when it has more than one choice and applies to the design
drawn so far, so every parameter Optuna records means something for its trial:

- ``architecture`` picks the family; ``blocks`` applies to thesis designs only, ``filters``
  to thesis, vgg and resnet18, ``fc_units`` to thesis and vgg, ``depth`` to vgg,
  ``backbone`` and ``weights`` to pretrained; ``activation`` and ``batch_norm`` to every
  family but pretrained (its backbone keeps its own layers);
- ``momentum`` applies to SGD only, ``beta1`` and ``beta2`` to Adam and AdamW only.

Parameter names are the space's keys, so the dashboard's columns read as the YAML does.
``dimension_choices`` is the one table of what each parameter may take: the sampling reads
it, and so do the grid sampler's search space (``sampled_dimensions``) and the count of the
space's distinct designs (``design_count``), which follows the same rules of what applies.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import optuna

from models import FAMILY_FIELDS, Architecture
from search.config import SearchConfig
from search.method.optimizers import BETAS_OPTIMIZERS, MOMENTUM_OPTIMIZERS
from search.method.trial_config import TrialConfig

_FIXED_LAYERS = ("pretrained",)
"""Families whose activation and batch norm are their backbone's, not the space's."""


def lr_range_label(lr_range: tuple[float, float]) -> str:
    """Categorical label for a range, readable in the dashboard: ``'0.0001-0.01'``."""
    return f"{lr_range[0]:g}-{lr_range[1]:g}"


def dimension_choices(config: SearchConfig) -> dict[str, tuple[Any, ...]]:
    """Every dimension's choices under its parameter name, as the sampling offers them to
    ``trial.suggest_categorical`` (``lr_range`` as its labels; ``l2`` and ``momentum``
    falling back to ``model.l2`` and ``train.sgd_momentum``). A dimension with one choice is
    fixed, never suggested."""
    space = config.space
    choices: dict[str, tuple[Any, ...]] = {
        name: tuple(getattr(space, name)) for name in _PLAIN_DIMENSIONS}
    choices["l2"] = tuple(space.l2 or (config.model.l2,))
    choices["momentum"] = tuple(space.momentum or (config.train.sgd_momentum,))
    choices["lr_range"] = tuple(lr_range_label(r) for r in space.lr_range)
    return choices


_PLAIN_DIMENSIONS = (
    "architecture", "blocks", "filters", "fc_units", "depth", "backbone", "weights",
    "activation", "batch_norm", "dropout", "l1", "optimizer", "beta1", "beta2",
    "batch_size", "schedule", "sampling", "normalise", "flip", "translate", "erase",
    "weight_decay",
)
"""The dimensions whose choices are the space's key of that name, as written."""


def sampled_dimensions(config: SearchConfig) -> dict[str, list[Any]]:
    """The dimensions a trial may suggest (more than one choice) and their choices: the
    search space of Optuna's ``GridSampler``. A dimension that applies to some designs only
    (``momentum``: SGD) is in it too; the grid then holds points that differ only there,
    which are one design (``design_count`` counts designs, not grid points)."""
    return {name: list(values) for name, values in dimension_choices(config).items()
            if len(values) > 1}


def grid_points(config: SearchConfig) -> int:
    """How many points ``GridSampler`` enumerates: the product of every sampled
    dimension's number of choices."""
    return math.prod(len(values) for values in sampled_dimensions(config).values())


def design_count(config: SearchConfig) -> int:
    """How many distinct designs (distinct sets of sampled parameters) the space holds,
    counting a dimension only where it applies, as ``sample_trial_config`` samples."""
    choices = dimension_choices(config)

    def count(*names: str) -> int:
        return math.prod(len(choices[name]) for name in names)

    architectures = sum(
        count(*FAMILY_FIELDS[family])
        * (1 if family in _FIXED_LAYERS else count("activation", "batch_norm"))
        for family in choices["architecture"])
    optimizers = sum(
        (count("momentum") if optimizer in MOMENTUM_OPTIMIZERS else 1)
        * (count("beta1", "beta2") if optimizer in BETAS_OPTIMIZERS else 1)
        for optimizer in choices["optimizer"])
    rest = count("dropout", "l2", "l1", "lr_range", "batch_size", "schedule", "sampling",
                 "normalise", "flip", "translate", "erase", "weight_decay")
    return architectures * optimizers * rest


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
    if family not in _FIXED_LAYERS:
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
        lr_range=ranges[str(_pick(trial, "lr_range", choices))],
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

"""The search space's arithmetic: what each parameter may take, which dimensions a trial
suggests, how many points a grid holds and how many distinct designs the space has.

``dimension_choices`` is the one table of what each parameter may take: the sampling
(``search.method.suggest``) reads it, and so do the grid sampler's search space
(``sampled_dimensions``) and the count of the space's distinct designs (``design_count``),
which follows the same rules of what applies to a design as the sampling:

- ``architecture`` picks the family; ``blocks`` applies to thesis designs only, ``filters``
  to thesis, vgg and resnet18, ``fc_units`` to thesis and vgg, ``depth`` to vgg,
  ``backbone`` and ``weights`` to pretrained (``models.FAMILY_FIELDS``); ``activation`` and
  ``batch_norm`` to every family but pretrained (``FIXED_LAYER_FAMILIES``);
- ``momentum`` applies to SGD only, ``beta1`` and ``beta2`` to Adam and AdamW only.

Parameter names are the space's keys, so the dashboard's columns read as the YAML does.
"""

from __future__ import annotations

import math
from typing import Any

from models import FAMILY_FIELDS
from search.config.settings import SearchConfig
from search.method.optimizers import BETAS_OPTIMIZERS, LR_FREE_BOUNDS, MOMENTUM_OPTIMIZERS

FIXED_LAYER_FAMILIES = ("pretrained",)
"""Families whose activation and batch norm are their backbone's, not the space's."""

PLAIN_DIMENSIONS = (
    "architecture", "blocks", "filters", "fc_units", "depth", "backbone", "weights",
    "activation", "batch_norm", "dropout", "l1", "optimizer", "beta1", "beta2",
    "batch_size", "schedule", "sampling", "normalise", "flip", "translate", "erase",
    "weight_decay",
)
"""The dimensions whose choices are the space's key of that name, as written."""


def lr_range_label(lr_range: tuple[float, float]) -> str:
    """Categorical label for a range, readable in the dashboard: ``'0.0001-0.01'``."""
    return f"{lr_range[0]:g}-{lr_range[1]:g}"


def lrrt_group(dataset: str, lr_range: tuple[float, float]) -> str:
    """``dataset|lr_range``: the peers a design's range test is compared with (the thesis'
    groups of tables 4.1-4.5)."""
    return f"{dataset}|{lr_range_label(lr_range)}"


def dimension_choices(config: SearchConfig) -> dict[str, tuple[Any, ...]]:
    """Every dimension's choices under its parameter name, as the sampling offers them to
    ``trial.suggest_categorical`` (``lr_range`` as its labels; ``l2`` and ``momentum``
    falling back to ``model.l2`` and ``train.sgd_momentum``). A dimension with one choice is
    fixed, never suggested."""
    space = config.space
    choices: dict[str, tuple[Any, ...]] = {
        name: tuple(getattr(space, name)) for name in PLAIN_DIMENSIONS}
    choices["l2"] = tuple(space.l2 or (config.model.l2,))
    choices["momentum"] = tuple(space.momentum or (config.train.sgd_momentum,))
    choices["lr_range"] = tuple(lr_range_label(r) for r in space.lr_range)
    return choices


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
        * (1 if family in FIXED_LAYER_FAMILIES else count("activation", "batch_norm"))
        for family in choices["architecture"])
    optimizers = sum(
        (count("momentum") if optimizer in MOMENTUM_OPTIMIZERS else 1)
        * (count("beta1", "beta2") if optimizer in BETAS_OPTIMIZERS else 1)
        * (1 if optimizer in LR_FREE_BOUNDS else count("lr_range"))
        for optimizer in choices["optimizer"])
    rest = count("dropout", "l2", "l1", "batch_size", "schedule", "sampling",
                 "normalise", "flip", "translate", "erase", "weight_decay")
    return architectures * optimizers * rest

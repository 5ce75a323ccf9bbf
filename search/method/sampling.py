"""The only place that calls ``trial.suggest_*``: search space in, ``TrialConfig`` out.

A dimension is sampled only when it has more than one choice and applies to the design
drawn so far, so every parameter Optuna records means something for its trial:

- ``architecture`` picks the family; ``blocks`` applies to thesis designs only, ``filters``
  to thesis, vgg and resnet18, ``fc_units`` to thesis and vgg, ``depth`` to vgg,
  ``backbone`` and ``weights`` to pretrained; ``activation`` and ``batch_norm`` to every
  family but pretrained (its backbone keeps its own layers);
- ``momentum`` applies to SGD only, ``beta1`` and ``beta2`` to Adam and AdamW only.

Parameter names are the space's keys, so the dashboard's columns read as the YAML does.
"""

from __future__ import annotations

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


def _pick(trial: optuna.trial.BaseTrial, name: str, choices: tuple) -> Any:
    return choices[0] if len(choices) == 1 else trial.suggest_categorical(name, list(choices))


def _architecture(trial: optuna.trial.BaseTrial, config: SearchConfig) -> Architecture:
    space = config.space
    family = str(_pick(trial, "architecture", space.architecture))
    values: dict[str, Any] = {"family": family}
    for name in FAMILY_FIELDS[family]:  # the fields that shape it: space keys of that name
        values[name] = _pick(trial, name, getattr(space, name))
    if family not in _FIXED_LAYERS:
        values["activation"] = _pick(trial, "activation", space.activation)
        batch_norm = _pick(trial, "batch_norm", space.batch_norm)
        # false: no batch norm added, so each family keeps its own (none; the ResNets' before)
        values["batch_norm"] = None if batch_norm is False else batch_norm
    return Architecture(
        **values,
        dropout=float(_pick(trial, "dropout", space.dropout)),
        l2=float(_pick(trial, "l2", space.l2 or (config.model.l2,))),
        l1=float(_pick(trial, "l1", space.l1)),
    )


def sample_trial_config(trial: optuna.trial.BaseTrial, config: SearchConfig) -> TrialConfig:
    """Sample one design; the run seed derives from the study seed and the trial number so
    a retried trial rebuilds the same initial weights."""
    space = config.space
    labels = tuple(lr_range_label(r) for r in space.lr_range)
    ranges = dict(zip(labels, space.lr_range, strict=True))
    architecture = _architecture(trial, config)
    optimizer = str(_pick(trial, "optimizer", space.optimizer))
    momentum = beta1 = beta2 = None
    if optimizer in MOMENTUM_OPTIMIZERS:
        momentum = float(_pick(trial, "momentum",
                               space.momentum or (config.train.sgd_momentum,)))
    if optimizer in BETAS_OPTIMIZERS:
        beta1 = float(_pick(trial, "beta1", space.beta1))
        beta2 = float(_pick(trial, "beta2", space.beta2))
    return TrialConfig(
        dataset=config.dataset,
        architecture=architecture,
        optimizer=optimizer,
        lr_range=ranges[str(_pick(trial, "lr_range", labels))],
        batch_size=int(_pick(trial, "batch_size", space.batch_size)),
        seed=config.seed * 100_003 + trial.number,
        lrrt=config.lrrt,
        train=config.train,
        data_seed=config.seed,
        schedule=str(_pick(trial, "schedule", space.schedule)),
        sampling=str(_pick(trial, "sampling", space.sampling)),
        normalise=bool(_pick(trial, "normalise", space.normalise)),
        flip=float(_pick(trial, "flip", space.flip)),
        translate=int(_pick(trial, "translate", space.translate)),
        erase=float(_pick(trial, "erase", space.erase)),
        momentum=momentum,
        beta1=beta1,
        beta2=beta2,
        weight_decay=float(_pick(trial, "weight_decay", space.weight_decay)),
    )

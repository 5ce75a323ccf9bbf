"""The only place that calls ``trial.suggest_*``: search space in, ``TrialConfig`` out."""

from __future__ import annotations

import optuna

from models import Architecture
from search.config import SearchConfig
from search.method.trial_config import TrialConfig


def lr_range_label(lr_range: tuple[float, float]) -> str:
    """Categorical label for a range, readable in the dashboard: ``'0.0001-0.01'``."""
    return f"{lr_range[0]:g}-{lr_range[1]:g}"


def _pick(trial: optuna.trial.BaseTrial, name: str, choices: tuple) -> object:
    return choices[0] if len(choices) == 1 else trial.suggest_categorical(name, list(choices))


def sample_trial_config(trial: optuna.trial.BaseTrial, config: SearchConfig) -> TrialConfig:
    """Sample one design; the run seed derives from the study seed and the trial number so
    a retried trial rebuilds the same initial weights."""
    space = config.space
    labels = tuple(lr_range_label(r) for r in space.lr_range)
    ranges = dict(zip(labels, space.lr_range, strict=True))
    architecture = Architecture(
        blocks=int(_pick(trial, "blocks", space.blocks)),
        filters=int(_pick(trial, "filters", space.filters)),
        fc_units=_pick(trial, "fc_units", space.fc_units),  # type: ignore[arg-type]
        batch_norm=bool(_pick(trial, "batch_norm", space.batch_norm)),
        dropout=float(_pick(trial, "dropout", space.dropout)),  # type: ignore[arg-type]
        l2=config.model.l2,
    )
    return TrialConfig(
        dataset=config.dataset,
        architecture=architecture,
        optimizer=str(_pick(trial, "optimizer", space.optimizer)),
        lr_range=ranges[str(_pick(trial, "lr_range", labels))],
        batch_size=int(_pick(trial, "batch_size", space.batch_size)),
        seed=config.seed * 100_003 + trial.number,
        lrrt=config.lrrt,
        train=config.train,
        data_seed=config.seed,
    )

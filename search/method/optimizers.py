"""Optimizers by name, with the Keras-style L2 kernel penalty as coupled weight decay.

``l2 * sum(w**2)`` in the loss has gradient ``2 * l2 * w``: exactly torch's coupled
``weight_decay = 2 * l2`` for SGD, Adam, RMSprop, Adagrad and Adadelta, without an extra
pass over the weights. AdamW's weight decay is decoupled (its point), so there ``2 * l2`` is
a decoupled decay of the kernels, as it has always been here.

Each optimizer takes the parameters a design samples (``OptimizerParams``): SGD's
``momentum``, Adam's and AdamW's ``betas``, and a ``weight_decay`` on every parameter
(seed 002's grid), added to the kernels' ``2 * l2``. Unset, each is the optimizer's value
of the thesis (Keras' epsilon and RMSprop rho) or torch's default.

``OPTIMIZERS`` is the registry the config validates against: adding one here is all it takes.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch

from models import ThesisCNN

ParamGroups = list[dict[str, Any]]


@dataclass(frozen=True)
class OptimizerParams:
    """The optimizer's own hyperparameters; those an optimizer has no use for are ignored."""

    momentum: float = 0.0
    """SGD's momentum (seed 002: 0.6-0.9)."""
    betas: tuple[float, float] = (0.9, 0.999)
    """Adam's and AdamW's moment decays (the thesis': Keras' 0.9, 0.999)."""
    weight_decay: float = 0.0
    """Weight decay on every parameter, on top of the kernels' L2 (``2 * l2``)."""

    def __post_init__(self) -> None:
        if not 0.0 <= self.momentum < 1.0:
            raise ValueError(f"momentum must be in [0, 1), got {self.momentum!r}")
        if len(self.betas) != 2 or not all(0.0 <= beta < 1.0 for beta in self.betas):
            raise ValueError(f"betas must be two numbers in [0, 1), got {self.betas!r}")
        if not 0.0 <= self.weight_decay < float("inf"):
            raise ValueError(f"weight_decay must be >= 0, got {self.weight_decay!r}")


OptimizerFactory = Callable[[ParamGroups, float, OptimizerParams], torch.optim.Optimizer]
"""``(param_groups, lr, params) -> optimizer``."""

OPTIMIZERS: dict[str, OptimizerFactory] = {
    "adam": lambda groups, lr, p: torch.optim.Adam(groups, lr=lr, betas=p.betas,
                                                   eps=1e-7),  # Keras' eps
    "sgd": lambda groups, lr, p: torch.optim.SGD(groups, lr=lr, momentum=p.momentum),
    "rmsprop": lambda groups, lr, _p: torch.optim.RMSprop(groups, lr=lr, alpha=0.9,
                                                          eps=1e-7),  # Keras' rho
    "adamw": lambda groups, lr, p: torch.optim.AdamW(groups, lr=lr, betas=p.betas, eps=1e-7),
    # seeds 001 and 002 tried both; Keras' epsilon, as for the others
    "adagrad": lambda groups, lr, _p: torch.optim.Adagrad(groups, lr=lr, eps=1e-7),
    "adadelta": lambda groups, lr, _p: torch.optim.Adadelta(groups, lr=lr, rho=0.95,
                                                            eps=1e-7),  # Keras' rho
    "prodigy": lambda groups, lr, p: _prodigy(groups, lr, p),
    "schedulefree_adamw": lambda groups, lr, p: _schedule_free_adamw(groups, lr, p),
}

LR_FREE_BOUNDS: dict[str, tuple[float, float]] = {
    "prodigy": (0.25, 1.0),
    "schedulefree_adamw": (0.0025, 0.0025),
}
"""The LR-free optimizers and the bounds each trains between, whatever its range test says:
Prodigy estimates its own step size and takes the LR as a multiplier of it (1.0, cycled by
triangular2 down to a quarter, the family every other design trains with); Schedule-Free
AdamW replaces the schedule (it averages its iterates) and runs at its default LR, held
constant. Their range test is only a gate: it rejects a design that diverges or leaves its
weights still, it sets no bounds (``search.method.lrrt``)."""

LR_FREE_RAMP_DECADES = 2.0
"""An LR-free optimizer's range test ramps over the two decades below the LR it runs at."""


def lr_free_ramp(name: str) -> tuple[float, float]:
    """The range an LR-free optimizer's test ramps over: up to the LR it runs at."""
    high = LR_FREE_BOUNDS[name][1]
    return high / 10 ** LR_FREE_RAMP_DECADES, high


MOMENTUM_OPTIMIZERS = ("sgd",)
"""The optimizers ``momentum`` applies to (a design samples it only for them)."""
BETAS_OPTIMIZERS = ("adam", "adamw", "prodigy", "schedulefree_adamw")
"""The optimizers ``betas`` applies to."""


def make_optimizer(
    model: ThesisCNN, name: str, lr: float, *, sgd_momentum: float = 0.0,
    params: OptimizerParams | None = None,
) -> torch.optim.Optimizer:
    """The optimizer ``name`` over ``model``'s parameters: the conv kernels decayed by
    ``2 * l2`` (+ ``weight_decay``), the rest by ``weight_decay``. ``params`` default to
    the thesis' (``sgd_momentum`` is SGD's momentum then)."""
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}")
    params = params or OptimizerParams(momentum=sgd_momentum)
    kernels = model.conv_kernels()
    kernel_ids = {id(p) for p in kernels}
    others = [p for p in model.parameters() if id(p) not in kernel_ids]
    groups = [
        {"params": kernels, "weight_decay": 2.0 * model.l2 + params.weight_decay},
        {"params": others, "weight_decay": params.weight_decay},
    ]
    return OPTIMIZERS[name](groups, lr, params)


def _prodigy(groups: ParamGroups, lr: float, params: OptimizerParams) -> torch.optim.Optimizer:
    """Prodigy (Mishchenko & Defazio 2024): Adam whose step size it estimates itself; its
    weight decay is decoupled, as AdamW's."""
    from prodigyopt import Prodigy

    return Prodigy(groups, lr=lr, betas=params.betas, decouple=True)


def _schedule_free_adamw(groups: ParamGroups, lr: float,
                         params: OptimizerParams) -> torch.optim.Optimizer:
    """Schedule-Free AdamW (Defazio et al. 2024), put in training mode: it steps one
    sequence of weights and is evaluated on their average (``evaluation_weights``)."""
    from schedulefree import AdamWScheduleFree

    optimizer = AdamWScheduleFree(groups, lr=lr, betas=params.betas)
    optimizer.train()
    return optimizer


def _has_modes(optimizer: torch.optim.Optimizer) -> bool:
    """Whether the optimizer evaluates other weights than it trains (schedule-free ones keep
    ``train_mode`` in their param groups and switch with ``train()``/``eval()``)."""
    return "train_mode" in optimizer.param_groups[0] and callable(
        getattr(optimizer, "eval", None))


@contextlib.contextmanager
def evaluation_weights(optimizer: torch.optim.Optimizer | None) -> Iterator[None]:
    """Within the block the model holds the weights to evaluate (and to keep): for a
    schedule-free optimizer the average of its iterates, for any other the trained ones."""
    switch = optimizer is not None and _has_modes(optimizer)
    if switch:
        optimizer.eval()  # type: ignore[union-attr]
    try:
        yield
    finally:
        if switch:
            optimizer.train()  # type: ignore[union-attr]


def final_weights(optimizer: torch.optim.Optimizer) -> None:
    """Leave the model holding the weights to keep once training is over (a schedule-free
    optimizer's average of its iterates; any other's are already in place)."""
    if _has_modes(optimizer):
        optimizer.eval()  # type: ignore[attr-defined]


def has_momentum(optimizer: torch.optim.Optimizer) -> bool:
    """Whether CyclicLR can cycle momentum: only SGD with a non-zero momentum term."""
    return isinstance(optimizer, torch.optim.SGD) and optimizer.defaults["momentum"] > 0

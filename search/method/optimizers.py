"""Optimizers by name, with the Keras-style L2 kernel penalty as coupled weight decay.

``l2 * sum(w**2)`` in the loss has gradient ``2 * l2 * w``: exactly torch's coupled
``weight_decay = 2 * l2`` for SGD, Adam and RMSprop, without an extra pass over the weights.
``OPTIMIZERS`` is the registry the config validates against: adding one here is all it takes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from models import ThesisCNN

ParamGroups = list[dict[str, Any]]
OptimizerFactory = Callable[[ParamGroups, float, float], torch.optim.Optimizer]
"""``(param_groups, lr, sgd_momentum) -> optimizer``."""

OPTIMIZERS: dict[str, OptimizerFactory] = {
    "adam": lambda groups, lr, _m: torch.optim.Adam(groups, lr=lr, betas=(0.9, 0.999),
                                                    eps=1e-7),  # Keras' eps
    "sgd": lambda groups, lr, momentum: torch.optim.SGD(groups, lr=lr, momentum=momentum),
    "rmsprop": lambda groups, lr, _m: torch.optim.RMSprop(groups, lr=lr, alpha=0.9,
                                                          eps=1e-7),  # Keras' rho
    "adamw": lambda groups, lr, _m: torch.optim.AdamW(groups, lr=lr, eps=1e-7),
}


def make_optimizer(
    model: ThesisCNN, name: str, lr: float, *, sgd_momentum: float = 0.0
) -> torch.optim.Optimizer:
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}")
    kernels = model.conv_kernels()
    kernel_ids = {id(p) for p in kernels}
    others = [p for p in model.parameters() if id(p) not in kernel_ids]
    groups = [
        {"params": kernels, "weight_decay": 2.0 * model.l2},
        {"params": others, "weight_decay": 0.0},
    ]
    return OPTIMIZERS[name](groups, lr, sgd_momentum)


def has_momentum(optimizer: torch.optim.Optimizer) -> bool:
    """Whether CyclicLR can cycle momentum: only SGD with a non-zero momentum term."""
    return isinstance(optimizer, torch.optim.SGD) and optimizer.defaults["momentum"] > 0

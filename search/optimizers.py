"""Optimizers by name, with the Keras-style L2 kernel penalty as coupled weight decay.

``l2 * sum(w**2)`` in the loss has gradient ``2 * l2 * w``: exactly torch's coupled
``weight_decay = 2 * l2`` for SGD, Adam and RMSprop, without an extra pass over the weights.
"""

from __future__ import annotations

import torch

from models import ThesisCNN


def make_optimizer(
    model: ThesisCNN, name: str, lr: float, *, sgd_momentum: float = 0.0
) -> torch.optim.Optimizer:
    kernels = model.conv_kernels()
    kernel_ids = {id(p) for p in kernels}
    others = [p for p in model.parameters() if id(p) not in kernel_ids]
    groups = [
        {"params": kernels, "weight_decay": 2.0 * model.l2},
        {"params": others, "weight_decay": 0.0},
    ]
    if name == "adam":
        return torch.optim.Adam(groups, lr=lr, betas=(0.9, 0.999), eps=1e-7)  # Keras' eps
    if name == "adamw":
        return torch.optim.AdamW(groups, lr=lr, eps=1e-7)
    if name == "rmsprop":
        return torch.optim.RMSprop(groups, lr=lr, alpha=0.9, eps=1e-7)  # Keras' rho
    if name == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=sgd_momentum)
    raise ValueError(f"unknown optimizer {name!r}")


def has_momentum(optimizer: torch.optim.Optimizer) -> bool:
    """Whether CyclicLR can cycle momentum: only SGD with a non-zero momentum term."""
    return isinstance(optimizer, torch.optim.SGD) and optimizer.defaults["momentum"] > 0

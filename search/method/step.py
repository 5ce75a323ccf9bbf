"""One optimisation step, shared by the range test and the training loop."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch.nn import functional

# Denormal floats make x86 CPUs crawl in the first epochs of these small CNNs (measured on
# 2 cores: 167 s against 5 s for one epoch of B3FL4Adam on 10,000 Fashion-MNIST images).
# Flushing them to zero changes nothing training cares about. The flag is process-wide, so
# it is set here, where every training path (LRRT, triangular2, benchmarks) comes through.
torch.set_flush_denormal(True)


def train_step(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    images: torch.Tensor,
    labels: torch.Tensor,
    *,
    weights: torch.Tensor | None = None,
    on_losses: Callable[[torch.Tensor, torch.Tensor], None] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Forward, backward, optimizer and per-batch scheduler step. Returns the loss and the
    count of correct predictions as device tensors: no host sync in the hot loop.

    With ``weights`` (one per sample) the loss is ``mean(weights * per-sample loss)``;
    ``on_losses(per_sample_losses, logits)`` receives both detached. Only then is the loss
    computed per sample (``reduction="none"``): without them this is the plain batch mean.

    A model with an ``l1`` above 0 (``models.CNN``) has ``l1 * l1_penalty()`` added to the
    loss it minimises (and returns); at 0 nothing is computed. L2 is the optimizer's weight
    decay (``search.method.optimizers``).
    """
    logits = model(images)
    if weights is None and on_losses is None:
        loss = functional.cross_entropy(logits, labels)
    else:
        losses = functional.cross_entropy(logits, labels, reduction="none")
        loss = losses.mean() if weights is None else (losses * weights).mean()
        if on_losses is not None:
            on_losses(losses.detach(), logits.detach())
    l1 = getattr(model, "l1", 0.0)
    if l1 > 0:
        loss = loss + l1 * model.l1_penalty()
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    scheduler.step()
    return loss.detach(), (logits.detach().argmax(1) == labels).sum()

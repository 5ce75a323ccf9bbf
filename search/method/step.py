"""One optimisation step, shared by the range test and the training loop, and the
``Execution`` that says how a trial's steps run on its device."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch.nn import functional

from search.method.compiled_step import Backend, StepForward
from search.method.precision import Precision

# Denormal floats make x86 CPUs crawl in the first epochs of these small CNNs (measured on
# 2 cores: 167 s against 5 s for one epoch of B3FL4Adam on 10,000 Fashion-MNIST images).
# Flushing them to zero changes nothing training cares about. The flag is process-wide, so
# it is set here, where every training path (LRRT, triangular2, benchmarks) comes through.
torch.set_flush_denormal(True)


@dataclass
class Execution:
    """How one trial's steps run: the forward they call (compiled or not, ``StepForward``)
    and the precision they run in (``Precision``). Built once per model, so a trial's range
    test and its training each compile once and resolve ``train.precision`` alike."""

    forward: StepForward
    precision: Precision

    @classmethod
    def for_model(cls, model: torch.nn.Module, device: torch.device, *,
                  precision: str = "auto", compile_mode: str = "off",
                  backend: Backend | None = None) -> Execution:
        return cls(StepForward(model, compile_mode, backend=backend),
                   Precision.for_device(precision, device))

    @classmethod
    def eager(cls, model: torch.nn.Module) -> Execution:
        """fp32, not compiled: the steps as they were before either existed."""
        return cls(StepForward(model), Precision("fp32", torch.device("cpu")))


def train_step(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    images: torch.Tensor,
    labels: torch.Tensor,
    *,
    weights: torch.Tensor | None = None,
    on_losses: Callable[[torch.Tensor, torch.Tensor], None] | None = None,
    execution: Execution | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Forward, backward, optimizer and per-batch scheduler step. Returns the loss and the
    count of correct predictions as device tensors: no host sync in the hot loop.

    With ``weights`` (one per sample) the loss is ``mean(weights * per-sample loss)``;
    ``on_losses(per_sample_losses, logits)`` receives both detached. Only then is the loss
    computed per sample (``reduction="none"``): without them this is the plain batch mean.

    A model with an ``l1`` above 0 (``models.CNN``) has ``l1 * l1_penalty()`` added to the
    loss it minimises (and returns); at 0 nothing is computed. L2 is the optimizer's weight
    decay (``search.method.optimizers``).

    ``execution`` (default: eager fp32) runs the forward compiled and under autocast, the
    backward and the optimizer step through fp16's gradient scaler; a compile failure in the
    backward pass too makes the step run again eager (``StepForward.fall_back``).
    """
    execution = execution or Execution.eager(model)
    try:
        loss, logits = _forward_backward(model, optimizer, images, labels, weights, on_losses,
                                         execution)
    except Exception as error:
        if not execution.forward.fall_back(error):
            raise
        loss, logits = _forward_backward(model, optimizer, images, labels, weights, on_losses,
                                         execution)
    scheduler.step()
    return loss, (logits.argmax(1) == labels).sum()


def _forward_backward(
    model: torch.nn.Module, optimizer: torch.optim.Optimizer, images: torch.Tensor,
    labels: torch.Tensor, weights: torch.Tensor | None,
    on_losses: Callable[[torch.Tensor, torch.Tensor], None] | None, execution: Execution,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The loss and the logits of one batch, detached, after the backward pass and the
    optimizer step."""
    with execution.precision.autocast():
        logits = execution.forward(images)
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
    execution.precision.backward_and_step(loss, optimizer)
    return loss.detach(), logits.detach()

"""Loss and accuracy of a model over device-resident batches, one host sync at the end."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional

from data import DeviceBatches
from search.method.optimizers import evaluation_weights
from search.method.step import Execution


def evaluate(model: nn.Module, batches: DeviceBatches, execution: Execution | None = None,
             optimizer: torch.optim.Optimizer | None = None) -> tuple[float, float]:
    """Mean cross-entropy and accuracy; restores the model's train/eval mode. ``execution``
    (the trial's: compiled forward, autocast) runs the forward passes; default eager fp32.
    With the ``optimizer`` that trains it, on the weights that optimizer evaluates (a
    schedule-free one's average: ``evaluation_weights``)."""
    with evaluation_weights(optimizer):
        return _evaluate(model, batches, execution or Execution.eager(model))


def _evaluate(model: nn.Module, batches: DeviceBatches,
              execution: Execution) -> tuple[float, float]:
    was_training = model.training
    model.eval()
    loss_sum = torch.zeros((), device=batches.device)
    correct = torch.zeros((), device=batches.device, dtype=torch.long)
    with torch.inference_mode(), execution.precision.autocast():
        for images, labels in batches.epoch(0):
            logits = execution.forward(images)
            loss_sum += functional.cross_entropy(logits, labels, reduction="sum")
            correct += (logits.argmax(1) == labels).sum()
    model.train(was_training)
    count = batches.num_samples
    return float(loss_sum) / count, float(correct) / count

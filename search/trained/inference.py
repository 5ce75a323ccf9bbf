"""A trained model's logits on uint8 images, with the arithmetic of training's evaluation
(``search.method.evaluation.evaluate``): eval mode, ``p / 255 - 0.5`` in float32, batches
of the training's ``eval_batch_size`` taken in order. The model card's test figures and
``cnnsearch predict`` both come from here, so the same images give the same predictions."""

from __future__ import annotations

import torch
from torch import nn

from data import normalise


def logits_of(model: nn.Module, images: torch.Tensor, *, batch_size: int,
              device: torch.device) -> torch.Tensor:
    """float32 logits (N x classes, on the CPU) of uint8 NCHW ``images``; the model is left
    in eval mode, on ``device``."""
    model.eval()
    model.to(device)
    out = []
    with torch.inference_mode():
        for start in range(0, len(images), batch_size):
            batch = normalise(images[start:start + batch_size].to(device))
            out.append(model(batch).float().cpu())
    if not out:
        return torch.empty((0, 0))
    return torch.cat(out)


def probabilities(logits: torch.Tensor) -> torch.Tensor:
    """Softmax over the classes, in float64 (probabilities near 1 stay distinguishable)."""
    return torch.softmax(logits.double(), dim=1)

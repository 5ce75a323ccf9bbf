"""Input normalisation (seed 001): inputs standardised per channel with the mean and
standard deviation of the training split, or the thesis' fixed ``p/255 - 0.5`` alone.

Batches are always served as ``p/255 - 0.5`` (``data.normalise``, applied once when the
data moves to the device), so standardising is one affine map per channel. It is the
model's first layer (``Standardise``, its statistics as buffers): training, evaluation, the
range test, the latency measure and a saved state dict all see the same inputs, and the
validation and test images are standardised with the training split's statistics, never
their own.
"""

from __future__ import annotations

import torch
from torch import nn

from models import CNN

STD_FLOOR = 1e-6
"""Smallest standard deviation divided by (a constant channel is left centred, not blown up)."""

_CHUNK = 4096


class Standardise(nn.Module):
    """``(x - mean) / std`` per channel; ``mean`` and ``std`` are buffers of shape
    ``(1, C, 1, 1)`` (saved with the weights, never trained)."""

    def __init__(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("mean", mean.reshape(1, -1, 1, 1).float())
        self.register_buffer("std", std.reshape(1, -1, 1, 1).float().clamp_min(STD_FLOOR))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return (images - self.mean) / self.std


def channel_statistics(images_uint8: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and standard deviation of uint8 NCHW images as the batches serve
    them (``p/255 - 0.5``), in float64, a chunk of images at a time."""
    if images_uint8.dtype != torch.uint8 or images_uint8.ndim != 4 or len(images_uint8) == 0:
        raise ValueError(f"expected non-empty uint8 NCHW images, got {images_uint8.dtype} "
                         f"shape {tuple(images_uint8.shape)}")
    channels = images_uint8.shape[1]
    total = torch.zeros(channels, dtype=torch.float64)
    squares = torch.zeros(channels, dtype=torch.float64)
    for start in range(0, len(images_uint8), _CHUNK):
        chunk = images_uint8[start:start + _CHUNK].to(torch.float64)
        total += chunk.sum(dim=(0, 2, 3))
        squares += chunk.square().sum(dim=(0, 2, 3))
    count = images_uint8.numel() // channels
    mean = total / count
    variance = (squares / count - mean.square()).clamp_min(0.0)
    return mean / 255 - 0.5, variance.sqrt() / 255


def standardise_inputs(model: CNN, mean: torch.Tensor, std: torch.Tensor) -> CNN:
    """``model`` with ``Standardise(mean, std)`` as its first layer, on its device."""
    device = next(model.parameters()).device
    model.features.insert(0, Standardise(mean, std).to(device))
    return model

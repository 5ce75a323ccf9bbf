"""The pieces every family is assembled from: activations by name, conv units with batch
norm before or after the activation, the FC head, and the seeded Glorot initialisation.

Layers are created with ``skip_init``: torch's default (Kaiming) init would consume the
global RNG; ``glorot_uniform`` sets every weight and bias afterwards from the run seed. They
are created on torch's default device (the CPU unless a ``with torch.device(...)`` block
says otherwise).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torch.nn.utils import skip_init

ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "relu": lambda: nn.ReLU(inplace=True),
    "relu6": lambda: nn.ReLU6(inplace=True),
    "leaky_relu": lambda: nn.LeakyReLU(0.01, inplace=True),
    "elu": lambda: nn.ELU(inplace=True),
    "silu": lambda: nn.SiLU(inplace=True),
    "tanh": lambda: nn.Tanh(),
    "sigmoid": lambda: nn.Sigmoid(),
}
"""Activation name -> a fresh module. The registry ``Architecture.activation`` is checked
against: adding one here is all it takes (seed 002 compared all of these)."""

BATCH_NORM_PLACES = ("none", "before", "after")
"""Where batch norm sits relative to the activation; ``before`` is seed 001's better order
(and what ``batch_norm=True`` has always meant)."""


def conv(in_channels: int, out_channels: int, kernel: int, *, stride: int = 1,
         padding: int | str = 0, bias: bool = True) -> nn.Conv2d:
    return skip_init(nn.Conv2d, in_channels, out_channels, kernel, stride=stride,
                     padding=padding, bias=bias, device=torch.get_default_device())


def linear(in_features: int, out_features: int) -> nn.Linear:
    # On torch's default device, so that ``with torch.device("meta")`` builds a network with
    # no storage at all (``models.footprint`` measures designs that way).
    return skip_init(nn.Linear, in_features, out_features, device=torch.get_default_device())


def normalised(layer: nn.Module, channels: int, activation: str,
               batch_norm: str) -> list[nn.Module]:
    """``layer`` then activation, with batch norm before (``conv, BN, act``) or after
    (``conv, act, BN``) the activation, or none."""
    if batch_norm == "before":
        return [layer, nn.BatchNorm2d(channels), ACTIVATIONS[activation]()]
    if batch_norm == "after":
        return [layer, ACTIVATIONS[activation](), nn.BatchNorm2d(channels)]
    return [layer, ACTIVATIONS[activation]()]


def conv_unit(in_channels: int, out_channels: int, kernel: int, activation: str,
              batch_norm: str, *, padding: int | str = "same") -> list[nn.Module]:
    """Conv (stride 1) + activation (+ batch norm). Before the activation, the batch norm
    shift replaces the conv bias; after it, the bias still matters and is kept."""
    layer = conv(in_channels, out_channels, kernel, padding=padding,
                 bias=batch_norm != "before")
    return normalised(layer, out_channels, activation, batch_norm)


def fc_head(sizes: list[int], num_classes: int, activation: str,
            dropout: float) -> nn.Sequential:
    """Hidden FC layers ``sizes[0] -> sizes[1] -> ...``, each followed by the activation and
    (when > 0) dropout, then the linear output layer (logits)."""
    layers: list[nn.Module] = []
    for in_units, out_units in zip(sizes, sizes[1:], strict=False):
        layers += [linear(in_units, out_units), ACTIVATIONS[activation]()]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
    layers.append(linear(sizes[-1], num_classes))
    return nn.Sequential(*layers)


class RepeatChannels(nn.Module):
    """Grey images for an RGB backbone: one channel repeated to ``channels``."""

    def __init__(self, channels: int = 3) -> None:
        super().__init__()
        self.channels = channels

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return images.expand(-1, self.channels, -1, -1)


def glorot_uniform(model: nn.Module, seed: int) -> None:
    """Keras' defaults: Glorot-uniform kernels (torch's ``xavier_uniform_``), zero biases,
    batch norm weight 1 and bias 0; drawn from a generator seeded with ``seed``, never from
    the global RNG, so concurrent trials in one process stay independent."""
    generator = torch.Generator().manual_seed(seed)
    for module in model.modules():
        if isinstance(module, nn.Conv2d | nn.Linear):
            nn.init.xavier_uniform_(module.weight, generator=generator)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)

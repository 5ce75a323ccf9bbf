"""One entry point, ``build_cnn``, for every family in ``FAMILY_BUILDERS``."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from models.architecture import Architecture, ArchitectureError
from models.families import lenet5, pretrained, resnet18, thesis, vgg
from models.network import CNN

FamilyBuilder = Callable[[Architecture, tuple[int, int, int], int, int], CNN]
"""``(architecture, input_shape, num_classes, seed) -> initialised CNN``."""

FAMILY_BUILDERS: dict[str, FamilyBuilder] = {
    "thesis": thesis.build,
    "lenet5": lenet5.build,
    "vgg": vgg.build,
    "resnet18": resnet18.build,
    "pretrained": pretrained.build,
}
"""Family name -> its builder; the keys are ``models.FAMILIES``."""


def build_cnn(
    architecture: Architecture,
    input_shape: tuple[int, int, int],
    num_classes: int,
    *,
    seed: int,
) -> CNN:
    """Build the network and initialise it from ``seed`` (Glorot-uniform kernels, zero
    biases, batch norm 1/0; the global RNG untouched); raises ``ArchitectureError`` before
    any allocation when the design does not fit ``input_shape`` (channels, height, width)."""
    architecture.check_fits(input_shape)
    if num_classes < 1:
        raise ArchitectureError(f"num_classes must be a positive integer, got {num_classes}")
    return FAMILY_BUILDERS[architecture.family](architecture, input_shape, num_classes, seed)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())

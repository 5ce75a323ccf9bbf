"""Builds the thesis' CNN (thesis §3.2, Algorithm 5) as a ``torch.nn.Module``."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils import skip_init

from models.architecture import Architecture


class ThesisCNN(nn.Module):
    """Conv-conv-maxpool blocks, flatten, two FC layers of ``m`` units, linear output.

    The output is logits: softmax lives in the cross-entropy loss, as usual in torch.
    """

    def __init__(self, features: nn.Sequential, classifier: nn.Sequential, l2: float) -> None:
        super().__init__()
        self.features = features
        self.classifier = classifier
        self.l2 = l2

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.features(images), 1))

    def conv_kernels(self) -> list[nn.Parameter]:
        """The weights the Keras-style L2 penalty applies to."""
        return [m.weight for m in self.features if isinstance(m, nn.Conv2d)]


def _conv_unit(in_channels: int, out_channels: int, batch_norm: bool) -> list[nn.Module]:
    # skip_init: no default (Kaiming) init, which would consume the global RNG; the seeded
    # Glorot pass below sets every weight and bias.
    conv = skip_init(nn.Conv2d, in_channels, out_channels, 3, stride=1, padding="same",
                     bias=not batch_norm)
    # Batch norm before the activation: seed 001 found that order worked better.
    layers: list[nn.Module] = [conv]
    if batch_norm:
        layers.append(nn.BatchNorm2d(out_channels))
    layers.append(nn.ReLU(inplace=True))
    return layers


def build_cnn(
    architecture: Architecture,
    input_shape: tuple[int, int, int],
    num_classes: int,
    *,
    seed: int,
) -> ThesisCNN:
    """Build and Glorot-initialise the network; raises ``ArchitectureError`` before any
    allocation when the design does not fit the input."""
    channels, height, width = architecture.feature_map(input_shape)
    hidden = architecture.hidden_units(input_shape)

    features: list[nn.Module] = []
    in_channels = input_shape[0]
    for block in range(architecture.blocks):
        width_n = architecture.filters * 2**block
        features += _conv_unit(in_channels, width_n, architecture.batch_norm)
        features += _conv_unit(width_n, width_n, architecture.batch_norm)
        features.append(nn.MaxPool2d(2, stride=2))
        in_channels = width_n

    classifier: list[nn.Module] = []
    flat = channels * height * width
    for in_units in (flat, hidden):
        classifier.append(skip_init(nn.Linear, in_units, hidden))
        classifier.append(nn.ReLU(inplace=True))
        if architecture.dropout > 0:
            classifier.append(nn.Dropout(architecture.dropout))
    classifier.append(skip_init(nn.Linear, hidden, num_classes))

    model = ThesisCNN(nn.Sequential(*features), nn.Sequential(*classifier), architecture.l2)
    _glorot_uniform(model, seed)
    return model


def _glorot_uniform(model: nn.Module, seed: int) -> None:
    """Keras' defaults: Glorot-uniform kernels (torch's ``xavier_uniform_``), zero biases;
    drawn from a generator seeded with ``seed``, never from the global RNG, so concurrent
    trials in one process stay independent."""
    generator = torch.Generator().manual_seed(seed)
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(module.weight, generator=generator)
            if module.bias is not None:
                nn.init.zeros_(module.bias)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())

"""The thesis' CNN (thesis §3.2, Algorithm 5): blocks of conv-conv-maxpool with ``F0 * 2**n``
filters, flatten, two hidden FC layers of ``m`` units, linear output."""

from __future__ import annotations

from torch import nn

from models.architecture import Architecture
from models.layers import conv_unit, fc_head, glorot_uniform
from models.network import CNN


def build(architecture: Architecture, input_shape: tuple[int, int, int], num_classes: int,
          seed: int) -> CNN:
    channels, height, width = architecture.feature_map(input_shape)
    hidden = architecture.hidden_units(input_shape)
    activation, batch_norm = architecture.activation, str(architecture.batch_norm)

    features: list[nn.Module] = []
    in_channels = input_shape[0]
    for block in range(int(architecture.blocks or 0)):
        width_n = int(architecture.filters or 0) * 2**block
        features += conv_unit(in_channels, width_n, 3, activation, batch_norm)
        features += conv_unit(width_n, width_n, 3, activation, batch_norm)
        features.append(nn.MaxPool2d(2, stride=2))
        in_channels = width_n

    classifier = fc_head([channels * height * width, hidden, hidden], num_classes, activation,
                         architecture.dropout)
    model = CNN(nn.Sequential(*features), classifier, l2=architecture.l2, l1=architecture.l1)
    glorot_uniform(model, seed)
    return model

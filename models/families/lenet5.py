"""LeNet-5 (LeCun et al. 1998) on today's terms: conv5(6) - maxpool - conv5(16) - maxpool -
FC 120 - FC 84 - output.

The first conv pads by 2, as LeNet-5 did for 28x28 digits (drawn in a 32x32 field): 28x28
inputs flatten to the original 16x5x5, 32x32 ones to 16x6x6. Max pooling and the
``activation`` (ReLU by default) replace the paper's subsampling and tanh.
"""

from __future__ import annotations

from torch import nn

from models.architecture import Architecture
from models.layers import conv_unit, fc_head, glorot_uniform
from models.network import CNN

FC_UNITS = (120, 84)


def build(architecture: Architecture, input_shape: tuple[int, int, int], num_classes: int,
          seed: int) -> CNN:
    channels, height, width = architecture.feature_map(input_shape)
    activation, batch_norm = architecture.activation, str(architecture.batch_norm)
    features = nn.Sequential(
        *conv_unit(input_shape[0], 6, 5, activation, batch_norm, padding=2),
        nn.MaxPool2d(2, stride=2),
        *conv_unit(6, 16, 5, activation, batch_norm, padding=0),
        nn.MaxPool2d(2, stride=2),
    )
    classifier = fc_head([channels * height * width, *FC_UNITS], num_classes, activation,
                         architecture.dropout)
    model = CNN(features, classifier, l2=architecture.l2, l1=architecture.l1)
    glorot_uniform(model, seed)
    return model

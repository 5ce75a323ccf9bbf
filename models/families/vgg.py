"""VGG (Simonyan & Zisserman 2015) scaled for small images: five stages of 3x3 convs
(widths F, 2F, 4F, 8F, 8F; F = ``filters``, VGG's 64 / 8 by default), ``depth`` picking the
convs per stage (``VGG_STAGES``); each stage ends with a 2x2 max pool while the image still
has 2x2 pixels, then two hidden FC layers (``fc_units``) and the output, as VGG's classifier.
"""

from __future__ import annotations

from torch import nn

from models.architecture import VGG_STAGES, Architecture, vgg_pooling_stages
from models.layers import conv_unit, fc_head, glorot_uniform
from models.network import CNN

STAGE_WIDTHS = (1, 2, 4, 8, 8)
"""Width of each stage in units of ``filters`` (VGG: 64, 128, 256, 512, 512)."""


def build(architecture: Architecture, input_shape: tuple[int, int, int], num_classes: int,
          seed: int) -> CNN:
    channels, height, width = architecture.feature_map(input_shape)
    hidden = architecture.hidden_units(input_shape)
    activation, batch_norm = architecture.activation, str(architecture.batch_norm)
    pools = vgg_pooling_stages(input_shape)

    features: list[nn.Module] = []
    in_channels = input_shape[0]
    stages = VGG_STAGES[int(architecture.depth or 0)]
    for stage, (convs, scale) in enumerate(zip(stages, STAGE_WIDTHS, strict=True)):
        out_channels = int(architecture.filters or 0) * scale
        for _ in range(convs):
            features += conv_unit(in_channels, out_channels, 3, activation, batch_norm)
            in_channels = out_channels
        if stage < pools:
            features.append(nn.MaxPool2d(2, stride=2))

    classifier = fc_head([channels * height * width, hidden, hidden], num_classes, activation,
                         architecture.dropout)
    model = CNN(nn.Sequential(*features), classifier, l2=architecture.l2, l1=architecture.l1)
    glorot_uniform(model, seed)
    return model

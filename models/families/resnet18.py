"""ResNet-18 (He et al. 2016) for small images, as in the CIFAR experiments of seed 002: a
3x3 stride-1 stem and no max pool, then four stages of two basic blocks (widths F, 2F, 4F,
8F; F = ``filters``, 64 by default; stride 2 from the second stage), global average pooling
and one linear layer (after ``dropout`` when > 0).

``batch_norm`` places the norms of each block:

- ``before`` (ResNet's own): conv-BN-act-conv-BN, + shortcut (1x1 conv + BN when the shape
  changes), act;
- ``after``: conv-act-BN-conv, + shortcut (1x1 conv), act-BN;
- ``none``: conv-act-conv, + shortcut (1x1 conv), act.
"""

from __future__ import annotations

import torch
from torch import nn

from models.architecture import Architecture
from models.layers import ACTIVATIONS, conv, conv_unit, glorot_uniform, linear, normalised
from models.network import CNN

STAGE_WIDTHS = (1, 2, 4, 8)
BLOCKS_PER_STAGE = 2


class BasicBlock(nn.Module):
    """``after(body(x) + shortcut(x))``: two 3x3 convs and the identity or a 1x1 projection."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, activation: str,
                 batch_norm: str) -> None:
        super().__init__()
        before = batch_norm == "before"
        body = normalised(conv(in_channels, out_channels, 3, stride=stride, padding=1,
                               bias=not before), out_channels, activation, batch_norm)
        body.append(conv(out_channels, out_channels, 3, padding=1, bias=not before))
        if before:
            body.append(nn.BatchNorm2d(out_channels))
        self.body = nn.Sequential(*body)

        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            projection: list[nn.Module] = [conv(in_channels, out_channels, 1, stride=stride,
                                                bias=False)]
            if before:
                projection.append(nn.BatchNorm2d(out_channels))
            self.shortcut = nn.Sequential(*projection)

        after: list[nn.Module] = [ACTIVATIONS[activation]()]
        if batch_norm == "after":
            after.append(nn.BatchNorm2d(out_channels))
        self.after = nn.Sequential(*after)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.after(self.body(images) + self.shortcut(images))


def build(architecture: Architecture, input_shape: tuple[int, int, int], num_classes: int,
          seed: int) -> CNN:
    channels, _, _ = architecture.feature_map(input_shape)
    activation, batch_norm = architecture.activation, str(architecture.batch_norm)
    base = int(architecture.filters or 0)

    features: list[nn.Module] = conv_unit(input_shape[0], base, 3, activation, batch_norm,
                                          padding=1)
    in_channels = base
    for stage, scale in enumerate(STAGE_WIDTHS):
        for block in range(BLOCKS_PER_STAGE):
            stride = 2 if stage > 0 and block == 0 else 1
            features.append(BasicBlock(in_channels, base * scale, stride, activation,
                                       batch_norm))
            in_channels = base * scale
    features.append(nn.AdaptiveAvgPool2d(1))

    head: list[nn.Module] = [nn.Dropout(architecture.dropout)] if architecture.dropout else []
    classifier = nn.Sequential(*head, linear(channels, num_classes))
    model = CNN(nn.Sequential(*features), classifier, l2=architecture.l2, l1=architecture.l1)
    glorot_uniform(model, seed)
    return model

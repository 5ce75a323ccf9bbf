"""The one module class every family builds: ``features``, flatten, ``classifier``."""

from __future__ import annotations

import torch
from torch import nn


class CNN(nn.Module):
    """``classifier(flatten(features(images)))``; the output is logits (softmax lives in
    the cross-entropy loss, as usual in torch).

    Regularisation the training step applies, on the conv kernels only (``conv_kernels``):

    - ``l2``: Keras-style ``l2 * sum(w**2)``, applied by the optimizer as coupled weight
      decay ``2 * l2`` (``search.method.optimizers``);
    - ``l1``: add ``model.l1 * model.l1_penalty()`` to the loss, where ``l1_penalty()`` is
      ``sum(|w|)`` over the same kernels (0 when ``l1`` is 0: skip the pass).
    """

    def __init__(self, features: nn.Sequential, classifier: nn.Sequential, *, l2: float,
                 l1: float = 0.0) -> None:
        super().__init__()
        self.features = features
        self.classifier = classifier
        self.l2 = l2
        self.l1 = l1

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.features(images), 1))

    def conv_kernels(self) -> list[nn.Parameter]:
        """The weights the L2 and L1 penalties apply to: every conv kernel, nested ones
        (residual blocks, backbones) included."""
        return [m.weight for m in self.features.modules() if isinstance(m, nn.Conv2d)]

    def l1_penalty(self) -> torch.Tensor:
        """``sum(|w|)`` over ``conv_kernels()``; the loss term is ``self.l1 * penalty``."""
        return torch.stack([kernel.abs().sum() for kernel in self.conv_kernels()]).sum()


ThesisCNN = CNN
"""The name ``search/`` imports; every family builds a ``CNN``, the thesis net included."""

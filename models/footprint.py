"""How large a design is, measured without allocating it: parameters and activations.

The network is built on torch's ``meta`` device (tensors with a shape and no storage) and
fed one meta image, so every family is measured by the very code that builds it: no formula
to keep in step with each family, no memory used, a few milliseconds per design. The
``pretrained`` family is measured without its ImageNet weights (the same shapes, no
download).

A classifier head can be far too large even to describe on the meta device (a 16-million
unit ``fc_units: thesis`` layer on 4096-pixel images overflows torch's size arithmetic):
such a head is counted by formula and the design is not built (``HEAD_LIMIT``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from torch import nn

from models.architecture import FC_UNITS_THESIS, PRETRAINED, Architecture
from models.builder import build_cnn

HEAD_LIMIT = 2**40
"""Parameters of a classifier head above which the design is not built on the meta device:
4 TiB of float32, beyond any machine, and far below torch's overflow."""


@dataclass(frozen=True)
class DesignSize:
    """A design's size on one input shape; counts of float32 values."""

    parameters: int
    activations: int
    """Per image: every layer's output (what the backward pass keeps), the input included."""
    largest_layer: int
    """Per image: the largest single layer output (an evaluation holds about two at once)."""


def _head_parameters(architecture: Architecture, input_shape: tuple[int, int, int],
                     num_classes: int) -> int:
    """Parameters of the two hidden FC layers and the output of a thesis or vgg design (0 for
    the families without configurable FC layers), by formula."""
    if architecture.fc_units is None:
        return 0
    channels, height, width = architecture.feature_map(input_shape)
    flat = channels * height * width
    hidden = flat if architecture.fc_units == FC_UNITS_THESIS else int(architecture.fc_units)
    return flat * hidden + hidden * hidden + hidden * num_classes + 2 * hidden + num_classes


def design_size(architecture: Architecture, input_shape: tuple[int, int, int],
                num_classes: int) -> DesignSize:
    """The size of ``architecture`` on ``input_shape`` (channels, height, width); raises
    ``ArchitectureError`` when the design does not fit the input."""
    architecture.check_fits(input_shape)
    head = _head_parameters(architecture, input_shape, num_classes)
    if head > HEAD_LIMIT:  # not buildable even on meta: the head alone says enough
        return DesignSize(parameters=head, activations=0, largest_layer=0)
    if architecture.family == PRETRAINED:
        architecture = replace(architecture, weights="none")  # same shapes, no download
    outputs: list[int] = []

    def count(_module: nn.Module, _inputs: object, output: object) -> None:
        if isinstance(output, torch.Tensor):
            outputs.append(output[0].numel())

    with torch.device("meta"):
        model = build_cnn(architecture, input_shape, num_classes, seed=0)
        leaves = [m for m in model.features.modules() if not list(m.children())]
        hooks = [leaf.register_forward_hook(count) for leaf in leaves]
        try:  # eval mode: batch norm takes a single image; the shapes are the same
            features = model.features.eval()(torch.empty(1, *input_shape))
        finally:
            for hook in hooks:
                hook.remove()
    outputs += _classifier_outputs(model.classifier, features[0].numel())
    pixels = input_shape[0] * input_shape[1] * input_shape[2]
    return DesignSize(
        parameters=sum(p.numel() for p in model.parameters()),
        activations=pixels + sum(outputs),
        largest_layer=max([pixels, *outputs]),
    )


def _classifier_outputs(classifier: nn.Module, flat: int) -> list[int]:
    """Each classifier layer's output size per image, from the flattened features. Counted,
    not run: a linear layer on the meta device loads torch's compiler (seconds), and the
    classifier of every family is a chain of linear layers, activations and dropout."""
    sizes, size = [], flat
    for layer in classifier.modules():
        if list(layer.children()):
            continue
        if isinstance(layer, nn.Linear):
            size = layer.out_features
        sizes.append(size)
    return sizes

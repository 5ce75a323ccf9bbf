"""``design_size``: every family measured on the meta device, exactly as it is built."""

from __future__ import annotations

import resource

import pytest
import torch
from torch import nn

from models import Architecture, ArchitectureError, build_cnn, count_parameters
from models.footprint import HEAD_LIMIT, design_size

DESIGNS = [
    (Architecture(blocks=2, filters=4, fc_units=16), (1, 28, 28)),
    (Architecture(blocks=3, filters=2, batch_norm="after", dropout=0.5), (3, 32, 32)),
    (Architecture(family="lenet5"), (1, 28, 28)),
    (Architecture(family="vgg", depth=13, filters=2, fc_units=8), (3, 32, 32)),
    (Architecture(family="resnet18", filters=4), (3, 16, 16)),
    (Architecture(family="pretrained", backbone="resnet18", weights="none"), (1, 32, 32)),
]


def layer_outputs(model: nn.Module, shape: tuple[int, int, int]) -> list[int]:
    """Each leaf module's output size per image, measured on a real CPU forward pass."""
    sizes: list[int] = []
    hooks = [m.register_forward_hook(lambda _m, _i, out: sizes.append(out[0].numel()))
             for m in model.modules() if not list(m.children())]
    model.eval()(torch.zeros(1, *shape))
    for hook in hooks:
        hook.remove()
    return sizes


@pytest.mark.parametrize(("architecture", "shape"), DESIGNS, ids=lambda v: str(v))
def test_every_family_is_measured_as_it_is_built(architecture: Architecture,
                                                 shape: tuple[int, int, int]) -> None:
    measured = design_size(architecture, shape, 10)
    model = build_cnn(architecture, shape, 10, seed=0)
    outputs = layer_outputs(model, shape)
    pixels = shape[0] * shape[1] * shape[2]
    assert measured.parameters == count_parameters(model)
    assert measured.activations == pixels + sum(outputs)
    assert measured.largest_layer == max(pixels, *outputs)


def test_a_pretrained_design_is_measured_without_downloading_its_weights(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import models.families.pretrained as pretrained

    def no_download(*_args: object) -> None:
        raise AssertionError("the weights were asked for")

    monkeypatch.setattr(pretrained, "_imagenet_state", no_download)
    imagenet = design_size(Architecture(family="pretrained", backbone="resnet50"),
                           (3, 64, 64), 10)
    scratch = design_size(Architecture(family="pretrained", backbone="resnet50",
                                       weights="none"), (3, 64, 64), 10)
    assert imagenet == scratch and imagenet.parameters > 23_000_000


def test_measuring_allocates_nothing() -> None:
    """A VGG-19 of 1024 filters and 65,536 FC units (about 4.5 billion parameters, 18 GB as
    float32) is measured without its weights ever existing."""
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    size = design_size(Architecture(family="vgg", depth=19, filters=1024, fc_units=65536),
                       (3, 32, 32), 10)
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert size.parameters > 4_000_000_000
    assert grown_kib < 200 * 1024


def test_a_head_too_large_to_describe_is_counted_by_formula() -> None:
    # fc_units: thesis on 4096-pixel images: flat = hidden = 1024 * 2048 * 2048
    size = design_size(Architecture(blocks=1, filters=1024), (3, 4096, 4096), 10)
    flat = 1024 * 2048 * 2048
    assert size.parameters > HEAD_LIMIT and size.parameters >= flat * flat


def test_a_design_that_does_not_fit_the_input_is_an_architecture_error() -> None:
    with pytest.raises(ArchitectureError, match="pools the image below 1x1"):
        design_size(Architecture(blocks=6, filters=2), (1, 28, 28), 10)

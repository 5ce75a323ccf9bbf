"""VGG: the VGG-11/16 conv patterns scaled by ``filters``, pooling while the image allows."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from models import VGG_STAGES, Architecture, ArchitectureError, build_cnn, count_parameters


def conv_widths(model: nn.Module) -> list[int]:
    return [m.out_channels for m in model.features if isinstance(m, nn.Conv2d)]


def pools(model: nn.Module) -> int:
    return sum(isinstance(m, nn.MaxPool2d) for m in model.features)


@pytest.mark.parametrize(("depth", "widths"), [
    (11, [64, 128, 256, 256, 512, 512, 512, 512]),
    (16, [64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512]),
])
def test_vgg_patterns_at_full_width(depth: int, widths: list[int]) -> None:
    architecture = Architecture(family="vgg", depth=depth, filters=64, fc_units=8)
    assert conv_widths(build_cnn(architecture, (3, 32, 32), 10, seed=0)) == widths
    assert len(widths) + 3 == depth  # VGG-n: n - 3 convs and 3 FC layers


@pytest.mark.parametrize("depth", sorted(VGG_STAGES))
def test_every_depth_scales_with_filters_and_ends_at_8f(depth: int) -> None:
    model = build_cnn(Architecture(family="vgg", depth=depth, filters=2), (3, 32, 32), 10,
                      seed=0)
    widths = conv_widths(model)
    assert len(widths) == sum(VGG_STAGES[depth]) == depth - 3
    assert widths[0] == 2
    assert widths[-1] == 16
    assert all(isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3)
               for m in model.features if isinstance(m, nn.Conv2d))


def test_default_is_vgg11_at_an_eighth_of_the_width() -> None:
    architecture = Architecture(family="vgg")
    assert (architecture.depth, architecture.filters) == (11, 8)
    assert architecture.label == "VGG11W8"


@pytest.mark.parametrize(("shape", "expected_pools", "side"),
                         [((3, 32, 32), 5, 1), ((1, 28, 28), 4, 1), ((3, 64, 64), 5, 2),
                          ((1, 8, 8), 3, 1), ((1, 2, 2), 1, 1)])
def test_pools_as_many_stages_as_the_image_allows(
    shape: tuple[int, int, int], expected_pools: int, side: int
) -> None:
    architecture = Architecture(family="vgg", filters=2, fc_units=4)
    model = build_cnn(architecture, shape, 10, seed=0)
    assert pools(model) == expected_pools
    assert architecture.feature_map(shape) == (16, side, side)
    assert model.features(torch.zeros(2, *shape)).shape[1:] == (16, side, side)


def test_images_smaller_than_2x2_are_refused() -> None:
    with pytest.raises(ArchitectureError, match=r"vgg .* 1x1 .* 2x2"):
        build_cnn(Architecture(family="vgg"), (3, 1, 1), 10, seed=0)


def test_parameter_count_of_vgg11_w8_on_cifar_by_hand() -> None:
    convs = [(3, 8), (8, 16), (16, 32), (32, 32), (32, 64), (64, 64), (64, 64), (64, 64)]
    conv = sum(i * o * 9 + o for i, o in convs)
    m = 64  # 64 channels of 1x1 after five pools: the thesis' FC rule
    fc = 2 * (m * m + m) + (m * 10 + 10)
    assert conv + fc == 153_530
    assert count_parameters(build_cnn(Architecture(family="vgg"), (3, 32, 32), 10,
                                      seed=0)) == 153_530


@pytest.mark.parametrize(("batch_norm", "unit"), [
    ("none", [nn.Conv2d, nn.ELU]),
    ("before", [nn.Conv2d, nn.BatchNorm2d, nn.ELU]),
    ("after", [nn.Conv2d, nn.ELU, nn.BatchNorm2d]),
])
def test_batch_norm_before_or_after_the_activation(batch_norm: str, unit: list[type]) -> None:
    architecture = Architecture(family="vgg", filters=2, fc_units=4, activation="elu",
                                batch_norm=batch_norm)
    model = build_cnn(architecture, (3, 32, 32), 10, seed=0)
    pool = [nn.MaxPool2d]
    assert [type(m) for m in model.features] == (
        unit + pool + unit + pool + unit * 2 + pool + unit * 2 + pool + unit * 2 + pool)
    assert all((c.bias is None) == (batch_norm == "before")
               for c in model.features if isinstance(c, nn.Conv2d))


def test_classifier_is_two_hidden_fc_layers_with_dropout() -> None:
    architecture = Architecture(family="vgg", filters=2, fc_units=12, dropout=0.5)
    model = build_cnn(architecture, (3, 64, 64), 10, seed=0)
    assert [(fc.in_features, fc.out_features) for fc in model.classifier
            if isinstance(fc, nn.Linear)] == [(16 * 2 * 2, 12), (12, 12), (12, 10)]
    assert sum(isinstance(m, nn.Dropout) for m in model.classifier) == 2

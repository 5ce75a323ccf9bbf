"""LeNet-5: the layer sequence, padding for 28x28 and 32x32, and its parameter count."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from models import Architecture, ArchitectureError, build_cnn, count_parameters

LENET5 = Architecture(family="lenet5")


def test_layers_are_conv5_pool_conv5_pool_fc120_fc84_out() -> None:
    model = build_cnn(LENET5, (1, 28, 28), 10, seed=0)
    assert [type(m) for m in model.features] == [nn.Conv2d, nn.ReLU, nn.MaxPool2d,
                                                 nn.Conv2d, nn.ReLU, nn.MaxPool2d]
    first, second = (m for m in model.features if isinstance(m, nn.Conv2d))
    assert (first.out_channels, first.kernel_size, first.padding) == (6, (5, 5), (2, 2))
    assert (second.out_channels, second.kernel_size, second.padding) == (16, (5, 5), (0, 0))
    assert [(fc.in_features, fc.out_features) for fc in model.classifier
            if isinstance(fc, nn.Linear)] == [(400, 120), (120, 84), (84, 10)]


@pytest.mark.parametrize(("shape", "feature_map"), [((1, 28, 28), (16, 5, 5)),
                                                    ((3, 32, 32), (16, 6, 6)),
                                                    ((3, 64, 64), (16, 14, 14)),
                                                    ((1, 12, 12), (16, 1, 1))])
def test_padding_lets_28x28_and_32x32_through(
    shape: tuple[int, int, int], feature_map: tuple[int, int, int]
) -> None:
    assert LENET5.feature_map(shape) == feature_map
    model = build_cnn(LENET5, shape, 10, seed=0)
    assert model.features(torch.zeros(1, *shape)).shape[1:] == feature_map


def test_parameter_count_on_mnist_is_lenet5s_61706() -> None:
    conv = (1 * 6 * 25 + 6) + (6 * 16 * 25 + 16)
    fc = (16 * 5 * 5 * 120 + 120) + (120 * 84 + 84) + (84 * 10 + 10)
    assert conv + fc == 61_706
    assert count_parameters(build_cnn(LENET5, (1, 28, 28), 10, seed=0)) == 61_706


def test_parameter_count_on_cifar_by_hand() -> None:
    conv = (3 * 6 * 25 + 6) + (6 * 16 * 25 + 16)
    fc = (16 * 6 * 6 * 120 + 120) + (120 * 84 + 84) + (84 * 10 + 10)
    assert conv + fc == 83_126
    assert count_parameters(build_cnn(LENET5, (3, 32, 32), 10, seed=0)) == 83_126


@pytest.mark.parametrize(("batch_norm", "unit"), [
    ("before", [nn.Conv2d, nn.BatchNorm2d, nn.ReLU6]),
    ("after", [nn.Conv2d, nn.ReLU6, nn.BatchNorm2d]),
])
def test_batch_norm_before_or_after_the_activation(batch_norm: str, unit: list[type]) -> None:
    architecture = Architecture(family="lenet5", batch_norm=batch_norm, activation="relu6")
    model = build_cnn(architecture, (1, 28, 28), 10, seed=0)
    assert [type(m) for m in model.features] == [*unit, nn.MaxPool2d, *unit, nn.MaxPool2d]


def test_dropout_follows_both_hidden_fc_layers() -> None:
    model = build_cnn(Architecture(family="lenet5", dropout=0.2), (1, 28, 28), 10, seed=0)
    assert [type(m) for m in model.classifier] == [nn.Linear, nn.ReLU, nn.Dropout,
                                                   nn.Linear, nn.ReLU, nn.Dropout, nn.Linear]


def test_images_under_12_pixels_are_refused() -> None:
    with pytest.raises(ArchitectureError, match=r"lenet5 .* 11x28 .* 12x12"):
        LENET5.check_fits((1, 11, 28))

"""ResNet-18 for small images: 3x3 stride-1 stem, no max pool, basic blocks, its size."""

from __future__ import annotations

import pytest
import torch
import torchvision
from torch import nn

from models import Architecture, build_cnn, count_parameters
from models.families.resnet18 import BasicBlock

RESNET18 = Architecture(family="resnet18")


def blocks(model: nn.Module) -> list[BasicBlock]:
    return [m for m in model.features if isinstance(m, BasicBlock)]


def test_defaults_are_resnets_own() -> None:
    assert (RESNET18.filters, RESNET18.batch_norm, RESNET18.activation) == (64, "before",
                                                                            "relu")
    assert RESNET18.label == "ResNet18W64"


def test_parameter_count_is_torchvisions_with_a_3x3_stem() -> None:
    """torchvision's ResNet-18 (7x7 stem) minus 7x7 plus 3x3 stem kernels: the CIFAR
    ResNet-18's well known 11,173,962."""
    reference = count_parameters(torchvision.models.resnet18(num_classes=10))
    assert reference == 11_689_512 - 1000 * 513 + 10 * 513
    expected = reference - 64 * 3 * 7 * 7 + 64 * 3 * 3 * 3
    assert expected == 11_173_962
    assert count_parameters(build_cnn(RESNET18, (3, 32, 32), 10, seed=0)) == expected
    # grey images: a one-channel stem
    assert count_parameters(build_cnn(RESNET18, (1, 28, 28), 10, seed=0)) == (
        expected - 64 * 2 * 3 * 3)


def test_stem_is_3x3_stride_1_and_nothing_pools_before_the_blocks() -> None:
    model = build_cnn(Architecture(family="resnet18", filters=4), (3, 32, 32), 10, seed=0)
    stem = model.features[0]
    assert isinstance(stem, nn.Conv2d)
    assert (stem.kernel_size, stem.stride, stem.padding) == ((3, 3), (1, 1), (1, 1))
    assert [type(m) for m in model.features[:3]] == [nn.Conv2d, nn.BatchNorm2d, nn.ReLU]
    assert not any(isinstance(m, nn.MaxPool2d) for m in model.modules())
    assert isinstance(model.features[-1], nn.AdaptiveAvgPool2d)
    assert [type(m) for m in model.classifier] == [nn.Linear]


def test_four_stages_of_two_basic_blocks() -> None:
    model = build_cnn(Architecture(family="resnet18", filters=4), (3, 32, 32), 10, seed=0)
    found = blocks(model)
    assert len(found) == 8
    assert [b.body[0].out_channels for b in found] == [4, 4, 8, 8, 16, 16, 32, 32]
    assert [b.body[0].stride[0] for b in found] == [1, 1, 2, 1, 2, 1, 2, 1]
    projected = [i for i, b in enumerate(found) if not isinstance(b.shortcut, nn.Identity)]
    assert projected == [2, 4, 6]
    sides = []
    images = torch.zeros(1, 3, 32, 32)
    for module in model.features[:-1]:
        images = module(images)
        if isinstance(module, BasicBlock):
            sides.append(images.shape[-1])
    assert sides == [32, 32, 16, 16, 8, 8, 4, 4]
    assert model.features(torch.zeros(1, 3, 32, 32)).shape == (1, 32, 1, 1)


@pytest.mark.parametrize(("batch_norm", "body", "after", "projection"), [
    ("before", [nn.Conv2d, nn.BatchNorm2d, nn.SiLU, nn.Conv2d, nn.BatchNorm2d], [nn.SiLU],
     [nn.Conv2d, nn.BatchNorm2d]),
    ("after", [nn.Conv2d, nn.SiLU, nn.BatchNorm2d, nn.Conv2d], [nn.SiLU, nn.BatchNorm2d],
     [nn.Conv2d]),
    ("none", [nn.Conv2d, nn.SiLU, nn.Conv2d], [nn.SiLU], [nn.Conv2d]),
])
def test_batch_norm_before_or_after_the_activation_in_each_block(
    batch_norm: str, body: list[type], after: list[type], projection: list[type]
) -> None:
    architecture = Architecture(family="resnet18", filters=2, activation="silu",
                                batch_norm=batch_norm)
    model = build_cnn(architecture, (3, 32, 32), 10, seed=0)
    for block in blocks(model):
        assert [type(m) for m in block.body] == body
        assert [type(m) for m in block.after] == after
        assert all((c.bias is None) == (batch_norm == "before")
                   for c in block.body if isinstance(c, nn.Conv2d))
    assert [type(m) for m in blocks(model)[2].shortcut] == projection
    stem = {"before": [nn.Conv2d, nn.BatchNorm2d, nn.SiLU], "after": [nn.Conv2d, nn.SiLU,
            nn.BatchNorm2d], "none": [nn.Conv2d, nn.SiLU, BasicBlock]}[batch_norm]
    assert [type(m) for m in model.features[:3]] == stem


def test_dropout_sits_before_the_output_layer() -> None:
    model = build_cnn(Architecture(family="resnet18", filters=2, dropout=0.2), (3, 32, 32), 10,
                      seed=0)
    assert [type(m) for m in model.classifier] == [nn.Dropout, nn.Linear]
    assert model.classifier[0].p == 0.2

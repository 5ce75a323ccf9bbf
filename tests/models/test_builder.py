"""``build_cnn``: the thesis' Algorithm 5 as torch modules, Glorot-initialised from a seed."""

from __future__ import annotations

import functools
import math

import pytest
import torch
from torch import nn

from models import Architecture, ArchitectureError, build_cnn, count_parameters

MNIST_SHAPE = (1, 28, 28)
CIFAR_SHAPE = (3, 32, 32)


def convs(model: nn.Module) -> list[nn.Conv2d]:
    return [m for m in model.modules() if isinstance(m, nn.Conv2d)]


def linears(model: nn.Module) -> list[nn.Linear]:
    return [m for m in model.modules() if isinstance(m, nn.Linear)]


def glorot_bound(layer: nn.Conv2d | nn.Linear) -> float:
    if isinstance(layer, nn.Conv2d):
        area = layer.kernel_size[0] * layer.kernel_size[1]
        fan_in, fan_out = layer.in_channels * area, layer.out_channels * area
    else:
        fan_in, fan_out = layer.in_features, layer.out_features
    return math.sqrt(6.0 / (fan_in + fan_out))


@pytest.mark.parametrize("filters", [2, 4, 8, 16, 32])
@pytest.mark.parametrize("blocks", [1, 2, 3, 4])
@pytest.mark.parametrize(("shape", "classes"), [(MNIST_SHAPE, 10), (CIFAR_SHAPE, 7)])
def test_output_shape_and_conv_widths(
    blocks: int, filters: int, shape: tuple[int, int, int], classes: int
) -> None:
    # fc_units fixed to keep the sweep fast; the thesis' FC rule is tested separately
    architecture = Architecture(blocks=blocks, filters=filters, fc_units=16)
    model = build_cnn(architecture, shape, classes, seed=0)
    out = model(torch.zeros(2, *shape))
    assert out.shape == (2, classes)
    widths = [filters * 2**n for n in range(blocks) for _ in range(2)]
    assert [c.out_channels for c in convs(model)] == widths
    assert [c.in_channels for c in convs(model)] == [shape[0], *widths[:-1]]
    assert model.features(torch.zeros(1, *shape)).shape[1:] == architecture.feature_map(shape)


def test_convs_are_3x3_stride_1_same_padding_and_pools_are_2x2() -> None:
    model = build_cnn(Architecture(blocks=3, filters=4, fc_units=8), CIFAR_SHAPE, 10, seed=0)
    for conv in convs(model):
        assert conv.kernel_size == (3, 3)
        assert conv.stride == (1, 1)
        assert conv.padding == "same"
    pools = [m for m in model.features if isinstance(m, nn.MaxPool2d)]
    assert len(pools) == 3
    for pool in pools:
        assert pool.kernel_size == 2
        assert pool.stride == 2
    # block = conv, relu, conv, relu, pool
    kinds = [type(m) for m in model.features]
    assert kinds == [nn.Conv2d, nn.ReLU, nn.Conv2d, nn.ReLU, nn.MaxPool2d] * 3


@pytest.mark.parametrize(("blocks", "filters", "shape"),
                         [(2, 4, CIFAR_SHAPE), (3, 8, MNIST_SHAPE), (4, 2, CIFAR_SHAPE)])
def test_thesis_fc_rule_two_hidden_layers_of_flattened_size(
    blocks: int, filters: int, shape: tuple[int, int, int]
) -> None:
    model = build_cnn(Architecture(blocks=blocks, filters=filters), shape, 10, seed=0)
    channels, height, width = Architecture(blocks=blocks, filters=filters).feature_map(shape)
    m = channels * height * width
    assert [(fc.in_features, fc.out_features) for fc in linears(model)] == [
        (m, m), (m, m), (m, 10)
    ]
    assert [type(x) for x in model.classifier] == [nn.Linear, nn.ReLU, nn.Linear, nn.ReLU,
                                                   nn.Linear]


def test_fixed_fc_units() -> None:
    model = build_cnn(Architecture(blocks=2, filters=4, fc_units=24), CIFAR_SHAPE, 10, seed=0)
    m = 8 * 8 * 8
    assert [(fc.in_features, fc.out_features) for fc in linears(model)] == [
        (m, 24), (24, 24), (24, 10)
    ]


def test_parameter_count_of_b2fl32_on_cifar_by_hand() -> None:
    conv = (3 * 32 * 9 + 32) + (32 * 32 * 9 + 32) + (32 * 64 * 9 + 64) + (64 * 64 * 9 + 64)
    assert conv == 65_568
    m = 64 * 8 * 8  # 4096 after two 2x2 pools of 32x32
    fc = 2 * (m * m + m) + (m * 10 + 10)
    assert fc == 33_603_594
    model = build_cnn(Architecture(blocks=2, filters=32), CIFAR_SHAPE, 10, seed=0)
    assert count_parameters(model) == 33_669_162 == conv + fc


def test_batch_norm_and_dropout_are_off_by_default() -> None:
    model = build_cnn(Architecture(blocks=2, filters=4, fc_units=8), CIFAR_SHAPE, 10, seed=0)
    assert not any(isinstance(m, nn.BatchNorm2d | nn.Dropout) for m in model.modules())
    assert all(c.bias is not None for c in convs(model))


def test_batch_norm_sits_between_conv_and_relu() -> None:
    architecture = Architecture(blocks=2, filters=4, fc_units=8, batch_norm=True)
    model = build_cnn(architecture, CIFAR_SHAPE, 10, seed=0)
    kinds = [type(m) for m in model.features]
    unit = [nn.Conv2d, nn.BatchNorm2d, nn.ReLU]
    assert kinds == (unit + unit + [nn.MaxPool2d]) * 2
    norms = [m for m in model.features if isinstance(m, nn.BatchNorm2d)]
    assert [n.num_features for n in norms] == [4, 4, 8, 8]
    # the batch norm shift replaces the conv bias
    assert all(c.bias is None for c in convs(model))
    assert model(torch.zeros(3, *CIFAR_SHAPE)).shape == (3, 10)


def test_dropout_follows_each_hidden_fc_layer() -> None:
    architecture = Architecture(blocks=2, filters=4, fc_units=8, dropout=0.3)
    model = build_cnn(architecture, CIFAR_SHAPE, 10, seed=0)
    kinds = [type(m) for m in model.classifier]
    assert kinds == [nn.Linear, nn.ReLU, nn.Dropout, nn.Linear, nn.ReLU, nn.Dropout, nn.Linear]
    assert all(m.p == 0.3 for m in model.classifier if isinstance(m, nn.Dropout))


def test_glorot_uniform_weights_and_zero_biases() -> None:
    model = build_cnn(Architecture(blocks=2, filters=16), CIFAR_SHAPE, 10, seed=3)
    for layer in convs(model) + linears(model):
        bound = glorot_bound(layer)
        weight = layer.weight.detach()
        assert weight.abs().max() <= bound
        if weight.numel() >= 2000:
            # uniform on [-b, b]: fills the interval, standard deviation b / sqrt(3)
            assert weight.abs().max() > 0.95 * bound
            assert weight.std().item() == pytest.approx(bound / math.sqrt(3), rel=0.05)
            assert abs(weight.mean().item()) < 0.05 * bound
        assert torch.count_nonzero(layer.bias) == 0


def test_weights_are_torch_xavier_uniform_drawn_from_the_seed() -> None:
    """torch's own Glorot init, layer after layer from one generator seeded with the seed."""
    architecture = Architecture(blocks=2, filters=4, fc_units=8, batch_norm=True)
    model = build_cnn(architecture, CIFAR_SHAPE, 10, seed=7)
    generator = torch.Generator().manual_seed(7)
    layers = [m for m in model.modules() if isinstance(m, nn.Conv2d | nn.Linear)]
    assert len(layers) == 4 + 3
    for layer in layers:
        expected = nn.init.xavier_uniform_(torch.empty_like(layer.weight), generator=generator)
        assert torch.equal(layer.weight.detach(), expected)
        assert expected.abs().max() <= glorot_bound(layer)


def test_same_seed_same_weights_different_seed_different_weights() -> None:
    architecture = Architecture(blocks=2, filters=4, fc_units=8)
    first = build_cnn(architecture, CIFAR_SHAPE, 10, seed=11).state_dict()
    again = build_cnn(architecture, CIFAR_SHAPE, 10, seed=11).state_dict()
    other = build_cnn(architecture, CIFAR_SHAPE, 10, seed=12).state_dict()
    assert first.keys() == again.keys() == other.keys()
    for name in first:
        assert torch.equal(first[name], again[name]), name
    weights = [name for name in first if name.endswith("weight")]
    assert weights
    assert all(not torch.equal(first[name], other[name]) for name in weights)


def test_builder_leaves_the_global_torch_rng_alone() -> None:
    torch.manual_seed(1234)
    state = torch.random.get_rng_state()
    build_cnn(Architecture(blocks=2, filters=4, fc_units=8, batch_norm=True, dropout=0.5),
              CIFAR_SHAPE, 10, seed=0)
    assert torch.equal(torch.random.get_rng_state(), state)


def test_weights_do_not_depend_on_the_global_rng() -> None:
    architecture = Architecture(blocks=1, filters=4, fc_units=8)
    torch.manual_seed(0)
    first = build_cnn(architecture, CIFAR_SHAPE, 10, seed=5).state_dict()
    torch.manual_seed(99)
    second = build_cnn(architecture, CIFAR_SHAPE, 10, seed=5).state_dict()
    assert all(torch.equal(first[name], second[name]) for name in first)


def test_too_many_blocks_fail_before_any_module_is_built(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    built: list[tuple] = []
    real_init = nn.Conv2d.__init__

    @functools.wraps(real_init)  # skip_init reads the signature for its device argument
    def recording_init(self: nn.Conv2d, *args: object, **kwargs: object) -> None:
        built.append(args)
        real_init(self, *args, **kwargs)

    monkeypatch.setattr(nn.Conv2d, "__init__", recording_init)
    with pytest.raises(ArchitectureError, match=r"4 blocks .*8x8"):
        build_cnn(Architecture(blocks=4, filters=8), (1, 8, 8), 10, seed=0)
    assert built == []
    # the recorder does see a design that fits, so the empty list above means something
    build_cnn(Architecture(blocks=3, filters=8, fc_units=4), (1, 8, 8), 10, seed=0)
    assert len(built) == 6


def test_conv_kernels_are_the_l2_targets() -> None:
    model = build_cnn(Architecture(blocks=2, filters=4, fc_units=8, l2=0.02), CIFAR_SHAPE, 10,
                      seed=0)
    assert model.l2 == 0.02
    kernels = model.conv_kernels()
    assert len(kernels) == 4
    assert {id(k) for k in kernels} == {id(c.weight) for c in convs(model)}


def test_batch_norm_true_is_before_the_activation_as_it_always_was() -> None:
    legacy = build_cnn(Architecture(blocks=1, filters=4, fc_units=8, batch_norm=True),
                       CIFAR_SHAPE, 10, seed=0)
    named = build_cnn(Architecture(blocks=1, filters=4, fc_units=8, batch_norm="before"),
                      CIFAR_SHAPE, 10, seed=0)
    assert [type(m) for m in legacy.features] == [type(m) for m in named.features]
    assert legacy.state_dict().keys() == named.state_dict().keys()


def test_batch_norm_after_the_relu_keeps_the_conv_bias() -> None:
    architecture = Architecture(blocks=2, filters=4, fc_units=8, batch_norm="after")
    model = build_cnn(architecture, CIFAR_SHAPE, 10, seed=0)
    unit = [nn.Conv2d, nn.ReLU, nn.BatchNorm2d]
    assert [type(m) for m in model.features] == (unit + unit + [nn.MaxPool2d]) * 2
    assert all(c.bias is not None for c in convs(model))


@pytest.mark.parametrize("activation", ["relu6", "sigmoid"])
def test_activation_replaces_relu_in_convs_and_fc_layers(activation: str) -> None:
    architecture = Architecture(blocks=1, filters=4, fc_units=8, activation=activation)
    model = build_cnn(architecture, CIFAR_SHAPE, 10, seed=0)
    kind = {"relu6": nn.ReLU6, "sigmoid": nn.Sigmoid}[activation]
    assert [type(m) for m in model.features] == [nn.Conv2d, kind, nn.Conv2d, kind,
                                                 nn.MaxPool2d]
    assert [type(m) for m in model.classifier] == [nn.Linear, kind, nn.Linear, kind, nn.Linear]


def test_thesis_parameter_count_ignores_activation_and_l1() -> None:
    plain = build_cnn(Architecture(blocks=2, filters=4), CIFAR_SHAPE, 10, seed=0)
    varied = build_cnn(Architecture(blocks=2, filters=4, activation="elu", l1=1e-4),
                       CIFAR_SHAPE, 10, seed=0)
    conv = (3 * 4 * 9 + 4) + (4 * 4 * 9 + 4) + (4 * 8 * 9 + 8) + (8 * 8 * 9 + 8)
    m = 8 * 8 * 8
    fc = 2 * (m * m + m) + (m * 10 + 10)
    assert count_parameters(plain) == count_parameters(varied) == conv + fc

"""Every family in the registry, driven by it: forward pass, output shape, no NaN after a
few SGD steps, seeded determinism, the global RNG left alone, refusals before allocation."""

from __future__ import annotations

import functools
from dataclasses import replace

import pytest
import torch
from torch import nn

from models import (
    CNN,
    FAMILIES,
    FAMILY_BUILDERS,
    Architecture,
    ArchitectureError,
    ThesisCNN,
    build_cnn,
    design_name,
)

MNIST_SHAPE = (1, 28, 28)
CIFAR_SHAPE = (3, 32, 32)
CLASSES = 7

SAMPLES: dict[str, Architecture] = {
    "thesis": Architecture(blocks=2, filters=4, fc_units=16),
    "lenet5": Architecture(family="lenet5"),
    "vgg": Architecture(family="vgg", depth=11, filters=4, fc_units=16),
    "resnet18": Architecture(family="resnet18", filters=4),
    "pretrained": Architecture(family="pretrained", backbone="resnet18", weights="none"),
}
"""One small design per family: a new family must add one, or the first test fails."""

VARIANTS: list[dict[str, object]] = [
    {},
    {"activation": "relu6"},
    {"activation": "tanh", "batch_norm": "before"},
    {"batch_norm": "after", "dropout": 0.3},
    {"activation": "leaky_relu", "batch_norm": "none", "l1": 1e-4},
    {"dropout": 0.5, "l1": 1e-3},
]
"""Dimension values every family that can vary them is tried with."""

TOO_SMALL: dict[str, tuple[Architecture, tuple[int, int, int], str]] = {
    "thesis": (Architecture(blocks=4, filters=8), (1, 8, 8), "4 blocks"),
    "lenet5": (SAMPLES["lenet5"], (1, 11, 28), "at least 12x12"),
    "vgg": (SAMPLES["vgg"], (3, 1, 32), "2x2"),
    "resnet18": (SAMPLES["resnet18"], (0, 32, 32), "input_shape"),
    "pretrained": (SAMPLES["pretrained"], (4, 32, 32), "1-channel"),
}
"""A design per family that cannot be built on the shape, and what the error says."""


def cases() -> list[tuple[str, Architecture]]:
    found = []
    for family, sample in SAMPLES.items():
        for variant in VARIANTS:
            if family == "pretrained" and set(variant) - {"dropout", "l1"}:
                continue  # a torchvision backbone keeps its activation and batch norm
            found.append((family, replace(sample, **variant)))  # type: ignore[arg-type]
    return found


def case_id(case: tuple[str, Architecture]) -> str:
    family, architecture = case
    changed = {k: v for k, v in architecture.to_dict().items()
               if v != SAMPLES[family].to_dict()[k]}
    return "-".join([family, *(f"{k}={v}" for k, v in changed.items())])


def test_every_family_has_a_builder_and_a_sample() -> None:
    assert tuple(FAMILY_BUILDERS) == FAMILIES
    assert tuple(SAMPLES) == FAMILIES
    assert tuple(TOO_SMALL) == FAMILIES
    assert {family for family, _ in cases()} == set(FAMILIES)


@pytest.mark.parametrize("shape", [MNIST_SHAPE, CIFAR_SHAPE], ids=["1x28x28", "3x32x32"])
@pytest.mark.parametrize("case", cases(), ids=[case_id(c) for c in cases()])
def test_forward_shape_and_three_sgd_steps_stay_finite(
    case: tuple[str, Architecture], shape: tuple[int, int, int]
) -> None:
    _, architecture = case
    model = build_cnn(architecture, shape, CLASSES, seed=1)
    assert isinstance(model, CNN)
    assert isinstance(model, ThesisCNN)  # the name search/ uses
    generator = torch.Generator().manual_seed(0)
    images = torch.randn(4, *shape, generator=generator)
    labels = torch.randint(0, CLASSES, (4,), generator=generator)
    out = model(images)
    assert out.shape == (4, CLASSES)
    assert torch.isfinite(out).all()

    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    for _ in range(3):
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(model(images), labels)
        loss = loss + model.l1 * model.l1_penalty()
        assert torch.isfinite(loss)
        loss.backward()
        optimizer.step()
    assert all(torch.isfinite(p).all() for p in model.parameters())
    model.eval()
    with torch.no_grad():
        assert torch.isfinite(model(images)).all()


@pytest.mark.parametrize("family", FAMILIES)
def test_every_family_exposes_l2_l1_and_its_conv_kernels(family: str) -> None:
    architecture = replace(SAMPLES[family], l2=0.02, l1=0.003)
    model = build_cnn(architecture, CIFAR_SHAPE, CLASSES, seed=0)
    assert model.l2 == 0.02
    assert model.l1 == 0.003
    kernels = model.conv_kernels()
    every_conv = [m.weight for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert kernels and {id(k) for k in kernels} == {id(w) for w in every_conv}
    expected = sum(float(k.detach().abs().sum()) for k in kernels)
    assert model.l1_penalty().item() == pytest.approx(expected, rel=1e-5)
    model.l1_penalty().backward()  # the penalty's gradient is sign(w), on the kernels only
    for kernel in kernels:
        assert torch.equal(kernel.grad, torch.sign(kernel.detach()))


@pytest.mark.parametrize("family", FAMILIES)
def test_same_seed_same_weights_other_seed_other_weights(family: str) -> None:
    architecture = SAMPLES[family]
    first = build_cnn(architecture, CIFAR_SHAPE, CLASSES, seed=11).state_dict()
    again = build_cnn(architecture, CIFAR_SHAPE, CLASSES, seed=11).state_dict()
    other = build_cnn(architecture, CIFAR_SHAPE, CLASSES, seed=12).state_dict()
    assert first.keys() == again.keys() == other.keys()
    for name in first:
        assert torch.equal(first[name], again[name]), name
    model = build_cnn(architecture, CIFAR_SHAPE, CLASSES, seed=0)
    kernels = {name for name, m in model.named_modules() if isinstance(m, nn.Conv2d | nn.Linear)}
    assert kernels
    for name in kernels:
        assert not torch.equal(first[f"{name}.weight"], other[f"{name}.weight"]), name


@pytest.mark.parametrize("family", FAMILIES)
def test_builders_leave_the_global_torch_rng_alone(family: str) -> None:
    architecture = replace(SAMPLES[family], dropout=0.5)
    torch.manual_seed(1234)
    state = torch.random.get_rng_state()
    build_cnn(architecture, MNIST_SHAPE, CLASSES, seed=0)
    assert torch.equal(torch.random.get_rng_state(), state)


@pytest.mark.parametrize("family", FAMILIES)
def test_biases_zero_and_batch_norm_one_zero(family: str) -> None:
    model = build_cnn(replace(SAMPLES[family], batch_norm="before"), CIFAR_SHAPE, CLASSES,
                      seed=3)
    assert any(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    for module in model.modules():
        if isinstance(module, nn.Conv2d | nn.Linear) and module.bias is not None:
            assert torch.count_nonzero(module.bias) == 0
        if isinstance(module, nn.BatchNorm2d):
            assert torch.equal(module.weight, torch.ones_like(module.weight))
            assert torch.count_nonzero(module.bias) == 0


@pytest.mark.parametrize("family", FAMILIES)
def test_designs_that_do_not_fit_fail_before_any_conv_is_built(
    family: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    architecture, shape, message = TOO_SMALL[family]
    built: list[tuple] = []
    real_init = nn.Conv2d.__init__

    @functools.wraps(real_init)  # skip_init reads the signature for its device argument
    def recording_init(self: nn.Conv2d, *args: object, **kwargs: object) -> None:
        built.append(args)
        real_init(self, *args, **kwargs)

    monkeypatch.setattr(nn.Conv2d, "__init__", recording_init)
    with pytest.raises(ArchitectureError, match=message):
        architecture.check_fits(shape)
    with pytest.raises(ArchitectureError, match=message):
        build_cnn(architecture, shape, CLASSES, seed=0)
    assert built == []
    build_cnn(architecture, (1, 32, 32), CLASSES, seed=0)  # the recorder does record
    assert built


@pytest.mark.parametrize("family", FAMILIES)
def test_every_family_fits_both_test_shapes(family: str) -> None:
    for shape in (MNIST_SHAPE, CIFAR_SHAPE):
        SAMPLES[family].check_fits(shape)
        channels, height, width = SAMPLES[family].feature_map(shape)
        assert min(channels, height, width) >= 1


def test_num_classes_must_be_positive() -> None:
    with pytest.raises(ArchitectureError, match="num_classes"):
        build_cnn(SAMPLES["thesis"], CIFAR_SHAPE, 0, seed=0)


@pytest.mark.parametrize(("family", "name"), [
    ("thesis", "B2FL4SGD"),
    ("lenet5", "LeNet5SGD"),
    ("vgg", "VGG11W4SGD"),
    ("resnet18", "ResNet18W4SGD"),
    ("pretrained", "ScratchResNet18SGD"),
])
def test_every_family_has_a_readable_name(family: str, name: str) -> None:
    assert design_name(SAMPLES[family], "sgd") == name

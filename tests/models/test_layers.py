"""The activation registry and where batch norm sits, on every family that can vary them."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from models import (
    ACTIVATIONS,
    BATCH_NORM_PLACES,
    FAMILIES,
    Architecture,
    ArchitectureError,
    build_cnn,
)

VARIABLE = {
    "thesis": {"blocks": 2, "filters": 2, "fc_units": 8},
    "lenet5": {},
    "vgg": {"filters": 2, "fc_units": 8},
    "resnet18": {"filters": 2},
}
"""Families whose activation and batch norm are dimensions (the pretrained backbone keeps
its own)."""

ACTIVATION_TYPES = {name: type(factory()) for name, factory in ACTIVATIONS.items()}


def test_registry_names_seed_002s_activations() -> None:
    assert set(ACTIVATIONS) == {"relu", "relu6", "leaky_relu", "elu", "silu", "tanh",
                                "sigmoid"}
    assert len(set(ACTIVATION_TYPES.values())) == len(ACTIVATIONS)
    assert BATCH_NORM_PLACES == ("none", "before", "after")
    assert set(VARIABLE) == set(FAMILIES) - {"pretrained"}


def test_each_call_makes_a_fresh_module() -> None:
    for factory in ACTIVATIONS.values():
        assert factory() is not factory()


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("family", VARIABLE)
def test_every_activation_is_used_throughout_every_family(family: str, activation: str) -> None:
    architecture = Architecture(family=family, activation=activation, **VARIABLE[family])
    model = build_cnn(architecture, (3, 32, 32), 10, seed=0)
    used = {type(m) for m in model.modules() if type(m) in ACTIVATION_TYPES.values()}
    assert used == {ACTIVATION_TYPES[activation]}
    out = model(torch.randn(2, 3, 32, 32))
    assert out.shape == (2, 10)
    assert torch.isfinite(out).all()


def test_unknown_activation_names_the_registry() -> None:
    with pytest.raises(ArchitectureError, match=r"activation must be one of relu, relu6, "
                                                r"leaky_relu, elu, silu, tanh, sigmoid, "
                                                r"got 'gelu'"):
        Architecture(blocks=2, filters=2, activation="gelu")


@pytest.mark.parametrize("family", VARIABLE)
@pytest.mark.parametrize(("batch_norm", "order"), [
    ("before", [nn.Conv2d, nn.BatchNorm2d, nn.Tanh]),
    ("after", [nn.Conv2d, nn.Tanh, nn.BatchNorm2d]),
    ("none", [nn.Conv2d, nn.Tanh]),
])
def test_batch_norm_before_or_after_the_first_activation(
    family: str, batch_norm: str, order: list[type]
) -> None:
    architecture = Architecture(family=family, activation="tanh", batch_norm=batch_norm,
                                **VARIABLE[family])
    model = build_cnn(architecture, (3, 32, 32), 10, seed=0)
    assert [type(m) for m in model.features[:len(order)]] == order
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert bool(norms) == (batch_norm != "none")
    # before the activation the norm's shift replaces the conv bias
    assert (model.features[0].bias is None) == (batch_norm == "before")

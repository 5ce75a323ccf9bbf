"""``Architecture``: feature-map arithmetic, the thesis' FC rule, validation and naming."""

from __future__ import annotations

import json

import pytest

from models import (
    FC_UNITS_THESIS,
    Architecture,
    ArchitectureError,
    config_name,
    design_name,
    max_blocks,
)

MNIST_SHAPE = (1, 28, 28)
CIFAR_SHAPE = (3, 32, 32)


@pytest.mark.parametrize("filters", [2, 4, 8, 16, 32])
@pytest.mark.parametrize(
    ("blocks", "mnist_side", "cifar_side"), [(1, 14, 16), (2, 7, 8), (3, 3, 4), (4, 1, 2)]
)
def test_feature_map_halves_the_side_per_block_and_doubles_width(
    blocks: int, mnist_side: int, cifar_side: int, filters: int
) -> None:
    architecture = Architecture(blocks=blocks, filters=filters)
    width = filters * 2 ** (blocks - 1)
    assert architecture.feature_map(MNIST_SHAPE) == (width, mnist_side, mnist_side)
    assert architecture.feature_map(CIFAR_SHAPE) == (width, cifar_side, cifar_side)


def test_thesis_fc_rule_uses_the_flattened_size() -> None:
    architecture = Architecture(blocks=2, filters=32)
    assert architecture.fc_units == FC_UNITS_THESIS  # the default is the thesis' rule
    assert architecture.hidden_units(CIFAR_SHAPE) == 64 * 8 * 8
    assert architecture.hidden_units(MNIST_SHAPE) == 64 * 7 * 7


def test_fixed_fc_units_ignore_the_input() -> None:
    architecture = Architecture(blocks=2, filters=32, fc_units=128)
    assert architecture.hidden_units(CIFAR_SHAPE) == 128
    assert architecture.hidden_units(MNIST_SHAPE) == 128


def test_rectangular_inputs_pool_both_sides() -> None:
    assert Architecture(blocks=2, filters=4).feature_map((3, 32, 12)) == (8, 8, 3)


@pytest.mark.parametrize(("shape", "expected"), [((1, 8, 8), 3), ((1, 28, 28), 4),
                                                 ((3, 32, 32), 5), ((3, 64, 16), 4),
                                                 ((1, 1, 1), 0)])
def test_max_blocks(shape: tuple[int, int, int], expected: int) -> None:
    assert max_blocks(shape) == expected


def test_too_many_blocks_names_blocks_and_size() -> None:
    with pytest.raises(ArchitectureError) as raised:
        Architecture(blocks=4, filters=8).feature_map((1, 8, 8))
    message = str(raised.value)
    assert "4 blocks" in message
    assert "8x8" in message
    assert "at most 3 blocks" in message


def test_the_largest_fitting_design_builds_to_one_pixel() -> None:
    assert Architecture(blocks=3, filters=2).feature_map((1, 8, 8)) == (8, 1, 1)


@pytest.mark.parametrize(
    ("values", "named"),
    [
        ({"blocks": 0, "filters": 4}, "blocks"),
        ({"blocks": 9, "filters": 4}, "blocks"),
        ({"blocks": 2, "filters": 0}, "filters"),
        ({"blocks": 2, "filters": 4, "fc_units": 0}, "fc_units"),
        ({"blocks": 2, "filters": 4, "fc_units": "wide"}, "fc_units"),
        ({"blocks": 2, "filters": 4, "dropout": 1.0}, "dropout"),
        ({"blocks": 2, "filters": 4, "dropout": -0.1}, "dropout"),
        ({"blocks": 2, "filters": 4, "l2": -0.01}, "l2"),
    ],
)
def test_invalid_designs_are_rejected_naming_the_field(values: dict, named: str) -> None:
    with pytest.raises(ArchitectureError, match=named):
        Architecture(**values)


def test_defaults_follow_the_thesis() -> None:
    architecture = Architecture(blocks=3, filters=16)
    assert architecture.family == "thesis"
    assert architecture.batch_norm == "none"
    assert architecture.activation == "relu"
    assert architecture.dropout == 0.0
    assert architecture.l2 == 0.01  # Keras' default kernel L2
    assert architecture.l1 == 0.0


def test_dict_round_trip() -> None:
    architecture = Architecture(blocks=3, filters=16, fc_units=64, batch_norm=True,
                                dropout=0.25, l2=0.001)
    assert Architecture.from_dict(architecture.to_dict()) == architecture


@pytest.mark.parametrize(
    ("blocks", "filters", "optimizer", "name"),
    [
        (2, 32, "adam", "B2FL32Adam"),
        (2, 32, "sgd", "B2FL32SGD"),
        (3, 8, "ADAM", "B3FL8Adam"),
        (4, 16, "rmsprop", "B4FL16RMSprop"),
    ],
)
def test_config_name_matches_the_thesis_tables(
    blocks: int, filters: int, optimizer: str, name: str
) -> None:
    assert config_name(blocks, filters, optimizer) == name


OLD_DICTS = [
    {"blocks": 2, "filters": 2, "fc_units": 32, "batch_norm": False, "dropout": 0.0,
     "l2": 0.0005},
    {"blocks": 3, "filters": 16, "fc_units": "thesis", "batch_norm": True, "dropout": 0.25,
     "l2": 0.01},
]


@pytest.mark.parametrize("values", OLD_DICTS)
def test_old_dicts_load_as_thesis_designs(values: dict) -> None:
    architecture = Architecture.from_dict(values)
    assert architecture.family == "thesis"
    assert architecture.batch_norm == ("before" if values["batch_norm"] else "none")
    assert (architecture.activation, architecture.l1) == ("relu", 0.0)
    assert architecture == Architecture(**values)
    old = {k: v for k, v in architecture.to_dict().items() if k in values}
    assert old == {**values, "batch_norm": architecture.batch_norm}
    assert architecture.label == f"B{values['blocks']}FL{values['filters']}"


def test_the_positional_constructor_still_reads_blocks_filters_fc_units() -> None:
    assert Architecture(2, 8, 64) == Architecture(blocks=2, filters=8, fc_units=64)


NEW_DESIGNS = [
    Architecture(blocks=2, filters=8, activation="relu6", batch_norm="after", l1=1e-5),
    Architecture(family="lenet5", dropout=0.5, activation="tanh"),
    Architecture(family="vgg", depth=16, filters=4, fc_units=128, batch_norm="before"),
    Architecture(family="resnet18", filters=16, batch_norm="none", activation="silu"),
    Architecture(family="pretrained", backbone="resnet18", weights="none", dropout=0.2),
]


@pytest.mark.parametrize("architecture", NEW_DESIGNS, ids=lambda a: a.label)
def test_new_fields_round_trip_through_json(architecture: Architecture) -> None:
    stored = json.loads(json.dumps(architecture.to_dict()))
    assert Architecture.from_dict(stored) == architecture


def test_unknown_keys_are_refused_naming_them() -> None:
    with pytest.raises(ArchitectureError, match=r"unknown architecture key\(s\) width.*"
                                                r"allowed: blocks, filters"):
        Architecture.from_dict({"family": "resnet18", "width": 16})


@pytest.mark.parametrize(("family", "defaults"), [
    ("lenet5", {"blocks": None, "filters": None, "fc_units": None, "batch_norm": "none"}),
    ("vgg", {"depth": 11, "filters": 8, "fc_units": "thesis", "batch_norm": "none"}),
    ("resnet18", {"filters": 64, "batch_norm": "before", "depth": None}),
    ("pretrained", {"backbone": "resnet50", "weights": "imagenet", "batch_norm": "before"}),
])
def test_family_defaults_are_filled_in(family: str, defaults: dict) -> None:
    values = Architecture(family=family).to_dict()
    assert {k: values[k] for k in defaults} == defaults
    assert Architecture(family=family) == Architecture(family=family, **{
        k: v for k, v in defaults.items() if v is not None})


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"family": "alexnet"}, "family must be one of thesis, lenet5, vgg, resnet18, "
                                "pretrained, got 'alexnet'"),
        ({"filters": 4}, "blocks is required for the thesis family"),
        ({"blocks": 2}, "filters is required for the thesis family"),
        ({"blocks": 2, "filters": 4, "activation": "gelu"}, "activation must be one of"),
        ({"blocks": 2, "filters": 4, "batch_norm": "middle"},
         "batch_norm must be one of none, before, after"),
        ({"blocks": 2, "filters": 4, "batch_norm": 1}, "batch_norm must be one of"),
        ({"blocks": 2, "filters": 4, "l1": -1e-4}, "l1 must be >= 0"),
        ({"blocks": 2, "filters": 4, "depth": 16}, "depth does not apply to the thesis "
                                                   "family \\(only to vgg\\)"),
        ({"family": "lenet5", "blocks": 2}, "blocks does not apply to the lenet5 family"),
        ({"family": "lenet5", "fc_units": 64}, "fc_units does not apply to the lenet5"),
        ({"family": "resnet18", "fc_units": 64}, "fc_units does not apply to the resnet18"),
        ({"family": "vgg", "depth": 12}, "depth must be one of 11, 13, 16, 19, got 12"),
        ({"family": "vgg", "filters": 0}, "filters must be a positive integer"),
        ({"family": "resnet18", "dropout": 1.0}, "dropout must be in"),
        ({"family": "resnet18", "backbone": "resnet50"}, "backbone does not apply to the "
                                                         "resnet18 family \\(only to "
                                                         "pretrained\\)"),
    ],
)
def test_invalid_new_fields_name_the_field_and_the_choices(values: dict, message: str) -> None:
    with pytest.raises(ArchitectureError, match=message):
        Architecture(**values)


@pytest.mark.parametrize(("architecture", "shape", "feature_map"), [
    (Architecture(family="lenet5"), MNIST_SHAPE, (16, 5, 5)),
    (Architecture(family="vgg"), CIFAR_SHAPE, (64, 1, 1)),
    (Architecture(family="vgg", filters=2), (3, 64, 32), (16, 2, 1)),
    (Architecture(family="resnet18", filters=16), MNIST_SHAPE, (128, 1, 1)),
    (Architecture(family="pretrained"), MNIST_SHAPE, (2048, 1, 1)),
    (Architecture(family="pretrained", backbone="resnet18"), CIFAR_SHAPE, (512, 1, 1)),
])
def test_feature_map_of_every_family(
    architecture: Architecture, shape: tuple[int, int, int], feature_map: tuple[int, int, int]
) -> None:
    assert architecture.feature_map(shape) == feature_map
    architecture.check_fits(shape)


def test_hidden_units_of_vgg_follow_fc_units_and_lenet5_has_none() -> None:
    assert Architecture(family="vgg", filters=4).hidden_units(CIFAR_SHAPE) == 32
    assert Architecture(family="vgg", fc_units=100).hidden_units(CIFAR_SHAPE) == 100
    with pytest.raises(ArchitectureError, match="lenet5 family has no configurable FC"):
        Architecture(family="lenet5").hidden_units(CIFAR_SHAPE)


@pytest.mark.parametrize("shape", [(3, 32), (0, 28, 28), (1, 28, -1)])
def test_malformed_input_shapes_are_refused(shape: tuple) -> None:
    with pytest.raises(ArchitectureError, match="input_shape must be"):
        Architecture(family="resnet18").check_fits(shape)


@pytest.mark.parametrize(("architecture", "optimizer", "name"), [
    (Architecture(blocks=2, filters=32), "adam", "B2FL32Adam"),
    (Architecture(blocks=3, filters=8, activation="relu6", batch_norm="after"), "sgd",
     "B3FL8SGD"),
    (Architecture(family="lenet5"), "adam", "LeNet5Adam"),
    (Architecture(family="vgg"), "sgd", "VGG11W8SGD"),
    (Architecture(family="vgg", depth=16, filters=16), "rmsprop", "VGG16W16RMSprop"),
    (Architecture(family="resnet18", filters=16), "adam", "ResNet18W16Adam"),
    (Architecture(family="resnet18"), "adamw", "ResNet18W64AdamW"),
    (Architecture(family="pretrained"), "adam", "PreResNet50Adam"),
    (Architecture(family="pretrained", backbone="resnet18", weights="none"), "sgd",
     "ScratchResNet18SGD"),
])
def test_design_names(architecture: Architecture, optimizer: str, name: str) -> None:
    assert design_name(architecture, optimizer) == name
    assert name.startswith(architecture.label)


@pytest.mark.parametrize(("blocks", "filters"), [(2, 32), (4, 16), (1, 2)])
def test_design_name_of_the_thesis_family_is_config_name(blocks: int, filters: int) -> None:
    for optimizer in ("adam", "sgd", "rmsprop", "adamw"):
        assert design_name(Architecture(blocks=blocks, filters=filters), optimizer) == (
            config_name(blocks, filters, optimizer))

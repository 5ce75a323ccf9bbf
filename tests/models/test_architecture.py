"""``Architecture``: feature-map arithmetic, the thesis' FC rule, validation and naming."""

from __future__ import annotations

import pytest

from models import FC_UNITS_THESIS, Architecture, ArchitectureError, config_name, max_blocks

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
    assert architecture.batch_norm is False
    assert architecture.dropout == 0.0
    assert architecture.l2 == 0.01  # Keras' default kernel L2


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

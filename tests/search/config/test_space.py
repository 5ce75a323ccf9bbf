"""The space's arithmetic, by hand: what each dimension offers, which ones a trial suggests,
a grid's points and the space's distinct designs (a dimension counted only where it
applies)."""

from __future__ import annotations

from search.config import parse_config
from search.config.space import (
    design_count,
    dimension_choices,
    grid_points,
    lr_range_label,
    lrrt_group,
    sampled_dimensions,
)
from tests.search.config.conftest import raw


def test_labels_and_groups_read_as_the_dashboard_shows_them() -> None:
    assert lr_range_label((1e-4, 1e-2)) == "0.0001-0.01"
    assert lrrt_group("fashion-mnist", (1e-2, 1e-1)) == "fashion-mnist|0.01-0.1"


def test_one_choice_dimensions_are_fixed_and_fallbacks_come_from_their_sections() -> None:
    config = parse_config(raw(model={"l2": 0.003}, train={"sgd_momentum": 0.5}))
    choices = dimension_choices(config)
    assert choices["l2"] == (0.003,) and choices["momentum"] == (0.5,)
    assert choices["lr_range"] == ("0.0001-0.01", "0.01-0.1")
    assert sampled_dimensions(config) == {
        "blocks": [2, 3], "filters": [4, 8], "optimizer": ["adam", "sgd"],
        "lr_range": ["0.0001-0.01", "0.01-0.1"]}


def test_a_grid_multiplies_every_dimension_designs_only_those_that_apply() -> None:
    """momentum applies to SGD only, beta1 to Adam only: 2 x 2 x 2 x (2 + 3) designs, while
    the grid holds 2 x 2 x 2 x 2 x 2 x 3 points."""
    config = parse_config(raw(space__momentum=[0.0, 0.9], space__beta1=[0.8, 0.85, 0.9]))
    assert grid_points(config) == 2 * 2 * 2 * 2 * 2 * 3
    assert design_count(config) == 2 * 2 * 2 * (2 + 3)


def test_families_count_only_their_own_fields() -> None:
    """thesis: blocks x filters x activations; vgg: filters x depths x activations;
    pretrained: its backbones, neither activation nor batch norm."""
    config = parse_config(raw(space={
        "architecture": ["thesis", "vgg", "pretrained"], "blocks": [1, 2], "filters": [4],
        "depth": [11, 13], "backbone": ["resnet18", "resnet50"], "activation": ["relu", "elu"],
        "optimizer": ["adam"], "lr_range": [[1e-4, 1e-2]]}))
    thesis, vgg, pretrained = 2 * 1 * 2, 1 * 2 * 2, 2
    assert design_count(config) == thesis + vgg + pretrained

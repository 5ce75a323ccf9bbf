"""What the images' shape allows, checked with the keys that depend on it: every design of
the space must fit the input (no pooling below one pixel, LeNet-5's 12 pixels), and a
translation must shift by less than the image's side (a reflect pad of 64 pixels on a
16-pixel image fails inside the first training batch).

Called as soon as the shape is known: when the config is read for a named dataset (or one
with ``dataset.image_size``), when the data is loaded for an image folder, and for the one
design of an export (``cnnsearch train``), before anything is trained.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from data.registry import known_shape
from models import Architecture, ArchitectureError
from search.errors import UserError

if TYPE_CHECKING:
    from search.config.settings import DatasetSettings, SearchConfig


def known_input_shape(dataset: DatasetSettings) -> tuple[int, int, int] | None:
    """(channels, height, width) of the images a dataset section gives, when it is known
    before they are read: a named dataset's (resized to ``image_size``); None for a folder
    (its channels are known once it is scanned)."""
    shape = known_shape(dataset.name)
    if shape is None:
        return None
    side = dataset.image_size or shape.side
    return shape.channels, side, side


def check_translate(translate: int, input_shape: tuple[int, int, int], key: str) -> None:
    """``UserError`` naming ``key`` when a shift of ``translate`` pixels is not smaller than
    the images' side."""
    side = min(input_shape[1:])
    if translate >= side:
        raise UserError(f"config key '{key}': a shift of {translate} pixels must be smaller "
                        f"than the images' {side} pixels")


def check_space_shape(config: SearchConfig, input_shape: tuple[int, int, int]) -> None:
    """Refuse a space with a design that cannot be built for this input, or a translation
    as wide as the image."""
    space = config.space
    for blocks in space.blocks if "thesis" in space.architecture else ():
        try:
            Architecture(blocks=blocks, filters=space.filters[0]).feature_map(input_shape)
        except ArchitectureError as error:
            raise UserError(f"config key 'space.blocks': {error}") from None
    for family in sorted(set(space.architecture) - {"thesis"}):  # at the family defaults
        try:
            Architecture(family=family).check_fits(input_shape)
        except ArchitectureError as error:
            raise UserError(f"config key 'space.architecture': {error}") from None
    check_translate(max(space.translate), input_shape, "space.translate")


def check_config_shape(config: SearchConfig) -> None:
    """``check_space_shape`` for a config whose images' shape is known before reading them;
    an image folder's is checked once it is loaded (``search.method.prepared_data``)."""
    shape = known_input_shape(config.dataset)
    if shape is not None:
        check_space_shape(config, shape)

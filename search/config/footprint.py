"""The memory a search implies, estimated before anything is allocated.

Two things grow with the config: the dataset tensors (uint8 images, plus the float32 copies
the training batches are served from, one per batch size of the space) and the largest
design (its weights, gradients and optimizer state, and the activations of a batch, kept
for the backward pass). Both are compared with the budget of ``data.memory_budget``; an estimate
above it is a ``UserError`` naming what to shrink, instead of an allocation that fails an
hour later, or takes the machine down.

Estimates are rough upper bounds in float32 and cover the thesis family of designs (the
one whose size ``filters``, ``blocks`` and ``fc_units`` multiply); other designs pass.
``load_config`` checks what a config alone tells (the named datasets' sizes are known), and
the data path checks again with the dataset as loaded.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from data import DatasetError
from data.memory_budget import check_memory
from data.registry import known_shape, split_plan
from models import FC_UNITS_THESIS
from search.errors import UserError

if TYPE_CHECKING:
    from search.config.settings import SearchConfig

_FLOAT = 4
_OPTIMIZER_COPIES = 4
"""Weights, gradients and up to two optimizer moments (Adam's), per parameter."""
_ASSUMED_FOLDER_CHANNELS = 3
_ASSUMED_FOLDER_CLASSES = 2


def thesis_design_size(blocks: int, filters: int, fc_units: int | str, batch_norm: bool,
                       input_shape: tuple[int, int, int], num_classes: int
                       ) -> tuple[int, int] | None:
    """(parameters, activations per image) of a thesis design; None when it does not fit the
    input (more poolings than pixels: reported elsewhere)."""
    channels, height, width = input_shape
    parameters, activations, in_channels = 0, channels * height * width, channels
    for block in range(blocks):
        out = filters * 2**block
        for conv_in in (in_channels, out):
            parameters += conv_in * out * 9 + (4 * out if batch_norm else out)
            activations += out * height * width * (2 if batch_norm else 1)
        height, width = height // 2, width // 2
        if height < 1 or width < 1:
            return None
        activations += out * height * width
        in_channels = out
    flat = in_channels * height * width
    hidden = flat if fc_units == FC_UNITS_THESIS else int(fc_units)
    parameters += flat * hidden + hidden * hidden + 2 * hidden + hidden * num_classes
    parameters += num_classes
    activations += 4 * hidden + num_classes  # two layers, their ReLU/dropout outputs
    return parameters, activations


def design_bytes(size: tuple[int, int], batch_size: int, eval_batch: int) -> int:
    """Training (weights, gradients, optimizer state, a batch's activations and their
    gradients) or evaluation, whichever needs more."""
    parameters, activations = size
    training = _FLOAT * (_OPTIMIZER_COPIES * parameters + 2 * batch_size * activations)
    evaluation = _FLOAT * (parameters + eval_batch * activations)
    return max(training, evaluation)


def data_bytes(pixels: int, n_train: int, n_val: int, batch_sizes: int) -> int:
    """uint8 images, plus float32 copies: validation once, training once per batch size."""
    return pixels * (n_train + n_val) + _FLOAT * pixels * (n_val + n_train * batch_sizes)


def _check(what: str, needed: int, hint: str) -> None:
    try:
        check_memory(what, needed, hint)
    except DatasetError as error:
        raise UserError(str(error)) from None


def _largest_design(config: SearchConfig, input_shape: tuple[int, int, int],
                    num_classes: int) -> tuple[str, tuple[int, int]] | None:
    """The space's design with the most memory per image (label, size), or None."""
    space = config.space
    if "thesis" not in space.architecture:
        return None
    filters = max(space.filters)
    batch_norm = any(place not in (False, "none") for place in space.batch_norm)
    fixed = [units for units in space.fc_units if units != FC_UNITS_THESIS]
    fc_choices = ([FC_UNITS_THESIS] if FC_UNITS_THESIS in space.fc_units else []) + (
        [max(fixed)] if fixed else [])
    best: tuple[str, tuple[int, int]] | None = None
    for blocks in space.blocks:
        for fc_units in fc_choices:
            size = thesis_design_size(blocks, filters, fc_units, batch_norm,
                                      input_shape, num_classes)
            if size is not None and (best is None or _weight(size) > _weight(best[1])):
                best = (f"B{blocks}FL{filters} with fc_units {fc_units}", size)
    return best


def _weight(size: tuple[int, int]) -> int:
    return _OPTIMIZER_COPIES * size[0] + size[1]


def check_space_memory(config: SearchConfig, input_shape: tuple[int, int, int],
                       num_classes: int, n_train: int | None, n_val: int | None) -> None:
    """``UserError`` when the data (when its size is known) or the space's largest design
    at its largest batch size would not fit in memory."""
    channels, height, width = input_shape
    if n_train is not None and n_val is not None:
        _check(f"the dataset ({n_train} + {n_val} images of {channels}x{height}x{width}, "
               f"as uint8 and float32 copies for {len(config.space.batch_size)} batch size(s))",
               data_bytes(channels * height * width, n_train, n_val,
                          len(config.space.batch_size)),
               "use a smaller dataset.image_size or dataset.train_size/val_size")
    largest = _largest_design(config, input_shape, num_classes)
    if largest is None:
        return
    label, size = largest
    batch = max(config.space.batch_size)
    eval_batch = min(config.train.eval_batch_size, n_val or config.train.eval_batch_size)
    _check(f"the design {label} ({size[0]:,} parameters) at batch_size {batch} on "
           f"{channels}x{height}x{width} images",
           design_bytes(size, batch, eval_batch),
           "use fewer space.filters, a fixed space.fc_units, a smaller space.batch_size or "
           "train.eval_batch_size")


def check_config_memory(config: SearchConfig) -> None:
    """What the config alone tells: the named datasets' sizes are known before reading them
    (those of their splits under ``dataset.split``); an image folder's only with
    ``image_size`` (and its image count not at all). The search never holds the test split."""
    dataset = config.dataset
    shape = known_shape(dataset.name)
    if shape is not None:
        side = dataset.image_size or shape.side
        try:
            train, val, _ = shape.split_sizes(split_plan(
                dataset.name, dataset.split, dataset.val_fraction, dataset.test_fraction))
        except DatasetError:
            return  # a split that means nothing: reported by the config's own checks
        n_train = min(dataset.train_size or train, train)
        n_val = min(dataset.val_size or val, val)
        check_space_memory(config, (shape.channels, side, side), shape.classes, n_train, n_val)
    elif dataset.image_size is not None:
        side = dataset.image_size
        check_space_memory(config, (_ASSUMED_FOLDER_CHANNELS, side, side),
                           _ASSUMED_FOLDER_CLASSES, None, None)


def check_design_memory(architecture: Any, batch_size: int, eval_batch_size: int,
                        input_shape: tuple[int, int, int], num_classes: int,
                        n_train: int, n_val: int, n_test: int = 0) -> None:
    """One design (``cnnsearch train``): its data (the test split too) and its training fit
    in memory."""
    channels, height, width = input_shape
    counts = f"{n_train} + {n_val}" + (f" + {n_test}" if n_test else "")
    _check(f"the dataset ({counts} images of {channels}x{height}x{width})",
           data_bytes(channels * height * width, n_train, n_val + n_test, 1),
           "use a smaller dataset.image_size or dataset.train_size/val_size")
    if getattr(architecture, "family", "thesis") != "thesis":
        return
    size = thesis_design_size(architecture.blocks, architecture.filters, architecture.fc_units,
                              architecture.batch_norm != "none", input_shape, num_classes)
    if size is not None:
        _check(f"the design B{architecture.blocks}FL{architecture.filters} "
               f"({size[0]:,} parameters) at batch_size {batch_size}",
               design_bytes(size, batch_size, min(eval_batch_size, n_val)),
               "use a smaller design or batch_size")

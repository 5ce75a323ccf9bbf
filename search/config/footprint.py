"""The memory a search implies, estimated before anything is allocated.

Two things grow with the config: the dataset tensors (uint8 images, plus the float32 copies
the training batches are served from, one per batch size of the space) and the largest
design (its weights, gradients and optimizer state, and the activations of a batch, kept
for the backward pass). Both are compared with the budget of ``data.memory_budget``; an estimate
above it is a ``UserError`` naming what to shrink, instead of an allocation that fails an
hour later, or takes the machine down.

Every family is measured (``models.footprint``: the network built on torch's meta device,
no storage): thesis, lenet5, vgg, resnet18 and pretrained designs alike. Estimates are
rough upper bounds in float32. ``load_config`` checks what a config alone tells (the named
datasets' sizes are known), the data path checks again with the dataset as loaded, and
``cnnsearch train`` checks the one design of an export.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from data import DatasetError
from data.memory_budget import check_memory
from data.registry import known_shape, split_plan
from models import FC_UNITS_THESIS, Architecture, ArchitectureError
from models.footprint import DesignSize, design_size
from search.errors import UserError

if TYPE_CHECKING:
    from search.config.settings import SearchConfig, SpaceSettings

_FLOAT = 4
_OPTIMIZER_COPIES = 4
"""Weights, gradients and up to two optimizer moments (Adam's), per parameter."""
_EVALUATION_LAYERS = 3
"""Layer outputs an evaluation (no gradients kept) holds at once: a block's input, its
output, and a residual shortcut."""
_ASSUMED_FOLDER_CHANNELS = 3
_ASSUMED_FOLDER_CLASSES = 2


def design_bytes(size: DesignSize, batch_size: int, eval_batch: int) -> int:
    """Training (weights, gradients, optimizer state, a batch's activations and their
    gradients) or evaluation (the weights and a few layers of a batch), whichever needs
    more."""
    training = _FLOAT * (_OPTIMIZER_COPIES * size.parameters
                         + 2 * batch_size * size.activations)
    evaluation = _FLOAT * (size.parameters
                           + _EVALUATION_LAYERS * eval_batch * size.largest_layer)
    return max(training, evaluation)


def data_bytes(pixels: int, n_train: int, n_val: int, batch_sizes: int) -> int:
    """uint8 images, plus float32 copies: validation once, training once per batch size."""
    return pixels * (n_train + n_val) + _FLOAT * pixels * (n_val + n_train * batch_sizes)


def _check(what: str, needed: int, hint: str) -> None:
    try:
        check_memory(what, needed, hint)
    except DatasetError as error:
        raise UserError(str(error)) from None


def _space_designs(space: SpaceSettings) -> Iterator[Architecture]:
    """The designs of the space that can need the most memory, per family: the widest
    (``filters``), deepest (``depth``) and largest FC layers, with batch norm and dropout
    when the space has them; every ``blocks`` of the thesis family (under ``fc_units:
    thesis`` fewer blocks can mean a larger FC layer) and every backbone."""
    filters = max(space.filters)
    fixed = [units for units in space.fc_units if units != FC_UNITS_THESIS]
    fc_choices = ([FC_UNITS_THESIS] if FC_UNITS_THESIS in space.fc_units else []) + (
        [max(fixed)] if fixed else [])
    dropout = max(space.dropout)
    for family in space.architecture:
        places = set()
        for choice in space.batch_norm:  # false: the family's own (as the sampling reads it)
            shape = {"blocks": 1, "filters": 1} if family == "thesis" else {}
            try:
                places.add(Architecture(family=family, batch_norm=None if choice is False
                                        else choice, **shape).batch_norm)
            except ArchitectureError:
                continue  # a choice the family cannot take: refused when it is sampled
        batch_norm = "none" if places <= {"none"} else "before"
        common = {"family": family, "dropout": dropout}
        if family != "pretrained":
            common["batch_norm"] = batch_norm
        if family == "thesis":
            for blocks in space.blocks:
                for fc_units in fc_choices:
                    yield Architecture(blocks=blocks, filters=filters, fc_units=fc_units,
                                       **common)
        elif family == "vgg":
            for fc_units in fc_choices:
                yield Architecture(depth=max(space.depth), filters=filters,
                                   fc_units=fc_units, **common)
        elif family == "resnet18":
            yield Architecture(filters=filters, **common)
        elif family == "pretrained":
            for backbone in space.backbone:
                yield Architecture(backbone=backbone, weights="none", **common)
        else:
            yield Architecture(**common)


def _largest_design(config: SearchConfig, input_shape: tuple[int, int, int],
                    num_classes: int, eval_batch: int
                    ) -> tuple[Architecture, DesignSize, int] | None:
    """The space's design that needs the most memory at its largest batch size (design,
    size, bytes); None when no design fits the input (reported elsewhere)."""
    batch = max(config.space.batch_size)
    best: tuple[Architecture, DesignSize, int] | None = None
    for architecture in _space_designs(config.space):
        try:
            size = design_size(architecture, input_shape, num_classes)
        except ArchitectureError:
            continue  # more poolings than pixels: reported by the space checks
        needed = design_bytes(size, batch, eval_batch)
        if best is None or needed > best[2]:
            best = (architecture, size, needed)
    return best


def _label(architecture: Architecture) -> str:
    """The design as a message names it: ``B1FL1024 with fc_units thesis``, ``VGG19W512
    with fc_units 4096``, ``ResNet18W64``, ``ScratchResNet50``."""
    if architecture.family == "pretrained":
        return f"ResNet{str(architecture.backbone).removeprefix('resnet')}"
    if architecture.fc_units is None:
        return architecture.label
    return f"{architecture.label} with fc_units {architecture.fc_units}"


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
    eval_batch = min(config.train.eval_batch_size, n_val or config.train.eval_batch_size)
    largest = _largest_design(config, input_shape, num_classes, eval_batch)
    if largest is None:
        return
    architecture, size, needed = largest
    _check(f"the design {_label(architecture)} ({size.parameters:,} parameters) at "
           f"batch_size {max(config.space.batch_size)} on {channels}x{height}x{width} images",
           needed, f"use {_shrink(architecture, 'space.')}, a smaller space.batch_size or "
           "train.eval_batch_size")


_SIZE_KEYS = {"thesis": ("filters", "blocks", "fc_units"), "vgg": ("filters", "depth", "fc_units"),
              "resnet18": ("filters",), "pretrained": ("backbone",), "lenet5": ()}
"""The keys that make a design of each family larger."""


def _shrink(architecture: Architecture, prefix: str) -> str:
    """What to make smaller for this design, as config keys (``space.filters`` ...)."""
    keys = [f"{prefix}{key}" for key in _SIZE_KEYS.get(architecture.family, ())]
    if architecture.fc_units == FC_UNITS_THESIS:
        keys.append(f"a fixed {prefix}fc_units")
    return "smaller " + ", ".join(keys) if keys else "a smaller image size"


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


def check_design_memory(architecture: Architecture, batch_size: int, eval_batch_size: int,
                        input_shape: tuple[int, int, int], num_classes: int,
                        n_train: int, n_val: int, n_test: int = 0) -> None:
    """One design (``cnnsearch train``, any family): its data (the test split too) and its
    training fit in memory."""
    channels, height, width = input_shape
    counts = f"{n_train} + {n_val}" + (f" + {n_test}" if n_test else "")
    _check(f"the dataset ({counts} images of {channels}x{height}x{width})",
           data_bytes(channels * height * width, n_train, n_val + n_test, 1),
           "use a smaller dataset.image_size or dataset.train_size/val_size")
    try:
        size = design_size(architecture, input_shape, num_classes)
    except ArchitectureError as error:
        raise UserError(f"the design {architecture.label} cannot be built: {error}") from None
    _check(f"the design {_label(architecture)} ({size.parameters:,} parameters) at "
           f"batch_size {batch_size} on {channels}x{height}x{width} images",
           design_bytes(size, batch_size, min(eval_batch_size, n_val)),
           f"use {_shrink(architecture, 'architecture.')}, a smaller batch_size or "
           "train.eval_batch_size")

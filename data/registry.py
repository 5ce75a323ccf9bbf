"""Dataset names -> loaders, plus the splitting, subsetting and resizing every dataset shares.

The split protocol (``split``) decides which images select designs and which report them:

- ``holdout`` (the default): the validation split, on which a search selects designs, is
  carved from the training images (``val_fraction`` of each class, default 10 %, seeded), and
  the official test split of CIFAR and the MNIST family is kept apart as the test split. A
  folder dataset (EuroSAT, ``imagefolder:PATH``) is split per class into train/validation/test
  (default 70/15/15, seeded). Only ``cnnsearch train`` evaluates on the test split, once per
  run, after training: the figures it reports there were never used to select anything.
- ``thesis``: the thesis' protocol. The official test split is the validation split (it both
  selects and reports designs), folders are split 80/20 into train/validation, and there is
  no test split.

``validate_dataset_name`` and ``split_plan`` are separate from ``load_dataset`` so a config
can be rejected in milliseconds, before any file is read or any trial is started.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from data.cifar import load_cifar10, load_cifar100
from data.dataset import DatasetError, ImageDataset
from data.eurosat import load_eurosat
from data.idx import load_fashion_mnist, load_mnist
from data.imagefolder import load_image_folder
from data.memory_budget import check_memory
from data.resize import resize_images, resize_working_bytes
from data.subsets import stratified_split, stratified_subset

IMAGEFOLDER_PREFIX = "imagefolder:"

_FIXED_LOADERS: dict[str, Callable[[str | Path | None, bool], ImageDataset]] = {
    "fashion-mnist": load_fashion_mnist,
    "mnist": load_mnist,
    "cifar10": load_cifar10,
    "cifar100": load_cifar100,
}

# What users may write; "imagefolder:PATH" stands for the prefix followed by a folder path.
DATASET_NAMES: tuple[str, ...] = (*_FIXED_LOADERS, "eurosat", f"{IMAGEFOLDER_PREFIX}PATH")

SPLITS: tuple[str, ...] = ("holdout", "thesis")
"""The split protocols (module docstring); the first is the default."""
HOLDOUT_VAL_FRACTION = 0.1
"""``holdout``: the share of each class of the official training images that validates."""
FOLDER_HOLDOUT_FRACTIONS = (0.15, 0.15)
"""``holdout``: the validation and test shares of each class of a folder dataset."""
THESIS_FOLDER_VAL_FRACTION = 0.2
"""``thesis``: the validation share of each class of a folder dataset (EuroSAT 80/20)."""
_HOLDOUT_SEED_OFFSET = 2**32
"""The validation carve draws from ``seed + offset``, a stream of its own: not the one the
``train_size``/``val_size`` subsets draw from ``seed``, nor any other study's seed."""


class SplitError(DatasetError):
    """A ``split``/``val_fraction``/``test_fraction`` combination that means nothing;
    ``key`` names the setting at fault."""

    def __init__(self, key: str, text: str) -> None:
        super().__init__(f"{key}: {text}")
        self.key, self.text = key, text


@dataclass(frozen=True)
class SplitPlan:
    """How ``load_dataset`` splits one dataset (see ``split_plan``)."""

    split: str
    val_fraction: float | None
    """Validation share of each class: of the training images (a dataset with an official
    test split) or of the folder; None: the official test split validates (``thesis``)."""
    test_fraction: float | None
    """Test share of each class of a folder; None for a dataset with an official test split
    (that split is the test split under ``holdout``) and under ``thesis`` (no test split)."""

    @property
    def has_test(self) -> bool:
        return self.split == "holdout"


def has_official_test(name: str) -> bool:
    """Whether the dataset ships its own test split (CIFAR, the MNIST family), rather than
    being one folder of images split here."""
    return name in _FIXED_LOADERS


RESIZE_PILLOW = "pillow-bilinear"
"""Folder datasets resize each file with Pillow's bilinear filter while decoding it."""
RESIZE_TORCH = "torch-bilinear-antialias"
"""Tensor datasets (IDX, CIFAR) resize with torch's antialiased bilinear filter
(``data.resize``)."""


def resize_filter(name: str) -> str:
    """How dataset ``name`` resizes its images (``dataset.image_size``): what a trained
    model's new images must go through too, so that they match its training images."""
    return RESIZE_TORCH if has_official_test(name) else RESIZE_PILLOW


def split_plan(name: str, split: str = "holdout", val_fraction: float | None = None,
               test_fraction: float | None = None) -> SplitPlan:
    """The split of dataset ``name`` under protocol ``split``, the fractions left None taking
    their defaults; ``SplitError`` for a setting with no effect or no room. Reads no files."""
    validate_dataset_name(name)
    if split not in SPLITS:
        raise SplitError("split", f"must be one of {', '.join(SPLITS)}, got {split!r}")
    for key, value in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)
                                  or not 0.0 < value < 1.0):
            raise SplitError(key, f"must be a number between 0 and 1 (both excluded), "
                             f"got {value!r}")
    official = has_official_test(name)
    if test_fraction is not None and official:
        raise SplitError("test_fraction", f"{name} ships its own test split, which is the "
                         "test split; test_fraction is for folder datasets only")
    if split == "thesis":
        if test_fraction is not None:
            raise SplitError("test_fraction", "split: thesis keeps no test split; remove "
                             "test_fraction or use split: holdout")
        if val_fraction is not None and official:
            raise SplitError("val_fraction", f"split: thesis validates {name} on its official "
                             "test split, so val_fraction has no effect; remove it or use "
                             "split: holdout")
        return SplitPlan(split, None if official else val_fraction or THESIS_FOLDER_VAL_FRACTION,
                         None)
    if official:
        return SplitPlan(split, val_fraction or HOLDOUT_VAL_FRACTION, None)
    val = val_fraction or FOLDER_HOLDOUT_FRACTIONS[0]
    test = test_fraction or FOLDER_HOLDOUT_FRACTIONS[1]
    if val + test >= 0.95:
        raise SplitError("val_fraction" if val_fraction is not None else "test_fraction",
                         f"val_fraction {val:g} + test_fraction {test:g} leaves less than 5 % "
                         "of the images to train on")
    return SplitPlan(split, val, test)


@dataclass(frozen=True)
class KnownShape:
    """What a named dataset holds, known before reading it (for memory estimates)."""

    channels: int
    side: int
    train: int
    """The official training images, or every image of a folder dataset."""
    test: int
    """The official test images; 0 for a folder dataset."""
    classes: int

    def split_sizes(self, plan: SplitPlan) -> tuple[int, int, int]:
        """(train, validation, test) image counts under ``plan``, before any subset."""
        if plan.val_fraction is None:  # thesis: the official test split validates
            return self.train, self.test, 0
        val = round(self.train * plan.val_fraction)
        if plan.test_fraction is None:  # holdout: the official test split; thesis: none
            return self.train - val, val, self.test if plan.has_test else 0
        test = round(self.train * plan.test_fraction)
        return self.train - val - test, val, test


_KNOWN_SHAPES = {
    "fashion-mnist": KnownShape(1, 28, 60000, 10000, 10),
    "mnist": KnownShape(1, 28, 60000, 10000, 10),
    "cifar10": KnownShape(3, 32, 50000, 10000, 10),
    "cifar100": KnownShape(3, 32, 50000, 10000, 100),
    "eurosat": KnownShape(3, 64, 27000, 0, 10),  # one folder of 27000 tiles
}


def known_shape(name: str) -> KnownShape | None:
    """The shape of a fixed dataset; None for an image folder (known once it is scanned)."""
    return _KNOWN_SHAPES.get(name)


def validate_dataset_name(name: str) -> str:
    """Return ``name`` if it names a dataset, else raise DatasetError. Reads no files."""
    if not isinstance(name, str):
        raise DatasetError(f"dataset name must be a string, got {type(name).__name__}")
    if name.startswith(IMAGEFOLDER_PREFIX):
        if not name[len(IMAGEFOLDER_PREFIX) :].strip():
            raise DatasetError(f"'{name}' needs a folder path: {IMAGEFOLDER_PREFIX}PATH")
        return name
    if name in _FIXED_LOADERS or name == "eurosat":
        return name
    raise DatasetError(f"unknown dataset '{name}': choose one of {', '.join(DATASET_NAMES)}")


def _check_positive(label: str, value: int | None) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value <= 0):
        raise DatasetError(f"{label} must be a positive integer or None, got {value!r}")


def _check_invariants(dataset: ImageDataset) -> None:
    """Catch a loader bug here rather than as a shape error in the first training step."""
    for split in ("train", "val", "test") if dataset.has_test else ("train", "val"):
        images = getattr(dataset, f"{split}_images")
        labels = getattr(dataset, f"{split}_labels")
        if images.dtype != torch.uint8 or images.ndim != 4:
            raise DatasetError(f"{dataset.name}: {split} images must be uint8 NCHW")
        if labels.dtype != torch.int64 or labels.shape != (len(images),):
            raise DatasetError(f"{dataset.name}: {split} labels must be int64, one per image")
        if len(labels) == 0:
            raise DatasetError(f"{dataset.name}: the {split} split is empty")
        if int(labels.min()) < 0 or int(labels.max()) >= dataset.num_classes:
            raise DatasetError(
                f"{dataset.name}: {split} labels outside [0, {dataset.num_classes})"
            )


def _check_resize_fits(name: str, splits: list[torch.Tensor], image_size: int) -> None:
    """Refuse a resize whose output (every split at ``image_size``) would not fit in memory,
    before any of it is allocated."""
    splits = [images for images in splits if images.shape[-2:] != (image_size, image_size)]
    if not splits:
        return
    count = sum(len(images) for images in splits)
    channels = int(splits[0].shape[1])
    needed = count * channels * image_size * image_size + max(
        resize_working_bytes(images, image_size) for images in splits
    )
    check_memory(f"{name} at image_size {image_size} ({count} images of {channels}x{image_size}"
                 f"x{image_size})", needed,
                 "use a smaller dataset.image_size, or dataset.train_size/val_size")


def _hold_out(dataset: ImageDataset, val_fraction: float, seed: int) -> ImageDataset:
    """A loader's official train/test split (returned as train/val) as train/validation/test:
    validation carved per class from the training images, the test split kept apart."""
    train_index, val_index = stratified_split(dataset.train_labels, val_fraction,
                                              seed + _HOLDOUT_SEED_OFFSET)
    return ImageDataset(
        dataset.name, dataset.train_images[train_index], dataset.train_labels[train_index],
        dataset.train_images[val_index], dataset.train_labels[val_index], dataset.classes,
        source=dataset.source, test_images=dataset.val_images, test_labels=dataset.val_labels,
    )


def _subset(dataset: ImageDataset, split: str, size: int | None,
            seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    images = getattr(dataset, f"{split}_images")
    labels = getattr(dataset, f"{split}_labels")
    if size is None:
        return images, labels
    try:
        index = stratified_subset(labels, size, seed)
    except DatasetError as error:
        raise DatasetError(f"{split}_size {size}: {error} in the {dataset.name} "
                           f"{'validation' if split == 'val' else split} split") from None
    return images[index], labels[index]


def load_dataset(
    name: str,
    *,
    data_dir: str | Path | None = None,
    download: bool = False,
    seed: int = 0,
    train_size: int | None = None,
    val_size: int | None = None,
    image_size: int | None = None,
    split: str = "holdout",
    val_fraction: float | None = None,
    test_fraction: float | None = None,
) -> ImageDataset:
    """Load a dataset by name, split it by the ``split`` protocol (module docstring), then
    apply stratified ``train_size``/``val_size`` subsets (the test split is never subset).

    ``data_dir`` is where to look (and download to); None means ``$CNNSEARCH_DATA_DIR``, else
    ``~/.cache/cnnsearch`` (``data.download.default_data_dir``); it is ignored by
    ``imagefolder:PATH``.
    ``image_size`` resizes every image to a square of that side. ``seed`` drives the splits
    and the subsets.
    """
    plan = split_plan(name, split, val_fraction, test_fraction)
    for label, value in (
        ("train_size", train_size),
        ("val_size", val_size),
        ("image_size", image_size),
    ):
        _check_positive(label, value)

    if name.startswith(IMAGEFOLDER_PREFIX) or name == "eurosat":
        assert plan.val_fraction is not None  # a folder is always split here
        fractions = {"val_fraction": plan.val_fraction, "test_fraction": plan.test_fraction}
        if name == "eurosat":
            dataset = load_eurosat(data_dir, download, seed=seed, image_size=image_size,
                                   **fractions)
        else:
            dataset = load_image_folder(name[len(IMAGEFOLDER_PREFIX) :], name=name, seed=seed,
                                        image_size=image_size, **fractions)
    else:
        dataset = _FIXED_LOADERS[name](data_dir, download)
        if plan.val_fraction is not None:
            dataset = _hold_out(dataset, plan.val_fraction, seed)
    _check_invariants(dataset)

    subsets = {"train": _subset(dataset, "train", train_size, seed),
               "val": _subset(dataset, "val", val_size, seed)}
    if dataset.has_test:
        assert dataset.test_images is not None and dataset.test_labels is not None
        subsets["test"] = (dataset.test_images, dataset.test_labels)
    if image_size is not None:
        _check_resize_fits(dataset.name, [images for images, _ in subsets.values()], image_size)
    splits = {part: (resize_images(images, image_size) if image_size is not None else images,
                     labels)
              for part, (images, labels) in subsets.items()}
    test_images, test_labels = splits.get("test", (None, None))
    return ImageDataset(dataset.name, *splits["train"], *splits["val"], dataset.classes,
                        source=dataset.source, test_images=test_images,
                        test_labels=test_labels)

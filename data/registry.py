"""Dataset names -> loaders, plus the subsetting and resizing every dataset shares.

``validate_dataset_name`` is separate from ``load_dataset`` so a config can be rejected in
milliseconds, before any file is read or any trial is started.
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
from data.memory import check_memory
from data.resize import resize_images, resize_working_bytes
from data.subsets import stratified_subset

IMAGEFOLDER_PREFIX = "imagefolder:"

_FIXED_LOADERS: dict[str, Callable[[str | Path | None, bool], ImageDataset]] = {
    "fashion-mnist": load_fashion_mnist,
    "mnist": load_mnist,
    "cifar10": load_cifar10,
    "cifar100": load_cifar100,
}

# What users may write; "imagefolder:PATH" stands for the prefix followed by a folder path.
DATASET_NAMES: tuple[str, ...] = (*_FIXED_LOADERS, "eurosat", f"{IMAGEFOLDER_PREFIX}PATH")


@dataclass(frozen=True)
class KnownShape:
    """What a named dataset holds, known before reading it (for memory estimates)."""

    channels: int
    side: int
    train: int
    val: int
    classes: int


_KNOWN_SHAPES = {
    "fashion-mnist": KnownShape(1, 28, 60000, 10000, 10),
    "mnist": KnownShape(1, 28, 60000, 10000, 10),
    "cifar10": KnownShape(3, 32, 50000, 10000, 10),
    "cifar100": KnownShape(3, 32, 50000, 10000, 100),
    "eurosat": KnownShape(3, 64, 21600, 5400, 10),  # 27000 tiles, split 80/20
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
    for split in ("train", "val"):
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


def load_dataset(
    name: str,
    *,
    data_dir: str | Path | None = None,
    download: bool = False,
    seed: int = 0,
    train_size: int | None = None,
    val_size: int | None = None,
    image_size: int | None = None,
) -> ImageDataset:
    """Load a dataset by name, then apply stratified ``train_size``/``val_size`` subsets.

    ``data_dir`` is where to look (and download to); None means ``$CNNSEARCH_DATA_DIR``, else
    ``~/.cache/cnnsearch`` (``data.download.default_data_dir``); it is ignored by
    ``imagefolder:PATH``.
    ``image_size`` resizes every image to a square of that side. ``seed`` drives the folder
    datasets' 80/20 split and the subsets.
    """
    validate_dataset_name(name)
    for label, value in (
        ("train_size", train_size),
        ("val_size", val_size),
        ("image_size", image_size),
    ):
        _check_positive(label, value)

    if name.startswith(IMAGEFOLDER_PREFIX):
        folder = name[len(IMAGEFOLDER_PREFIX) :]
        dataset = load_image_folder(folder, name=name, seed=seed, image_size=image_size)
    elif name == "eurosat":
        dataset = load_eurosat(data_dir, download, seed=seed, image_size=image_size)
    else:
        dataset = _FIXED_LOADERS[name](data_dir, download)
    _check_invariants(dataset)

    subsets: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    for split, size in (("train", train_size), ("val", val_size)):
        images = getattr(dataset, f"{split}_images")
        labels = getattr(dataset, f"{split}_labels")
        if size is not None:
            index = stratified_subset(labels, size, seed)
            images, labels = images[index], labels[index]
        subsets[split] = (images, labels)
    if image_size is not None:
        _check_resize_fits(dataset.name, [images for images, _ in subsets.values()], image_size)
    splits = {split: (resize_images(images, image_size) if image_size is not None else images,
                      labels)
              for split, (images, labels) in subsets.items()}
    return ImageDataset(dataset.name, *splits["train"], *splits["val"], dataset.classes,
                        source=dataset.source)

"""A folder of class sub-folders (``imagefolder:PATH``) read with Pillow into one tensor.

Classes are the sorted sub-folder names, as torchvision's ImageFolder does, so indices match
between tools. Images are never resized behind the user's back: differing sizes are an error
unless ``image_size`` asks for a resize. The authors of such folders rarely ship a split, so a
seeded per-class 80/20 train/validation split is made here.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from data.dataset import DatasetError, ImageDataset
from data.subsets import stratified_split

IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"})
VAL_FRACTION = 0.2
_GRAYSCALE_MODES = frozenset({"1", "L"})

_T = TypeVar("_T")
_R = TypeVar("_R")


def _parallel_map(function: Callable[[_T], _R], items: Sequence[_T]) -> list[_R]:
    """Pillow releases the GIL while decoding, so threads speed up folders of many files."""
    workers = min(32, os.cpu_count() or 1, max(1, len(items) // 64))
    if workers == 1:
        return [function(item) for item in items]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(function, items))


def scan_image_folder(root: str | Path) -> tuple[list[Path], torch.Tensor, tuple[str, ...]]:
    """Image paths (sorted within each class), their labels, and the sorted class names."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DatasetError(f"image folder {root} does not exist or is not a directory")
    classes = tuple(
        sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    )
    if len(classes) < 2:
        raise DatasetError(
            f"image folder {root} needs at least 2 class sub-folders, found {len(classes)}"
        )
    paths: list[Path] = []
    labels: list[int] = []
    for index, name in enumerate(classes):
        files = sorted(
            p
            for p in (root / name).iterdir()
            if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".")
        )
        if not files:
            raise DatasetError(
                f"class folder {root / name} has no images ({', '.join(sorted(IMAGE_EXTENSIONS))})"
            )
        paths.extend(files)
        labels.extend([index] * len(files))
    return paths, torch.tensor(labels, dtype=torch.int64), classes


def _header(path: Path) -> tuple[tuple[int, int], str]:
    """(width, height) and mode, read without decoding the pixels."""
    try:
        with Image.open(path) as image:
            return image.size, image.mode
    except (UnidentifiedImageError, OSError) as exc:
        raise DatasetError(f"cannot read image {path}: {exc}") from exc


def _decode(path: Path, mode: str, image_size: int | None) -> np.ndarray:
    try:
        with Image.open(path) as image:
            image = image.convert(mode)
            if image_size is not None and image.size != (image_size, image_size):
                image = image.resize((image_size, image_size), Image.Resampling.BILINEAR)
            return np.asarray(image, dtype=np.uint8)
    except (UnidentifiedImageError, OSError) as exc:
        raise DatasetError(f"cannot decode image {path}: {exc}") from exc


def read_images(paths: Sequence[Path], image_size: int | None = None) -> torch.Tensor:
    """Decode ``paths`` into one uint8 NCHW tensor: RGB, or L when every image is grayscale."""
    if image_size is not None and (isinstance(image_size, bool) or image_size <= 0):
        raise DatasetError(f"image_size must be a positive integer, got {image_size!r}")
    headers = _parallel_map(_header, paths)
    mode = "L" if all(m in _GRAYSCALE_MODES for _, m in headers) else "RGB"
    if image_size is None:
        first_size = headers[0][0]
        for path, (size, _) in zip(paths, headers):
            if size != first_size:
                raise DatasetError(
                    f"image sizes differ: {paths[0]} is {first_size[0]}x{first_size[1]} but "
                    f"{path} is {size[0]}x{size[1]}; pass image_size to resize them"
                )
        width, height = first_size
    else:
        width = height = image_size
    channels = 1 if mode == "L" else 3
    images = np.empty((len(paths), height, width, channels), dtype=np.uint8)

    def fill(index: int) -> None:
        pixels = _decode(paths[index], mode, image_size)
        images[index] = pixels.reshape(height, width, channels)

    _parallel_map(fill, range(len(paths)))
    return torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()


def load_image_folder(
    root: str | Path,
    *,
    name: str | None = None,
    seed: int = 0,
    image_size: int | None = None,
    val_fraction: float = VAL_FRACTION,
) -> ImageDataset:
    """Read a class-per-sub-folder tree and split it per class into train/validation."""
    paths, labels, classes = scan_image_folder(root)
    for class_name, count in zip(classes, torch.bincount(labels, minlength=len(classes)).tolist()):
        if count < 2:
            raise DatasetError(
                f"class folder {Path(root) / class_name} has only {count} image; "
                f"the train/validation split needs at least 2 per class"
            )
    images = read_images(paths, image_size)
    train_index, val_index = stratified_split(labels, val_fraction, seed)
    return ImageDataset(
        name=name if name is not None else f"imagefolder:{root}",
        train_images=images[train_index],
        train_labels=labels[train_index],
        val_images=images[val_index],
        val_labels=labels[val_index],
        classes=classes,
        source=Path(root).expanduser(),
    )

"""A folder of class sub-folders (``imagefolder:PATH``) read with Pillow into one tensor.

Classes are the sorted sub-folder names, as torchvision's ImageFolder does, so indices match
between tools; the images of a class are every image file under its folder, sub-folders
included (hidden files and folders skipped, symbolic links to folders never followed, a class
folder that is a link not a class, a link to a file outside the folder skipped). Images are
never resized behind the user's back: differing sizes are an error unless ``image_size`` asks
for a resize. The authors of such folders rarely ship a split, so a seeded per-class split is
made here: train/validation/test when ``test_fraction`` is given (``load_dataset``'s default
protocol, ``split: holdout``: 70/15/15), else train/validation (the thesis' 80/20).

Greyscale stays greyscale: 8-bit (``L``, ``1``) and 16-bit (``I;16``, ``I``: 16-bit PNG and
TIFF) images give one channel; 16-bit values are scaled to 8 bits (``round(v / 257)``), not
clipped. An image of more than Pillow's ``MAX_IMAGE_PIXELS`` (about 89 million pixels) is
refused as a likely decompression bomb, and the whole tensor is checked against the memory
budget (``data.memory_budget``) before it is allocated.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from data.dataset import DatasetError, ImageDataset
from data.memory_budget import check_memory
from data.subsets import stratified_partition

IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"})
VAL_FRACTION = 0.2
"""Validation share of a folder split without a test part (the thesis' EuroSAT 80/20)."""
_SIXTEEN_BIT_MODES = frozenset({"I;16", "I;16L", "I;16B", "I;16N", "I"})
"""Greyscale modes wider than 8 bits: Pillow's 16-bit modes, and ``I`` (32-bit integers), which
16-bit PNGs and TIFFs also open as; read as 16-bit values (0..65535) and scaled to 8 bits."""
_GRAYSCALE_MODES = frozenset({"1", "L"}) | _SIXTEEN_BIT_MODES

# Pillow warns (on stderr) about images between MAX_IMAGE_PIXELS and twice that; image_header
# refuses them with an error naming the file instead, so the warning would only be noise.
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)

_T = TypeVar("_T")
_R = TypeVar("_R")


def _parallel_workers(count: int) -> int:
    return min(32, os.cpu_count() or 1, max(1, count // 64))


def parallel_map(function: Callable[[_T], _R], items: Sequence[_T]) -> list[_R]:
    """Pillow releases the GIL while decoding, so threads speed up folders of many files."""
    workers = _parallel_workers(len(items))
    if workers == 1:
        return [function(item) for item in items]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(function, items))


def image_files(folder: Path, root: Path | None = None) -> list[Path]:
    """Every image file under ``folder``, sub-folders included, sorted by relative path; names
    starting with a dot (files or folders) are skipped, links to folders are not followed, and
    a link to a file counts only when the file is inside ``root`` (resolved; ``folder`` when
    not given)."""
    root = folder.resolve() if root is None else root
    found = []
    for directory, subfolders, files in os.walk(folder):  # never descends into folder links
        subfolders[:] = sorted(name for name in subfolders if not name.startswith("."))
        for name in files:
            path = Path(directory, name)
            if (not name.startswith(".") and path.suffix.lower() in IMAGE_EXTENSIONS
                    and _inside(path, root) and path.is_file()):
                found.append(path)
    return sorted(found, key=lambda path: path.relative_to(folder).parts)


def _inside(path: Path, root: Path) -> bool:
    """Whether ``path``, its links resolved, lies under ``root`` (itself resolved)."""
    if not path.is_symlink():
        return True
    try:
        return path.resolve(strict=True).is_relative_to(root)
    except (OSError, RuntimeError):  # a dangling link, a loop
        return False


def _class_folders(root: Path) -> tuple[list[str], list[str]]:
    """The sorted names of ``root``'s class sub-folders, and of its links to folders, which
    are not classes: a link could name ``/usr``, or ``root`` itself."""
    classes, links = [], []
    for entry in root.iterdir():
        if entry.name.startswith(".") or not entry.is_dir():
            continue
        (links if entry.is_symlink() else classes).append(entry.name)
    return sorted(classes), sorted(links)


def scan_image_folder(root: str | Path) -> tuple[list[Path], torch.Tensor, tuple[str, ...]]:
    """Image paths (sorted within each class), their labels, and the sorted class names."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DatasetError(f"image folder {root} does not exist or is not a directory")
    names, links = _class_folders(root)
    classes = tuple(names)
    if len(classes) < 2:
        skipped = (f" ({len(links)} link(s) to folders not followed: "
                   f"{', '.join(links[:5])})" if links else "")
        raise DatasetError(
            f"image folder {root} needs at least 2 class sub-folders, found "
            f"{len(classes)}{skipped}"
        )
    resolved = root.resolve()
    paths: list[Path] = []
    labels: list[int] = []
    for index, name in enumerate(classes):
        files = image_files(root / name, resolved)
        if not files:
            raise DatasetError(
                f"class folder {root / name} has no images ({', '.join(sorted(IMAGE_EXTENSIONS))}"
                "; links to files outside the image folder are not followed)"
            )
        paths.extend(files)
        labels.extend([index] * len(files))
    return paths, torch.tensor(labels, dtype=torch.int64), classes


def image_header(path: Path) -> tuple[tuple[int, int], str]:
    """(width, height) and mode, read without decoding the pixels; a file Pillow cannot
    identify, or one of more than ``MAX_IMAGE_PIXELS``, is a ``DatasetError``."""
    try:
        with Image.open(path) as image:
            size, mode = image.size, image.mode
    except Image.DecompressionBombError as exc:
        raise DatasetError(f"cannot read image {path}: {exc}") from None
    except (UnidentifiedImageError, OSError, ValueError, EOFError) as exc:
        raise DatasetError(f"cannot read image {path}: {exc}") from exc
    if size[0] * size[1] > Image.MAX_IMAGE_PIXELS:
        raise DatasetError(
            f"image {path} is {size[0]}x{size[1]} pixels, more than the {Image.MAX_IMAGE_PIXELS} "
            "allowed (a decompression bomb, or a picture to shrink before training on it)"
        )
    return size, mode


def _to_8_bit(image: Image.Image) -> Image.Image:
    """A 16-bit greyscale image as 8-bit ``L``, scaled (``round(v / 257)``) rather than
    clipped at 255 as Pillow's ``convert("L")`` does; other images unchanged."""
    if image.mode not in _SIXTEEN_BIT_MODES:
        return image
    values = np.asarray(image).astype(np.int64).clip(0, 65535)
    return Image.fromarray(((values * 255 + 32767) // 65535).astype(np.uint8), mode="L")


def decode_image(path: Path, mode: str, size: tuple[int, int] | None = None) -> np.ndarray:
    """One image as uint8 pixels (H x W, or H x W x 3 for ``RGB``), exactly as a folder
    dataset reads it: 16-bit grey scaled to 8 bits, converted to ``mode`` (``L`` or
    ``RGB``), resized with Pillow's bilinear filter to ``size`` (width, height) when it
    differs. ``cnnsearch predict`` reads new images through it, so they match training."""
    try:
        with Image.open(path) as image:
            image = _to_8_bit(image).convert(mode)
            if size is not None and image.size != size:
                image = image.resize(size, Image.Resampling.BILINEAR)
            return np.asarray(image, dtype=np.uint8)
    except Image.DecompressionBombError as exc:
        raise DatasetError(f"cannot decode image {path}: {exc}") from None
    except (UnidentifiedImageError, OSError, ValueError, EOFError) as exc:
        raise DatasetError(f"cannot decode image {path}: {exc}") from exc


def read_images(paths: Sequence[Path], image_size: int | None = None) -> torch.Tensor:
    """Decode ``paths`` into one uint8 NCHW tensor: RGB, or L when every image is grayscale."""
    if image_size is not None and (isinstance(image_size, bool) or image_size <= 0):
        raise DatasetError(f"image_size must be a positive integer, got {image_size!r}")
    headers = parallel_map(image_header, paths)
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
    largest = max(w * h for (w, h), _ in headers)
    workers = _parallel_workers(len(paths))
    check_memory(
        f"reading {len(paths)} images of {width}x{height}x{channels}",
        len(paths) * height * width * channels + workers * largest * 8,
        "use a smaller dataset.image_size, or fewer or smaller images",
    )
    images = np.empty((len(paths), height, width, channels), dtype=np.uint8)

    def fill(index: int) -> None:
        pixels = decode_image(paths[index], mode,
                              None if image_size is None else (image_size, image_size))
        images[index] = pixels.reshape(height, width, channels)

    parallel_map(fill, range(len(paths)))
    return torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()


def load_image_folder(
    root: str | Path,
    *,
    name: str | None = None,
    seed: int = 0,
    image_size: int | None = None,
    val_fraction: float = VAL_FRACTION,
    test_fraction: float | None = None,
) -> ImageDataset:
    """Read a class-per-sub-folder tree and split it per class into train/validation, plus a
    test split of ``test_fraction`` of every class when that is given."""
    fractions = (val_fraction,) if test_fraction is None else (val_fraction, test_fraction)
    parts = "train/validation" if test_fraction is None else "train/validation/test"
    paths, labels, classes = scan_image_folder(root)
    for class_name, count in zip(classes, torch.bincount(labels, minlength=len(classes)).tolist()):
        if count <= len(fractions):
            raise DatasetError(
                f"class folder {Path(root) / class_name} has only {count} "
                f"image{'' if count == 1 else 's'}; the {parts} split needs at least "
                f"{len(fractions) + 1} per class"
            )
    images = read_images(paths, image_size)
    train_index, val_index, *test_index = stratified_partition(labels, fractions, seed)
    return ImageDataset(
        name=name if name is not None else f"imagefolder:{root}",
        train_images=images[train_index],
        train_labels=labels[train_index],
        val_images=images[val_index],
        val_labels=labels[val_index],
        classes=classes,
        source=Path(root).expanduser(),
        test_images=images[test_index[0]] if test_index else None,
        test_labels=labels[test_index[0]] if test_index else None,
    )

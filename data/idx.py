"""IDX files (the MNIST family's format) and the Fashion-MNIST / MNIST loaders built on them.

The format is a 4-byte magic number (two zero bytes, a type code, the number of dimensions),
one big-endian uint32 per dimension, then the raw values. Files are checked against that
header so a truncated download or a swapped file fails with a readable message instead of a
reshape error deep inside training.
"""

from __future__ import annotations

import gzip
import math
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from data.dataset import DatasetError, ImageDataset
from data.download import data_root, not_found_message, torchvision_download

_GZIP_MAGIC = b"\x1f\x8b"

# IDX type code -> numpy dtype (big-endian where it matters).
_IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}

IDX_FILES: dict[str, str] = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "val_images": "t10k-images-idx3-ubyte",
    "val_labels": "t10k-labels-idx1-ubyte",
}

FASHION_MNIST_CLASSES: tuple[str, ...] = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
MNIST_CLASSES: tuple[str, ...] = tuple(str(digit) for digit in range(10))

# Debian's dataset-fashion-mnist package; module-level so tests can point it elsewhere.
DEBIAN_FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")


def _read_bytes(path: Path) -> bytes:
    """The file's payload, gunzipped when it starts with the gzip magic (whatever its name)."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DatasetError(f"cannot read IDX file {path}: {exc}") from exc
    if not raw.startswith(_GZIP_MAGIC):
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as exc:
        raise DatasetError(f"IDX file {path} is a corrupt or truncated gzip: {exc}") from exc


def read_idx(path: str | Path) -> np.ndarray:
    """Read one IDX file (plain or gzipped) into an array of native byte order."""
    path = Path(path)
    raw = _read_bytes(path)
    if len(raw) < 4:
        raise DatasetError(f"IDX file {path} is truncated: {len(raw)} bytes, no full header")
    (magic,) = struct.unpack(">I", raw[:4])
    type_code, ndim = raw[2], raw[3]
    if raw[0] != 0 or raw[1] != 0 or type_code not in _IDX_DTYPES or ndim == 0:
        raise DatasetError(f"{path} is not an IDX file: bad magic number 0x{magic:08x}")
    header_size = 4 + 4 * ndim
    if len(raw) < header_size:
        raise DatasetError(f"IDX file {path} is truncated inside its {ndim}-dimension header")
    shape = struct.unpack(f">{ndim}I", raw[4:header_size])
    dtype = _IDX_DTYPES[type_code]
    expected = math.prod(shape) * dtype.itemsize
    found = len(raw) - header_size
    if found != expected:
        problem = "truncated" if found < expected else "longer than its header says"
        raise DatasetError(
            f"IDX file {path} is {problem}: shape {tuple(shape)} needs {expected} data bytes, "
            f"found {found}"
        )
    array = np.frombuffer(raw, dtype=dtype, count=math.prod(shape), offset=header_size)
    return array.reshape(shape).astype(dtype.newbyteorder("="), copy=True)


def _find_file(directory: Path, stem: str) -> Path | None:
    """The plain file if present (torchvision extracts it), else the ``.gz``."""
    for candidate in (directory / stem, directory / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    return None


def _require_file(directory: Path, stem: str) -> Path:
    path = _find_file(directory, stem)
    if path is None:
        raise DatasetError(f"{directory} has neither {stem} nor {stem}.gz")
    return path


def find_idx_dir(root: Path, torchvision_folder: str) -> Path | None:
    """``root`` itself if it holds the four files, else torchvision's ``root/<folder>/raw``."""
    for directory in (root, root / torchvision_folder / "raw"):
        if all(_find_file(directory, stem) for stem in IDX_FILES.values()):
            return directory
    return None


def _read_split(
    directory: Path, images_key: str, labels_key: str, num_classes: int
) -> tuple[torch.Tensor, torch.Tensor]:
    images_path = _require_file(directory, IDX_FILES[images_key])
    labels_path = _require_file(directory, IDX_FILES[labels_key])
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise DatasetError(
            f"{images_path} should hold uint8 images (N, H, W), found {images.dtype} "
            f"with shape {images.shape}"
        )
    if labels.ndim != 1:
        raise DatasetError(f"{labels_path} should hold a 1-d label vector, shape {labels.shape}")
    if len(images) != len(labels):
        raise DatasetError(
            f"{images_path} has {len(images)} images but {labels_path} has {len(labels)} labels"
        )
    if len(labels) and (labels.min() < 0 or labels.max() >= num_classes):
        raise DatasetError(f"{labels_path} has labels outside [0, {num_classes})")
    return torch.from_numpy(images).unsqueeze(1), torch.from_numpy(labels.astype(np.int64))


def read_idx_dataset(name: str, directory: Path, classes: tuple[str, ...]) -> ImageDataset:
    """Build the dataset from a directory holding the four standard IDX files (the ``t10k``
    test files as the ``val`` split: the authors' split as the thesis used it)."""
    train_images, train_labels = _read_split(
        directory, "train_images", "train_labels", len(classes)
    )
    val_images, val_labels = _read_split(directory, "val_images", "val_labels", len(classes))
    if train_images.shape[1:] != val_images.shape[1:]:
        raise DatasetError(
            f"{name}: train images are {tuple(train_images.shape[2:])} but validation images "
            f"are {tuple(val_images.shape[2:])}"
        )
    return ImageDataset(name, train_images, train_labels, val_images, val_labels, classes,
                        source=directory)


@dataclass(frozen=True)
class _IdxSpec:
    name: str
    classes: tuple[str, ...]
    torchvision_class: str  # also torchvision's folder name: <root>/<class>/raw

    def system_dirs(self) -> tuple[Path, ...]:
        return (DEBIAN_FASHION_MNIST_DIR,) if self.name == "fashion-mnist" else ()


_FASHION_MNIST = _IdxSpec("fashion-mnist", FASHION_MNIST_CLASSES, "FashionMNIST")
_MNIST = _IdxSpec("mnist", MNIST_CLASSES, "MNIST")


def _load(spec: _IdxSpec, data_dir: str | Path | None, download: bool) -> ImageDataset:
    """Search order: ``data_dir``; else system copies, then ``$CNNSEARCH_DATA_DIR`` or the
    cache; else download into the last of these."""
    download_root = data_root(data_dir)
    roots = [download_root] if data_dir is not None else [*spec.system_dirs(), download_root]
    for root in roots:
        directory = find_idx_dir(root, spec.torchvision_class)
        if directory is not None:
            return read_idx_dataset(spec.name, directory, spec.classes)
    if not download:
        raise DatasetError(not_found_message(spec.name, roots, "the four IDX files"))
    torchvision_download(spec.torchvision_class, download_root)
    directory = find_idx_dir(download_root, spec.torchvision_class)
    if directory is None:
        raise DatasetError(f"{spec.name}: download finished but no IDX files in {download_root}")
    return read_idx_dataset(spec.name, directory, spec.classes)


def load_fashion_mnist(data_dir: str | Path | None = None, download: bool = False) -> ImageDataset:
    """Fashion-MNIST: 60000 train / 10000 test 28x28 grayscale images, 10 classes; the test
    split is returned as ``val`` (``ImageDataset``: ``load_dataset`` keeps it apart by
    default)."""
    return _load(_FASHION_MNIST, data_dir, download)


def load_mnist(data_dir: str | Path | None = None, download: bool = False) -> ImageDataset:
    """MNIST digits: 60000 train / 10000 test 28x28 grayscale images, 10 classes; the test
    split is returned as ``val``, as for Fashion-MNIST."""
    return _load(_MNIST, data_dir, download)

"""CIFAR-10 and CIFAR-100 from the authors' python pickle batches.

Each batch is a pickled dict whose ``data`` is uint8 rows of 3072 values (the 32x32 red plane,
then green, then blue), so a plain reshape gives NCHW. The official files were pickled by
Python 2 (str keys, loaded with ``encoding='latin1'``); re-pickled copies often carry bytes
keys, so both are accepted. Unpickling is restricted to the numpy globals an array needs:
a pickle can otherwise run arbitrary code, and dataset files come from elsewhere.
"""

from __future__ import annotations

import io
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from data.dataset import DatasetError, ImageDataset
from data.download import data_root, not_found_message, torchvision_download

_ROW_SIZE = 3 * 32 * 32

_ALLOWED_GLOBALS = frozenset(
    {
        ("_codecs", "encode"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
    }
)


class _ArrayOnlyUnpickler(pickle.Unpickler):
    """Refuses every global except those needed to rebuild numpy arrays."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _ALLOWED_GLOBALS:
            raise pickle.UnpicklingError(f"refusing to load global {module}.{name}")
        return super().find_class(module, name)


def _text(value: object) -> str:
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return value.decode("latin1")
    return str(value)


def load_cifar_pickle(path: Path) -> dict[str, Any]:
    """Unpickle one CIFAR file into a dict with str keys (bytes keys are decoded)."""
    try:
        payload = path.read_bytes()
        entry = _ArrayOnlyUnpickler(io.BytesIO(payload), encoding="latin1").load()
    except OSError as exc:
        raise DatasetError(f"cannot read CIFAR file {path}: {exc}") from exc
    except Exception as exc:  # unpickling raises almost anything on a corrupt file
        raise DatasetError(f"{path} is not a readable CIFAR pickle: {exc}") from exc
    if not isinstance(entry, dict):
        raise DatasetError(f"{path} should hold a dict, found {type(entry).__name__}")
    return {_text(key): value for key, value in entry.items()}


def _field(entry: dict[str, Any], key: str, path: Path) -> Any:
    if key not in entry:
        raise DatasetError(f"{path} has no '{key}' entry (keys: {', '.join(sorted(entry))})")
    return entry[key]


def _read_batch(path: Path, label_key: str, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    entry = load_cifar_pickle(path)
    data = np.asarray(_field(entry, "data", path))
    labels = np.asarray(_field(entry, label_key, path), dtype=np.int64)
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != _ROW_SIZE:
        raise DatasetError(
            f"{path}: 'data' should be uint8 rows of {_ROW_SIZE}, found {data.dtype} "
            f"with shape {data.shape}"
        )
    if labels.shape != (len(data),):
        raise DatasetError(f"{path}: {len(data)} images but {labels.size} labels")
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise DatasetError(f"{path}: labels outside [0, {num_classes})")
    return data, labels


@dataclass(frozen=True)
class _CifarSpec:
    name: str
    folder: str  # the archive's top-level folder, as torchvision extracts it
    train_files: tuple[str, ...]
    test_file: str
    meta_file: str
    label_key: str
    names_key: str
    torchvision_class: str

    def files(self) -> tuple[str, ...]:
        return (*self.train_files, self.test_file, self.meta_file)


CIFAR10 = _CifarSpec(
    name="cifar10",
    folder="cifar-10-batches-py",
    train_files=tuple(f"data_batch_{i}" for i in range(1, 6)),
    test_file="test_batch",
    meta_file="batches.meta",
    label_key="labels",
    names_key="label_names",
    torchvision_class="CIFAR10",
)
CIFAR100 = _CifarSpec(
    name="cifar100",
    folder="cifar-100-python",
    train_files=("train",),
    test_file="test",
    meta_file="meta",
    label_key="fine_labels",
    names_key="fine_label_names",
    torchvision_class="CIFAR100",
)


def _find_dir(spec: _CifarSpec, roots: list[Path]) -> Path | None:
    for directory in roots:
        if all((directory / name).is_file() for name in spec.files()):
            return directory
    return None


def read_cifar_dir(spec: _CifarSpec, directory: Path) -> ImageDataset:
    """Read an extracted CIFAR folder (``cifar-10-batches-py`` or ``cifar-100-python``)."""
    meta_path = directory / spec.meta_file
    names = _field(load_cifar_pickle(meta_path), spec.names_key, meta_path)
    classes = tuple(_text(name) for name in names)
    if len(classes) < 2:
        raise DatasetError(f"{meta_path}: '{spec.names_key}' lists {len(classes)} classes")

    def split(files: tuple[str, ...]) -> tuple[torch.Tensor, torch.Tensor]:
        batches = [_read_batch(directory / f, spec.label_key, len(classes)) for f in files]
        data = np.concatenate([b[0] for b in batches]).reshape(-1, 3, 32, 32)
        labels = np.concatenate([b[1] for b in batches])
        return torch.from_numpy(data), torch.from_numpy(labels)

    train_images, train_labels = split(spec.train_files)
    val_images, val_labels = split((spec.test_file,))
    return ImageDataset(spec.name, train_images, train_labels, val_images, val_labels, classes,
                        source=directory)


def _load(spec: _CifarSpec, data_dir: str | Path | None, download: bool) -> ImageDataset:
    """Look in ``data_dir`` (its archive folder, or itself), else in ``$CNNSEARCH_DATA_DIR`` or
    the cache; download there on request."""
    root = data_root(data_dir)
    candidates = [root / spec.folder] + ([root] if data_dir is not None else [])
    directory = _find_dir(spec, candidates)
    if directory is None:
        if not download:
            raise DatasetError(not_found_message(spec.name, candidates, "the python batches"))
        torchvision_download(spec.torchvision_class, root)
        directory = _find_dir(spec, [root / spec.folder])
        if directory is None:
            raise DatasetError(
                f"{spec.name}: download finished but {root / spec.folder} is incomplete"
            )
    return read_cifar_dir(spec, directory)


def load_cifar10(data_dir: str | Path | None = None, download: bool = False) -> ImageDataset:
    """CIFAR-10: 50000 train / 10000 test 32x32 RGB images, 10 classes; the test split is
    returned as ``val`` (``ImageDataset``: ``load_dataset`` keeps it apart by default)."""
    return _load(CIFAR10, data_dir, download)


def load_cifar100(data_dir: str | Path | None = None, download: bool = False) -> ImageDataset:
    """CIFAR-100 (fine labels): 50000 train / 10000 test 32x32 RGB images, 100 classes; the
    test split is returned as ``val``, as for CIFAR-10."""
    return _load(CIFAR100, data_dir, download)

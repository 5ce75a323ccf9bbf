"""Fixtures for the data tests: offline guards and writers of small files in the real formats."""

from __future__ import annotations

import gzip
import pickle
import socket
import struct
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

import data.idx

IDX_TYPE_CODES = {np.dtype(np.uint8): 0x08, np.dtype(">i4"): 0x0C}


@pytest.fixture(autouse=True)
def offline(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No network, an empty home (so an empty cache), no ``$CNNSEARCH_DATA_DIR`` and no Debian
    Fashion-MNIST by default."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise OSError("tests must not touch the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("CNNSEARCH_DATA_DIR", raising=False)
    monkeypatch.setattr(data.idx, "DEBIAN_FASHION_MNIST_DIR", home / "no-debian-copy")
    return home


# --------------------------------------------------------------------------- IDX


def idx_bytes(array: np.ndarray) -> bytes:
    """Serialise ``array`` as IDX: magic (0, 0, type, ndim), big-endian dims, raw values."""
    dtype = np.dtype(array.dtype).newbyteorder(">") if array.dtype.itemsize > 1 else array.dtype
    header = struct.pack(">BBBB", 0, 0, IDX_TYPE_CODES[np.dtype(dtype)], array.ndim)
    header += struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(dtype).tobytes()


def write_idx(path: Path, array: np.ndarray, *, compress: bool = True) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = idx_bytes(array)
    path.write_bytes(gzip.compress(payload) if compress else payload)
    return path


IDX_STEMS = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "val_images": "t10k-images-idx3-ubyte",
    "val_labels": "t10k-labels-idx1-ubyte",
}


def make_idx_dir(
    directory: Path,
    *,
    n_train: int = 40,
    n_val: int = 20,
    size: tuple[int, int] = (6, 5),
    compress: bool = True,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """The four MNIST-style files; image i's first two pixels encode i so rows can be traced."""
    rng = np.random.default_rng(seed)
    arrays: dict[str, np.ndarray] = {}
    for split, count in (("train", n_train), ("val", n_val)):
        images = rng.integers(0, 256, size=(count, *size), dtype=np.uint8)
        images[:, 0, 0] = np.arange(count) // 256
        images[:, 0, 1] = np.arange(count) % 256
        labels = (np.arange(count) % 10).astype(np.uint8)
        arrays[f"{split}_images"], arrays[f"{split}_labels"] = images, labels
    suffix = ".gz" if compress else ""
    for key, stem in IDX_STEMS.items():
        write_idx(directory / f"{stem}{suffix}", arrays[key], compress=compress)
    return arrays


# --------------------------------------------------------------------------- CIFAR


def _py2_int(value: int) -> bytes:
    if 0 <= value < 256:
        return b"K" + bytes([value])
    if 0 <= value < 65536:
        return b"M" + struct.pack("<H", value)
    return b"J" + struct.pack("<i", value)


def _py2_str(value: bytes) -> bytes:
    if len(value) < 256:
        return b"U" + bytes([len(value)]) + value
    return b"T" + struct.pack("<i", len(value)) + value


def _py2_object(value: object) -> bytes:
    """Protocol-2 opcodes as Python 2's cPickle wrote them (str = byte string)."""
    if isinstance(value, bool) or value is None:
        return {True: b"\x88", False: b"\x89", None: b"N"}[value]
    if isinstance(value, int):
        return _py2_int(value)
    if isinstance(value, str):
        return _py2_str(value.encode("latin1"))
    if isinstance(value, list):
        return b"](" + b"".join(_py2_object(v) for v in value) + b"e"
    if isinstance(value, tuple):
        return b"(" + b"".join(_py2_object(v) for v in value) + b"t"
    if isinstance(value, dict):
        items = b"".join(_py2_object(k) + _py2_object(v) for k, v in value.items())
        return b"}(" + items + b"u"
    if isinstance(value, np.ndarray):
        assert value.dtype == np.uint8
        dtype = (
            b"cnumpy\ndtype\n"
            + _py2_object(("u1", 0, 1))
            + b"R"
            + _py2_object((3, "|", None, None, None, -1, -1, 0))
            + b"b"
        )
        state = (
            b"("
            + _py2_int(1)
            + _py2_object(tuple(value.shape))
            + dtype
            + b"\x89"
            + _py2_str(value.tobytes())
            + b"t"
        )
        return (
            b"cnumpy.core.multiarray\n_reconstruct\n(cnumpy\nndarray\n"
            + _py2_object((0,))
            + _py2_str(b"b")
            + b"tR"
            + state
            + b"b"
        )
    raise TypeError(type(value))


def py2_pickle(value: object) -> bytes:
    """A pickle byte-for-byte in the style of the official (Python 2) CIFAR files."""
    return b"\x80\x02" + _py2_object(value) + b"."


def _dump(path: Path, entry: dict, style: str) -> None:
    if style == "py2":
        path.write_bytes(py2_pickle(entry))
        return
    if style == "bytes":
        entry = {
            k.encode(): [n.encode() for n in v] if k.endswith("names") else v
            for k, v in entry.items()
        }
    path.write_bytes(pickle.dumps(entry, protocol=2))


def make_cifar_dir(
    directory: Path,
    *,
    variant: str = "cifar10",
    per_batch: int = 6,
    style: str = "bytes",
    seed: int = 0,
) -> dict[str, object]:
    """An extracted CIFAR folder in the official layout; ``style`` picks the key type.

    ``bytes``: Python 3 pickle with bytes keys; ``str``: str keys; ``py2``: Python 2 opcodes.
    """
    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    if variant == "cifar10":
        classes = ["airplane", "automobile", "bird", "cat", "deer",
                   "dog", "frog", "horse", "ship", "truck"]  # fmt: skip
        train_files = [f"data_batch_{i}" for i in range(1, 6)]
        test_file, meta_file, label_key, names_key = (
            "test_batch",
            "batches.meta",
            "labels",
            ("label_names"),
        )
    else:
        classes = [f"fine{i:02d}" for i in range(100)]
        train_files = ["train"]
        test_file, meta_file, label_key, names_key = (
            "test",
            "meta",
            "fine_labels",
            ("fine_label_names"),
        )
    rows: dict[str, list[np.ndarray]] = {"train": [], "val": []}
    labels: dict[str, list[int]] = {"train": [], "val": []}
    for split, files in (("train", train_files), ("val", [test_file])):
        for file_name in files:
            data = rng.integers(0, 256, size=(per_batch, 3072), dtype=np.uint8)
            batch_labels = [int(v) for v in rng.integers(0, len(classes), size=per_batch)]
            entry: dict[str, object] = {"batch_label": file_name, "data": data}
            entry[label_key] = batch_labels
            if variant == "cifar100":
                entry["coarse_labels"] = [v // 5 for v in batch_labels]
            entry["filenames"] = [f"img_{i}.png" for i in range(per_batch)]
            _dump(directory / file_name, entry, style)
            rows[split].append(data)
            labels[split].extend(batch_labels)
    meta: dict[str, object] = {names_key: classes}
    if variant == "cifar10":
        meta.update(num_cases_per_batch=per_batch, num_vis=3072)
    else:
        meta["coarse_label_names"] = [f"coarse{i:02d}" for i in range(20)]
    _dump(directory / meta_file, meta, style)
    return {
        "classes": classes,
        "train_rows": np.concatenate(rows["train"]),
        "train_labels": np.array(labels["train"]),
        "val_rows": np.concatenate(rows["val"]),
        "val_labels": np.array(labels["val"]),
    }


# --------------------------------------------------------------------------- image folders


def make_image_folder(
    root: Path,
    counts: dict[str, int],
    *,
    size: tuple[int, int] = (7, 5),
    mode: str = "RGB",
    ext: str = ".png",
    seed: int = 0,
) -> dict[bytes, str]:
    """Random images per class folder; returns each image's HWC bytes -> its class name."""
    rng = np.random.default_rng(seed)
    written: dict[bytes, str] = {}
    width, height = size
    for name, count in counts.items():
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            shape = (height, width, 3) if mode == "RGB" else (height, width)
            pixels = rng.integers(0, 256, size=shape, dtype=np.uint8)
            Image.fromarray(pixels, mode=mode).save(root / name / f"{name}_{i}{ext}")
            written[pixels.tobytes()] = name
    return written


def make_eurosat_tree(directory: Path, per_class: int = 3, size: int = 64) -> list[str]:
    """EuroSAT's 2750/<Class>/<Class>_<n>.jpg layout, one flat colour per class."""
    from data.eurosat import EUROSAT_CLASSES

    for index, name in enumerate(EUROSAT_CLASSES):
        (directory / name).mkdir(parents=True, exist_ok=True)
        colour = (index * 25, 255 - index * 25, 100)
        for i in range(per_class):
            image = Image.new("RGB", (size, size), colour)
            image.save(directory / name / f"{name}_{i + 1}.jpg", quality=95)
    return list(EUROSAT_CLASSES)


@pytest.fixture
def writers() -> SimpleNamespace:
    """The file writers above, as one fixture (test modules never import conftest)."""
    return SimpleNamespace(
        IDX_STEMS=IDX_STEMS,
        idx_bytes=idx_bytes,
        write_idx=write_idx,
        make_idx_dir=make_idx_dir,
        py2_pickle=py2_pickle,
        make_cifar_dir=make_cifar_dir,
        make_image_folder=make_image_folder,
        make_eurosat_tree=make_eurosat_tree,
    )

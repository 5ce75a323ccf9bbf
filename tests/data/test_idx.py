"""IDX reading and the Fashion-MNIST / MNIST loaders, on small files in the real format."""

from __future__ import annotations

import gzip
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

import data.idx
from data.dataset import DatasetError
from data.idx import (
    FASHION_MNIST_CLASSES,
    MNIST_CLASSES,
    load_fashion_mnist,
    load_mnist,
    read_idx,
)


@pytest.mark.parametrize("compress", [True, False])
def test_read_idx_round_trips_images_and_labels(
    tmp_path: Path, compress: bool, writers: SimpleNamespace
) -> None:
    images = np.random.default_rng(0).integers(0, 256, size=(4, 3, 2), dtype=np.uint8)
    labels = np.array([9, 0, 3, 7], dtype=np.uint8)
    images_path = writers.write_idx(tmp_path / "images", images, compress=compress)
    labels_path = writers.write_idx(tmp_path / "labels", labels, compress=compress)
    assert np.array_equal(read_idx(images_path), images)
    assert read_idx(images_path).dtype == np.uint8
    assert np.array_equal(read_idx(labels_path), labels)


def test_read_idx_decodes_big_endian_int32(tmp_path: Path, writers: SimpleNamespace) -> None:
    values = np.array([[1, -2], [70000, 3]], dtype=np.int32)
    path = writers.write_idx(tmp_path / "ints.gz", values.astype(">i4"))
    result = read_idx(path)
    assert result.dtype == np.int32 and result.dtype.isnative
    assert np.array_equal(result, values)


def test_read_idx_detects_gzip_by_content_not_name(
    tmp_path: Path, writers: SimpleNamespace
) -> None:
    labels = np.arange(5, dtype=np.uint8)
    path = tmp_path / "plain-but-named.gz"
    path.write_bytes(writers.idx_bytes(labels))
    assert np.array_equal(read_idx(path), labels)


def test_wrong_magic_number_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "bad"
    path.write_bytes(b"\x12\x34\x08\x01" + b"\x00\x00\x00\x01" + b"\x05")
    with pytest.raises(DatasetError, match=r"not an IDX file: bad magic number 0x12340801"):
        read_idx(path)


def test_unknown_type_code_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "bad"
    path.write_bytes(b"\x00\x00\x07\x01" + b"\x00\x00\x00\x01" + b"\x05")
    with pytest.raises(DatasetError, match="bad magic number 0x00000701"):
        read_idx(path)


def test_truncated_data_is_reported(tmp_path: Path, writers: SimpleNamespace) -> None:
    payload = writers.idx_bytes(np.zeros((3, 4, 4), dtype=np.uint8))
    path = tmp_path / "short.gz"
    path.write_bytes(gzip.compress(payload[:-5]))
    with pytest.raises(DatasetError, match=r"truncated: shape \(3, 4, 4\) needs 48 .* found 43"):
        read_idx(path)


def test_truncated_header_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "short"
    path.write_bytes(b"\x00\x00\x08\x03\x00\x00\x00\x03")
    with pytest.raises(DatasetError, match="truncated inside its 3-dimension header"):
        read_idx(path)
    path.write_bytes(b"\x00\x00")
    with pytest.raises(DatasetError, match="truncated: 2 bytes"):
        read_idx(path)


def test_trailing_bytes_are_reported(tmp_path: Path, writers: SimpleNamespace) -> None:
    path = tmp_path / "long"
    path.write_bytes(writers.idx_bytes(np.zeros(4, dtype=np.uint8)) + b"\x00")
    with pytest.raises(DatasetError, match="longer than its header says"):
        read_idx(path)


def test_truncated_gzip_stream_is_reported(tmp_path: Path, writers: SimpleNamespace) -> None:
    compressed = gzip.compress(writers.idx_bytes(np.zeros((10, 8, 8), dtype=np.uint8)))
    path = tmp_path / "cut.gz"
    path.write_bytes(compressed[: len(compressed) // 2])
    with pytest.raises(DatasetError, match="corrupt or truncated gzip"):
        read_idx(path)


def test_missing_file_is_reported(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="cannot read IDX file"):
        read_idx(tmp_path / "nope")


def test_fashion_mnist_from_flat_directory(tmp_path: Path, writers: SimpleNamespace) -> None:
    arrays = writers.make_idx_dir(tmp_path, n_train=30, n_val=12, size=(6, 5))
    dataset = load_fashion_mnist(data_dir=tmp_path)
    assert dataset.name == "fashion-mnist"
    assert dataset.classes == FASHION_MNIST_CLASSES
    assert dataset.classes[0] == "T-shirt/top" and dataset.classes[9] == "Ankle boot"
    assert dataset.train_images.shape == (30, 1, 6, 5)
    assert dataset.val_images.shape == (12, 1, 6, 5)
    assert dataset.train_images.dtype == torch.uint8
    assert dataset.train_labels.dtype == torch.int64
    assert dataset.input_shape == (1, 6, 5)
    assert np.array_equal(dataset.train_images[:, 0].numpy(), arrays["train_images"])
    assert np.array_equal(dataset.val_images[:, 0].numpy(), arrays["val_images"])
    assert np.array_equal(dataset.train_labels.numpy(), arrays["train_labels"])
    assert np.array_equal(dataset.val_labels.numpy(), arrays["val_labels"])


def test_mnist_from_torchvision_raw_layout_with_plain_files(
    tmp_path: Path, writers: SimpleNamespace
) -> None:
    arrays = writers.make_idx_dir(tmp_path / "MNIST" / "raw", compress=False)
    dataset = load_mnist(data_dir=tmp_path)
    assert dataset.name == "mnist"
    assert dataset.classes == MNIST_CLASSES == tuple("0123456789")
    assert np.array_equal(dataset.train_images[:, 0].numpy(), arrays["train_images"])


def test_fashion_mnist_raw_layout_prefers_extracted_files(
    tmp_path: Path, writers: SimpleNamespace
) -> None:
    raw = tmp_path / "FashionMNIST" / "raw"
    extracted = writers.make_idx_dir(raw, compress=False, seed=1)
    writers.make_idx_dir(raw, compress=True, seed=2)  # torchvision keeps both
    dataset = load_fashion_mnist(data_dir=tmp_path)
    assert np.array_equal(dataset.train_images[:, 0].numpy(), extracted["train_images"])


def test_fashion_mnist_defaults_to_the_debian_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, writers: SimpleNamespace
) -> None:
    writers.make_idx_dir(tmp_path / "debian")
    monkeypatch.setattr(data.idx, "DEBIAN_FASHION_MNIST_DIR", tmp_path / "debian")
    assert load_fashion_mnist().train_images.shape[0] == 40


def test_mnist_reads_a_previous_download_from_the_cache(
    offline: Path, writers: SimpleNamespace
) -> None:
    writers.make_idx_dir(offline / ".cache" / "cnnsearch" / "MNIST" / "raw", n_train=11)
    assert load_mnist().train_images.shape[0] == 11


def test_missing_files_without_download_explain_where_and_how(tmp_path: Path) -> None:
    with pytest.raises(DatasetError) as info:
        load_mnist(data_dir=tmp_path / "empty")
    message = str(info.value)
    assert message.startswith("mnist: the four IDX files not found")
    assert str(tmp_path / "empty") in message
    assert "set download: true under dataset: in the config" in message
    assert "dataset.data_dir (or $CNNSEARCH_DATA_DIR)" in message and "--download" not in message


def test_fashion_mnist_not_found_lists_debian_and_cache(offline: Path) -> None:
    with pytest.raises(DatasetError) as info:
        load_fashion_mnist()
    assert str(data.idx.DEBIAN_FASHION_MNIST_DIR) in str(info.value)
    assert str(offline / ".cache" / "cnnsearch") in str(info.value)


@pytest.mark.parametrize("use_data_dir", [True, False])
def test_download_goes_through_torchvision(
    tmp_path: Path,
    offline: Path,
    monkeypatch: pytest.MonkeyPatch,
    use_data_dir: bool,
    writers: SimpleNamespace,
) -> None:
    import torchvision.datasets

    calls = []

    def fake_fashion_mnist(root: str, download: bool = False) -> None:
        """Stands in for torchvision's class: records the call, writes the raw files."""
        calls.append((root, download))
        writers.make_idx_dir(Path(root) / "FashionMNIST" / "raw", n_train=13)

    monkeypatch.setattr(torchvision.datasets, "FashionMNIST", fake_fashion_mnist)
    data_dir = tmp_path / "dl" if use_data_dir else None
    dataset = load_fashion_mnist(data_dir=data_dir, download=True)
    expected_root = tmp_path / "dl" if use_data_dir else offline / ".cache" / "cnnsearch"
    assert calls == [(str(expected_root), True)]
    assert dataset.train_images.shape[0] == 13


def test_failed_download_becomes_a_dataset_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torchvision.datasets

    def refuse(root: str, download: bool = False) -> None:
        raise RuntimeError("Error downloading train-images-idx3-ubyte.gz")

    monkeypatch.setattr(torchvision.datasets, "MNIST", refuse)
    with pytest.raises(DatasetError, match="downloading MNIST into .* failed: Error downloading"):
        load_mnist(data_dir=tmp_path, download=True)


def test_labels_out_of_range_are_rejected(tmp_path: Path, writers: SimpleNamespace) -> None:
    writers.make_idx_dir(tmp_path)
    writers.write_idx(
        tmp_path / f"{writers.IDX_STEMS['train_labels']}.gz", np.full(40, 10, dtype=np.uint8)
    )
    with pytest.raises(DatasetError, match=r"labels outside \[0, 10\)"):
        load_mnist(data_dir=tmp_path)


def test_image_and_label_counts_must_match(tmp_path: Path, writers: SimpleNamespace) -> None:
    writers.make_idx_dir(tmp_path)
    writers.write_idx(
        tmp_path / f"{writers.IDX_STEMS['val_labels']}.gz", np.zeros(19, dtype=np.uint8)
    )
    with pytest.raises(DatasetError, match="has 20 images but .* has 19 labels"):
        load_mnist(data_dir=tmp_path)


def test_swapped_files_are_rejected(tmp_path: Path, writers: SimpleNamespace) -> None:
    writers.make_idx_dir(tmp_path)
    writers.write_idx(
        tmp_path / f"{writers.IDX_STEMS['train_images']}.gz", np.zeros(40, dtype=np.uint8)
    )
    with pytest.raises(DatasetError, match=r"should hold uint8 images \(N, H, W\)"):
        load_mnist(data_dir=tmp_path)


REAL_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")


@pytest.mark.skipif(
    not (REAL_FASHION_MNIST / "train-images-idx3-ubyte.gz").is_file(),
    reason="Debian package dataset-fashion-mnist is not installed",
)
def test_real_fashion_mnist_from_debian_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(data.idx, "DEBIAN_FASHION_MNIST_DIR", REAL_FASHION_MNIST)
    dataset = load_fashion_mnist()
    assert dataset.train_images.shape == (60000, 1, 28, 28)
    assert dataset.val_images.shape == (10000, 1, 28, 28)
    assert dataset.num_classes == 10 and dataset.input_shape == (1, 28, 28)
    assert torch.bincount(dataset.train_labels).tolist() == [6000] * 10
    assert torch.bincount(dataset.val_labels).tolist() == [1000] * 10
    assert int(dataset.train_images.max()) == 255

"""load_dataset: name dispatch, subsets, resizing; validate_dataset_name; package exports."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

import data
from data import DATASET_NAMES, DatasetError, ImageDataset, load_dataset, validate_dataset_name

UNKNOWN = (
    "unknown dataset 'x': choose one of fashion-mnist, mnist, cifar10, cifar100, eurosat, "
    "imagefolder:PATH"
)


def test_package_exports() -> None:
    assert set(data.__all__) == {
        "ImageDataset",
        "DatasetError",
        "load_dataset",
        "validate_dataset_name",
        "DATASET_NAMES",
        "DeviceBatches",
        "normalise",
    }
    assert issubclass(DatasetError, ValueError)


def test_dataset_names() -> None:
    assert DATASET_NAMES == (
        "fashion-mnist",
        "mnist",
        "cifar10",
        "cifar100",
        "eurosat",
        "imagefolder:PATH",
    )


def test_unknown_name_message_is_exact() -> None:
    with pytest.raises(DatasetError) as info:
        validate_dataset_name("x")
    assert str(info.value) == UNKNOWN
    with pytest.raises(DatasetError) as info:
        load_dataset("x")
    assert str(info.value) == UNKNOWN


@pytest.mark.parametrize(
    "name", ["fashion-mnist", "mnist", "cifar10", "cifar100", "eurosat", "imagefolder:/no/such"]
)
def test_valid_names_pass_without_reading_files(name: str) -> None:
    assert validate_dataset_name(name) == name


@pytest.mark.parametrize("name", ["imagefolder:", "imagefolder:  ", "CIFAR10", "", "cifar-10"])
def test_invalid_names(name: str) -> None:
    with pytest.raises(DatasetError):
        validate_dataset_name(name)


def test_non_string_name() -> None:
    with pytest.raises(DatasetError, match="must be a string"):
        validate_dataset_name(10)  # type: ignore[arg-type]


def test_mnist_with_stratified_subsets(tmp_path: Path, writers: SimpleNamespace) -> None:
    arrays = writers.make_idx_dir(tmp_path, n_train=300, n_val=100, size=(6, 6))
    dataset = load_dataset("mnist", data_dir=tmp_path, train_size=50, val_size=20, seed=3)
    assert isinstance(dataset, ImageDataset)
    assert dataset.name == "mnist" and dataset.num_classes == 10
    assert dataset.train_images.shape == (50, 1, 6, 6)
    assert dataset.val_images.shape == (20, 1, 6, 6)
    assert torch.bincount(dataset.train_labels).tolist() == [5] * 10
    assert torch.bincount(dataset.val_labels).tolist() == [2] * 10
    # Images and labels stay paired: the first two pixels encode the original row.
    for split in ("train", "val"):
        images = getattr(dataset, f"{split}_images")
        rows = images[:, 0, 0, 0].long() * 256 + images[:, 0, 0, 1].long()
        original = torch.from_numpy(arrays[f"{split}_labels"].astype(np.int64))
        assert torch.equal(getattr(dataset, f"{split}_labels"), original[rows])
        assert len(torch.unique(rows)) == len(rows)


def test_subsets_follow_the_seed(tmp_path: Path, writers: SimpleNamespace) -> None:
    writers.make_idx_dir(tmp_path, n_train=200, n_val=50)
    a = load_dataset("fashion-mnist", data_dir=tmp_path, train_size=30, seed=1)
    b = load_dataset("fashion-mnist", data_dir=tmp_path, train_size=30, seed=1)
    c = load_dataset("fashion-mnist", data_dir=tmp_path, train_size=30, seed=2)
    assert torch.equal(a.train_images, b.train_images)
    assert not torch.equal(a.train_images, c.train_images)
    assert a.val_images.shape[0] == 50  # val_size=None keeps the whole split


def test_subset_too_large(tmp_path: Path, writers: SimpleNamespace) -> None:
    writers.make_idx_dir(tmp_path, n_train=40, n_val=20)
    with pytest.raises(DatasetError, match="subset size 21 exceeds the 20 samples available"):
        load_dataset("mnist", data_dir=tmp_path, val_size=21)


@pytest.mark.parametrize("argument", ["train_size", "val_size", "image_size"])
@pytest.mark.parametrize("value", [0, -1, True, 3.0])
def test_sizes_must_be_positive_integers(argument: str, value: object) -> None:
    with pytest.raises(DatasetError, match=f"{argument} must be a positive integer or None"):
        load_dataset("mnist", **{argument: value})  # type: ignore[arg-type]


def test_image_size_resizes_tensor_datasets(tmp_path: Path, writers: SimpleNamespace) -> None:
    writers.make_cifar_dir(tmp_path / "cifar-10-batches-py", per_batch=3)
    dataset = load_dataset("cifar10", data_dir=tmp_path, image_size=16, train_size=10)
    assert dataset.train_images.shape == (10, 3, 16, 16)
    assert dataset.val_images.shape == (3, 3, 16, 16)
    assert dataset.train_images.dtype == torch.uint8


def test_resize_keeps_flat_images_flat(tmp_path: Path, writers: SimpleNamespace) -> None:
    arrays = writers.make_idx_dir(tmp_path, n_train=20, n_val=10, size=(8, 8))
    arrays["train_images"][:] = 77
    writers.write_idx(tmp_path / "train-images-idx3-ubyte.gz", arrays["train_images"])
    dataset = load_dataset("mnist", data_dir=tmp_path, image_size=13)
    assert dataset.input_shape == (1, 13, 13)
    assert dataset.train_images.unique().tolist() == [77]


def test_imagefolder_by_name(tmp_path: Path, writers: SimpleNamespace) -> None:
    writers.make_image_folder(tmp_path / "pets", {"cat": 10, "dog": 10}, size=(9, 9))
    name = f"imagefolder:{tmp_path / 'pets'}"
    dataset = load_dataset(name, seed=0, image_size=4, val_size=2)
    assert dataset.name == name
    assert dataset.classes == ("cat", "dog")
    assert dataset.train_images.shape == (16, 3, 4, 4)
    assert dataset.val_labels.tolist() == [0, 1]


def test_imagefolder_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="does not exist"):
        load_dataset(f"imagefolder:{tmp_path / 'nope'}")


def test_eurosat_by_name(tmp_path: Path, writers: SimpleNamespace) -> None:
    writers.make_eurosat_tree(tmp_path / "eurosat" / "2750", per_class=2, size=8)
    dataset = load_dataset("eurosat", data_dir=tmp_path, seed=4)
    assert dataset.name == "eurosat" and dataset.input_shape == (3, 8, 8)


def test_cifar100_by_name(tmp_path: Path, writers: SimpleNamespace) -> None:
    writers.make_cifar_dir(tmp_path / "cifar-100-python", variant="cifar100", per_batch=5)
    assert load_dataset("cifar100", data_dir=tmp_path).num_classes == 100


def test_missing_data_is_a_dataset_error_not_a_download(tmp_path: Path) -> None:
    for name in ("fashion-mnist", "mnist", "cifar10", "cifar100", "eurosat"):
        with pytest.raises(DatasetError, match="set download: true under dataset:"):
            load_dataset(name, data_dir=tmp_path)


def test_image_size_too_large_for_memory_is_refused_before_resizing(
    tmp_path: Path, writers: SimpleNamespace, monkeypatch: pytest.MonkeyPatch
) -> None:
    import data.memory
    import data.registry

    writers.make_idx_dir(tmp_path, n_train=40, n_val=20, size=(8, 8))
    monkeypatch.setattr(data.memory, "_budget", lambda: (10 * 2**20, "a test budget"))

    def resize_must_not_run(*args: object) -> None:
        raise AssertionError("resized although the result cannot fit")

    monkeypatch.setattr(data.registry, "resize_images", resize_must_not_run)
    with pytest.raises(DatasetError) as info:
        load_dataset("mnist", data_dir=tmp_path, image_size=4096)
    message = str(info.value)
    assert "image_size 4096" in message and "60 images" in message
    assert "10.0 MiB" in message and "dataset.image_size" in message


def test_resize_works_in_chunks_bounded_in_bytes() -> None:
    from data.resize import _CHUNK_BYTES, resize_images, resize_working_bytes

    images = torch.zeros((3, 1, 2, 2), dtype=torch.uint8)
    assert resize_working_bytes(images, 4096) >= 4 * 4096 * 4096
    assert resize_working_bytes(torch.zeros((5000, 3, 64, 64), dtype=torch.uint8),
                                512) <= 2 * _CHUNK_BYTES
    assert resize_images(images + 9, 3).unique().tolist() == [9]

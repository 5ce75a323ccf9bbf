"""load_dataset: name dispatch, split protocols, subsets, resizing; validate_dataset_name;
package exports."""

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


def _rows(images: torch.Tensor) -> torch.Tensor:
    """The original row of each image: ``make_idx_dir`` encodes it in the first two pixels."""
    return images[:, 0, 0, 0].long() * 256 + images[:, 0, 0, 1].long()


@pytest.mark.parametrize("split", ["holdout", "thesis"])
def test_mnist_with_stratified_subsets(tmp_path: Path, writers: SimpleNamespace,
                                       split: str) -> None:
    arrays = writers.make_idx_dir(tmp_path, n_train=300, n_val=100, size=(6, 6))
    dataset = load_dataset("mnist", data_dir=tmp_path, train_size=50, val_size=20, seed=3,
                           split=split)
    assert isinstance(dataset, ImageDataset)
    assert dataset.name == "mnist" and dataset.num_classes == 10
    assert dataset.train_images.shape == (50, 1, 6, 6)
    assert dataset.val_images.shape == (20, 1, 6, 6)
    assert torch.bincount(dataset.train_labels).tolist() == [5] * 10
    assert torch.bincount(dataset.val_labels).tolist() == [2] * 10
    # Images and labels stay paired with the file's rows: under holdout the validation
    # images come from the training file, under the thesis' protocol from the test file.
    val_file = "train" if split == "holdout" else "val"
    for part, file in (("train", "train"), ("val", val_file)):
        rows = _rows(getattr(dataset, f"{part}_images"))
        original = torch.from_numpy(arrays[f"{file}_labels"].astype(np.int64))
        assert torch.equal(getattr(dataset, f"{part}_labels"), original[rows])
        assert len(torch.unique(rows)) == len(rows)


def test_holdout_carves_validation_from_train_and_keeps_the_test_split_apart(
    tmp_path: Path, writers: SimpleNamespace
) -> None:
    arrays = writers.make_idx_dir(tmp_path, n_train=400, n_val=100, size=(6, 6))
    dataset = load_dataset("fashion-mnist", data_dir=tmp_path, seed=5)
    assert dataset.has_test and dataset.test_images is not None
    assert dataset.test_labels is not None
    # the whole official test split, untouched, in file order
    assert torch.equal(dataset.test_images[:, 0], torch.from_numpy(arrays["val_images"]))
    assert torch.equal(dataset.test_labels,
                       torch.from_numpy(arrays["val_labels"].astype(np.int64)))
    # validation: 10 % of each class of the training file, disjoint from train, together all
    train_rows, val_rows = _rows(dataset.train_images), _rows(dataset.val_images)
    assert torch.bincount(dataset.val_labels).tolist() == [4] * 10
    assert torch.bincount(dataset.train_labels).tolist() == [36] * 10
    assert not set(train_rows.tolist()) & set(val_rows.tolist())
    assert sorted(train_rows.tolist() + val_rows.tolist()) == list(range(400))
    labels = torch.from_numpy(arrays["train_labels"].astype(np.int64))
    assert torch.equal(dataset.val_labels, labels[val_rows])
    # seeded by the data seed alone
    again = load_dataset("fashion-mnist", data_dir=tmp_path, seed=5)
    other = load_dataset("fashion-mnist", data_dir=tmp_path, seed=6)
    assert torch.equal(again.val_images, dataset.val_images)
    assert not torch.equal(_rows(other.val_images), val_rows)
    # val_fraction sets the share; val_size then subsets the validation split
    wider = load_dataset("fashion-mnist", data_dir=tmp_path, seed=5, val_fraction=0.25)
    assert torch.bincount(wider.val_labels).tolist() == [10] * 10
    small = load_dataset("fashion-mnist", data_dir=tmp_path, seed=5, val_size=20)
    assert set(_rows(small.val_images).tolist()) <= set(val_rows.tolist())
    assert torch.equal(small.test_images, dataset.test_images)  # never subset


def test_thesis_split_validates_on_the_official_test_split(
    tmp_path: Path, writers: SimpleNamespace
) -> None:
    """The thesis' protocol, as load_dataset behaved before the split existed."""
    arrays = writers.make_idx_dir(tmp_path, n_train=60, n_val=30, size=(6, 6))
    dataset = load_dataset("mnist", data_dir=tmp_path, split="thesis")
    assert not dataset.has_test and dataset.test_images is None
    assert torch.equal(dataset.train_images[:, 0], torch.from_numpy(arrays["train_images"]))
    assert torch.equal(dataset.val_images[:, 0], torch.from_numpy(arrays["val_images"]))


def test_cifar_holdout_and_thesis(tmp_path: Path, writers: SimpleNamespace) -> None:
    truth = writers.make_cifar_dir(tmp_path / "cifar-10-batches-py", per_batch=40)
    held_out = load_dataset("cifar10", data_dir=tmp_path, seed=1)
    assert held_out.test_images is not None
    assert held_out.test_images.reshape(len(held_out.test_images), -1).numpy().tolist() == (
        truth["val_rows"].tolist())
    assert len(held_out.train_labels) + len(held_out.val_labels) == 200
    train_rows = {bytes(r) for r in held_out.train_images.reshape(-1, 3072).numpy()}
    val_rows = {bytes(r) for r in held_out.val_images.reshape(-1, 3072).numpy()}
    test_rows = {bytes(r) for r in truth["val_rows"]}
    assert not train_rows & val_rows and not (train_rows | val_rows) & test_rows
    thesis = load_dataset("cifar10", data_dir=tmp_path, split="thesis")
    assert thesis.test_images is None and len(thesis.train_labels) == 200
    assert thesis.val_images.reshape(40, -1).numpy().tolist() == truth["val_rows"].tolist()


@pytest.mark.parametrize(
    ("name", "settings", "key", "text"),
    [
        ("cifar10", {"split": "thesis", "val_fraction": 0.2}, "val_fraction", "no effect"),
        ("cifar10", {"test_fraction": 0.2}, "test_fraction", "ships its own test split"),
        ("eurosat", {"split": "thesis", "test_fraction": 0.2}, "test_fraction", "no test"),
        ("eurosat", {"val_fraction": 0.5, "test_fraction": 0.45}, "val_fraction", "5 %"),
        ("mnist", {"split": "random"}, "split", "holdout, thesis"),
        ("mnist", {"val_fraction": 1.0}, "val_fraction", "between 0 and 1"),
    ],
)
def test_split_settings_that_mean_nothing_are_refused_before_reading(
    name: str, settings: dict, key: str, text: str
) -> None:
    from data.registry import SplitError, split_plan

    with pytest.raises(SplitError, match=text) as info:
        split_plan(name, **settings)
    assert info.value.key == key
    with pytest.raises(DatasetError, match=f"{key}: "):
        load_dataset(name, **settings)  # no files exist: refused before looking


def test_split_plans_and_known_sizes() -> None:
    from data.registry import known_shape, split_plan

    cifar = known_shape("cifar10")
    eurosat = known_shape("eurosat")
    assert cifar is not None and eurosat is not None
    assert cifar.split_sizes(split_plan("cifar10")) == (45000, 5000, 10000)
    assert cifar.split_sizes(split_plan("cifar10", "thesis")) == (50000, 10000, 0)
    assert cifar.split_sizes(split_plan("cifar10", val_fraction=0.2)) == (40000, 10000, 10000)
    assert eurosat.split_sizes(split_plan("eurosat")) == (18900, 4050, 4050)
    assert eurosat.split_sizes(split_plan("eurosat", "thesis")) == (21600, 5400, 0)


def test_subsets_follow_the_seed(tmp_path: Path, writers: SimpleNamespace) -> None:
    writers.make_idx_dir(tmp_path, n_train=200, n_val=50)
    a = load_dataset("fashion-mnist", data_dir=tmp_path, train_size=30, seed=1)
    b = load_dataset("fashion-mnist", data_dir=tmp_path, train_size=30, seed=1)
    c = load_dataset("fashion-mnist", data_dir=tmp_path, train_size=30, seed=2)
    assert torch.equal(a.train_images, b.train_images)
    assert not torch.equal(a.train_images, c.train_images)
    assert a.val_images.shape[0] == 20  # val_size=None keeps the whole split: 10 % of train
    assert a.test_images is not None and a.test_images.shape[0] == 50


def test_subset_too_large(tmp_path: Path, writers: SimpleNamespace) -> None:
    writers.make_idx_dir(tmp_path, n_train=40, n_val=20)
    with pytest.raises(DatasetError, match="subset size 21 exceeds the 20 samples available"):
        load_dataset("mnist", data_dir=tmp_path, val_size=21, split="thesis")
    with pytest.raises(DatasetError, match=r"^val_size 11: subset size 11 exceeds the 10 "
                       "samples available in the mnist validation split$"):
        load_dataset("mnist", data_dir=tmp_path, val_size=11)  # 10 % of 40, one per class


@pytest.mark.parametrize("argument", ["train_size", "val_size", "image_size"])
@pytest.mark.parametrize("value", [0, -1, True, 3.0])
def test_sizes_must_be_positive_integers(argument: str, value: object) -> None:
    with pytest.raises(DatasetError, match=f"{argument} must be a positive integer or None"):
        load_dataset("mnist", **{argument: value})  # type: ignore[arg-type]


def test_image_size_resizes_tensor_datasets(tmp_path: Path, writers: SimpleNamespace) -> None:
    writers.make_cifar_dir(tmp_path / "cifar-10-batches-py", per_batch=30)
    dataset = load_dataset("cifar10", data_dir=tmp_path, image_size=16, train_size=10)
    assert dataset.train_images.shape == (10, 3, 16, 16)
    assert dataset.val_images.shape[1:] == (3, 16, 16)
    assert dataset.test_images is not None and dataset.test_images.shape == (30, 3, 16, 16)
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
    assert dataset.train_images.shape == (12, 3, 4, 4)  # 70/15/15 of 10 per class: 6/2/2
    assert dataset.val_labels.tolist() == [0, 1]
    assert dataset.test_labels is not None and dataset.test_labels.tolist() == [0, 0, 1, 1]
    thesis = load_dataset(name, seed=0, image_size=4, split="thesis")
    assert thesis.train_images.shape == (16, 3, 4, 4) and thesis.test_images is None


def test_imagefolder_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="does not exist"):
        load_dataset(f"imagefolder:{tmp_path / 'nope'}")


def test_eurosat_by_name(tmp_path: Path, writers: SimpleNamespace) -> None:
    writers.make_eurosat_tree(tmp_path / "eurosat" / "2750", per_class=3, size=8)
    dataset = load_dataset("eurosat", data_dir=tmp_path, seed=4)
    assert dataset.name == "eurosat" and dataset.input_shape == (3, 8, 8)
    assert dataset.test_labels is not None and len(dataset.test_labels) == 10


def test_cifar100_by_name(tmp_path: Path, writers: SimpleNamespace) -> None:
    writers.make_cifar_dir(tmp_path / "cifar-100-python", variant="cifar100", per_batch=5)
    assert load_dataset("cifar100", data_dir=tmp_path, split="thesis").num_classes == 100


def test_missing_data_is_a_dataset_error_not_a_download(tmp_path: Path) -> None:
    for name in ("fashion-mnist", "mnist", "cifar10", "cifar100", "eurosat"):
        with pytest.raises(DatasetError, match="set download: true under dataset:"):
            load_dataset(name, data_dir=tmp_path)


def test_image_size_too_large_for_memory_is_refused_before_resizing(
    tmp_path: Path, writers: SimpleNamespace, monkeypatch: pytest.MonkeyPatch
) -> None:
    import data.memory_budget
    import data.registry

    writers.make_idx_dir(tmp_path, n_train=40, n_val=20, size=(8, 8))
    monkeypatch.setattr(data.memory_budget, "_budget", lambda: (10 * 2**20, "a test budget"))

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


def test_each_dataset_names_its_resize_filter() -> None:
    """What ``image_size`` resizes with: predict replays it on new images."""
    from data.registry import RESIZE_PILLOW, RESIZE_TORCH, resize_filter

    assert {name: resize_filter(name) for name in ("fashion-mnist", "mnist", "cifar10",
                                                   "cifar100")} == dict.fromkeys(
        ("fashion-mnist", "mnist", "cifar10", "cifar100"), RESIZE_TORCH)
    assert resize_filter("eurosat") == resize_filter("imagefolder:/x") == RESIZE_PILLOW

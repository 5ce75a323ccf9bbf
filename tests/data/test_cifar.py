"""CIFAR-10/100 loaders on small pickles in the authors' layout (bytes, str and Python 2 keys)."""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from data.cifar import load_cifar10, load_cifar100, load_cifar_pickle
from data.dataset import DatasetError


def _expected_nchw(rows: np.ndarray) -> np.ndarray:
    """The documented layout, pixel by pixel: value (c, y, x) sits at c*1024 + y*32 + x."""
    out = np.empty((len(rows), 3, 32, 32), dtype=np.uint8)
    for c in range(3):
        for y in range(32):
            out[:, c, y, :] = rows[:, c * 1024 + y * 32 : c * 1024 + y * 32 + 32]
    return out


@pytest.mark.parametrize("style", ["bytes", "str", "py2"])
def test_cifar10_round_trips_pixels_labels_and_names(
    tmp_path: Path, writers: SimpleNamespace, style: str
) -> None:
    truth = writers.make_cifar_dir(tmp_path / "cifar-10-batches-py", per_batch=4, style=style)
    dataset = load_cifar10(data_dir=tmp_path)
    assert dataset.name == "cifar10"
    assert dataset.classes == tuple(truth["classes"])
    assert dataset.classes[0] == "airplane" and dataset.num_classes == 10
    assert dataset.train_images.shape == (20, 3, 32, 32)
    assert dataset.val_images.shape == (4, 3, 32, 32)
    assert dataset.train_images.dtype == torch.uint8
    assert dataset.train_labels.dtype == torch.int64
    assert np.array_equal(dataset.train_images.numpy(), _expected_nchw(truth["train_rows"]))
    assert np.array_equal(dataset.val_images.numpy(), _expected_nchw(truth["val_rows"]))
    assert dataset.train_labels.tolist() == truth["train_labels"].tolist()
    assert dataset.val_labels.tolist() == truth["val_labels"].tolist()


def test_first_pixel_planes_are_red_green_blue(tmp_path: Path, writers: SimpleNamespace) -> None:
    truth = writers.make_cifar_dir(tmp_path / "cifar-10-batches-py", per_batch=2)
    image = load_cifar10(data_dir=tmp_path).train_images[0]
    row = truth["train_rows"][0]
    assert image[:, 0, 0].tolist() == [row[0], row[1024], row[2048]]
    assert int(image[0, 0, 1]) == row[1] and int(image[0, 1, 0]) == row[32]


@pytest.mark.parametrize("style", ["bytes", "py2"])
def test_cifar100_uses_fine_labels(tmp_path: Path, writers: SimpleNamespace, style: str) -> None:
    truth = writers.make_cifar_dir(
        tmp_path / "cifar-100-python", variant="cifar100", per_batch=7, style=style
    )
    dataset = load_cifar100(data_dir=tmp_path)
    assert dataset.name == "cifar100"
    assert dataset.num_classes == 100 and dataset.classes[3] == "fine03"
    assert dataset.train_images.shape == (7, 3, 32, 32)
    assert dataset.val_images.shape == (7, 3, 32, 32)
    assert dataset.train_labels.tolist() == truth["train_labels"].tolist()
    assert np.array_equal(dataset.train_images.numpy(), _expected_nchw(truth["train_rows"]))


def test_data_dir_may_point_at_the_batches_folder(
    tmp_path: Path, writers: SimpleNamespace
) -> None:
    writers.make_cifar_dir(tmp_path / "batches", per_batch=2)
    assert load_cifar10(data_dir=tmp_path / "batches").train_images.shape[0] == 10


def test_reads_a_previous_download_from_the_cache(offline: Path, writers: SimpleNamespace) -> None:
    writers.make_cifar_dir(offline / ".cache" / "cnnsearch" / "cifar-10-batches-py", per_batch=3)
    assert load_cifar10().train_images.shape[0] == 15


def test_missing_files_without_download_explain_where_and_how(tmp_path: Path) -> None:
    with pytest.raises(DatasetError) as info:
        load_cifar10(data_dir=tmp_path)
    message = str(info.value)
    assert str(tmp_path / "cifar-10-batches-py") in message
    assert "set download: true under dataset: in the config" in message
    assert "dataset.data_dir" in message and "--download" not in message


def test_missing_default_location_names_the_cache(offline: Path) -> None:
    with pytest.raises(DatasetError, match="cifar100: .*not found") as info:
        load_cifar100()
    assert str(offline / ".cache" / "cnnsearch" / "cifar-100-python") in str(info.value)


def test_incomplete_folder_is_not_found(tmp_path: Path, writers: SimpleNamespace) -> None:
    writers.make_cifar_dir(tmp_path / "cifar-10-batches-py", per_batch=2)
    os.remove(tmp_path / "cifar-10-batches-py" / "data_batch_3")
    with pytest.raises(DatasetError, match="not found"):
        load_cifar10(data_dir=tmp_path)


@pytest.mark.parametrize("use_data_dir", [True, False])
def test_download_goes_through_torchvision(
    tmp_path: Path,
    offline: Path,
    writers: SimpleNamespace,
    monkeypatch: pytest.MonkeyPatch,
    use_data_dir: bool,
) -> None:
    import torchvision.datasets

    calls = []

    def fake_cifar10(root: str, download: bool = False) -> None:
        calls.append((root, download))
        writers.make_cifar_dir(Path(root) / "cifar-10-batches-py", per_batch=2)

    monkeypatch.setattr(torchvision.datasets, "CIFAR10", fake_cifar10)
    data_dir = tmp_path / "dl" if use_data_dir else None
    dataset = load_cifar10(data_dir=data_dir, download=True)
    expected_root = tmp_path / "dl" if use_data_dir else offline / ".cache" / "cnnsearch"
    assert calls == [(str(expected_root), True)]
    assert dataset.train_images.shape[0] == 10


def test_wrong_row_length_is_rejected(tmp_path: Path, writers: SimpleNamespace) -> None:
    folder = tmp_path / "cifar-10-batches-py"
    writers.make_cifar_dir(folder, per_batch=2)
    bad = {b"data": np.zeros((2, 3000), dtype=np.uint8), b"labels": [0, 1]}
    (folder / "data_batch_2").write_bytes(pickle.dumps(bad, protocol=2))
    with pytest.raises(DatasetError, match=r"data_batch_2: 'data' should be uint8 rows of 3072"):
        load_cifar10(data_dir=tmp_path)


def test_missing_key_is_named(tmp_path: Path, writers: SimpleNamespace) -> None:
    folder = tmp_path / "cifar-10-batches-py"
    writers.make_cifar_dir(folder, per_batch=2)
    (folder / "test_batch").write_bytes(pickle.dumps({b"data": np.zeros((2, 3072), np.uint8)}))
    with pytest.raises(DatasetError, match=r"test_batch has no 'labels' entry \(keys: data\)"):
        load_cifar10(data_dir=tmp_path)


def test_label_count_and_range_are_checked(tmp_path: Path, writers: SimpleNamespace) -> None:
    folder = tmp_path / "cifar-10-batches-py"
    writers.make_cifar_dir(folder, per_batch=2)
    short = {b"data": np.zeros((2, 3072), np.uint8), b"labels": [1]}
    (folder / "test_batch").write_bytes(pickle.dumps(short))
    with pytest.raises(DatasetError, match="2 images but 1 labels"):
        load_cifar10(data_dir=tmp_path)
    wrong = {b"data": np.zeros((2, 3072), np.uint8), b"labels": [1, 10]}
    (folder / "test_batch").write_bytes(pickle.dumps(wrong))
    with pytest.raises(DatasetError, match=r"labels outside \[0, 10\)"):
        load_cifar10(data_dir=tmp_path)


class _Exploit:
    def __reduce__(self) -> tuple[object, tuple[()]]:
        return (os.getcwd, ())


def test_pickles_cannot_call_arbitrary_globals(tmp_path: Path) -> None:
    path = tmp_path / "batches.meta"
    path.write_bytes(pickle.dumps({b"label_names": _Exploit()}))
    with pytest.raises(DatasetError, match=r"refusing to load global \w+\.getcwd"):
        load_cifar_pickle(path)


def test_corrupt_pickle_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "batch"
    path.write_bytes(pickle.dumps({b"data": b"x" * 100})[:20])
    with pytest.raises(DatasetError, match="is not a readable CIFAR pickle"):
        load_cifar_pickle(path)

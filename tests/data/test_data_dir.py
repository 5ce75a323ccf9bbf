"""The one data directory setting: ``data_dir``, else ``$CNNSEARCH_DATA_DIR``, else the cache."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

import data.idx
from data import DatasetError, load_dataset
from data.download import DATA_DIR_ENV, data_root, default_data_dir


def test_the_variable_is_honoured_by_load_dataset(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, writers: SimpleNamespace
) -> None:
    # what a download into the shared /data volume leaves: <dir>/MNIST/raw/*-ubyte.gz
    raw = tmp_path / "shared-data" / "MNIST" / "raw"
    arrays = writers.make_idx_dir(raw, n_train=23, n_val=7, size=(6, 5))
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path / "shared-data"))

    dataset = load_dataset("mnist", split="thesis")

    assert dataset.train_images.shape == (23, 1, 6, 5)
    assert np.array_equal(dataset.train_images[:, 0].numpy(), arrays["train_images"])
    assert np.array_equal(dataset.val_labels.numpy(), arrays["val_labels"].astype(np.int64))
    assert dataset.source == raw
    held_out = load_dataset("mnist")  # split: holdout, the default
    assert held_out.test_labels is not None
    assert np.array_equal(held_out.test_labels.numpy(), arrays["val_labels"].astype(np.int64))


def test_the_config_data_dir_wins_over_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, writers: SimpleNamespace
) -> None:
    writers.make_idx_dir(tmp_path / "from-env", n_train=11)
    writers.make_idx_dir(tmp_path / "from-config", n_train=13)
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path / "from-env"))
    assert load_dataset("mnist", split="thesis").train_images.shape[0] == 11
    from_config = load_dataset("mnist", data_dir=tmp_path / "from-config", split="thesis")
    assert from_config.train_images.shape[0] == 13


@pytest.mark.parametrize("value", [None, "", "  "])
def test_without_the_variable_the_per_user_cache(
    offline: Path, monkeypatch: pytest.MonkeyPatch, value: str | None
) -> None:
    if value is not None:
        monkeypatch.setenv(DATA_DIR_ENV, value)
    assert default_data_dir() == offline / ".cache" / "cnnsearch"
    assert data_root(None) == offline / ".cache" / "cnnsearch"
    assert data_root("~/elsewhere") == offline / "elsewhere"


def test_fashion_mnist_still_finds_the_debian_copy_with_the_variable_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, writers: SimpleNamespace
) -> None:
    writers.make_idx_dir(tmp_path / "debian", n_train=17)
    monkeypatch.setattr(data.idx, "DEBIAN_FASHION_MNIST_DIR", tmp_path / "debian")
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path / "empty"))
    assert load_dataset("fashion-mnist", split="thesis").train_images.shape[0] == 17


@pytest.mark.parametrize("name", ["fashion-mnist", "mnist", "cifar10", "cifar100", "eurosat"])
def test_every_loader_looks_in_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path / "shared-data"))
    with pytest.raises(DatasetError) as info:
        load_dataset(name)
    assert str(tmp_path / "shared-data") in str(info.value)
    assert DATA_DIR_ENV in str(info.value)


@pytest.mark.parametrize(("name", "torchvision_class"),
                         [("mnist", "MNIST"), ("cifar10", "CIFAR10"), ("eurosat", "EuroSAT")])
def test_downloads_go_into_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, torchvision_class: str
) -> None:
    import torchvision.datasets

    calls: list[str] = []

    def fake_download(root: str, download: bool = False) -> None:
        calls.append(root)
        raise RuntimeError("stop here")

    monkeypatch.setattr(torchvision.datasets, torchvision_class, fake_download)
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path / "shared-data"))
    with pytest.raises(DatasetError, match="stop here"):
        load_dataset(name, download=True)
    assert calls == [str(tmp_path / "shared-data")]

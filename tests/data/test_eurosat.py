"""EuroSAT in torchvision's layout (eurosat/2750/<Class>/*.jpg), read as an image folder."""

from __future__ import annotations

import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from data.dataset import DatasetError
from data.eurosat import EUROSAT_CLASSES, load_eurosat


def test_torchvision_layout_loads_with_80_20_split(
    tmp_path: Path, writers: SimpleNamespace
) -> None:
    writers.make_eurosat_tree(tmp_path / "eurosat" / "2750", per_class=5)
    dataset = load_eurosat(data_dir=tmp_path)
    assert dataset.name == "eurosat"
    assert dataset.classes == EUROSAT_CLASSES
    assert dataset.classes[0] == "AnnualCrop" and dataset.classes[-1] == "SeaLake"
    assert dataset.input_shape == (3, 64, 64)
    assert dataset.train_images.dtype == torch.uint8
    assert torch.bincount(dataset.train_labels).tolist() == [4] * 10
    assert torch.bincount(dataset.val_labels).tolist() == [1] * 10


def test_test_fraction_gives_a_test_split(tmp_path: Path, writers: SimpleNamespace) -> None:
    writers.make_eurosat_tree(tmp_path / "eurosat" / "2750", per_class=7, size=8)
    dataset = load_eurosat(data_dir=tmp_path, val_fraction=0.15, test_fraction=0.15)
    assert dataset.test_labels is not None
    assert torch.bincount(dataset.train_labels).tolist() == [5] * 10
    assert torch.bincount(dataset.val_labels).tolist() == [1] * 10
    assert torch.bincount(dataset.test_labels).tolist() == [1] * 10


def test_each_image_carries_its_folder_label(tmp_path: Path, writers: SimpleNamespace) -> None:
    writers.make_eurosat_tree(tmp_path / "eurosat" / "2750", per_class=2)
    dataset = load_eurosat(data_dir=tmp_path)
    images = torch.cat([dataset.train_images, dataset.val_images]).float()
    labels = torch.cat([dataset.train_labels, dataset.val_labels])
    expected = torch.stack([labels * 25.0, 255 - labels * 25.0, torch.full_like(labels, 100.0)])
    # Flat colours survive JPEG to within a couple of levels.
    assert (images.mean(dim=(2, 3)) - expected.T).abs().max() < 3


def test_split_depends_on_seed_only(tmp_path: Path, writers: SimpleNamespace) -> None:
    writers.make_eurosat_tree(tmp_path / "eurosat" / "2750", per_class=5, size=8)
    a = load_eurosat(data_dir=tmp_path, seed=1)
    b = load_eurosat(data_dir=tmp_path, seed=1)
    assert torch.equal(a.val_images, b.val_images)


@pytest.mark.parametrize("layout", ["2750", "."])
def test_data_dir_may_point_lower(tmp_path: Path, writers: SimpleNamespace, layout: str) -> None:
    writers.make_eurosat_tree(tmp_path / layout, per_class=2, size=8)
    assert load_eurosat(data_dir=tmp_path).num_classes == 10


def test_image_size_resizes(tmp_path: Path, writers: SimpleNamespace) -> None:
    writers.make_eurosat_tree(tmp_path / "eurosat" / "2750", per_class=2)
    assert load_eurosat(data_dir=tmp_path, image_size=32).input_shape == (3, 32, 32)


def test_missing_class_is_reported(tmp_path: Path, writers: SimpleNamespace) -> None:
    tree = tmp_path / "eurosat" / "2750"
    writers.make_eurosat_tree(tree, per_class=2, size=8)
    shutil.rmtree(tree / "River")
    (tree / "Glacier").mkdir()
    with pytest.raises(DatasetError, match="missing: River; unexpected: Glacier"):
        load_eurosat(data_dir=tmp_path)


def test_not_found_without_download(tmp_path: Path, offline: Path) -> None:
    with pytest.raises(DatasetError) as info:
        load_eurosat()
    message = str(info.value)
    assert str(offline / ".cache" / "cnnsearch" / "eurosat" / "2750") in message
    assert "set download: true under dataset:" in message and "--download" not in message


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

    def fake_eurosat(root: str, download: bool = False) -> None:
        calls.append((root, download))
        writers.make_eurosat_tree(Path(root) / "eurosat" / "2750", per_class=2, size=8)

    monkeypatch.setattr(torchvision.datasets, "EuroSAT", fake_eurosat)
    data_dir = tmp_path / "dl" if use_data_dir else None
    dataset = load_eurosat(data_dir=data_dir, download=True)
    expected_root = tmp_path / "dl" if use_data_dir else offline / ".cache" / "cnnsearch"
    assert calls == [(str(expected_root), True)]
    assert len(dataset.train_labels) + len(dataset.val_labels) == 20

"""model.json: written and read back whole; the median run is the model; class names as
folder names; every damaged or foreign folder is a one-line error that says what to do; the
model rebuilt from it computes what the trained one did."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from search.errors import UserError
from search.trained.manifest import (
    MANIFEST_NAME,
    Run,
    build_model,
    folder_names,
    median_run,
    read_manifest,
)
from tests.search.trained.conftest import CLASSES, MakeFolder


@pytest.mark.parametrize("runs, expected", [
    ([(0, 0.5), (1, 0.7), (2, 0.6)], 2),
    ([(0, 0.5), (1, 0.7)], 0),   # an even count: the lower of the two middle runs
    ([(3, 0.6), (4, 0.6), (5, 0.6)], 4),  # ties: by seed
    ([(9, 0.1)], 9),
])
def test_the_model_is_the_median_run(runs: list, expected: int) -> None:
    entries = [Run(seed, f"w{seed}", "", accuracy, 0.9 - accuracy) for seed, accuracy in runs]
    assert median_run(entries).seed == expected


def test_class_names_as_folder_names() -> None:
    assert folder_names(("T-shirt/top", "Bag", "a:b", ".hidden", "", "T-shirt_top")) == (
        "T-shirt_top", "Bag", "a_b", "hidden", "class4", "T-shirt_top-5")


def test_the_manifest_round_trips(make_folder: MakeFolder) -> None:
    manifest, _ = make_folder(normalise=True)
    again = read_manifest(manifest.folder)
    assert again.to_dict() == manifest.to_dict()
    assert again.classes == CLASSES
    assert again.class_folders == ("cat", "dog", "T-shirt_top", "bird")
    assert again.preprocessing.mean is not None  # the Standardise statistics, for people
    assert again.describe() == f"{manifest.name} for 1x16x16 inputs and 4 classes"


@pytest.mark.parametrize("space", [{}, {"normalise": True}, {"architecture": "lenet5"},
                                   {"batch_norm": True, "dropout": 0.5}])
def test_the_rebuilt_model_computes_what_the_saved_one_did(make_folder: MakeFolder,
                                                           space: dict) -> None:
    manifest, model = make_folder(**space)
    run, rebuilt = build_model(manifest)
    assert run.seed == manifest.selected_seed and not rebuilt.training
    images = torch.randn(5, 1, 16, 16)
    with torch.no_grad():
        assert torch.equal(rebuilt(images), model(images))


def test_a_pretrained_design_is_rebuilt_without_downloading(make_folder: MakeFolder) -> None:
    """The saved weights replace ImageNet's: no network is needed to load the model."""
    manifest, model = make_folder(shape=(3, 32, 32), architecture="pretrained",
                                  backbone="resnet18", weights="none")
    _, rebuilt = build_model(manifest)
    images = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(rebuilt(images), model(images))


def _rewrite(folder: Path, change) -> None:
    values = json.loads((folder / MANIFEST_NAME).read_text())
    change(values)
    (folder / MANIFEST_NAME).write_text(json.dumps(values))


DAMAGE = {
    "no classes": (lambda v: v.pop("classes"), "is damaged"),
    "one class": (lambda v: v.update(classes=["a"]), "at least 2 class names"),
    "a weights path": (lambda v: v["runs"][0].update(weights="../x.safetensors"),
                       "must be a file name"),
    "input shape": (lambda v: v.update(input_shape=[3, 16, 16]), "differs from"),
    "preprocessing": (lambda v: v["preprocessing"].update(resize="nearest"),
                      "'preprocessing.resize'"),
    "channels": (lambda v: v["preprocessing"].update(channels=2), "expected 1 or 3"),
    "design": (lambda v: v["design"].update(optimizer="lbfgs"), "design:"),
    "selected seed": (lambda v: v.update(selected_seed=99), "no run with seed 99"),
    "format": (lambda v: v.update(format="cnnsearch-model/9"), "expected format"),
}


@pytest.mark.parametrize("case", sorted(DAMAGE))
def test_a_damaged_manifest_is_one_line(make_folder: MakeFolder, case: str) -> None:
    manifest, _ = make_folder()
    change, message = DAMAGE[case]
    _rewrite(manifest.folder, change)
    with pytest.raises(UserError) as caught:
        read_manifest(manifest.folder)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_a_design_that_cannot_be_built_for_the_input(make_folder: MakeFolder) -> None:
    manifest, _ = make_folder()

    def tiny(values: dict) -> None:
        values["input_shape"] = [1, 1, 1]
        values["preprocessing"]["size"] = [1, 1]

    _rewrite(manifest.folder, tiny)
    with pytest.raises(UserError, match="cannot be built for 1x1x1 inputs"):
        build_model(read_manifest(manifest.folder))


def test_folders_that_are_not_model_folders(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="does not exist"):
        read_manifest(tmp_path / "nowhere")
    with pytest.raises(UserError, match="holds no model.json"):
        read_manifest(tmp_path)
    (tmp_path / "B2FL4Adam-seed0.pt").write_bytes(b"old")
    with pytest.raises(UserError, match="older cnnsearch train .*train the design again"):
        read_manifest(tmp_path)
    (tmp_path / MANIFEST_NAME).write_bytes(b"\xff\xfe")
    with pytest.raises(UserError, match="not UTF-8"):
        read_manifest(tmp_path)
    (tmp_path / MANIFEST_NAME).write_text("[" * 100000)
    with pytest.raises(UserError, match="not valid JSON"):
        read_manifest(tmp_path)

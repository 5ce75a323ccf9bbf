"""Portable files of every architecture family: ONNX through torch's exporter, checked with
onnxruntime on a batch and on one image (the batch dimension is dynamic), TorchScript and
torch.export; a corrupt or foreign ONNX file is refused in one line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime
import pytest
import torch

from search.errors import UserError
from search.trained.manifest import read_manifest
from search.trained.portable import SCRIPT, TOLERANCE, add_portable, open_onnx, write_portable
from tests.search.trained.conftest import CLASSES, MakeFolder

FAMILIES = {
    "thesis": ((1, 16, 16), {"batch_norm": "after", "dropout": 0.3, "normalise": True,
                             "activation": "silu"}),
    "lenet5": ((1, 28, 28), {"architecture": "lenet5", "activation": "tanh"}),
    "vgg": ((3, 32, 32), {"architecture": "vgg", "depth": 11, "filters": 4,
                          "batch_norm": True, "activation": "elu"}),
    "resnet18": ((3, 32, 32), {"architecture": "resnet18", "filters": 8, "normalise": True}),
    "pretrained": ((1, 32, 32), {"architecture": "pretrained", "backbone": "resnet18",
                                 "weights": "none"}),
}


def images(shape: tuple[int, int, int], count: int = 6, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (count, *shape), generator=generator, dtype=torch.uint8)


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_onnx_of_every_family_equals_torch(make_folder: MakeFolder, family: str) -> None:
    shape, space = FAMILIES[family]
    manifest, model = make_folder(shape=shape, **space)
    sample = images(shape)
    entry = write_portable(manifest, model, manifest.selected_seed, "onnx", sample)
    assert entry["check"]["max_abs_difference"] <= TOLERANCE
    assert entry["check"]["runtime"].startswith("onnxruntime")
    folder = manifest.folder
    spec = json.loads((folder / entry["json"]).read_text())
    assert spec["input"]["shape"] == ["batch", *shape] and spec["output"]["classes"] == list(
        CLASSES)
    assert (folder / SCRIPT).is_file()
    # an independent session on other images and another batch size
    session = onnxruntime.InferenceSession(str(folder / entry["file"]),
                                           providers=["CPUExecutionProvider"])
    other = images(shape, count=3, seed=1)
    inputs = other.float() / 255 - 0.5
    with torch.no_grad():
        expected = model.eval()(inputs).numpy()
    got = session.run(None, {"images": inputs.numpy()})[0]
    assert np.abs(got - expected).max() <= TOLERANCE


@pytest.mark.parametrize("fmt", ["torchscript", "torch-export"])
def test_the_torch_formats_equal_torch(make_folder: MakeFolder, fmt: str) -> None:
    manifest, model = make_folder(batch_norm=True, normalise=True)
    manifest, entry = add_portable(manifest, fmt, sample=images((1, 16, 16)))
    assert entry["check"]["max_abs_difference"] <= TOLERANCE
    assert manifest.portable_file(fmt, manifest.selected_seed) == entry
    assert not list(manifest.folder.glob("*.partial"))


def test_package_without_check_images_uses_seeded_random_ones(make_folder: MakeFolder) -> None:
    manifest, _ = make_folder()
    manifest, entry = add_portable(manifest, "onnx")
    assert entry["check"]["images"] == 32
    manifest.write()
    assert read_manifest(manifest.folder).portable_file("onnx", manifest.selected_seed)


def test_a_corrupt_or_foreign_onnx_file_is_one_line(make_folder: MakeFolder,
                                                    tmp_path: Path) -> None:
    manifest, model = make_folder()
    with pytest.raises(UserError, match="has no ONNX file of run seed 3: make it with "
                                        "cnnsearch package"):
        open_onnx(manifest, 3)
    manifest = manifest.with_portable(write_portable(manifest, model, 3, "onnx",
                                                     images((1, 16, 16))))
    run = open_onnx(manifest, 3)
    assert run(np.zeros((2, 1, 16, 16), np.float32)).shape == (2, 4)
    path = manifest.folder / manifest.portable[0]["file"]
    # a model of another dataset's shape under this model's name
    other, other_model = make_folder(shape=(3, 20, 20), folder=tmp_path / "other")
    foreign = write_portable(other, other_model, 3, "onnx", images((3, 20, 20)))
    path.write_bytes((other.folder / foreign["file"]).read_bytes())
    with pytest.raises(UserError, match="takes 3x20x20 inputs, not those of"):
        open_onnx(manifest, 3)
    path.write_bytes(b"\x08\x07garbage")
    with pytest.raises(UserError, match="is not a readable ONNX model") as caught:
        open_onnx(manifest, 3)
    assert "\n" not in str(caught.value)
    path.unlink()
    with pytest.raises(UserError, match="is missing"):
        open_onnx(manifest, 3)


def test_an_unknown_format_is_refused(make_folder: MakeFolder) -> None:
    manifest, model = make_folder()
    with pytest.raises(UserError, match="unknown portable format"):
        write_portable(manifest, model, 3, "tflite", images((1, 16, 16)))

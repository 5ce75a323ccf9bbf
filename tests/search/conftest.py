"""Shared tiny-data fixtures for the search tests.

The data are 8x8 grey uint8 images in four classes: class ``k`` has quadrant ``k`` bright
(200-255) on a dark noisy background (0-59), so a one-block CNN separates them in a few
dozen steps on a CPU. Fixtures from this file are prefixed ``tiny_``.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch

from data import DeviceBatches
from models import Architecture, ThesisCNN, build_cnn

TINY_SIDE = 8
TINY_CLASSES = 4
TINY_INPUT_SHAPE = (1, TINY_SIDE, TINY_SIDE)


def quadrant_images(count: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``count`` uint8 NCHW images and int64 labels, classes balanced and interleaved."""
    generator = torch.Generator().manual_seed(seed)
    labels = torch.arange(count) % TINY_CLASSES
    shape = (count, 1, TINY_SIDE, TINY_SIDE)
    images = torch.randint(0, 60, shape, generator=generator, dtype=torch.uint8)
    bright = torch.randint(200, 256, shape, generator=generator, dtype=torch.uint8)
    half = TINY_SIDE // 2
    for label in range(TINY_CLASSES):
        row, col = divmod(label, 2)
        rows = slice(row * half, (row + 1) * half)
        cols = slice(col * half, (col + 1) * half)
        chosen = labels == label
        images[chosen, :, rows, cols] = bright[chosen, :, rows, cols]
    return images, labels


TinyData = Callable[..., tuple[DeviceBatches, DeviceBatches]]


@pytest.fixture
def tiny_data() -> TinyData:
    """Factory: ``tiny_data(n_train=96, n_val=32, batch_size=16, seed=0) -> (train, val)``."""

    def make(
        n_train: int = 96, n_val: int = 32, batch_size: int = 16, seed: int = 0
    ) -> tuple[DeviceBatches, DeviceBatches]:
        train_images, train_labels = quadrant_images(n_train, seed)
        val_images, val_labels = quadrant_images(n_val, seed + 1)
        train = DeviceBatches(train_images, train_labels, batch_size=batch_size, device="cpu",
                              shuffle=True, seed=seed)
        val = DeviceBatches(val_images, val_labels, batch_size=64, device="cpu",
                            shuffle=False, seed=0)
        return train, val

    return make


@pytest.fixture
def tiny_model() -> Callable[..., ThesisCNN]:
    """Factory: a one-block, two-filter CNN with 8-unit FC layers for the tiny images."""

    def make(seed: int = 0, l2: float = 0.0, filters: int = 2) -> ThesisCNN:
        architecture = Architecture(blocks=1, filters=filters, fc_units=8, l2=l2)
        return build_cnn(architecture, TINY_INPUT_SHAPE, TINY_CLASSES, seed=seed)

    return make


@pytest.fixture(scope="session")
def tiny_visual_study(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """One real 8-trial Fashion-MNIST search through the CLI, shared by the report, dashboard
    and browser tests: pruned (chance_level, median) and completed trials, SVG artifacts."""
    from tests.conftest import FASHION_DIR, run_cli, tiny_config, write_config

    if not (FASHION_DIR / "train-images-idx3-ubyte.gz").exists():
        pytest.skip("Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)")
    folder = tmp_path_factory.mktemp("visual")
    config = tiny_config(study="visual", n_trials=8)
    config["dataset"]["train_size"] = 600
    config["lrrt"]["epochs"] = 2
    path = write_config(folder / "visual.yaml", config)
    url = f"sqlite:///{folder / 'study.db'}"
    result = run_cli("search", "--config", str(path), "--storage", url,
                     "--artifact-dir", str(folder / "artifacts"), cwd=folder)
    assert result.returncode == 0, result.stderr
    return {"folder": folder, "url": url, "study": "visual", "stdout": result.stdout,
            "artifacts": folder / "artifacts"}


@pytest.fixture(scope="session")
def tiny_model_folder(tiny_visual_study: dict, tmp_path_factory: pytest.TempPathFactory
                      ) -> dict:
    """The visual study's best design exported (``--top 1``) and trained one epoch through
    the CLI: a real model folder (weights, model.json, card, ONNX) with its summary."""
    import json

    from tests.conftest import run_cli

    folder = tmp_path_factory.mktemp("trained")
    export = folder / "best.yaml"
    result = run_cli("export", "--study", "visual", "--storage", tiny_visual_study["url"],
                     "--top", "1", "-o", str(export))
    assert result.returncode == 0, result.stderr
    model = folder / "model"
    result = run_cli("train", "--from", str(export), "--epochs", "1", "--out", str(model),
                     "--device", "cpu")
    assert result.returncode == 0, result.stderr
    return {"folder": model, "export": export, "stdout": result.stdout,
            "summary": json.loads((model / "summary.json").read_text()),
            "manifest": json.loads((model / "model.json").read_text()),
            "card": json.loads((model / "model_card.json").read_text()),
            "study": tiny_visual_study}


@pytest.fixture(scope="session")
def fashion_test_folder(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The Fashion-MNIST test split (the 10,000 images ``train`` reports its test accuracy
    on) written as PNGs, ``<class folder>/<index>.png``: a labelled folder for predict."""
    from PIL import Image

    from data.idx import load_fashion_mnist
    from search.trained.manifest import folder_names
    from tests.conftest import FASHION_DIR

    if not (FASHION_DIR / "train-images-idx3-ubyte.gz").exists():
        pytest.skip("Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)")
    dataset = load_fashion_mnist(None, False)  # its official test split is "val" here
    root = tmp_path_factory.mktemp("fashion-test")
    names = folder_names(dataset.classes)
    for name in names:
        (root / name).mkdir()
    images, labels = dataset.val_images, dataset.val_labels.tolist()
    for index, label in enumerate(labels):
        Image.fromarray(images[index, 0].numpy()).save(root / names[label] / f"{index:05d}.png")
    return {"root": root, "images": images, "labels": labels, "classes": dataset.classes,
            "paths": [root / names[label] / f"{index:05d}.png"
                      for index, label in enumerate(labels)]}

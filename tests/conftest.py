"""Fixtures shared across the test packages: tiny real configs and CLI runs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked ``gpu`` are skipped, with the reason, where no CUDA GPU is visible."""
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU (make gpu-check runs the gpu tests)")
    for item in items:
        if item.get_closest_marker("gpu") is not None:
            item.add_marker(skip)
FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")

needs_fashion_mnist = pytest.mark.skipif(
    not (FASHION_DIR / "train-images-idx3-ubyte.gz").exists(),
    reason="Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)",
)


def tiny_config(study: str = "tiny", **overrides: object) -> dict:
    """A search space small enough for a CLI test: real Fashion-MNIST, a few hundred images.
    Every trial trains (``repeats: allow``), so each has its range test and records, whatever
    the sampler draws in 16 designs; repeats are tested in tests/search/service/test_repeats."""
    config = {
        "study": study,
        "seed": 0,
        "n_trials": 4,
        "repeats": "allow",
        "dataset": {"name": "fashion-mnist", "train_size": 400, "val_size": 200},
        "space": {
            "blocks": [1, 2],
            "filters": [2, 4],
            "optimizer": ["adam", "sgd"],
            "lr_range": [[1.0e-4, 1.0e-2], [1.0e-2, 1.0e-1]],
            "batch_size": [50],
            "fc_units": [32],
        },
        "model": {"l2": 0.0005},
        "lrrt": {"epochs": 1, "sma_periods": 3, "bound_rule": "smith_quarter",
                 "compare_rule": "accuracy_rise"},
        "pruner": {"warmup_trials": 1},
        "train": {"epochs": 2, "step_size_epochs": 1, "sgd_momentum": 0.9},
    }
    config.update(overrides)
    return config


def write_config(path: Path, config: dict) -> Path:
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def run_cli(*args: str, cwd: Path | None = None, env: dict | None = None,
            timeout: float = 300) -> subprocess.CompletedProcess:
    """``python -m search ARGS`` in a fresh process, as a user would run ``cnnsearch``."""
    # One torch thread: results do not depend on how busy the machine is (a multi-thread
    # reduction's order can flip a borderline verdict), and parallel tests do not
    # oversubscribe the cores.
    # PYTHONPATH: this source tree's packages, whatever ``cwd`` is and whichever checkout
    # the environment has installed.
    environment = {**os.environ, "CNNSEARCH_STORAGE": "", "OMP_NUM_THREADS": "1",
                   "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "search", *args], cwd=cwd or ROOT, env=environment,
        check=False, capture_output=True, text=True, timeout=timeout,
    )


@pytest.fixture(scope="session")
def postgres_server():
    """One PostgreSQL cluster for the session; each test takes a fresh database."""
    from tests.postgres import start_server

    server = start_server()
    yield server
    try:
        server.stop()
    finally:
        import shutil

        shutil.rmtree(server.folder, ignore_errors=True)


def write_brightness_folder(root: Path, images_per_class: int = 60, side: int = 8) -> Path:
    """An image folder a tiny CNN learns in a few steps: dark versus light PNGs."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for label, (low, high) in {"dark": (0, 100), "light": (155, 256)}.items():
        (root / label).mkdir(parents=True, exist_ok=True)
        for index in range(images_per_class):
            pixels = rng.integers(low, high, size=(side, side), dtype=np.uint8)
            Image.fromarray(pixels).save(root / label / f"{index}.png")
    return root


def worker_config(folder: Path, study: str, *, epochs: int = 2, **overrides: object) -> dict:
    """A design space that trains in a fraction of a second per epoch (for worker tests). Its
    4 designs are trained again when sampled again (``repeats: allow``): the budget tests
    count trials."""
    config = {
        "study": study,
        "seed": 0,
        "repeats": "allow",
        "dataset": {"name": f"imagefolder:{folder}"},
        "space": {"blocks": [1, 2], "filters": [2, 4], "optimizer": ["adam"],
                  "lr_range": [[1.0e-3, 1.0e-1]], "batch_size": [16], "fc_units": [8]},
        "model": {"l2": 0.0},
        "lrrt": {"epochs": 1, "sma_periods": 2, "bound_rule": "smith_quarter",
                 "compare_rule": None},
        "pruner": {"warmup_trials": 1000, "after_lrrt": "none", "chance_margin": 0.0},
        "train": {"epochs": epochs, "step_size_epochs": 1},
    }
    config.update(overrides)
    return config

"""The ONNX file and ``predict_onnx.py`` shipped in a model folder, used where cnnsearch is
not installed: a fresh virtual environment with only onnxruntime and numpy (wheels from PyPI,
cached between runs), the folder's portable files copied elsewhere, and the logits equal to
torch's within 1e-4."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from search.trained.inference import logits_of
from search.trained.manifest import build_model, read_manifest
from search.trained.portable import CHECK_IMAGES
from tests.conftest import needs_fashion_mnist

PACKAGES = ("onnxruntime", "numpy")


def _run(*args: str | Path, cwd: Path | None = None, timeout: float = 600
         ) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items()
           if key not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    return subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout, check=False)


@pytest.fixture(scope="session")
def onnx_only_venv(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
                   ) -> Path:
    """A fresh venv holding onnxruntime and numpy (and their dependencies) only."""
    wheels = Path(request.config.cache.mkdir("onnx-venv-wheels"))
    venv = tmp_path_factory.mktemp("onnx-venv") / "venv"
    created = _run(sys.executable, "-m", "venv", venv)
    assert created.returncode == 0, created.stderr
    pip = venv / "bin" / "pip"
    if not list(wheels.glob("onnxruntime-*.whl")):
        fetched = _run(pip, "download", "--quiet", "--dest", wheels, *PACKAGES)
        if fetched.returncode != 0:
            pytest.skip(f"PyPI not reachable and no cached wheels: {fetched.stderr[-300:]}")
    installed = _run(pip, "install", "--quiet", "--no-index", "--find-links", wheels,
                     *PACKAGES)
    assert installed.returncode == 0, installed.stderr
    return venv


@needs_fashion_mnist
def test_the_onnx_file_runs_without_cnnsearch(tiny_model_folder: dict, onnx_only_venv: Path,
                                              tmp_path: Path) -> None:
    python = onnx_only_venv / "bin" / "python"
    for module in ("torch", "search", "PIL"):  # nothing of ours, nor torch, in there
        probe = _run(python, "-I", "-c", f"import {module}", cwd=tmp_path)
        assert probe.returncode != 0, f"{module} is importable in the fresh venv"
    folder = tiny_model_folder["folder"]
    manifest = read_manifest(folder)
    entry = manifest.portable_file("onnx", manifest.selected_seed)
    assert entry is not None
    shipped = tmp_path / "shipped"  # only the portable files, somewhere else
    shipped.mkdir()
    for name in (entry["file"], entry["json"], entry["script"], CHECK_IMAGES):
        shutil.copy(folder / name, shipped / name)
    result = _run(python, "-I", entry["script"], entry["json"], CHECK_IMAGES, "--top", "2",
                  "--logits", "logits.npy", cwd=shipped)
    assert result.returncode == 0, result.stderr
    onnx_logits = np.load(shipped / "logits.npy")

    _, model = build_model(manifest)
    images = torch.from_numpy(np.load(folder / CHECK_IMAGES))
    expected = logits_of(model, images, batch_size=manifest.batch_size,
                         device=torch.device("cpu")).numpy()
    assert onnx_logits.shape == expected.shape == (32, 10)
    assert np.abs(onnx_logits - expected).max() <= 1e-4
    lines = result.stdout.splitlines()
    assert len(lines) == 32
    for line, row in zip(lines, expected):
        assert line.split("\t")[1].startswith(manifest.classes[int(row.argmax())] + " ")

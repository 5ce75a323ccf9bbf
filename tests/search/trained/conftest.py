"""Model folders built in this process (no search, no training: freshly initialised
weights), for the tests of the folder's parts: any design, any input shape, in seconds."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import optuna
import pytest
import torch

from data.registry import RESIZE_TORCH
from models import build_cnn
from search.config import parse_config
from search.method.normalisation import standardise_inputs
from search.method.suggest import sample_trial_config
from search.method.trial_config import TrialConfig
from search.trained.manifest import Manifest, Run
from search.trained.preprocessing import Preprocessing
from search.trained.weights import save_weights

CLASSES = ("cat", "dog", "T-shirt/top", "bird")


def design(**space: object) -> TrialConfig:
    """The design a config with this one-choice ``space`` samples."""
    raw = {"study": "folder", "dataset": {"name": "fashion-mnist"},
           "space": {"blocks": [1], "filters": [4], "optimizer": ["adam"],
                     "lr_range": [[1.0e-3, 1.0e-2]], "batch_size": [32], "fc_units": [16],
                     **{key: [value] for key, value in space.items()}}}
    return sample_trial_config(optuna.trial.FixedTrial({}), parse_config(raw))


MakeFolder = Callable[..., tuple[Manifest, torch.nn.Module]]


@pytest.fixture
def make_folder(tmp_path: Path) -> MakeFolder:
    """``make_folder(shape=(1, 16, 16), resize=..., seed=3, **space)``: a model folder of
    that design with its manifest written; returns the manifest and the model."""

    def make(shape: tuple[int, int, int] = (1, 16, 16), resize: str = RESIZE_TORCH,
             seed: int = 3, folder: Path | None = None, **space: object
             ) -> tuple[Manifest, torch.nn.Module]:
        config = design(**space)
        folder = folder or tmp_path / "model"
        folder.mkdir(parents=True, exist_ok=True)
        model = build_cnn(config.architecture, shape, len(CLASSES), seed=seed)
        if config.normalise:
            channels = shape[0]
            standardise_inputs(model, torch.linspace(-0.2, 0.1, channels),
                               torch.linspace(0.2, 0.3, channels))
        model.eval()
        weights = folder / f"{config.name}-seed{seed}.safetensors"
        digest = save_weights(model, weights, {"design": config.name})
        manifest = Manifest(folder, config.name, "fashion-mnist", "holdout", CLASSES,
                            Preprocessing.of_training(shape, resize, model), 8, config,
                            {"study": "s", "trial": 7}, (Run(seed, weights.name, digest,
                                                             0.5, 0.4),), seed)
        manifest.write()
        return manifest, model

    return make

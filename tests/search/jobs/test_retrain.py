"""``cnnsearch train``'s model folder, from a real tiny search through the CLI: the weights as
safetensors (no pickle), ``model.json`` with everything ``predict`` needs, the model card,
the checked ONNX file; and the weights read back give the test accuracy ``train`` printed."""

from __future__ import annotations

import json

import torch
import yaml
from safetensors.torch import load_file

from data.idx import FASHION_MNIST_CLASSES
from models import build_cnn
from search.method.evaluation import evaluate
from search.method.prepared_data import DataOnDevice, load_data
from search.method.trial_config import TrialConfig
from search.trained.manifest import read_manifest
from tests.conftest import needs_fashion_mnist

pytestmark = needs_fashion_mnist


def test_train_writes_a_model_folder(tiny_model_folder: dict) -> None:
    folder = tiny_model_folder["folder"]
    summary, manifest = tiny_model_folder["summary"], tiny_model_folder["manifest"]
    export = yaml.safe_load(tiny_model_folder["export"].read_text())
    entry = export["configs"][0]
    seed = entry["config"]["seed"]
    assert sorted(p.name for p in folder.iterdir()) == sorted([
        f"{entry['name']}-seed{seed}.safetensors", f"{entry['name']}-seed{seed}.onnx",
        f"{entry['name']}-seed{seed}.onnx.json", "check_images.npy", "model.json",
        "model_card.html", "model_card.json", "predict_onnx.py", "summary.json"])
    assert not list(folder.glob("*.pt"))  # no pickles
    assert manifest["classes"] == list(FASHION_MNIST_CLASSES)
    assert manifest["class_folders"][0] == "T-shirt_top"
    assert manifest["input_shape"] == [1, 28, 28]
    assert manifest["preprocessing"]["resize"] == "torch-bilinear-antialias"
    assert manifest["preprocessing"]["scale"] == "p / 255 - 0.5"
    assert manifest["batch_size"] == entry["config"]["train"]["eval_batch_size"]
    provenance = manifest["provenance"]
    assert provenance["study"] == export["study"] == "visual"
    assert provenance["trial"] == entry["trial"] and provenance["rank"] == 1
    assert provenance["lr_bounds"] == entry["lr_bounds"] == summary["lr_bounds"]
    assert provenance["seeds"] == [seed] and provenance["epochs"] == 1
    assert provenance["search_score"] == entry["score"]
    assert manifest["selected_seed"] == summary["model"]["selected_seed"] == seed
    [run] = manifest["runs"]
    assert run["test_accuracy"] == summary["runs"][0]["test_accuracy"]
    assert summary["runs"][0]["weights"] == run["weights"]
    [portable] = manifest["portable"]
    assert portable["format"] == "onnx" and portable["check"]["max_abs_difference"] <= 1e-4
    stdout = tiny_model_folder["stdout"]
    assert f"the model: run seed {seed}" in stdout and "model_card.html" in stdout


def test_the_weights_read_back_give_the_printed_test_accuracy(tiny_model_folder: dict) -> None:
    """The safetensors file alone (rebuilt from the exported design, not from the folder's
    loader) reproduces the test accuracy train reported."""
    folder, summary = tiny_model_folder["folder"], tiny_model_folder["summary"]
    config = TrialConfig.from_dict(summary["config"])
    model = build_cnn(config.architecture, (1, 28, 28), 10, seed=1)
    state = load_file(folder / summary["runs"][0]["weights"])
    model.load_state_dict(state)
    dataset = load_data(config.dataset, config.data_seed, test=True)
    data = DataOnDevice(dataset, torch.device("cpu"), config.train.eval_batch_size)
    assert data.test is not None
    _, accuracy = evaluate(model, data.test)
    assert accuracy == summary["runs"][0]["test_accuracy"]
    assert summary["images"]["test"] == 10000


def test_the_manifest_reads_back(tiny_model_folder: dict) -> None:
    manifest = read_manifest(tiny_model_folder["folder"])
    assert manifest.classes == FASHION_MNIST_CLASSES
    assert manifest.preprocessing.input_shape == (1, 28, 28)
    assert manifest.run().seed == manifest.selected_seed
    assert manifest.portable_file("onnx", manifest.selected_seed) is not None


def test_the_printed_json_line_is_still_the_summary(tiny_model_folder: dict) -> None:
    line = next(line for line in tiny_model_folder["stdout"].splitlines()
                if line.startswith("{"))
    printed = json.loads(line)
    assert printed["median_test_accuracy"] == tiny_model_folder["summary"]["median_test_accuracy"]

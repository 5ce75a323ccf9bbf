"""``cnnsearch train``: the extended training of an exported design (its schedule,
triangular2 by default, between the exported LR bounds; its optimizer, batch sampling,
augmentation and normalisation), repeated with different seeds; the median is what the
thesis reports (it used 5 repeats).

Under ``dataset.split: holdout`` (the default) each run's final weights are also evaluated,
once, on the test split: images the search never saw, so that figure is the design's
unbiased estimate; the validation figures selected the design and are optimistic. Under
``split: thesis`` there is no test split (the official one validated), and no test figure.

The ``--out`` folder is a model folder (``search.trained``): each run's weights as
safetensors, ``model.json`` (what ``predict`` needs: preprocessing, class names, input
shape, provenance), the model card of the median run and, by default, its ONNX file.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import torch

from data.registry import resize_filter
from models import count_parameters
from search.jobs.model_folder import finish_folder
from search.method.evaluation import evaluate
from search.method.optimizers import final_weights
from search.method.prepared_data import DataOnDevice, check_design_fits, load_data
from search.method.recipe import training_run
from search.method.training import EpochReport, TrainingState
from search.method.trial_config import TrialConfig
from search.trained.manifest import Manifest, Run, median_run
from search.trained.preprocessing import Preprocessing
from search.trained.weights import WEIGHTS_SUFFIX, save_weights
from search.views.output_files import output_folder, write_output
from search.views.progress import Output, TrainProgress


def with_export_split(config: TrialConfig, entry: dict[str, Any]) -> TrialConfig:
    """The config of an export ``entry``, with the split its search used: an export written
    before ``dataset.split`` existed comes from a search that validated on the official test
    split, so it is retrained under ``split: thesis`` (the same images), not the new
    default."""
    dataset = entry.get("config", {}).get("dataset")
    if isinstance(dataset, dict) and "split" not in dataset:
        return replace(config, dataset=replace(config.dataset, split="thesis"))
    return config


def test_line(summary: dict[str, Any]) -> str:
    """The line ``cnnsearch train`` prints for the test split of a ``retrain`` summary."""
    if summary["median_test_accuracy"] is None:
        return (f"no test split (dataset.split: {summary['split']}): the official test split "
                "validated, so the validation figures above are the ones that selected this "
                "design")
    runs = ", ".join(f"{run['test_accuracy']:.4f}" for run in summary["runs"])
    return (f"test accuracy (final weights, {summary['images']['test']} held-out images the "
            f"search never saw): median {summary['median_test_accuracy']:.4f} over "
            f"{summary['repeats']} run(s) [{runs}]")


def model_line(summary: dict[str, Any]) -> str:
    """The line ``cnnsearch train`` prints about the run that is the model."""
    seed = summary["model"]["selected_seed"]
    run = next(r for r in summary["runs"] if r["seed"] == seed)
    test = ("" if run["test_accuracy"] is None
            else f", test accuracy {run['test_accuracy']:.4f}")
    return (f"the model: run seed {seed} (median final validation accuracy "
            f"{run['final_val_accuracy']:.4f}{test}); predict, package and the model card "
            "use it")


def _median(values: list[float | None]) -> float | None:
    present = [value for value in values if value is not None]
    return statistics.median(present) if present else None


def retrain(
    config: TrialConfig,
    bounds: tuple[float, float],
    *,
    epochs: int,
    repeats: int,
    device: torch.device,
    out_dir: Path,
    log: TextIO = sys.stdout,
    source: dict[str, Any] | None = None,
    portable: str | None = "onnx",
    output: Output | None = None,
) -> dict[str, Any]:
    """Train ``repeats`` runs (seed, seed+1, ...); save each run's weights and one JSON
    summary; evaluate each run's final weights on the test split when there is one; then
    the model folder around them (``search.jobs.model_folder``). ``source`` is where the design
    came from (export file, rank, study, trial, ...), kept in the manifest; ``portable``
    the format of the portable file (None: none); ``output``: what its progress may print
    (the CLI's)."""
    dataset = load_data(config.dataset, config.data_seed, test=True)
    check_design_fits(config, dataset)  # a design too large leaves no folder behind
    out_dir = output_folder(out_dir, "--out")  # a folder that takes files, before training
    data = DataOnDevice(dataset, device, config.train.eval_batch_size)
    n_test = data.test.num_samples if data.test is not None else 0
    runs = []
    entries: list[Run] = []
    histories: dict[int, list[dict[str, Any]]] = {}
    preprocessing: Preprocessing | None = None
    progress = TrainProgress(log, runs=repeats, epochs=epochs, output=output)
    for repeat in range(repeats):
        seed = config.seed + repeat
        started = time.perf_counter()
        run = training_run(config, data, bounds, seed=seed)

        def on_epoch(report: EpochReport, state: TrainingState, repeat: int = repeat) -> None:
            progress.epoch(repeat + 1, report.epoch, report.lr, report.train_loss,
                           report.val_accuracy, report.seconds)

        state = run.fit(data.val, epochs=epochs, on_epoch=on_epoch)
        test_loss = test_accuracy = None
        final_weights(run.optimizer)  # what is tested and saved (schedule-free: the average)
        if data.test is not None:
            test_loss, test_accuracy = evaluate(run.model, data.test, run.execution)
        progress.run_finished(repeat + 1, state.best_val_accuracy,
                              state.history[-1].val_accuracy, time.perf_counter() - started)
        if test_accuracy is not None:
            progress.status.log(f"[run {repeat + 1}/{repeats}] test acc {test_accuracy:.4f} "
                                f"(final weights, {n_test} held-out images)")
        if preprocessing is None:
            preprocessing = Preprocessing.of_training(dataset.input_shape,
                                                      resize_filter(config.dataset.name),
                                                      run.model)
        weights = out_dir / f"{config.name}-seed{seed}{WEIGHTS_SUFFIX}"
        digest = save_weights(run.model, weights, {"design": config.name, "seed": str(seed)})
        entries.append(Run(seed, weights.name, digest, state.history[-1].val_accuracy,
                           test_accuracy))
        histories[seed] = state.to_dict()["history"]
        runs.append({
            "seed": seed,
            "best_val_accuracy": state.best_val_accuracy,
            "final_val_accuracy": state.history[-1].val_accuracy,
            "test_accuracy": test_accuracy,
            "test_loss": test_loss,
            "history": state.to_dict()["history"],
            "weights": weights.name,
            "seconds": round(time.perf_counter() - started, 3),
            "n_params": count_parameters(run.model),
        })
    summary = {
        "name": config.name,
        "dataset": config.dataset.name,
        "split": config.dataset.split,
        "images": {"train": len(dataset.train_labels), "val": len(dataset.val_labels),
                   "test": n_test},
        "epochs": epochs,
        "lr_bounds": list(bounds),
        "batch_size": config.batch_size,
        "optimizer": config.optimizer,
        "schedule": config.schedule,
        "device": str(device),
        "repeats": repeats,
        "median_best_val_accuracy": statistics.median(r["best_val_accuracy"] for r in runs),
        "median_final_val_accuracy": statistics.median(r["final_val_accuracy"] for r in runs),
        "median_test_accuracy": _median([r["test_accuracy"] for r in runs]),
        "config": config.to_dict(),
        "runs": runs,
    }
    assert preprocessing is not None  # repeats >= 1
    selected = median_run(entries)
    summary["model"] = {"manifest": "model.json", "selected_seed": selected.seed,
                        "selected_by": "median final validation accuracy"}
    write_output(out_dir / "summary.json", json.dumps(summary, indent=2), "--out")
    provenance = {**(source or {}), "lr_bounds": list(bounds),
                  "seeds": [r.seed for r in entries], "data_seed": config.data_seed,
                  "epochs": epochs, "repeats": repeats, "images": summary["images"],
                  "device": str(device),
                  "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
                  "torch": torch.__version__}
    manifest = Manifest(out_dir, config.name, config.dataset.name, config.dataset.split,
                        tuple(dataset.classes), preprocessing, config.train.eval_batch_size,
                        config, provenance, tuple(entries), selected.seed)
    manifest = finish_folder(manifest, dataset, histories, device, portable,
                             progress.status.log)
    summary["portable"] = [entry["file"] for entry in manifest.portable]
    write_output(out_dir / "summary.json", json.dumps(summary, indent=2), "--out")
    return summary

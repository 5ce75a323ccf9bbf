"""``cnnsearch train``: the extended triangular2 training of an exported design, repeated
with different seeds; the median is what the thesis reports (it used 5 repeats)."""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any, TextIO

import torch

from models import build_cnn, count_parameters
from search.objective import DataOnDevice
from search.optimizers import make_optimizer
from search.progress import TrainProgress
from search.runner import load_data
from search.training import EpochReport, TrainingState, make_triangular2, train_epochs
from search.trial_config import TrialConfig


def retrain(
    config: TrialConfig,
    bounds: tuple[float, float],
    *,
    epochs: int,
    repeats: int,
    device: torch.device,
    out_dir: Path,
    log: TextIO = sys.stdout,
) -> dict[str, Any]:
    """Train ``repeats`` runs (seed, seed+1, ...); save each state dict and one JSON summary."""
    out_dir.mkdir(parents=True, exist_ok=True)
    dataset = load_data(config.dataset, config.data_seed)
    data = DataOnDevice(dataset, device, config.train.eval_batch_size)
    runs = []
    progress = TrainProgress(log, runs=repeats, epochs=epochs)
    for repeat in range(repeats):
        seed = config.seed + repeat
        started = time.perf_counter()
        model = build_cnn(config.architecture, dataset.input_shape, dataset.num_classes,
                          seed=seed).to(device)
        optimizer = make_optimizer(model, config.optimizer, bounds[0],
                                   sgd_momentum=config.train.sgd_momentum)
        train = data.train(config.batch_size, seed)
        scheduler = make_triangular2(optimizer, bounds, steps_per_epoch=len(train),
                                     step_size_epochs=config.train.step_size_epochs)

        def on_epoch(report: EpochReport, state: TrainingState, repeat: int = repeat) -> None:
            progress.epoch(repeat + 1, report.epoch, report.lr, report.train_loss,
                           report.val_accuracy, report.seconds)

        state = train_epochs(model, optimizer, scheduler, train, data.val, epochs=epochs,
                             on_epoch=on_epoch)
        progress.run_finished(repeat + 1, state.best_val_accuracy,
                              state.history[-1].val_accuracy, time.perf_counter() - started)
        weights = out_dir / f"{config.name}-seed{seed}.pt"
        torch.save(model.state_dict(), weights)
        runs.append({
            "seed": seed,
            "best_val_accuracy": state.best_val_accuracy,
            "final_val_accuracy": state.history[-1].val_accuracy,
            "history": state.to_dict()["history"],
            "weights": weights.name,
            "seconds": round(time.perf_counter() - started, 3),
            "n_params": count_parameters(model),
        })
    summary = {
        "name": config.name,
        "dataset": config.dataset.name,
        "epochs": epochs,
        "lr_bounds": list(bounds),
        "batch_size": config.batch_size,
        "optimizer": config.optimizer,
        "device": str(device),
        "repeats": repeats,
        "median_best_val_accuracy": statistics.median(r["best_val_accuracy"] for r in runs),
        "median_final_val_accuracy": statistics.median(r["final_val_accuracy"] for r in runs),
        "config": config.to_dict(),
        "runs": runs,
    }
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary

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

from models import count_parameters
from search.method.prepared_data import DataOnDevice, check_design_fits, load_data
from search.method.recipe import triangular2_run
from search.method.training import EpochReport, TrainingState, train_epochs
from search.method.trial_config import TrialConfig
from search.views.progress import TrainProgress


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
    dataset = load_data(config.dataset, config.data_seed)
    check_design_fits(config, dataset)
    out_dir.mkdir(parents=True, exist_ok=True)
    data = DataOnDevice(dataset, device, config.train.eval_batch_size)
    runs = []
    progress = TrainProgress(log, runs=repeats, epochs=epochs)
    for repeat in range(repeats):
        seed = config.seed + repeat
        started = time.perf_counter()
        run = triangular2_run(config, data, bounds, seed=seed)

        def on_epoch(report: EpochReport, state: TrainingState, repeat: int = repeat) -> None:
            progress.epoch(repeat + 1, report.epoch, report.lr, report.train_loss,
                           report.val_accuracy, report.seconds)

        state = train_epochs(run.model, run.optimizer, run.scheduler, run.train, data.val,
                             epochs=epochs, on_epoch=on_epoch)
        progress.run_finished(repeat + 1, state.best_val_accuracy,
                              state.history[-1].val_accuracy, time.perf_counter() - started)
        weights = out_dir / f"{config.name}-seed{seed}.pt"
        torch.save(run.model.state_dict(), weights)
        runs.append({
            "seed": seed,
            "best_val_accuracy": state.best_val_accuracy,
            "final_val_accuracy": state.history[-1].val_accuracy,
            "history": state.to_dict()["history"],
            "weights": weights.name,
            "seconds": round(time.perf_counter() - started, 3),
            "n_params": count_parameters(run.model),
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

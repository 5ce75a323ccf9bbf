"""``cnnsearch search``: validate everything, load data once, then let Optuna drive trials."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import TextIO

import optuna
import torch

from data import DatasetError, ImageDataset, load_dataset
from models import Architecture, ArchitectureError
from search.config import DatasetSettings, SearchConfig
from search.errors import UserError
from search.lrrt_svg import TrialNotes
from search.objective import DataOnDevice, Objective, TrialFailed
from search.progress import SearchProgress
from search.results import format_row, study_table, summary_line, trial_row
from search.study import open_search_study


def load_data(settings: DatasetSettings, seed: int) -> ImageDataset:
    try:
        return load_dataset(
            settings.name, data_dir=settings.data_dir, download=settings.download, seed=seed,
            train_size=settings.train_size, val_size=settings.val_size,
            image_size=settings.image_size,
        )
    except DatasetError as error:
        raise UserError(str(error)) from None


def check_space_fits(config: SearchConfig, dataset: ImageDataset) -> None:
    """Refuse designs that cannot be built for this input before any trial runs."""
    for blocks in config.space.blocks:
        try:
            Architecture(blocks=blocks, filters=config.space.filters[0]).feature_map(
                dataset.input_shape
            )
        except ArchitectureError as error:
            raise UserError(f"config key 'space.blocks': {error}") from None


def prepare_data(config: SearchConfig, device: torch.device) -> DataOnDevice:
    dataset = load_data(config.dataset, config.seed)
    check_space_fits(config, dataset)
    return DataOnDevice(dataset, device, config.train.eval_batch_size)


class ProgressLine:
    """One line per finished trial; the study's best so far at the end of each."""

    def __init__(self, total: int | None, out: TextIO) -> None:
        self.total, self.out, self.started = total, out, time.perf_counter()
        self.done = 0

    def __call__(self, study: optuna.study.Study, trial: optuna.trial.FrozenTrial) -> None:
        self.done += 1
        cells = format_row(trial_row(trial))
        count = f"{self.done}/{self.total}" if self.total else str(self.done)
        try:
            best = f"best {study.best_value:.4f}"
        except ValueError:
            best = "best -"
        elapsed = time.perf_counter() - self.started
        print(f"[{count}] trial {cells[0]} {cells[1]:<12} {cells[2]:<22} lrrt {cells[3]:>5}  "
              f"lr {cells[4]:<17} val {cells[5]:>6}  {cells[6]:>6}s  | {best}  "
              f"elapsed {elapsed:.0f}s", file=self.out, flush=True)


def run_search(
    config: SearchConfig,
    *,
    study_name: str,
    storage: optuna.storages.BaseStorage,
    n_trials: int | None,
    timeout: float | None,
    device: torch.device,
    artifact_dir: str | None,
    out: TextIO = sys.stdout,
) -> optuna.study.Study:
    data = prepare_data(config, device)
    artifact_store = None
    if artifact_dir:
        Path(artifact_dir).mkdir(parents=True, exist_ok=True)
        artifact_store = optuna.artifacts.FileSystemArtifactStore(artifact_dir)
    study = open_search_study(study_name, storage, config, artifact_dir=artifact_dir)
    dataset = data.dataset
    print(f"study '{study_name}': {dataset.name}, {len(dataset.train_labels)} train / "
          f"{len(dataset.val_labels)} val images {dataset.input_shape}, "
          f"{dataset.num_classes} classes, device {device}", file=out, flush=True)
    objective = Objective(config, data, artifact_store=artifact_store)
    objective.progress = progress = SearchProgress(out, total_trials=n_trials, timeout=timeout)
    study.optimize(
        objective,
        n_trials=n_trials,
        timeout=timeout,
        callbacks=[ProgressLine(n_trials, progress.stream), progress, TrialNotes()],
        catch=(TrialFailed,),
    )
    progress.close()
    print("\n" + study_table(study), file=out)
    print("\n" + summary_line(study), file=out, flush=True)
    return study

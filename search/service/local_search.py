"""``cnnsearch search``: validate everything, load data once, then let Optuna drive trials
in this process."""

from __future__ import annotations

import sys
from typing import TextIO

import optuna
import torch

from search.config import SearchConfig
from search.method.prepared_data import prepare_data
from search.service.objective import Objective, TrialFailed
from search.service.study import open_search_study
from search.views.lrrt_artifact import open_lrrt_artifacts
from search.views.progress import ProgressLine, SearchProgress
from search.views.results import study_table, summary_line
from search.views.trial_notes import TrialNotes


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
    artifacts = open_lrrt_artifacts(artifact_dir)
    study = open_search_study(study_name, storage, config, artifact_dir=artifact_dir)
    dataset = data.dataset
    print(f"study '{study_name}': {dataset.name}, {len(dataset.train_labels)} train / "
          f"{len(dataset.val_labels)} val images {dataset.input_shape}, "
          f"{dataset.num_classes} classes, device {device}", file=out, flush=True)
    progress = SearchProgress(out, total_trials=n_trials, timeout=timeout)
    objective = Objective(config, data, study.pruner, artifacts=artifacts, progress=progress)
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

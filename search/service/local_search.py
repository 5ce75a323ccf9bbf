"""``cnnsearch search``: validate everything, load data once, then let Optuna drive trials
in this process.

Ctrl-C (or SIGTERM) only sets a flag, as for a worker: the running trial finishes its
epoch, checkpoints, is recorded FAIL (``interrupted``) and its retry is queued, so the next
search on the study resumes it; ``SearchInterrupted`` carries the one line to print.

With ``--trials-per-gpu`` the trials run in worker processes packed on the cards
(``run_packed_search``, ``search.service.packed_workers``), which share the search's
budget as workers share ``--max-trials``; this process creates the study, waits for them
and prints the same table.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import time
from dataclasses import replace
from typing import TextIO

import optuna
import torch

from search.config import SearchConfig
from search.errors import UserError
from search.method.prepared_data import check_space_fits, load_data, prepare_data
from search.service.checkpoints import CheckpointStore
from search.service.devices import DeviceInventory, Placement
from search.service.lrrt_artifacts import TrialNotes, open_lrrt_artifacts
from search.service.objective import Objective, TrialAbandoned, TrialFailed, TrialPaused
from search.service.packed_workers import PackedRun, WorkerMain, run_packed_workers
from search.service.reaper import queue_retries
from search.service.repeats import RepeatGuard
from search.service.resilient_storage import RetryingStorage, is_taken_over
from search.service.stop_flag import (
    StopFlag,
    WorkerInterrupted,
    interrupted_line,
    quiet_optuna_failures,
)
from search.service.study import open_search_study, study_data_seed
from search.service.worker import FINISHED
from search.views.progress import Output, ProgressLine, SearchProgress
from search.views.results import study_table, summary_line

LOGGER = logging.getLogger("cnnsearch.search")


class _Budget:
    """What is left of ``n_trials`` and ``timeout`` when the search goes on after a trial
    another process finished (Optuna's ``optimize`` ends on it: it cannot tell the trial)."""

    def __init__(self, n_trials: int | None, timeout: float | None) -> None:
        self.n_trials, self.timeout = n_trials, timeout
        self.done = 0
        self.started = time.monotonic()

    def count(self, *_ended: object) -> None:
        """One more trial ended (an ``optimize`` callback, or a trial given up)."""
        self.done += 1

    def left(self) -> tuple[int | None, float | None] | None:
        """(trials, seconds) left, None each without a limit; None when nothing is."""
        trials = None if self.n_trials is None else self.n_trials - self.done
        seconds = None if self.timeout is None else (
            self.timeout - (time.monotonic() - self.started))
        if (trials is not None and trials <= 0) or (seconds is not None and seconds <= 0):
            return None
        return trials, seconds


class SearchInterrupted(Exception):
    """A stop request ended the search; ``line`` says what became of the running trial."""

    def __init__(self, line: str) -> None:
        super().__init__(line)
        self.line = line


def run_search(
    config: SearchConfig,
    *,
    study_name: str,
    storage: optuna.storages.BaseStorage,
    n_trials: int | None,
    timeout: float | None,
    device: torch.device,
    artifact_dir: str | None,
    checkpoint_dir: str | None = None,
    stop: StopFlag | None = None,
    out: TextIO = sys.stdout,
    output: Output | None = None,
    placement: Placement | None = None,
) -> optuna.study.Study:
    """Run the search. With ``stop``, SIGINT/SIGTERM set it while trials run (the previous
    handlers come back afterwards) and a stop raises ``SearchInterrupted``. ``output``: what
    it may print (the CLI's ``-q``/``-v``). ``placement``: the card slot this process holds,
    recorded with each trial."""
    output = output if output is not None else Output()
    # The study's images: those it was created with, whatever the seed now.
    data = prepare_data(config, device, study_data_seed(study_name, storage, config))
    artifacts = open_lrrt_artifacts(artifact_dir)
    # Its own sampler seed (the config seed for the first process): no repeated designs.
    study = open_search_study(study_name, storage, config, artifact_dir=artifact_dir,
                              searching=True)
    dataset = data.dataset
    if not output.quiet:  # -q: errors and the final table only
        print(f"study '{study_name}': {dataset.name}, {len(dataset.train_labels)} train / "
              f"{len(dataset.val_labels)} val images {dataset.input_shape}, "
              f"{dataset.num_classes} classes, device {device}", file=out, flush=True)
    progress = SearchProgress(out, total_trials=n_trials, timeout=timeout, output=output)
    checkpoints = CheckpointStore(checkpoint_dir) if checkpoint_dir else None
    objective = Objective(config, data, study.pruner, artifacts=artifacts,
                          checkpoints=checkpoints, stop=stop, progress=progress,
                          placement=placement)
    if stop is not None and isinstance(storage, RetryingStorage):
        storage.stop = stop

    def stop_between_trials(study: optuna.study.Study, _trial: object) -> None:
        if stop is not None and stop.is_set():
            study.stop()

    guard = RepeatGuard(config)  # every design tried, or a sampler that keeps repeating
    budget = _Budget(n_trials, timeout)
    with (stop.installed() if stop is not None else contextlib.nullcontext()), \
            quiet_optuna_failures(WorkerInterrupted, TrialPaused, TrialAbandoned):
        try:
            while guard.check(study) is None and budget.left() and not (
                    stop is not None and stop.is_set()):
                trials, seconds = budget.left()
                try:
                    study.optimize(
                        objective,
                        n_trials=trials,
                        timeout=seconds,
                        callbacks=[ProgressLine(n_trials, progress.stream, output), progress,
                                   TrialNotes(), stop_between_trials, guard, budget.count],
                        catch=(TrialFailed, TrialPaused, TrialAbandoned),
                    )
                    break
                except Exception as error:  # its trial finished by someone else: go on
                    if not (is_taken_over(error) or isinstance(error, TrialAbandoned)):
                        raise
                    LOGGER.warning("cnnsearch: %s",
                                   objective.abandon(study, objective.running_number))
                    budget.count()
        except WorkerInterrupted:
            pass
        finally:
            progress.close()
        queue_retries(study, objective.interrupted_trials)
        queue_retries(study, objective.paused_trials)
    if stop is not None and stop.is_set():
        raise SearchInterrupted(interrupted_line(objective.last_interruption,
                                                 "the next search", stop.signal_name))
    if guard.line is not None and not output.quiet:
        print(guard.line, file=out, flush=True)
    _print_results(study, out)
    return study


def _print_results(study: optuna.study.Study, out: TextIO) -> None:
    print("\n" + study_table(study), file=out)
    print("\n" + summary_line(study), file=out, flush=True)


def run_packed_search(
    config: SearchConfig,
    *,
    study_name: str,
    storage: optuna.storages.BaseStorage,
    url: str,
    n_trials: int | None,
    timeout: float | None,
    run: PackedRun,
    inventory: DeviceInventory,
    stop: StopFlag,
    out: TextIO = sys.stdout,
    output: Output | None = None,
    worker_main: WorkerMain | None = None,
) -> optuna.study.Study:
    """``n_trials`` more trials (or until ``timeout``) run by worker processes packed on
    the cards of ``inventory`` as ``run.policy`` says; ``run``'s options are completed here
    (the study, its budget, the timeout); ``output`` and ``worker_main`` as for
    ``run_packed_workers``. A stop raises ``SearchInterrupted`` once every worker has ended
    its trial."""
    seed = study_data_seed(study_name, storage, config)
    check_space_fits(config, load_data(config.dataset, seed))  # bad data: one line, no worker
    study = open_search_study(study_name, storage, config, artifact_dir=run.options.artifact_dir)
    finished = len(study.get_trials(deepcopy=False, states=FINISHED))
    options = replace(run.options, study_name=study_name, timeout=timeout,
                      max_trials=None if n_trials is None else finished + n_trials)
    with stop.installed():
        outcome = run_packed_workers(replace(run, config=config, url=url, options=options),
                                     inventory, stop=stop, out=out, output=output,
                                     worker_main=worker_main)
    if outcome.user_error:
        raise UserError("the search's workers stopped on a configuration or data error "
                        "(their message is above)")
    if stop.is_set():
        raise SearchInterrupted(f"cnnsearch: interrupted ({stop.signal_name}); the workers "
                                "checkpointed their trials, the next search resumes them")
    _print_results(study, out)
    return study


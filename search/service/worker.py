"""``cnnsearch worker``: a long-running process that pulls trials from a shared study.

Trials run inside ``study.optimize`` (one trial per call), so Optuna's heartbeats,
stale-trial reaping and the heartbeat-stale retry callback all apply; between trials the
worker checks the shared ``--max-trials`` budget under a study-wide lock so that N workers
start exactly that many trials in total.

A worker outlives its database: storage calls retry for longer than the grace period, a
longer outage pauses the trial (checkpoint kept) while the worker waits for the database,
and a trial a reaper took over meanwhile is given up with one line, not a crash.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, TextIO

import optuna
import torch
from optuna.trial import TrialState

from search.config import SearchConfig
from search.method.prepared_data import prepare_data
from search.service.checkpoints import CheckpointStore, first_line
from search.service.lrrt_artifacts import TrialNotes, open_lrrt_artifacts
from search.service.objective import Objective, TrialAbandoned, TrialFailed, TrialPaused
from search.service.reaper import LiveTrial, Reaper, queue_retries, reap
from search.service.repeats import RepeatGuard
from search.service.resilient_storage import (
    ResilientRDBStorage,
    backoff_delays,
    is_taken_over,
    is_transient,
)
from search.service.stop_flag import (
    StopFlag,
    WorkerInterrupted,
    interrupted_line,
    quiet_optuna_failures,
)
from search.service.storage import open_storage
from search.service.study import open_search_study, study_data_seed
from search.service.trial_slots import TrialSlotLock
from search.views.progress import Output, ProgressLine, SearchProgress

if TYPE_CHECKING:
    from search.service.devices import Placement

LOGGER = logging.getLogger("cnnsearch.worker")

DEFAULT_HEARTBEAT_SECONDS = 10
DEFAULT_GRACE_SECONDS = 60
"""A trial whose heartbeat is older than this is failed and retried. It must exceed the
longest database outage workers should ride out (a restart takes seconds); storage calls
retry for longer than it (``search.service.storage.retry_window``)."""

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)


@dataclass(frozen=True)
class WorkerOptions:
    study_name: str
    max_trials: int | None = None
    timeout: float | None = None
    artifact_dir: str | None = None
    checkpoint_dir: str | None = "cnnsearch-checkpoints"
    heartbeat_interval: int = DEFAULT_HEARTBEAT_SECONDS
    grace_period: int = DEFAULT_GRACE_SECONDS
    poll_seconds: float = 2.0


def open_worker_storage(url: str, options: WorkerOptions) -> optuna.storages.BaseStorage:
    return open_storage(
        url, heartbeat_interval=options.heartbeat_interval, grace_period=options.grace_period,
        retry_stale=True, wait_seconds=60.0,
    )


def _acquire(lock: TrialSlotLock, stop: StopFlag) -> bool:
    for attempt, delay in enumerate(backoff_delays()):
        try:
            lock.acquire()
            return True
        except Exception as error:
            if not is_transient(error):
                raise
            if attempt == 0:  # once per outage, not every few seconds
                LOGGER.warning("storage unreachable while waiting for a trial slot (%s); "
                               "retrying", first_line(error, 200))
            lock.release()
            if stop.wait(delay):
                return False
    return False


def _wait_for_storage(storage: optuna.storages.BaseStorage, stop: StopFlag) -> bool:
    """Block until the database answers; False when a stop request came first."""
    if not isinstance(storage, ResilientRDBStorage):
        return not stop.is_set()
    for delay in backoff_delays():
        if stop.is_set():
            return False
        if storage.reachable():
            return True
        if stop.wait(delay):
            return False
    return False


def run_worker(
    config: SearchConfig,
    url: str,
    options: WorkerOptions,
    device: torch.device,
    *,
    stop: StopFlag | None = None,
    out: TextIO = sys.stdout,
    err: TextIO = sys.stderr,
    output: Output | None = None,
    placement: Placement | None = None,
) -> int:
    """Run trials until the study holds ``max_trials`` finished ones, the timeout passes or
    a stop is requested. Returns how many trials this worker ran. ``output``: what it may
    print (the CLI's ``-q``/``-v``).

    ``placement``: the card slot the process holds. Its trials record it; the worker leaves
    once an out-of-memory error lowered the card's ceiling below its slot
    (``Placement.over_ceiling``)."""
    output = output if output is not None else Output()
    stop = stop or StopFlag()
    storage = open_worker_storage(url, options)
    if isinstance(storage, ResilientRDBStorage):
        storage.stop = stop  # a stopping worker does not wait out a long outage
    # The study's images (those it was created with); bad data fails before it is joined.
    data = prepare_data(config, device, study_data_seed(options.study_name, storage, config))
    study = open_search_study(options.study_name, storage, config,
                              searching=True,
                              artifact_dir=options.artifact_dir)
    lock = TrialSlotLock(url, options.study_name)
    reap(study, lock)
    live = LiveTrial()
    Reaper(storage, options.study_name, options.heartbeat_interval, stop, live).start()
    checkpoints = CheckpointStore(options.checkpoint_dir) if options.checkpoint_dir else None
    display = SearchProgress(out, total_trials=options.max_trials, timeout=options.timeout,
                             shared=True, output=output, finished_before=len(
                                 study.get_trials(deepcopy=False, states=FINISHED)))
    objective = Objective(config, data, study.pruner,
                          artifacts=open_lrrt_artifacts(options.artifact_dir),
                          checkpoints=checkpoints, stop=stop, progress=display,
                          placement=placement)
    progress = ProgressLine(options.max_trials, display.stream, output)
    deadline = time.monotonic() + options.timeout if options.timeout else None
    ran = 0
    left = ""
    current: list[int] = []
    guard = RepeatGuard(config)  # every design tried, or a sampler that keeps repeating
    slot = (f" slot {placement.slot}" if placement is not None and placement.on_card
            and placement.slot is not None else "")
    if not output.quiet:  # -q: errors and the closing line only
        print(f"worker {os.getpid()} on {device}{slot}: study '{options.study_name}', "
              f"max trials {options.max_trials or 'unlimited'}", file=out, flush=True)

    def claim_then_run(trial: optuna.Trial) -> float:
        lock.release()  # the trial exists now: let the next worker count it
        live.set(trial._trial_id)  # the id Optuna's heartbeat thread beats for
        current[:] = [trial.number]
        return objective(trial)

    def survive(error: Exception) -> bool:
        """One line for a trial lost to the database; False for anything else (a bug)."""
        number = current[0] if current else None
        if is_taken_over(error) or isinstance(error, TrialAbandoned):
            LOGGER.warning("cnnsearch: trial %s was taken over by a reaper while this worker "
                           "was cut off from the database; abandoned (its retry resumes from "
                           "the checkpoint)", number)
            return True
        if is_transient(error):
            if not stop.is_set():
                held = ("" if number is None else f"trial {number} paused, checkpoint kept "
                        "(it is retried once reaped); ")
                LOGGER.warning("cnnsearch: storage unreachable (%s); %swaiting for the "
                               "database", first_line(error, 100), held)
            live.set(None)  # nobody runs it now: let it be reaped and retried
            if _wait_for_storage(storage, stop):
                LOGGER.warning("cnnsearch: storage reachable again; worker goes on")
            return True
        return False

    try:
        with quiet_optuna_failures(WorkerInterrupted, TrialPaused, TrialAbandoned):
            while not stop.is_set() and (deadline is None or time.monotonic() < deadline):
                if placement is not None and placement.over_ceiling():
                    left = "its card packs fewer trials after an out-of-memory error"
                    break
                if not _acquire(lock, stop):
                    break
                current.clear()
                try:
                    if guard.check(study) is not None:  # nothing new is left to try
                        break
                    if options.max_trials is not None:
                        states = [t.state for t in study.get_trials(deepcopy=False)]
                        finished = sum(state in FINISHED for state in states)
                        if finished >= options.max_trials:
                            break
                        # A queued retry (WAITING) is taken first by optimize; a new trial
                        # only while finished + running trials leave room in the budget.
                        if (TrialState.WAITING not in states
                                and finished + states.count(TrialState.RUNNING)
                                >= options.max_trials):
                            # The rest are running elsewhere: wait, and reap any that died.
                            lock.release()
                            reap(study, lock)
                            stop.wait(options.poll_seconds)
                            continue
                    study.optimize(claim_then_run, n_trials=1,
                                   callbacks=[progress, display, TrialNotes(), guard],
                                   catch=(TrialFailed, WorkerInterrupted, TrialPaused))
                    ran += 1
                except Exception as error:
                    if not survive(error):
                        raise
                finally:
                    live.set(None)
                    lock.release()
                try:
                    queue_retries(study, objective.interrupted_trials)
                    queue_retries(study, objective.paused_trials)
                except Exception as error:
                    if not is_transient(error):
                        raise  # else they are queued after the next trial
    finally:
        lock.close()
    display.close()
    if guard.line is not None and not output.quiet:
        print(guard.line, file=out, flush=True)
    if stop.is_set():
        print(interrupted_line(objective.last_interruption, "the next worker",
                               stop.signal_name), file=err, flush=True)
    reason = f"stopped by {stop.signal_name}" if stop.is_set() else left or "done"
    print(f"worker {os.getpid()} {reason} after {ran} trial(s)", file=out, flush=True)
    return ran

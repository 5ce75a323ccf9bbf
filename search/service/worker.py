"""``cnnsearch worker``: a long-running process that pulls trials from a shared study.

It loads the study's data once, builds the CNN objective and runs the shared trial loop
(``search.service.trial_loop``: the study-wide budget under the slot lock, heartbeats and
reaping, retries through database outages), then says how it ended.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, TextIO

import optuna
import torch

from search.config import SearchConfig
from search.method.prepared_data import prepare_data
from search.service.checkpoints import CheckpointStore
from search.service.lrrt_artifacts import TrialNotes, open_lrrt_artifacts
from search.service.objective import Objective
from search.service.repeats import RepeatGuard
from search.service.resilient_storage import RetryingStorage
from search.service.stop_flag import StopFlag, interrupted_line
from search.service.study import open_search_study, study_data_seed
from search.service.trial_loop import (
    DEFAULT_GRACE_SECONDS,
    DEFAULT_HEARTBEAT_SECONDS,
    FINISHED,
    LoopLimits,
    open_loop_storage,
    run_trial_loop,
)
from search.service.trial_slots import TrialSlotLock
from search.views.progress import Output, ProgressLine, SearchProgress

if TYPE_CHECKING:
    from search.service.devices import Placement


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
    return open_loop_storage(url, options.heartbeat_interval, options.grace_period)


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
    if isinstance(storage, RetryingStorage):
        storage.stop = stop  # a stopping worker does not wait out a long outage
    # The study's images (those it was created with); bad data fails before it is joined.
    data = prepare_data(config, device, study_data_seed(options.study_name, storage, config))
    study = open_search_study(options.study_name, storage, config,
                              searching=True,
                              artifact_dir=options.artifact_dir)
    checkpoints = CheckpointStore(options.checkpoint_dir) if options.checkpoint_dir else None
    display = SearchProgress(out, total_trials=options.max_trials, timeout=options.timeout,
                             shared=True, output=output, finished_before=len(
                                 study.get_trials(deepcopy=False, states=FINISHED)))
    objective = Objective(config, data, study.pruner,
                          artifacts=open_lrrt_artifacts(options.artifact_dir),
                          checkpoints=checkpoints, stop=stop, progress=display,
                          placement=placement)
    progress = ProgressLine(options.max_trials, display.stream, output)
    guard = RepeatGuard(config)  # every design tried, or a sampler that keeps repeating
    slot = (f" slot {placement.slot}" if placement is not None and placement.on_card
            and placement.slot is not None else "")
    if not output.quiet:  # -q: errors and the closing line only
        print(f"worker {os.getpid()} on {device}{slot}: study '{options.study_name}', "
              f"max trials {options.max_trials or 'unlimited'}", file=out, flush=True)
    limits = LoopLimits(max_trials=options.max_trials, timeout=options.timeout,
                        heartbeat_interval=options.heartbeat_interval,
                        poll_seconds=options.poll_seconds)
    ran = run_trial_loop(study, storage, TrialSlotLock(url, options.study_name), objective,
                         limits, stop, callbacks=[progress, display, TrialNotes(), guard],
                         nothing_left=lambda study: guard.check(study) is not None,
                         leave=None if placement is None else placement.over_ceiling)
    left = ("its card packs fewer trials after an out-of-memory error"
            if placement is not None and placement.over_ceiling() else "")
    display.close()
    if guard.line is not None and not output.quiet:
        print(guard.line, file=out, flush=True)
    if stop.is_set():
        print(interrupted_line(objective.last_interruption, "the next worker",
                               stop.signal_name), file=err, flush=True)
    reason = f"stopped by {stop.signal_name}" if stop.is_set() else left or "done"
    print(f"worker {os.getpid()} {reason} after {ran} trial(s)", file=out, flush=True)
    return ran

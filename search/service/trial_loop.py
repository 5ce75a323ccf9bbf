"""The loop a worker runs, whatever its objective: claim a slot of the shared budget, run
one trial, survive the database, repeat. ``cnnsearch worker`` runs it with the CNN
objective (``search.service.worker``); the scale benchmark runs the same loop with a
trivial one, so this module and what it imports never load torch.

Trials run inside ``study.optimize`` (one trial per call), so Optuna's heartbeats,
stale-trial reaping and the heartbeat-stale retry callback all apply; between trials the
worker checks the shared ``--max-trials`` budget under a study-wide lock
(``TrialSlotLock``) so that N workers start exactly that many trials in total.

A worker outlives its database: storage calls retry for longer than the grace period, a
longer outage pauses the trial (checkpoint kept) while the worker waits for the database,
and a trial a reaper took over meanwhile is given up with one line, not a crash.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import optuna
from optuna.trial import TrialState

from search.errors import first_line
from search.service.reaper import LiveTrial, Reaper, queue_retries, reap
from search.service.resilient_storage import (
    RetryingStorage,
    backoff_delays,
    is_taken_over,
    is_transient,
)
from search.service.stop_flag import StopFlag, WorkerInterrupted, quiet_optuna_failures
from search.service.storage import open_storage
from search.service.trial_outcomes import TrialAbandoned, TrialFailed, TrialPaused
from search.service.trial_slots import TrialSlotLock

LOGGER = logging.getLogger("cnnsearch.worker")

DEFAULT_HEARTBEAT_SECONDS = 10
DEFAULT_GRACE_SECONDS = 60
"""A trial whose heartbeat is older than this is failed and retried. It must exceed the
longest database outage workers should ride out (a restart takes seconds); storage calls
retry for longer than it (``search.service.storage.retry_window``)."""
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
CAUGHT = (TrialFailed, WorkerInterrupted, TrialPaused)
"""Endings ``study.optimize`` records as FAIL and the loop goes on after."""


class LoopObjective(Protocol):
    """What the loop needs of an objective: the trials it ended on purpose, to retry."""

    interrupted_trials: list[int]
    paused_trials: list[int]

    def __call__(self, trial: optuna.Trial) -> Any: ...

    def abandon(self, study: optuna.study.Study, number: int | None) -> str:
        """Give up a trial another process finished; the line that says what became of it."""


@dataclass(frozen=True)
class LoopLimits:
    max_trials: int | None = None
    """Finished trials the study holds when every worker stops (all workers together)."""
    timeout: float | None = None
    heartbeat_interval: int = DEFAULT_HEARTBEAT_SECONDS
    poll_seconds: float = 2.0
    """How often a worker whose budget is all claimed looks again (a claimed trial may
    die and be retried)."""


def open_loop_storage(url: str, heartbeat_interval: int = DEFAULT_HEARTBEAT_SECONDS,
                      grace_period: int = DEFAULT_GRACE_SECONDS) -> optuna.storages.BaseStorage:
    """The storage a worker opens: heartbeats on, one retry of a trial whose worker died,
    and a minute's wait for a database (or proxy) that is still starting."""
    return open_storage(url, heartbeat_interval=heartbeat_interval, grace_period=grace_period,
                        retry_stale=True, wait_seconds=60.0)


def acquire_slot(lock: TrialSlotLock, stop: StopFlag) -> bool:
    """Take the slot lock, waiting out an outage; False when a stop request came first."""
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


def wait_for_storage(storage: optuna.storages.BaseStorage, stop: StopFlag) -> bool:
    """Block until the database answers; False when a stop request came first."""
    if not isinstance(storage, RetryingStorage):
        return not stop.is_set()
    for delay in backoff_delays():
        if stop.is_set():
            return False
        if storage.reachable():  # type: ignore[attr-defined]
            return True
        if stop.wait(delay):
            return False
    return False


def run_trial_loop(
    study: optuna.study.Study,
    storage: optuna.storages.BaseStorage,
    lock: TrialSlotLock,
    objective: LoopObjective,
    limits: LoopLimits,
    stop: StopFlag,
    *,
    callbacks: Sequence[Callable[[optuna.study.Study, optuna.trial.FrozenTrial], None]] = (),
    nothing_left: Callable[[optuna.study.Study], bool] | None = None,
    leave: Callable[[], bool] | None = None,
) -> int:
    """Run trials until the study holds ``limits.max_trials`` finished ones, the timeout
    passes, ``nothing_left`` says so, ``leave`` says this process should go (its card packs
    fewer trials now) or a stop is requested. Returns how many trials this process ran. The
    lock is closed on return."""
    reap(study, lock)
    live = LiveTrial()
    Reaper(storage, study.study_name, limits.heartbeat_interval, stop, live).start()
    deadline = time.monotonic() + limits.timeout if limits.timeout else None
    ran = 0
    current: list[int] = []

    def claim_then_run(trial: optuna.Trial) -> Any:
        lock.release()  # the trial exists now: let the next worker count it
        live.set(trial._trial_id)  # the id Optuna's heartbeat thread beats for
        current[:] = [trial.number]
        return objective(trial)

    def survive(error: Exception) -> bool:
        """One line for a trial lost to the database; False for anything else (a bug)."""
        number = current[0] if current else None
        if is_taken_over(error) or isinstance(error, TrialAbandoned):
            LOGGER.warning("cnnsearch: %s", objective.abandon(study, number))
            return True
        if is_transient(error):
            if not stop.is_set():
                held = ("" if number is None else f"trial {number} paused, checkpoint kept "
                        "(it is retried once reaped); ")
                LOGGER.warning("cnnsearch: storage unreachable (%s); %swaiting for the "
                               "database", first_line(error, 100), held)
            live.set(None)  # nobody runs it now: let it be reaped and retried
            if wait_for_storage(storage, stop):
                LOGGER.warning("cnnsearch: storage reachable again; worker goes on")
            return True
        return False

    try:
        with quiet_optuna_failures(WorkerInterrupted, TrialPaused, TrialAbandoned):
            while not stop.is_set() and (deadline is None or time.monotonic() < deadline):
                if leave is not None and leave():
                    break
                if not acquire_slot(lock, stop):
                    break
                current.clear()
                try:
                    if nothing_left is not None and nothing_left(study):
                        break
                    if limits.max_trials is not None:
                        states = [t.state for t in study.get_trials(deepcopy=False)]
                        finished = sum(state in FINISHED for state in states)
                        if finished >= limits.max_trials:
                            break
                        # A queued retry (WAITING) is taken first by optimize; a new trial
                        # only while finished + running trials leave room in the budget.
                        if (TrialState.WAITING not in states
                                and finished + states.count(TrialState.RUNNING)
                                >= limits.max_trials):
                            # The rest are running elsewhere: wait, and reap any that died.
                            lock.release()
                            reap(study, lock)
                            stop.wait(limits.poll_seconds)
                            continue
                    study.optimize(claim_then_run, n_trials=1, callbacks=list(callbacks),
                                   catch=CAUGHT)
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
    return ran

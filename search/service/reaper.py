"""Reaping: failing the trials whose worker stopped beating and queueing their retries.

Optuna reaps stale trials only when some worker starts a new trial, which never happens
once every worker is dead or while the live ones run long trials; ``reap`` does it on
demand (``cnnsearch reap``, a worker's start) and ``Reaper`` every heartbeat interval.
A worker never reaps its own live trial: its Reaper beats for that trial before reaping,
and does not reap while the beat cannot be written.
"""

from __future__ import annotations

import logging
import threading
import warnings

import optuna
from optuna.storages._heartbeat import is_heartbeat_enabled
from optuna.trial import TrialState

from search.service.resilient_storage import RetryingStorage
from search.service.stop_flag import StopFlag
from search.service.trial_slots import TrialSlotLock

LOGGER = logging.getLogger("cnnsearch.worker")


def reap(study: optuna.study.Study, lock: TrialSlotLock | None = None) -> list[int]:
    """Fail the trials whose worker stopped beating (and enqueue their retries): what
    Optuna only does when some worker starts a new trial, which never happens once every
    worker is dead. Returns the numbers of the trials it failed.

    With ``lock`` (the study's trial-slot lock) the failure and the queued retry happen
    while no worker is counting the budget: counted between the two, the failed trial
    would look like room for a new trial, and the retry would then be left over. The lock
    is taken only when some trial is stale: every worker's reaper runs every heartbeat
    interval, and hundreds of them would otherwise queue on the lock for nothing."""
    if lock is not None and not _any_stale(study):
        return []
    if lock is not None:
        lock.acquire()
    try:
        before = {t.number for t in study.get_trials(deepcopy=False,
                                                     states=(TrialState.RUNNING,))}
        optuna.storages.fail_stale_trials(study)
        after = {t.number for t in study.get_trials(deepcopy=False, states=(TrialState.FAIL,))}
    finally:
        if lock is not None:
            lock.release()
    return sorted(before & after)


def _any_stale(study: optuna.study.Study) -> bool:
    """Whether any running trial's heartbeat is older than the grace period (Optuna's own
    query, as ``fail_stale_trials`` makes it; it asks again under the lock)."""
    storage = study._storage
    if not is_heartbeat_enabled(storage):
        return False
    return bool(storage._get_stale_trial_ids(study._study_id))  # type: ignore[attr-defined]


def queue_retries(study: optuna.study.Study, numbers: list[int]) -> None:
    """Queue one retry of each trial this process ended on purpose (a stop request, a
    database outage), however often it was retried before: those endings are not the
    design's fault. The retry resumes from the trial's checkpoint."""
    if not numbers:
        return
    with warnings.catch_warnings():  # "experimental": users need not see it
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        retry = optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=None)
    wanted = set(numbers)
    for trial in study.get_trials(deepcopy=True, states=(TrialState.FAIL,)):
        if trial.number in wanted:
            retry(study, trial)
    numbers.clear()


class LiveTrial:
    """The storage id of the trial this process is running, shared with its Reaper."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._trial_id: int | None = None

    def set(self, trial_id: int | None) -> None:
        with self._lock:
            self._trial_id = trial_id

    def get(self) -> int | None:
        with self._lock:
            return self._trial_id


class Reaper:
    """Reaps stale trials every heartbeat interval in a background thread, so a dead
    worker's trial leaves RUNNING about one grace period after its last heartbeat, however
    long the live workers' own trials take (Optuna reaps only when a trial starts).

    With ``live``, it first beats for this process's own running trial: after a database
    outage longer than the grace period that trial looks stale too, and reaping it would
    fail a trial this process is still running."""

    def __init__(self, storage: optuna.storages.BaseStorage, study_name: str, interval: float,
                 stop: StopFlag, live: LiveTrial | None = None) -> None:
        self._storage = storage
        self._study = optuna.load_study(study_name=study_name, storage=storage)
        url = getattr(storage, "url", None)
        self._lock = TrialSlotLock(url, study_name) if url else None
        self._interval, self._stop, self._live = interval, stop, live
        self._thread = threading.Thread(target=self._run, name="cnnsearch-reaper", daemon=True)

    def start(self) -> Reaper:
        self._thread.start()
        return self

    def _own_trial_beats(self) -> bool:
        trial_id = self._live.get() if self._live is not None else None
        if trial_id is None:
            return True
        if isinstance(self._storage, RetryingStorage):
            return self._storage.beat(trial_id)  # type: ignore[attr-defined]
        self._storage.record_heartbeat(trial_id)  # type: ignore[attr-defined]
        return True

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                if not self._own_trial_beats():
                    continue  # the database is away: nothing can be reaped anyway
                failed = reap(self._study, self._lock)
            except Exception as error:  # the storage retries; never let the thread die
                LOGGER.warning("reaping stale trials failed: %s", str(error).splitlines()[0]
                               if str(error) else type(error).__name__)
                continue
            if failed:
                LOGGER.warning("reaped stale trial(s) %s; retries queued", failed)

"""Reaping: failing the trials whose worker stopped beating and queueing their retries.

Optuna reaps stale trials only when some worker starts a new trial, which never happens
once every worker is dead or while the live ones run long trials; ``reap`` does it on
demand (``cnnsearch reap``, a worker's start) and ``Reaper`` every heartbeat interval.
"""

from __future__ import annotations

import logging
import threading

import optuna
from optuna.trial import TrialState

from search.service.stop_flag import StopFlag

LOGGER = logging.getLogger("cnnsearch.worker")


def reap(study: optuna.study.Study) -> list[int]:
    """Fail the trials whose worker stopped beating (and enqueue their retries): what
    Optuna only does when some worker starts a new trial, which never happens once every
    worker is dead. Returns the numbers of the trials it failed."""
    before = {t.number for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))}
    optuna.storages.fail_stale_trials(study)
    after = {t.number for t in study.get_trials(deepcopy=False, states=(TrialState.FAIL,))}
    return sorted(before & after)


class Reaper:
    """Reaps stale trials every heartbeat interval in a background thread, so a dead
    worker's trial leaves RUNNING about one grace period after its last heartbeat, however
    long the live workers' own trials take (Optuna reaps only when a trial starts)."""

    def __init__(self, storage: optuna.storages.BaseStorage, study_name: str, interval: float,
                 stop: StopFlag) -> None:
        self._study = optuna.load_study(study_name=study_name, storage=storage)
        self._interval, self._stop = interval, stop
        self._thread = threading.Thread(target=self._run, name="cnnsearch-reaper", daemon=True)

    def start(self) -> Reaper:
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                failed = reap(self._study)
            except Exception as error:  # the storage retries; never let the thread die
                LOGGER.warning("reaping stale trials failed: %s", error)
                continue
            if failed:
                LOGGER.warning("reaped stale trial(s) %s; retries queued", failed)

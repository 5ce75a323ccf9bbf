"""The background Reaper: it fails other processes' stale trials, never its own live one."""

from __future__ import annotations

import time
from pathlib import Path

import optuna
from optuna.trial import TrialState

from search.service.reaper import LiveTrial, Reaper, queue_retries
from search.service.stop_flag import StopFlag
from search.service.storage import open_storage
from tests.postgres import wait_until


def stale_running_trial(tmp_path: Path) -> tuple[optuna.storages.BaseStorage, optuna.Study,
                                                  optuna.Trial]:
    storage = open_storage(f"sqlite:///{tmp_path / 's.db'}", heartbeat_interval=1,
                           grace_period=1, retry_stale=True)
    study = optuna.create_study(study_name="reaped", storage=storage)
    trial = study.ask()
    storage.record_heartbeat(trial._trial_id)
    time.sleep(2.5)  # the heartbeat is older than the grace period now: the trial looks dead
    return storage, study, trial


def test_a_worker_never_reaps_its_own_live_trial(tmp_path: Path) -> None:
    """After a database outage longer than the grace period, this process's own running
    trial looks stale too: its Reaper beats for it before reaping."""
    storage, study, trial = stale_running_trial(tmp_path)
    live, stop = LiveTrial(), StopFlag()
    live.set(trial._trial_id)
    Reaper(storage, "reaped", 0.2, stop, live).start()
    try:
        time.sleep(2.0)
        assert study.trials[trial.number].state == TrialState.RUNNING
        live.set(None)  # no longer ours (the worker gave it up): reaped, retry queued
        wait_until(lambda: study.trials[trial.number].state == TrialState.FAIL, timeout=10,
                   message="a stale trial nobody runs was not reaped")
        wait_until(lambda: any(t.state == TrialState.WAITING for t in study.trials),
                   timeout=10, message="no retry queued")
    finally:
        stop.set()


def test_interrupted_trials_are_retried_however_often_they_were(tmp_path: Path) -> None:
    storage = open_storage(f"sqlite:///{tmp_path / 's.db'}")
    study = optuna.create_study(study_name="retried", storage=storage)
    trial = study.ask({"x": optuna.distributions.FloatDistribution(0, 1)})
    study.tell(trial, state=TrialState.FAIL)
    for _ in range(3):  # a trial interrupted three times is still resumed
        queue_retries(study, [study.trials[-1].number])
        retry = study.ask()
        assert retry.params == trial.params
        study.tell(retry, state=TrialState.FAIL)
    numbers: list[int] = []
    queue_retries(study, numbers)  # nothing to do
    assert [t.state for t in study.trials] == [TrialState.FAIL] * 4

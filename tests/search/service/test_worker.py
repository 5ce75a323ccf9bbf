"""Workers sharing a study on a real PostgreSQL (and SQLite), with real faults: SIGKILL,
SIGTERM, every worker dead, and the database restarting under load."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from tests.conftest import ROOT, run_cli, worker_config, write_brightness_folder, write_config
from tests.postgres import wait_until

pytestmark = pytest.mark.postgres


STARTED: list[subprocess.Popen] = []


@pytest.fixture(autouse=True)
def no_worker_outlives_its_test():
    """A failed assertion must not leave workers running into the next test."""
    yield
    while STARTED:
        worker = STARTED.pop()
        if worker.poll() is None:
            worker.kill()
            worker.wait()


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_brightness_folder(tmp_path_factory.mktemp("images"))


def start_worker(url: str, config: Path, study: str, folder: Path, *extra: str,
                 log_name: str = "worker") -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CNNSEARCH_STORAGE": url,
           "PYTHONUNBUFFERED": "1"}
    log_path = folder / f"{log_name}-{time.monotonic_ns()}.log"
    log = open(log_path, "w")  # noqa: SIM115
    worker = subprocess.Popen(
        [sys.executable, "-m", "search", "worker", "--study", study, "--config", str(config),
         "--device", "cpu", "--artifact-dir", "", "--checkpoint-dir", str(folder / "ckpt"),
         *extra],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    STARTED.append(worker)
    LOGS[worker.pid] = log_path
    return worker


LOGS: dict[int, Path] = {}


def worker_log(worker: subprocess.Popen) -> str:
    """What the worker wrote (stdout and stderr together)."""
    return LOGS[worker.pid].read_text()


def trials_of(url: str, study: str) -> list[optuna.trial.FrozenTrial]:
    """The study's trials; none while the workers have not created it yet."""
    try:
        return optuna.load_study(study_name=study, storage=url).get_trials(deepcopy=False)
    except KeyError:
        return []


def count(trials: list, *states: TrialState) -> int:
    return sum(t.state in states for t in trials)


def wait_all(workers: list[subprocess.Popen], timeout: float) -> list[int]:
    return [worker.wait(timeout=timeout) for worker in workers]


def test_four_workers_share_forty_trials_exactly(postgres_server, images, tmp_path) -> None:
    url = postgres_server.new_database()
    config = write_config(tmp_path / "c.yaml", worker_config(images, "forty"))
    workers = [start_worker(url, config, "forty", tmp_path, "--max-trials", "40")
               for _ in range(4)]
    assert wait_all(workers, timeout=480) == [0, 0, 0, 0]
    trials = trials_of(url, "forty")
    assert sorted(t.number for t in trials) == list(range(40))
    assert count(trials, TrialState.COMPLETE, TrialState.PRUNED) == 40
    assert count(trials, TrialState.RUNNING, TrialState.WAITING, TrialState.FAIL) == 0
    assert len({t.user_attrs["worker"] for t in trials}) > 1  # the work was shared


def _running_with_checkpoint(
    url: str, study: str, folder: Path
) -> optuna.trial.FrozenTrial | None:
    for trial in trials_of(url, study):
        key = trial.user_attrs.get("checkpoint_key")
        if trial.state == TrialState.RUNNING and key and (folder / "ckpt" / f"{key}.pt").exists():
            return trial
    return None


def test_sigkill_mid_trial_is_failed_retried_and_resumed(postgres_server, images,
                                                          tmp_path) -> None:
    url = postgres_server.new_database()
    config = write_config(tmp_path / "c.yaml", worker_config(images, "kill", epochs=25))
    grace = 4
    workers = [start_worker(url, config, "kill", tmp_path, "--max-trials", "8",
                            "--heartbeat-interval", "1", "--grace-period", str(grace))
               for _ in range(4)]
    victim_trial: list[optuna.trial.FrozenTrial] = []
    wait_until(lambda: victim_trial.append(_running_with_checkpoint(url, "kill", tmp_path))
               or victim_trial[-1] is not None, timeout=120, message="no trial checkpointed")
    victim = victim_trial[-1]
    pid = int(victim.user_attrs["worker"].rsplit(":", 1)[1])
    os.kill(pid, signal.SIGKILL)
    killed_at = time.time()
    survivors = [w for w in workers if w.pid != pid]

    def victim_failed() -> bool:
        return trials_of(url, "kill")[victim.number].state == TrialState.FAIL

    wait_until(victim_failed, timeout=grace + 30, message="killed trial still RUNNING")
    failed = trials_of(url, "kill")[victim.number]
    assert failed.datetime_complete.timestamp() - killed_at < grace + 30
    assert wait_all(survivors, timeout=480) == [0, 0, 0]

    trials = trials_of(url, "kill")
    retries = [t for t in trials if t.system_attrs.get("failed_trial") == victim.number]
    assert len(retries) == 1
    retry = retries[0]
    assert retry.params == victim.params
    assert retry.state in (TrialState.COMPLETE, TrialState.PRUNED)
    assert retry.user_attrs["lrrt_reused"] is True
    assert retry.user_attrs["resumed_from_epoch"] >= 1
    assert len(retry.user_attrs.get("val_curve", [])) in (25, len(retry.intermediate_values) - 1)
    assert count(trials, TrialState.COMPLETE, TrialState.PRUNED) == 8
    assert count(trials, TrialState.RUNNING, TrialState.WAITING) == 0
    assert count(trials, TrialState.FAIL) == 1


def test_sigterm_ends_the_trial_cleanly_and_a_retry_resumes(images, tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'term.db'}"
    config = write_config(tmp_path / "c.yaml", worker_config(images, "term", epochs=25))
    worker = start_worker(url, config, "term", tmp_path, "--max-trials", "2")
    found: list = []
    wait_until(lambda: found.append(_running_with_checkpoint(url, "term", tmp_path))
               or found[-1] is not None, timeout=120, message="no trial checkpointed")
    trial = found[-1]
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=60) == 0
    log = worker_log(worker)
    assert "Traceback" not in log and "failed with parameters" not in log, log
    said = [line for line in log.splitlines() if line.startswith("cnnsearch: interrupted")]
    assert len(said) == 1 and f"trial {trial.number} (" in said[0], log
    assert "checkpointed; the next worker resumes it" in said[0]
    stopped = trials_of(url, "term")[trial.number]
    assert stopped.state == TrialState.FAIL
    assert stopped.user_attrs["fail_reason"] == "interrupted"
    assert (tmp_path / "ckpt" / f"{stopped.user_attrs['checkpoint_key']}.pt").exists()
    waiting = [t for t in trials_of(url, "term") if t.state == TrialState.WAITING]
    assert [t.system_attrs["failed_trial"] for t in waiting] == [trial.number]

    second = start_worker(url, config, "term", tmp_path, "--max-trials", "2")
    assert second.wait(timeout=480) == 0
    retry = next(t for t in trials_of(url, "term")
                 if t.system_attrs.get("failed_trial") == trial.number)
    assert retry.state in (TrialState.COMPLETE, TrialState.PRUNED)
    assert retry.user_attrs["resumed_from_epoch"] >= 1
    assert not (tmp_path / "ckpt" / f"{stopped.user_attrs['checkpoint_key']}.pt").exists()


def test_reap_clears_trials_when_every_worker_died(postgres_server, images, tmp_path) -> None:
    url = postgres_server.new_database()
    config = write_config(tmp_path / "c.yaml", worker_config(images, "reap", epochs=25))
    worker = start_worker(url, config, "reap", tmp_path, "--max-trials", "3",
                          "--heartbeat-interval", "1", "--grace-period", "3")
    found: list = []
    wait_until(lambda: found.append(_running_with_checkpoint(url, "reap", tmp_path))
               or found[-1] is not None, timeout=120, message="no trial checkpointed")
    worker.kill()
    worker.wait()
    assert trials_of(url, "reap")[found[-1].number].state == TrialState.RUNNING
    time.sleep(4)
    result = run_cli("reap", "--study", "reap", "--storage", url, "--grace-period", "3")
    assert result.returncode == 0, result.stderr
    assert f"reaped 1 stale trial(s): {found[-1].number}" in result.stdout
    trials = trials_of(url, "reap")
    assert trials[found[-1].number].state == TrialState.FAIL
    assert count(trials, TrialState.WAITING) == 1


def test_postgres_restart_under_load(postgres_server, images, tmp_path) -> None:
    url = postgres_server.new_database()
    config = write_config(tmp_path / "c.yaml", worker_config(images, "restart", epochs=6))
    workers = [start_worker(url, config, "restart", tmp_path, "--max-trials", "16",
                            "--heartbeat-interval", "2", "--grace-period", "45")
               for _ in range(4)]
    wait_until(lambda: count(trials_of(url, "restart"), TrialState.COMPLETE,
                             TrialState.PRUNED) >= 3, timeout=120, message="no progress")
    postgres_server.stop()
    try:
        time.sleep(20)
        assert [w.poll() for w in workers] == [None] * 4, "a worker died during the outage"
    finally:
        postgres_server.start()
    assert wait_all(workers, timeout=480) == [0, 0, 0, 0]
    trials = trials_of(url, "restart")
    assert count(trials, TrialState.COMPLETE, TrialState.PRUNED) == 16
    assert count(trials, TrialState.FAIL, TrialState.RUNNING, TrialState.WAITING) == 0


@pytest.mark.slow
def test_workers_ride_out_an_outage_shorter_than_the_grace_period(postgres_server, images,
                                                                   tmp_path) -> None:
    """PostgreSQL down for 200 s mid-trial under --grace-period 300: storage calls retry for
    longer than the grace period, no worker reaps a live trial, nothing fails."""
    url = postgres_server.new_database()
    config = write_config(tmp_path / "c.yaml", worker_config(images, "outage", epochs=150))
    workers = [start_worker(url, config, "outage", tmp_path, "--max-trials", "3",
                            "--heartbeat-interval", "5", "--grace-period", "300")
               for _ in range(2)]
    wait_until(lambda: _running_with_checkpoint(url, "outage", tmp_path) is not None,
               timeout=120, message="no trial checkpointed")
    postgres_server.stop()
    try:
        time.sleep(200)
        assert [w.poll() for w in workers] == [None, None], "a worker died during the outage"
    finally:
        postgres_server.start()
    assert wait_all(workers, timeout=400) == [0, 0], [worker_log(w)[-2000:] for w in workers]
    trials = trials_of(url, "outage")
    assert count(trials, TrialState.COMPLETE, TrialState.PRUNED) == 3
    assert count(trials, TrialState.FAIL, TrialState.RUNNING, TrialState.WAITING) == 0
    for worker in workers:
        assert "Traceback" not in worker_log(worker)


def test_eight_processes_starting_at_once_make_one_study(postgres_server, images,
                                                         tmp_path) -> None:
    url = postgres_server.new_database()  # empty: Optuna's tables are created in the race
    config = write_config(tmp_path / "c.yaml", worker_config(images, "race"))
    env = {**os.environ, "CNNSEARCH_STORAGE": url, "OMP_NUM_THREADS": "1"}
    processes = [
        subprocess.Popen([sys.executable, "-m", "search", "create-study", "--study", "race",
                          "--config", str(config)], cwd=ROOT, env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for _ in range(8)
    ]
    outputs = [p.communicate(timeout=180)[0] for p in processes]
    assert [p.returncode for p in processes] == [0] * 8, outputs
    summaries = optuna.get_all_study_summaries(url)
    assert [s.study_name for s in summaries] == ["race"]


def test_a_queued_retry_runs_even_when_the_budget_is_claimed(images, tmp_path) -> None:
    """A retry (WAITING) counts toward the budget but still needs a worker to run it."""
    url = f"sqlite:///{tmp_path / 'queued.db'}"
    config = write_config(tmp_path / "c.yaml", worker_config(images, "queued"))
    assert run_cli("create-study", "--study", "queued", "--config", str(config),
                   "--storage", url).returncode == 0
    optuna.load_study(study_name="queued", storage=url).enqueue_trial(
        {"blocks": 1, "filters": 2})
    worker = start_worker(url, config, "queued", tmp_path, "--max-trials", "1")
    assert worker.wait(timeout=240) == 0
    trials = trials_of(url, "queued")
    assert len(trials) == 1 and trials[0].params == {"blocks": 1, "filters": 2}
    assert trials[0].state in (TrialState.COMPLETE, TrialState.PRUNED)


def test_a_stopped_worker_resumed_after_its_retry_finished_leaves_no_checkpoint(
    images, tmp_path,
) -> None:
    """SIGSTOP mid-trial; the trial is reaped and its retry runs to the end on another
    worker (which deletes the checkpoint); SIGCONT. The resumed worker wrote its epoch's
    checkpoint again (an orphan nobody would read) and said "its retry resumes from the
    checkpoint". Now it deletes it and says what became of the retry."""
    url = f"sqlite:///{tmp_path / 'stop.db'}"
    config = write_config(tmp_path / "c.yaml", worker_config(images, "stop", epochs=30))
    beats = ("--heartbeat-interval", "1", "--grace-period", "3")
    stopped = start_worker(url, config, "stop", tmp_path, "--max-trials", "1", *beats)
    found: list = []
    wait_until(lambda: found.append(_running_with_checkpoint(url, "stop", tmp_path))
               or found[-1] is not None, timeout=120, message="no trial checkpointed")
    trial = found[-1]
    stopped.send_signal(signal.SIGSTOP)
    try:
        time.sleep(5)  # its heartbeat goes stale: the next worker reaps it, and retries it
        other = start_worker(url, config, "stop", tmp_path, "--max-trials", "1", *beats)
        assert other.wait(timeout=480) == 0, worker_log(other)
        retry = next(t for t in trials_of(url, "stop")
                     if t.system_attrs.get("failed_trial") == trial.number)
        assert retry.state in (TrialState.COMPLETE, TrialState.PRUNED)
    finally:
        stopped.send_signal(signal.SIGCONT)
    assert stopped.wait(timeout=240) == 0, worker_log(stopped)
    log = worker_log(stopped)
    assert "Traceback" not in log, log
    said = [line for line in log.splitlines() if "finished by another process" in line]
    assert len(said) == 1, log
    assert said[0].endswith(f"its retry, trial {retry.number}, has finished; checkpoint "
                            "deleted"), said[0]
    assert not list((tmp_path / "ckpt").glob("*.pt"))

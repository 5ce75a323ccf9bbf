"""``cnnsearch search`` as a user runs it, in real processes on SQLite: Ctrl-C in the middle
of a trial, two searches on one study at once, folders that cannot be written."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from tests.conftest import (
    ROOT,
    run_cli,
    worker_config,
    write_brightness_folder,
    write_config,
)
from tests.postgres import wait_until

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "CNNSEARCH_STORAGE": "", "PYTHONUNBUFFERED": "1",
       "PYTHONPATH": str(ROOT)}


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_brightness_folder(tmp_path_factory.mktemp("images"))


def start_search(config: Path, url: str, folder: Path, *extra: str) -> subprocess.Popen:
    """``cnnsearch search`` run from ``folder``: checkpoints go to its default place there."""
    return subprocess.Popen(
        [sys.executable, "-m", "search", "search", "--config", str(config), "--storage", url,
         "--device", "cpu", "--artifact-dir", "", *extra],
        cwd=folder, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def trials_of(url: str, study: str) -> list[optuna.trial.FrozenTrial]:
    try:
        return optuna.load_study(study_name=study, storage=url).get_trials(deepcopy=False)
    except Exception:  # the study (or its tables) not created yet
        return []


def training(url: str, study: str, epochs_before: int) -> int | None:
    """The running trial that has trained past ``epochs_before`` epochs, if any (a retry
    inherits the curve of the attempt it resumes)."""
    for trial in trials_of(url, study):
        if (trial.state == TrialState.RUNNING
                and len(trial.user_attrs.get("val_curve", ())) > epochs_before):
            return trial.number
    return None


def interrupt_mid_training(url: str, config: Path, folder: Path,
                           epochs_before: int = 0) -> tuple[int, int, str]:
    """Start a search, press Ctrl-C once a trial has trained an epoch; (trial, exit code,
    what the search said on stderr besides Optuna's INFO lines)."""
    search = start_search(config, url, folder, "--n-trials", "1")
    try:
        found: list[int | None] = []
        wait_until(lambda: found.append(training(url, "ctrlc", epochs_before))
                   or found[-1] is not None,
                   timeout=180, message="no trial got through an epoch")
        search.send_signal(signal.SIGINT)
        _, stderr = search.communicate(timeout=120)
    finally:
        if search.poll() is None:
            search.kill()
            search.wait()
    said = [line for line in stderr.splitlines() if not line.startswith("[I ")]
    assert found[-1] is not None
    return found[-1], search.returncode, "\n".join(said)


def test_ctrl_c_checkpoints_the_trial_queues_its_retry_and_says_so_in_one_line(
    images: Path, tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'ctrlc.db'}"
    config = write_config(tmp_path / "c.yaml", worker_config(images, "ctrlc", epochs=3000))
    number, code, said = interrupt_mid_training(url, config, tmp_path)
    assert code == 130, said
    assert "Traceback" not in said and len(said.splitlines()) == 1, said
    assert said.startswith(f"cnnsearch: interrupted; trial {number} (")
    assert "checkpointed; the next search resumes it" in said
    trials = trials_of(url, "ctrlc")
    stopped = trials[number]
    assert stopped.state == TrialState.FAIL
    assert stopped.user_attrs["fail_reason"] == "interrupted"
    checkpoint = tmp_path / "cnnsearch-checkpoints" / f"{stopped.user_attrs['checkpoint_key']}.pt"
    assert checkpoint.exists()  # --checkpoint-dir's default, in the working folder
    waiting = [t for t in trials if t.state == TrialState.WAITING]
    assert [t.system_attrs["failed_trial"] for t in waiting] == [number]

    # The next search takes the queued retry first and resumes it; stopped again, it is
    # queued again (an interruption is not the design's fault: no retry limit).
    resumed, code, said = interrupt_mid_training(url, config, tmp_path,
                                                 len(stopped.user_attrs["val_curve"]))
    assert code == 130 and len(said.splitlines()) == 1, said
    assert said.startswith(f"cnnsearch: interrupted; trial {resumed} (")
    assert "checkpointed; the next search resumes it" in said
    trials = trials_of(url, "ctrlc")
    assert resumed == waiting[0].number
    assert trials[resumed].user_attrs["resumed_from_epoch"] >= 1
    assert trials[resumed].user_attrs["checkpoint_key"] == stopped.user_attrs["checkpoint_key"]
    assert [t.system_attrs["failed_trial"] for t in trials
            if t.state == TrialState.WAITING] == [number]


def test_two_searches_on_one_study_do_not_sample_the_same_designs(images: Path,
                                                                  tmp_path: Path) -> None:
    """Each process seeds its sampler with the config seed and its PID: with the seed alone,
    both drew the same sequence (trials 0/1, 2/3, ... identical)."""
    url = f"sqlite:///{tmp_path / 'two.db'}"
    config = worker_config(images, "two")
    config["space"] = {  # 27648 designs: a repeat among 5 random draws is a 1-in-2800 event
        "blocks": [1, 2, 3], "filters": list(range(2, 14)), "optimizer": ["adam", "sgd"],
        "lr_range": [[1e-3, 1e-1], [2e-3, 1e-1], [1e-3, 5e-2], [3e-3, 2e-1]],
        "batch_size": [8, 12, 16, 20, 24, 32], "fc_units": list(range(4, 36, 2)),
    }
    path = write_config(tmp_path / "c.yaml", config)
    assert run_cli("create-study", "--study", "two", "--config", str(path),
                   "--storage", url).returncode == 0
    searches = [start_search(path, url, tmp_path, "--n-trials", "3") for _ in range(2)]
    outputs = [search.communicate(timeout=300) for search in searches]
    assert [s.returncode for s in searches] == [0, 0], [err for _, err in outputs]
    trials = trials_of(url, "two")
    assert len(trials) == 6
    # The first five are TPE's random start-up draws (running trials count, constant_liar).
    designs = [tuple(sorted(t.params.items())) for t in trials[:5]]
    assert len(set(designs)) == 5, designs


@pytest.mark.parametrize("command", ["search", "worker"])
@pytest.mark.parametrize("flag", ["--artifact-dir", "--checkpoint-dir"])
def test_a_folder_that_cannot_be_written_is_refused_before_the_study_exists(
    images: Path, tmp_path: Path, command: str, flag: str,
) -> None:
    config = write_config(tmp_path / "c.yaml", worker_config(images, "folders"))
    (tmp_path / "a-file").write_text("not a folder")
    for folder in (tmp_path / "a-file", tmp_path / "a-file" / "below"):
        url = f"sqlite:///{tmp_path / 'folders.db'}"
        folders = {"--artifact-dir": "", "--checkpoint-dir": str(tmp_path / "ckpt"),
                   flag: str(folder)}
        started = time.monotonic()
        result = run_cli(command, "--config", str(config), "--study", "folders",
                         "--storage", url, "--device", "cpu", "--max-trials" if command ==
                         "worker" else "--n-trials", "1", *sum(folders.items(), ()),
                         cwd=tmp_path, timeout=120)
        assert result.returncode == 2, result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"cnnsearch: error: {flag} "), lines
        assert str(folder) in lines[0]
        assert not (tmp_path / "folders.db").exists()  # no storage opened, no study made
        assert time.monotonic() - started < 60


@pytest.mark.parametrize("retried", [False, True], ids=["failed-from-the-dashboard", "reaped"])
def test_a_search_goes_on_when_its_trial_is_finished_by_someone_else(
    images: Path, tmp_path: Path, retried: bool,
) -> None:
    """It died with "ValueError: Cannot tell a FAIL trial", exit 1. Now: one line, the trial
    given up, the other trials of the budget run; the checkpoint stays only for a retry that
    will run (a reaper queues one; failing a trial from the dashboard does not)."""
    url = f"sqlite:///{tmp_path / 'elsewhere.db'}"
    config = write_config(tmp_path / "c.yaml", worker_config(images, "elsewhere", epochs=60))
    search = start_search(config, url, tmp_path, "--n-trials", "2")
    try:
        found: list[int | None] = []
        wait_until(lambda: found.append(training(url, "elsewhere", 0)) or found[-1] is not None,
                   timeout=180, message="no trial got through an epoch")
        study = optuna.load_study(study_name="elsewhere", storage=url)
        running = next(t for t in study.trials if t.number == found[-1])
        study._storage.set_trial_state_values(running._trial_id, TrialState.FAIL)
        if retried:  # what a reaper does: fail it, and queue its retry
            with warnings.catch_warnings():  # "experimental"
                warnings.simplefilter("ignore")
                optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=1)(study, running)
        _, stderr = search.communicate(timeout=300)
    finally:
        if search.poll() is None:
            search.kill()
            search.wait()
    said = [line for line in stderr.splitlines() if not line.startswith("[I ")]
    assert search.returncode == 0, stderr[-3000:]
    assert "Traceback" not in stderr, stderr[-4000:]
    gave_up = [line for line in said if "finished by another process" in line]
    assert len(gave_up) == 1, said
    checkpoints = list((tmp_path / "cnnsearch-checkpoints").glob("*.pt"))
    trials = trials_of(url, "elsewhere")
    assert len(trials) >= 2 and trials[running.number].state == TrialState.FAIL
    if retried:
        retry = next(t for t in trials if t.system_attrs.get("failed_trial") == running.number)
        assert f"its retry, trial {retry.number}, resumes from the checkpoint" in gave_up[0]
        assert retry.user_attrs.get("resumed_from_epoch", 0) >= 1  # this search ran it next
    else:
        assert gave_up[0].endswith("nothing retries it; checkpoint deleted"), gave_up[0]
        assert not checkpoints  # no orphan file

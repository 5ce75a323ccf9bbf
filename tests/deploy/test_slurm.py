"""deploy/slurm/cnnsearch-workers.sbatch without a cluster: bash and shellcheck accept it,
and run as Slurm would run an array task (its environment variables set, a stand-in
``cnnsearch`` that records how it was called) it starts one ``--device auto`` worker per
allocated GPU with the storage URL from the user's private file, refuses any other file,
and passes Slurm's SIGTERM on to the workers."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.postgres import wait_until

SCRIPT = ROOT / "deploy" / "slurm" / "cnnsearch-workers.sbatch"
URL = "grpc://proxy.cluster.example:13000"

STAND_IN = """#!/bin/bash
# records one call: its arguments and the environment the worker would see
{ echo "ARGS $*"; echo "STORAGE $CNNSEARCH_STORAGE"; echo "PLACEMENT $CNNSEARCH_PLACEMENT_DIR";
  echo "THREADS $OMP_NUM_THREADS"; } > "$CALLS/$$.call"
trap 'echo stopped > "$CALLS/$$.term"; exit 0' TERM
sleep "${STAND_IN_SECONDS:-0}" & wait
"""


@pytest.fixture
def cluster(tmp_path: Path) -> dict[str, str]:
    """An array task's environment, a private storage URL file and a stand-in cnnsearch."""
    home = tmp_path / "home"
    (home / ".config" / "cnnsearch").mkdir(parents=True)
    url_file = home / ".config" / "cnnsearch" / "storage-url"
    url_file.write_text(URL + "\n")
    url_file.chmod(0o600)
    stand_in = tmp_path / "cnnsearch"
    stand_in.write_text(STAND_IN)
    stand_in.chmod(0o755)
    (tmp_path / "calls").mkdir()
    return {"PATH": os.environ["PATH"], "HOME": str(home), "TMPDIR": str(tmp_path),
            "CALLS": str(tmp_path / "calls"), "CNNSEARCH": str(stand_in),
            "STUDY": "cifar", "CONFIG": "configs/cifar10-thesis.yaml", "MAX_TRIALS": "256",
            "SLURM_JOB_ID": "4242", "SLURM_ARRAY_TASK_ID": "3", "SLURM_GPUS_ON_NODE": "2",
            "CUDA_VISIBLE_DEVICES": "0,1", "SLURM_CPUS_PER_GPU": "6"}


def run(env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(SCRIPT)], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=60, check=False)


def calls(env: dict[str, str]) -> list[dict[str, str]]:
    found = []
    for path in sorted(Path(env["CALLS"]).glob("*.call")):
        found.append(dict(line.split(" ", 1) for line in path.read_text().splitlines()))
    return found


def test_bash_accepts_the_script() -> None:
    result = subprocess.run(["bash", "-n", str(SCRIPT)], capture_output=True, text=True,
                            timeout=30, check=False)
    assert result.returncode == 0, result.stderr
    assert os.access(SCRIPT, os.X_OK)
    assert "#SBATCH --array=" in SCRIPT.read_text()


def test_shellcheck_accepts_the_script() -> None:
    shellcheck = shutil.which("shellcheck")
    if shellcheck is None:
        pytest.skip("shellcheck not installed (apt-get install shellcheck; make test does)")
    result = subprocess.run([shellcheck, str(SCRIPT)], capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.returncode == 0, result.stdout


def test_one_auto_device_worker_per_allocated_gpu(cluster, tmp_path: Path) -> None:
    result = run(cluster, tmp_path)
    assert result.returncode == 0, result.stderr
    made = calls(cluster)
    assert len(made) == 2
    for call in made:
        assert call["ARGS"] == (
            f"worker --study cifar --config configs/cifar10-thesis.yaml --max-trials 256 "
            f"--device auto --checkpoint-dir {tmp_path}/cnnsearch-shared/checkpoints "
            f"--artifact-dir {tmp_path}/cnnsearch-shared/artifacts")
        assert call["STORAGE"] == URL  # from the file, never on the command line
        assert call["PLACEMENT"] == f"{tmp_path}/cnnsearch-placement-4242-3"
        assert call["THREADS"] == "6"
    assert URL not in result.stdout + result.stderr


def test_gpus_are_counted_from_cuda_visible_devices_when_slurm_does_not_say(
        cluster, tmp_path: Path) -> None:
    del cluster["SLURM_GPUS_ON_NODE"]
    cluster["CUDA_VISIBLE_DEVICES"] = "0,1,2"
    assert run(cluster, tmp_path).returncode == 0
    assert len(calls(cluster)) == 3


@pytest.mark.parametrize(("change", "expected"), [
    ("mode 644", "is readable by others (mode 644): chmod 600"),
    ("mode 640", "is readable by others (mode 640)"),
    ("missing", "does not exist"),
    ("empty", "is empty"),
    ("no gpu", "no GPU allocated to this task"),
])
def test_refuses_a_storage_file_others_can_read_and_a_task_without_gpus(
        cluster, tmp_path: Path, change: str, expected: str) -> None:
    url_file = Path(cluster["HOME"]) / ".config" / "cnnsearch" / "storage-url"
    if change.startswith("mode"):
        url_file.chmod(int(change.split()[1], 8))
    elif change == "missing":
        url_file.unlink()
    elif change == "empty":
        url_file.write_text("")
    else:
        del cluster["SLURM_GPUS_ON_NODE"]
        del cluster["CUDA_VISIBLE_DEVICES"]
    result = run(cluster, tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("cnnsearch-workers: error: ")
    assert expected in lines[0]
    assert calls(cluster) == []  # no worker started


def test_slurms_sigterm_reaches_every_worker(cluster, tmp_path: Path) -> None:
    cluster["STAND_IN_SECONDS"] = "60"
    task = subprocess.Popen(["bash", str(SCRIPT)], env=cluster, cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_until(lambda: len(calls(cluster)) == 2, timeout=30, message="workers not started")
        time.sleep(0.5)
        task.send_signal(signal.SIGTERM)  # what --signal=B:TERM@180 and scancel send
        assert task.wait(timeout=30) == 0, task.stderr.read()
        assert len(list(Path(cluster["CALLS"]).glob("*.term"))) == 2
    finally:
        if task.poll() is None:
            task.kill()

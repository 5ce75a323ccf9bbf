"""docker-compose.yml, proven without a Docker engine: the file validates, follows the
rules a deployment needs, and its services' own commands and environment, read from the
file, run as local processes against a real PostgreSQL to completion."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import optuna
import pytest
import yaml
from optuna.trial import TrialState

from tests.conftest import ROOT, worker_config, write_brightness_folder, write_config
from tests.postgres import PASSWORD, wait_until

COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]


def test_compose_file_validates(tmp_path: Path) -> None:
    tool = shutil.which("docker-compose")
    if tool is None:
        pytest.skip("docker-compose not installed (apt-get install docker-compose)")
    project = tmp_path / "project"
    shutil.copytree(ROOT, project, ignore=shutil.ignore_patterns(".venv", ".git", "*.db"))
    (project / "secrets").mkdir(exist_ok=True)
    (project / "secrets" / "postgres_password.txt").write_text(PASSWORD)
    result = subprocess.run([tool, "config", "-q"], cwd=project, capture_output=True,
                            text=True, check=False, timeout=120)
    assert result.returncode == 0, result.stderr


def test_compose_rules() -> None:
    postgres = SERVICES["postgres"]
    assert postgres["image"].startswith("postgres:")
    assert postgres["environment"]["POSTGRES_PASSWORD_FILE"].startswith("/run/secrets/")
    assert "POSTGRES_PASSWORD" not in postgres["environment"]
    assert "healthcheck" in postgres and "ports" not in postgres
    assert any(v.startswith("pgdata:") for v in postgres["volumes"])
    worker = SERVICES["worker"]
    assert worker["build"] == "."
    assert worker["deploy"]["resources"]["reservations"]["devices"][0]["capabilities"] == ["gpu"]
    grace = re.fullmatch(r"(\d+)([sm])", worker["stop_grace_period"])
    assert grace and int(grace[1]) * (60 if grace[2] == "m" else 1) >= 60
    assert SERVICES["dashboard"]["ports"] == ["127.0.0.1:8080:8080"]
    assert worker["depends_on"]["create-study"]["condition"] == "service_completed_successfully"
    text = (ROOT / "docker-compose.yml").read_text()
    assert "password" not in " ".join(SERVICES["worker"]["command"]).lower()
    for service in SERVICES.values():
        for value in (service.get("environment") or {}).values():
            assert not re.search(r"://[^/@]*:[^/@]*@", str(value)), "password in a URL"
    assert "secrets/postgres_password.txt" in text


def test_one_shared_dataset_volume_filled_once_before_the_workers() -> None:
    """create-study and every worker mount the same `datasets` volume at the data directory,
    and create-study (which the workers wait for) loads or downloads the dataset there."""
    assert "datasets" in COMPOSE["volumes"]
    for name in ("create-study", "worker"):
        service = SERVICES[name]
        assert "datasets:/data" in service["volumes"], name
        assert service["environment"]["CNNSEARCH_DATA_DIR"] == "/data", name
    mounts = [v for s in SERVICES.values() for v in s.get("volumes", [])
              if v.endswith(":/data")]
    assert set(mounts) == {"datasets:/data"}  # one volume, not one per service
    assert "--prepare-data" in SERVICES["create-study"]["command"]
    assert "--prepare-data" not in SERVICES["worker"]["command"]
    assert SERVICES["create-study"]["restart"] == "no"


def _interpolate(value: str, env: dict[str, str]) -> str:
    return re.sub(r"\$\{(\w+):-([^}]*)\}", lambda m: env.get(m[1], m[2]), value)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LocalService:
    """A compose service's command and environment, rewritten for this machine: the
    `postgres` host becomes the test server, /shared, /data and /run/secrets become folders."""

    def __init__(self, name: str, settings: dict[str, str], server, database: str,
                 folder: Path) -> None:
        self.name, self.settings, self.server = name, settings, server
        self.database, self.folder = database, folder
        service = SERVICES[name]
        self.command = [self._local(_interpolate(part, settings)) for part in service["command"]]
        self.environment = {
            key: self._local(_interpolate(str(value), settings))
            for key, value in (service.get("environment") or {}).items()
        }

    def _local(self, value: str) -> str:
        value = value.replace("@postgres:5432/cnnsearch",
                              f"@127.0.0.1:{self.server.port}/{self.database}")
        value = re.sub(r"^/run/secrets/", f"{self.folder}/secrets/", value)
        value = re.sub(r"^/data$", f"{self.folder}/data", value)
        return re.sub(r"^/shared\b", f"{self.folder}/shared", value)

    def start(self, **replace: str) -> subprocess.Popen:
        command = [replace.get(part, part) for part in self.command]
        assert command[0] == "cnnsearch"
        env = {**os.environ, **self.environment, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
        log = open(self.folder / f"{self.name}-{time.monotonic_ns()}.log", "w")  # noqa: SIM115
        return subprocess.Popen([sys.executable, "-m", "search", *command[1:]], cwd=ROOT,
                                env=env, stdout=log, stderr=subprocess.STDOUT)


@pytest.mark.postgres
def test_compose_services_run_as_local_processes(postgres_server, tmp_path: Path) -> None:
    url = postgres_server.new_database()
    database = url.rsplit("/", 1)[1]
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "postgres_password").write_text(PASSWORD + "\n")
    images = write_brightness_folder(tmp_path / "images")
    config = write_config(tmp_path / "c.yaml", worker_config(images, "compose"))
    settings = {"STUDY": "compose", "CONFIG": str(config), "MAX_TRIALS": "6", "DEVICE": "cpu"}
    services = {name: LocalService(name, settings, postgres_server, database, tmp_path)
                for name in ("create-study", "worker", "dashboard")}
    assert PASSWORD not in " ".join(services["worker"].command)

    assert services["create-study"].start().wait(timeout=120) == 0
    create_log = next(tmp_path.glob("create-study-*.log")).read_text()
    assert f"data: imagefolder:{images} ready in {images}" in create_log
    port = _free_port()
    dashboard = services["dashboard"].start(**{"8080": str(port)})
    workers = [services["worker"].start() for _ in range(2)]  # --scale worker=2
    try:
        assert [w.wait(timeout=240) for w in workers] == [0, 0]
        study = optuna.load_study(study_name="compose", storage=url)
        finished = [t for t in study.trials
                    if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
        assert len(finished) == 6 and len(study.trials) == 6

        def dashboard_lists_study() -> bool:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies") as reply:
                    return reply.status == 200 and [
                        s["study_name"] for s in json.loads(reply.read())["study_summaries"]
                    ] == ["compose"]
            except OSError:
                return False

        wait_until(dashboard_lists_study, timeout=60, message="dashboard does not list study")
        assert (tmp_path / "shared" / "artifacts").is_dir()
    finally:
        dashboard.terminate()
        dashboard.wait(timeout=30)
        for worker in workers:
            if worker.poll() is None:
                worker.kill()

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


@pytest.mark.parametrize("profile", [[], ["--profile", "cpu"], ["--profile", "packed"],
                                     ["--profile", "mps"]],
                         ids=["default", "cpu", "packed", "mps"])
def test_compose_file_validates(tmp_path: Path, profile: list[str]) -> None:
    tool = shutil.which("docker-compose")
    if tool is None:
        pytest.skip("docker-compose not installed (apt-get install docker-compose)")
    project = tmp_path / "project"
    shutil.copytree(ROOT, project, ignore=shutil.ignore_patterns(".venv", ".git", "*.db"))
    (project / "secrets").mkdir(exist_ok=True)
    (project / "secrets" / "postgres_password.txt").write_text(PASSWORD)
    result = subprocess.run([tool, *profile, "config", "-q"], cwd=project, capture_output=True,
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
    # Only the proxy and PostgreSQL hold the password; every cnnsearch process goes through
    # the proxy, so the database's connections do not grow with the workers.
    assert sorted(n for n, s in SERVICES.items() if "secrets" in s) == ["postgres", "proxy"]
    for name in ("create-study", "worker", "worker-cpu", "dashboard"):
        assert SERVICES[name]["environment"]["CNNSEARCH_STORAGE"] == "grpc://proxy:13000"
        assert "CNNSEARCH_STORAGE_PASSWORD_FILE" not in SERVICES[name]["environment"]
    proxy = SERVICES["proxy"]
    assert proxy["environment"]["CNNSEARCH_STORAGE"].startswith("postgresql")
    assert "ports" not in proxy and proxy["depends_on"]["postgres"]["condition"] == (
        "service_healthy")
    assert SERVICES["create-study"]["depends_on"]["proxy"]["condition"] == "service_healthy"


IMAGE = "cnnsearch:local"
OURS = [name for name in SERVICES if name != "postgres"]


def test_one_image_built_once_and_used_by_every_service() -> None:
    assert sorted(OURS) == ["create-study", "dashboard", "mps", "proxy", "worker", "worker-cpu",
                            "worker-mps", "worker-packed"]
    assert {SERVICES[name]["image"] for name in OURS} == {IMAGE}
    assert [name for name in OURS if "build" in SERVICES[name]] == ["create-study"]
    assert SERVICES["create-study"]["build"] == "."


def _restart_bound(service: dict) -> int | None:
    policy = (service.get("deploy") or {}).get("restart_policy") or {}
    if "max_attempts" in policy:
        return int(policy["max_attempts"])
    match = re.fullmatch(r"on-failure:(\d+)", str(service.get("restart", "")))
    return int(match[1]) if match else None


@pytest.mark.parametrize("name", ["worker", "worker-cpu", "worker-packed", "worker-mps"])
def test_worker_restarts_are_bounded(name: str) -> None:
    """A data or config error exits 2 at every start: the restarts must end."""
    bound = _restart_bound(SERVICES[name])
    assert bound is not None and 1 <= bound <= 10, SERVICES[name].get("restart")


def test_dashboard_has_a_healthcheck() -> None:
    check = SERVICES["dashboard"]["healthcheck"]
    command = " ".join(check["test"])
    assert check["test"][0] == "CMD" and "urllib" in command
    assert "http://127.0.0.1:8080/" in command
    assert check["interval"] and check["retries"] >= 1


def test_cpu_profile_worker_needs_no_gpu() -> None:
    cpu, gpu = SERVICES["worker-cpu"], SERVICES["worker"]
    assert cpu["profiles"] == ["cpu"] and "profiles" not in gpu
    assert "deploy" not in cpu
    command = cpu["command"]
    assert command[command.index("--device") + 1] == "cpu"
    assert cpu["environment"]["OMP_NUM_THREADS"] == "1"
    assert cpu["command"][cpu["command"].index("--threads") + 1] == "1"
    assert cpu["environment"]["MKL_NUM_THREADS"] == "1"
    assert "secrets" not in cpu and "secrets" not in gpu  # the proxy holds the password
    same = ("volumes", "depends_on", "stop_grace_period", "restart", "image")
    assert {key: cpu[key] for key in same} == {key: gpu[key] for key in same}
    assert {k: v for k, v in cpu["environment"].items() if "THREADS" not in k} == {
        k: v for k, v in gpu["environment"].items() if "THREADS" not in k}


def test_packed_workers_pack_trials_on_every_gpu_and_mps_shares_its_pipe() -> None:
    """worker-packed and worker-mps run `--trials-per-gpu` (auto unless TRIALS_PER_GPU says)
    on every card; worker-mps and the MPS daemon share the pipe folder and IPC namespace,
    and the daemon runs only in the `mps` profile, as its worker does."""
    plain = SERVICES["worker"]
    for name, profile in (("worker-packed", "packed"), ("worker-mps", "mps")):
        service = SERVICES[name]
        assert service["profiles"] == [profile]
        command = service["command"]
        assert command[command.index("--trials-per-gpu") + 1] == "${TRIALS_PER_GPU:-auto}"
        assert command[command.index("--max-trials-per-gpu") + 1] == "${MAX_TRIALS_PER_GPU:-8}"
        assert [part for part in command if "trials-per-gpu" not in part
                and "TRIALS_PER_GPU" not in part] == plain["command"]
        assert service["deploy"] == plain["deploy"]  # every GPU
        assert service["stop_grace_period"] == plain["stop_grace_period"]
    mps, client = SERVICES["mps"], SERVICES["worker-mps"]
    assert mps["profiles"] == ["mps"] and "nvidia-cuda-mps-control -f" in mps["command"][-1]
    assert mps["ipc"] == client["ipc"] == "host"
    for key in ("CUDA_MPS_PIPE_DIRECTORY", "CUDA_MPS_LOG_DIRECTORY"):
        assert mps["environment"][key] == client["environment"][key]
    assert "utility" in mps["environment"]["NVIDIA_DRIVER_CAPABILITIES"]
    assert "mps:/mps" in mps["volumes"] and "mps:/mps" in client["volumes"]
    assert client["depends_on"]["mps"]["condition"] == "service_started"
    assert {k: v for k, v in client["environment"].items() if "MPS" not in k} == \
        plain["environment"]


def test_own_configs_are_mounted_read_only() -> None:
    for name in ("create-study", "worker", "worker-cpu", "worker-packed", "worker-mps"):
        assert "./configs:/app/configs:ro" in SERVICES[name]["volumes"], name


def test_dockerignore_keeps_the_venv_and_secrets_out_of_the_build() -> None:
    patterns = {line.strip().rstrip("/") for line in
                (ROOT / ".dockerignore").read_text().splitlines()
                if line.strip() and not line.startswith("#")}
    assert {".venv", ".git", "secrets", "*.db", "runs", "cnnsearch-artifacts"} <= patterns


def test_dockerfile_pins_the_base_image_and_the_makefile_torch() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    base = re.search(r"^ARG PYTHON_IMAGE=(\S+)$", dockerfile, re.M)
    assert base and re.fullmatch(r"python:3\.11(\.\d+)?-slim-bookworm", base[1])
    assert "FROM ${PYTHON_IMAGE}" in dockerfile
    pins = re.search(r'^ARG TORCH_PINS="([^"]+)"$', dockerfile, re.M)
    makefile = re.search(r"^TORCH_PINS \?= (.+)$", (ROOT / "Makefile").read_text(), re.M)
    assert pins and makefile and pins[1] == makefile[1].strip()
    assert "pip install ${TORCH_PINS}" in dockerfile


def test_make_help_lists_every_target() -> None:
    if shutil.which("make") is None:
        pytest.skip("make not installed")
    text = (ROOT / "Makefile").read_text()
    targets = set(re.findall(r"^([a-z][a-z-]*):(?!=)", text, re.M))
    result = subprocess.run(["make", "-s", "help"], cwd=ROOT, capture_output=True, text=True,
                            check=True, timeout=60)
    listed = {}
    for line in result.stdout.splitlines():
        match = re.fullmatch(r"make (\S+)\s+(\S.*)", line)
        assert match, line
        listed[match[1]] = match[2]
    assert set(listed) == targets and len(targets) >= 12
    assert "up-cpu" in listed


def test_readme_needs_no_file_outside_the_repository() -> None:
    assert "../" not in (ROOT / "README.md").read_text()


def test_one_shared_dataset_volume_filled_once_before_the_workers() -> None:
    """create-study and every worker mount the same `datasets` volume at the data directory,
    and create-study (which the workers wait for) loads or downloads the dataset there."""
    assert "datasets" in COMPOSE["volumes"]
    for name in ("create-study", "worker", "worker-cpu", "worker-packed", "worker-mps"):
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
                 folder: Path, proxy_port: int) -> None:
        self.name, self.settings, self.server = name, settings, server
        self.database, self.folder, self.proxy_port = database, folder, proxy_port
        service = SERVICES[name]
        self.command = [self._local(_interpolate(part, settings)) for part in service["command"]]
        self.environment = {
            key: self._local(_interpolate(str(value), settings))
            for key, value in (service.get("environment") or {}).items()
        }

    def _local(self, value: str) -> str:
        value = value.replace("@postgres:5432/cnnsearch",
                              f"@127.0.0.1:{self.server.port}/{self.database}")
        value = value.replace("grpc://proxy:13000", f"grpc://127.0.0.1:{self.proxy_port}")
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
    proxy_port = _free_port()
    services = {name: LocalService(name, settings, postgres_server, database, tmp_path,
                                   proxy_port)
                for name in ("proxy", "create-study", "worker", "dashboard")}
    assert PASSWORD not in " ".join(services["worker"].command)

    proxy = services["proxy"].start(**{"13000": str(proxy_port)})
    wait_until(lambda: any("served on" in p.read_text() for p in tmp_path.glob("proxy-*.log")),
               timeout=120, message="the proxy did not start")
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
        # Two workers, create-study and the dashboard, all through the proxy: the database
        # served only the proxy's connections.
        assert postgres_server.connection_count(database) <= 8 + 2 + 8
    finally:
        dashboard.terminate()
        dashboard.wait(timeout=30)
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
        proxy.terminate()
        proxy.wait(timeout=30)

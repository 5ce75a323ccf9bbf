"""``cnnsearch proxy`` against a real PostgreSQL: the slot lock it holds for a worker (and
releases when that worker is SIGKILLed), heartbeats and reaping through it, a proxy and a
database restart ridden out, and every bad input a one-line exit 2."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path

import optuna
import pytest
from optuna.storages._heartbeat import is_heartbeat_enabled
from optuna.trial import TrialState

from search.errors import UserError
from search.service.proxy_address import proxy_address
from search.service.reaper import reap
from search.service.storage import open_storage
from search.service.trial_slots import TrialSlotLock
from tests.conftest import ROOT, run_cli
from tests.postgres import wait_until

warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)


def start_proxy(url: str, folder: Path, port: int = 0, threads: int = 2) -> tuple[
        subprocess.Popen, str]:
    """The real ``cnnsearch proxy`` command; returns the process and its grpc:// URL."""
    log_path = folder / f"proxy-{time.monotonic_ns()}.log"
    log = open(log_path, "w")  # noqa: SIM115 - the proxy's for its lifetime
    env = {**os.environ, "CNNSEARCH_STORAGE": url, "OMP_NUM_THREADS": "1",
           "PYTHONUNBUFFERED": "1"}
    proxy = subprocess.Popen([sys.executable, "-m", "search", "proxy", "--port", str(port),
                              "--threads", str(threads)], cwd=ROOT, env=env, stdout=log,
                             stderr=subprocess.STDOUT)
    found: list[str] = []

    def served() -> bool:
        found[:] = re.findall(r"served on (grpc://\S+:\d+)", log_path.read_text())
        assert proxy.poll() is None, log_path.read_text()
        return bool(found)

    wait_until(served, timeout=120, message="the proxy did not start")
    return proxy, found[0]


@pytest.fixture
def proxied(postgres_server, tmp_path: Path):
    """A fresh database behind a proxy: (database URL, proxy URL, proxy process)."""
    url = postgres_server.new_database()
    proxy, proxy_url = start_proxy(url, tmp_path)
    yield url, proxy_url, proxy
    proxy.kill()
    proxy.wait()


HOLDER = """
import sys, time
from search.service.trial_slots import TrialSlotLock
lock = TrialSlotLock(sys.argv[1], "shared")
lock.acquire()
print("held", flush=True)
time.sleep(600)
"""


@pytest.mark.postgres
def test_the_proxy_holds_the_slot_lock_until_its_holder_dies(proxied) -> None:
    """Held through the proxy, the lock excludes a direct PostgreSQL worker too (the proxy
    holds the advisory lock), and a SIGKILLed holder's lock is released at once."""
    url, proxy_url, _proxy = proxied
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, proxy_url], cwd=ROOT,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        through_proxy, direct = TrialSlotLock(proxy_url, "shared"), TrialSlotLock(url, "shared")
        got: list[str] = []
        waiters = [threading.Thread(target=lambda lock=lock, name=name: (
            lock.acquire(), got.append(name), lock.release()))
            for lock, name in ((through_proxy, "proxy"), (direct, "direct"))]
        for waiter in waiters:
            waiter.start()
        time.sleep(2)
        assert got == []  # neither a proxy client nor a direct worker gets it
        holder.kill()
        killed_at = time.monotonic()
        for waiter in waiters:
            waiter.join(timeout=30)
        assert sorted(got) == ["direct", "proxy"]
        assert time.monotonic() - killed_at < 10
        through_proxy.close()
        direct.close()
    finally:
        holder.kill()
        holder.wait()


@pytest.mark.postgres
def test_heartbeats_and_reaping_work_through_the_proxy(proxied) -> None:
    _url, proxy_url, _proxy = proxied
    storage = open_storage(proxy_url, heartbeat_interval=1, grace_period=2, retry_stale=True)
    study = optuna.create_study(study_name="beats", storage=storage)
    assert is_heartbeat_enabled(study._storage)  # Optuna's heartbeat thread runs for it
    alive, dead = study.ask(), study.ask()
    storage.record_heartbeat(dead._trial_id)
    lock = TrialSlotLock(proxy_url, "beats")
    deadline = time.monotonic() + 3.5
    while time.monotonic() < deadline:  # only `alive` keeps beating
        assert storage.beat(alive._trial_id)
        time.sleep(0.5)
    assert reap(study, lock) == [dead.number]
    trials = study.get_trials(deepcopy=False)
    assert [t.state for t in trials] == [TrialState.RUNNING, TrialState.FAIL,
                                         TrialState.WAITING]
    assert trials[2].system_attrs["failed_trial"] == dead.number
    lock.close()


@pytest.mark.postgres
def test_a_proxy_and_a_database_restart_are_ridden_out(postgres_server, tmp_path) -> None:
    url = postgres_server.new_database()
    proxy, proxy_url = start_proxy(url, tmp_path)
    storage = open_storage(proxy_url, heartbeat_interval=1, grace_period=30)
    study = optuna.create_study(study_name="restart", storage=storage)
    trial = study.ask()
    proxy.kill()
    proxy.wait()
    assert not storage.reachable() and not storage.beat(trial._trial_id)
    told: list[bool] = []
    teller = threading.Thread(target=lambda: told.append(study.tell(trial, 1.0) is not None))
    teller.start()  # retries while the proxy is away
    time.sleep(2)
    assert teller.is_alive()
    proxy, _same = start_proxy(url, tmp_path, port=proxy_address(proxy_url)[1])
    try:
        teller.join(timeout=60)
        assert told == [True]
        postgres_server.stop()
        try:
            assert not storage.reachable()  # the proxy answers: the database is away
            assert not storage.beat(trial._trial_id)
        finally:
            postgres_server.start()
        wait_until(storage.reachable, timeout=30, message="database not back")
        again = study.ask()
        study.tell(again, 2.0)
        assert [t.state for t in study.get_trials()] == [TrialState.COMPLETE] * 2
    finally:
        proxy.kill()
        proxy.wait()


def test_bad_proxy_urls_and_servers_are_one_line_errors(tmp_path: Path) -> None:
    cases = [
        (["trials", "--study", "x", "--storage", "grpc://127.0.0.1:1"],
         "cannot reach the storage proxy at 127.0.0.1:1"),
        (["trials", "--study", "x", "--storage", "grpc://:13000"], "invalid storage proxy URL"),
        (["trials", "--study", "x", "--storage", "grpc://h:99999"], "invalid storage proxy URL"),
        (["proxy", "--storage", "grpc://127.0.0.1:13000"], "needs a database URL"),
    ]
    for args, expected in cases:
        result = run_cli(*args, timeout=120)
        assert result.returncode == 2, result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and expected in lines[0], result.stderr
        assert "Traceback" not in result.stderr


def test_optunas_own_proxy_is_named_not_a_cnnsearch_one(tmp_path: Path) -> None:
    """Optuna's proxy has no heartbeats or locks: a worker must not run behind it."""
    from optuna.storages._grpc.server import make_server

    server = make_server(optuna.storages.InMemoryStorage(), "127.0.0.1", 0)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        with pytest.raises(UserError, match="is not a cnnsearch proxy"):
            open_storage(f"grpc://127.0.0.1:{port}")
    finally:
        server.stop(None)


def test_a_port_in_use_is_a_one_line_error(tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli("proxy", "--storage", f"sqlite:///{tmp_path / 's.db'}", "--port",
                         str(port), timeout=120)
    assert result.returncode == 2, result.stderr
    assert re.fullmatch(r"cnnsearch: error: cannot listen on 127\.0\.0\.1:\d+: "
                        r"Address already in use\n", result.stderr), result.stderr


def test_sigterm_stops_the_proxy(tmp_path: Path) -> None:
    proxy, _url = start_proxy(f"sqlite:///{tmp_path / 's.db'}", tmp_path)
    proxy.send_signal(signal.SIGTERM)
    assert proxy.wait(timeout=30) == 0

"""``cnnsearch dashboard``: optuna-dashboard with the right storage and artifact folder, as a
real process; one-line errors. ``test_browser.py`` looks at its pages in Chromium."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import optuna
import pytest

from search.record import STUDY_ARTIFACT_DIR
from search.views.dashboard import resolve_artifact_dir
from tests.browser import dashboard
from tests.conftest import ROOT, run_cli


def storage_with(*artifact_dirs: str | None) -> optuna.storages.BaseStorage:
    storage = optuna.storages.InMemoryStorage()
    for index, folder in enumerate(artifact_dirs):
        study = optuna.create_study(storage=storage, study_name=f"s{index}")
        if folder is not None:
            study.set_user_attr(STUDY_ARTIFACT_DIR, folder)
    return storage


def test_artifact_dir_flag_wins_and_empty_means_none(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CNNSEARCH_ARTIFACT_DIR", "from-env")
    storage = storage_with("stored")
    assert resolve_artifact_dir("flag", storage) == "flag"
    assert resolve_artifact_dir("", storage) is None


def test_artifact_dir_comes_from_the_studies_when_they_agree(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CNNSEARCH_ARTIFACT_DIR", "from-env")
    assert resolve_artifact_dir(None, storage_with("stored", None, "stored")) == "stored"
    assert resolve_artifact_dir(None, storage_with("a", "b")) == "from-env"
    monkeypatch.delenv("CNNSEARCH_ARTIFACT_DIR")
    assert resolve_artifact_dir(None, storage_with("a", "b")) == "cnnsearch-artifacts"
    assert resolve_artifact_dir(None, storage_with()) == "cnnsearch-artifacts"


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=30) as reply:
        return json.loads(reply.read())


def test_dashboard_serves_the_study_and_its_lrrt_svgs(tiny_visual_study: dict,
                                                     tmp_path: Path) -> None:
    # No --artifact-dir: the folder comes from the study; cwd elsewhere proves it.
    with dashboard(tiny_visual_study["url"], cwd=tmp_path) as server:
        assert "127.0.0.1" in server.url
        assert f"artifacts {tiny_visual_study['artifacts']}" in server.output
        studies = get_json(server.url + "api/studies")["study_summaries"]
        assert [s["study_name"] for s in studies] == ["visual"]
        study_id = studies[0]["study_id"]
        detail = get_json(f"{server.url}api/studies/{study_id}")
        assert len(detail["trials"]) == 8
        trial = detail["trials"][0]
        svg = [a for a in trial["artifacts"] if a["mimetype"] == "image/svg+xml"]
        assert [a["filename"] for a in svg] == [f"lrrt-trial-{trial['number']}.svg"]
        with urllib.request.urlopen(f"{server.url}artifacts/{study_id}/{trial['trial_id']}/"
                                    f"{svg[0]['artifact_id']}", timeout=30) as reply:
            assert reply.headers["Content-Type"] == "image/svg+xml"
            assert reply.read().startswith(b"<svg")


def test_missing_storage_is_a_one_line_error(tmp_path: Path) -> None:
    result = run_cli("dashboard", "--storage", f"sqlite:///{tmp_path / 'absent.db'}",
                     "--port", "0", timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "does not exist" in result.stderr
    assert not (tmp_path / "absent.db").exists()


def test_a_busy_port_is_a_one_line_error(tiny_visual_study: dict) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run_cli("dashboard", "--storage", tiny_visual_study["url"], "--port",
                         str(port), timeout=60)
    assert result.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
    assert result.stderr.strip().count("\n") == 0


def test_bad_port_is_refused_by_the_parser() -> None:
    result = run_cli("dashboard", "--port", "99999", timeout=60)
    assert result.returncode == 2 and "expected an integer >= 0 and <= 65535" in result.stderr


# --------------------------------------------------------------------------- Host header
@pytest.fixture(scope="module")
def small_storage(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A SQLite storage with one study of one trial (no training needed)."""
    url = f"sqlite:///{tmp_path_factory.mktemp('hosts') / 'study.db'}"
    study = optuna.create_study(study_name="kept", storage=url, direction="maximize")
    study.add_trial(optuna.trial.create_trial(value=0.5))
    return url


def request(base_url: str, path: str, host: str | None, method: str = "GET",
            body: bytes | None = None) -> tuple[int, bytes]:
    """One HTTP request to the dashboard with ``Host: host`` (None: no Host header)."""
    import http.client
    from urllib.parse import urlsplit

    where = urlsplit(base_url)
    connection = http.client.HTTPConnection(where.hostname, where.port, timeout=30)
    try:
        connection.putrequest(method, path, skip_host=True)
        if host is not None:
            connection.putheader("Host", host)
        if body is not None:
            connection.putheader("Content-Type", "application/json")
            connection.putheader("Content-Length", str(len(body)))
        connection.endheaders(body)
        reply = connection.getresponse()
        return reply.status, reply.read()
    finally:
        connection.close()


def test_the_dashboard_answers_only_the_host_names_it_was_started_for(
    small_storage: str, tmp_path: Path
) -> None:
    """DNS rebinding: a page on a name pointed at 127.0.0.1 sends that name as Host; it is
    refused (403) for reads and writes alike, and nothing changes in the storage."""
    with dashboard(small_storage, "--allowed-host", "proxy.example.org") as server:
        port = server.url.rsplit(":", 1)[1].rstrip("/")
        for host in (f"127.0.0.1:{port}", f"localhost:{port}", "LOCALHOST.", f"[::1]:{port}",
                     f"proxy.example.org:{port}", "10.1.2.3"):
            status, _ = request(server.url, "/api/studies", host)
            assert status == 200, host
        for host in (f"evil.example:{port}", "evil.example", "127.0.0.1.evil.example",
                     "localhost.evil.example", "proxy.example.org.evil", "", None,
                     "[::1", "a b"):
            status, body = request(server.url, "/api/studies", host)
            assert status == 403, host
            assert b"--allowed-host" in body
        status, _ = request(server.url, "/api/studies", "evil.example", "POST",
                            json.dumps({"study_name": "planted",
                                        "directions": ["maximize"]}).encode())
        assert status == 403
        status, _ = request(server.url, "/api/studies/1/trials/0/tell", "evil.example",
                            "POST", b'{"state": "Complete", "values": [999.0]}')
        assert status == 403
    assert [s.study_name for s in optuna.get_all_study_summaries(small_storage)] == ["kept"]
    assert "refused a request for host 'evil.example" in server.process.stdout.read()


def test_listening_on_every_interface_warns_on_stderr_and_takes_the_machines_names(
    small_storage: str,
) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "search", "dashboard", "--storage", small_storage, "--host",
         "0.0.0.0", "--port", "0"], cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None and process.stderr is not None
        url = re.search(r"http://\S+:(\d+)/", process.stdout.readline())
        assert url is not None
        warning = process.stderr.readline()
        assert warning.startswith("warning: the dashboard has no authentication")
        base = f"http://127.0.0.1:{url.group(1)}/"
        deadline = time.monotonic() + 60
        while True:
            try:
                status, _ = request(base, "/api/studies", socket.gethostname())
                break
            except OSError:
                assert time.monotonic() < deadline
                time.sleep(0.3)
        assert status == 200
        assert request(base, "/api/studies", "evil.example")[0] == 403
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.mark.parametrize(("header", "name"), [
    ("Example.ORG:8080", "example.org"), ("[::1]:80", "::1"), ("::1", "::1"),
    ("host.", "host"), ("", None), ("[", None), ("[]:80", None), (None, None),
])
def test_host_names_are_read_without_port_case_or_trailing_dot(header: str | None,
                                                               name: str | None) -> None:
    from search.views.dashboard import host_name

    assert host_name(header) == name


def test_an_allowed_host_flag_must_be_a_host_name() -> None:
    result = run_cli("dashboard", "--allowed-host", "evil.example/path", timeout=60)
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert "--allowed-host" in result.stderr and "host name" in result.stderr

"""``cnnsearch dashboard``: optuna-dashboard with the right storage and artifact folder, as a
real process; one-line errors. ``test_browser.py`` looks at its pages in Chromium."""

from __future__ import annotations

import json
import socket
import urllib.request
from pathlib import Path

import optuna
import pytest

from search.record import STUDY_ARTIFACT_DIR
from search.views.dashboard import resolve_artifact_dir
from tests.browser import dashboard
from tests.conftest import run_cli


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
    assert result.returncode == 2 and "expected a port number" in result.stderr

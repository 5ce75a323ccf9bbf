"""A SQLite database in a read-only folder (a real read-only bind mount: root ignores file
modes): the read-only commands read it, the writers say in one line why they cannot, and
nothing is written beside it, by either."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest

from tests.conftest import ROOT, run_cli, worker_config, write_config
from tests.mounts import read_only_bind

LEGACY = ROOT / "tests" / "fixtures" / "legacy_study"


@pytest.fixture
def read_only(tmp_path: Path):
    """The legacy study in a read-only folder: (its storage URL, the folder behind it)."""
    source = tmp_path / "source"
    source.mkdir()
    shutil.copy(LEGACY / "study.db", source / "study.db")
    with read_only_bind(source, tmp_path / "mounted") as folder:
        yield f"sqlite:///{folder / 'study.db'}", source


def test_read_only_commands_read_a_database_in_a_read_only_folder(read_only,
                                                                  tmp_path: Path) -> None:
    url, source = read_only
    before = (source / "study.db").read_bytes()
    table = run_cli("trials", "--study", "legacy", "--storage", url, cwd=tmp_path)
    assert table.returncode == 0, table.stderr
    assert "12 trials: 7 complete, 5 pruned" in table.stdout
    rows = run_cli("trials", "--study", "legacy", "--format", "json", "--storage", url,
                   cwd=tmp_path)
    assert rows.returncode == 0 and len(json.loads(rows.stdout)) == 12
    export = run_cli("export", "--study", "legacy", "--storage", url, "-o",
                     str(tmp_path / "best.yaml"), cwd=tmp_path)
    assert export.returncode == 0, export.stderr
    report = run_cli("report", "--study", "legacy", "--storage", url, "-o",
                     str(tmp_path / "report.html"), cwd=tmp_path, timeout=300)
    assert report.returncode == 0, report.stderr
    assert (tmp_path / "best.yaml").stat().st_size and (tmp_path / "report.html").stat().st_size
    assert sorted(p.name for p in source.iterdir()) == ["study.db"]
    assert (source / "study.db").read_bytes() == before


def test_the_dashboard_shows_a_read_only_database(read_only) -> None:
    from tests.browser import dashboard
    from tests.search.views.test_dashboard import request

    url, _ = read_only
    with dashboard(url) as server:
        status, body = request(server.url, "/api/studies", "127.0.0.1")
        assert status == 200 and b"legacy" in body
    assert "is read-only here" in server.output


@pytest.mark.parametrize("command", ["search", "worker", "create-study", "reap"])
def test_writers_say_in_one_line_why_they_cannot(read_only, tmp_path: Path,
                                                 command: str) -> None:
    url, source = read_only
    config = write_config(tmp_path / "c.yaml", worker_config(tmp_path, "legacy"))
    arguments = {
        "search": ["--config", str(config), "--artifact-dir", "", "--checkpoint-dir", ""],
        "worker": ["--study", "legacy", "--config", str(config), "--artifact-dir", "",
                   "--checkpoint-dir", ""],
        "create-study": ["--study", "new", "--config", str(config), "--artifact-dir", ""],
        "reap": ["--study", "legacy"],
    }[command]
    result = run_cli(command, *arguments, "--storage", url, cwd=tmp_path)
    lines = result.stderr.splitlines()
    assert result.returncode == 2 and len(lines) == 1, result.stderr[-2000:]
    assert "cannot be written (Read-only file system)" in lines[0]
    assert "trials, report, export and dashboard can still read it" in lines[0]
    assert sorted(p.name for p in source.iterdir()) == ["study.db"]


def test_read_only_commands_leave_nothing_beside_a_database(tmp_path: Path) -> None:
    """No lock file: a read-only command takes no lock (it creates no tables)."""
    shutil.copy(LEGACY / "study.db", tmp_path / "study.db")
    url = f"sqlite:///{tmp_path / 'study.db'}"
    for command in (["trials"], ["export"]):
        assert run_cli(*command, "--study", "legacy", "--storage", url,
                       cwd=tmp_path).returncode == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["study.db"]


def test_a_read_only_command_never_adds_tables_to_a_database_that_is_not_optunas(
    tmp_path: Path,
) -> None:
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE notes (text TEXT)")
    before = path.read_bytes()
    result = run_cli("trials", "--study", "x", "--storage", f"sqlite:///{path}", cwd=tmp_path)
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("cnnsearch: error: cannot open storage")
    assert path.read_bytes() == before

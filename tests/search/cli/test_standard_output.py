"""Standard output that takes nothing more (a full device, a reader gone): one line on
stderr and exit code 2, not a traceback from whichever ``print`` met it, nor Python's
"Exception ignored" at exit."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

LEGACY = ROOT / "tests" / "fixtures" / "legacy_study"


@pytest.fixture
def url(tmp_path: Path) -> str:
    shutil.copy(LEGACY / "study.db", tmp_path / "study.db")
    return f"sqlite:///{tmp_path / 'study.db'}"


def run_into(stdout: int, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "search", *args], cwd=ROOT, stdout=stdout,
                          stderr=subprocess.PIPE, text=True, timeout=300, check=False,
                          env={**os.environ, "PYTHONPATH": str(ROOT), "CNNSEARCH_STORAGE": ""})


def assert_one_line(result: subprocess.CompletedProcess, reason: str) -> None:
    assert result.returncode == 2, result.stderr
    assert result.stderr == f"cnnsearch: error: cannot write to standard output: {reason}\n"


@pytest.mark.parametrize("command", [["trials"], ["trials", "--format", "json"], ["export"]])
def test_a_full_standard_output_is_one_line(url: str, command: list[str]) -> None:
    with open("/dev/full", "w") as full:
        result = run_into(full.fileno(), *command, "--study", "legacy", "--storage", url)
    assert_one_line(result, "No space left on device")


def test_a_closed_pipe_is_one_line(url: str) -> None:
    """``cnnsearch trials | true``: the reader is gone before anything is written."""
    reader, writer = os.pipe()
    os.close(reader)
    try:
        result = run_into(writer, "trials", "--study", "legacy", "--storage", url)
    finally:
        os.close(writer)
    assert_one_line(result, "Broken pipe")


def test_standard_output_still_works(url: str) -> None:
    result = run_into(subprocess.PIPE, "trials", "--study", "legacy", "--storage", url)
    assert result.returncode == 0 and "12 trials" in result.stdout

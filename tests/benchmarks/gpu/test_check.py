"""``make gpu-check`` (``benchmarks.gpu.check``): without a GPU it says so in one line and
exits 2; its summary lists every step's outcome and figures."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from benchmarks.gpu.check import LIMITS, summary
from tests.conftest import ROOT


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is visible: the check would run")
def test_without_a_gpu_it_says_so_and_exits_2(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "benchmarks.gpu.check", "--out",
                             str(tmp_path / "out")], cwd=ROOT, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "no CUDA GPU is visible" in result.stderr
    assert not (tmp_path / "out").exists()


def test_the_limits_keep_the_check_under_eight_minutes() -> None:
    assert sum(LIMITS.values()) < 8 * 60


def test_the_summary_names_each_step_its_outcome_and_figures(tmp_path: Path) -> None:
    (tmp_path / "throughput.md").write_text("| trials | step |\n")
    facts = {"name": "NVIDIA H100 80GB HBM3", "memory_gib": 79.1, "capability": "9.0",
             "bf16": True, "torch": "2.14.1", "cuda": "13.0", "driver": "580.1"}
    text = summary(facts, {
        "tests": {"ok": True, "exit_code": 0, "seconds": 31.0, "result": "9 passed"},
        "demo": {"ok": False, "exit_code": 124, "seconds": 75.0},
        "packed": {"ok": False, "skipped": "no PostgreSQL server binaries in /x"},
    }, tmp_path)
    lines = text.splitlines()
    assert lines[0] == ("# GPU check: NVIDIA H100 80GB HBM3 (79.1 GiB, capability 9.0, bf16 "
                        "yes), torch 2.14.1, CUDA 13.0, driver 580.1")
    assert '- tests: ok; {"seconds": 31.0, "result": "9 passed"}' in lines
    assert '- demo: FAILED (exit 124); {"seconds": 75.0}' in lines
    assert "- packed: skipped: no PostgreSQL server binaries in /x; {}" in lines
    assert "## Throughput" in lines and "| trials | step |" in lines

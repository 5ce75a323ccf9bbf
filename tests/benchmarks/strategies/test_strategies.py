"""The live strategies benchmark's quick mode: well-formed outputs, budgets kept, and
``--reuse`` refusing runs of other sizes or other code. It never asserts who wins."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.common.code_version import code_hash
from tests.conftest import ROOT, needs_fashion_mnist


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "benchmarks.strategies", *args], cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"},
                          capture_output=True, text=True, timeout=900, check=False)


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("live")
    done = _run("--quick", "--seeds", "0", "--out", str(out))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return out


@needs_fashion_mnist
def test_every_strategy_searches_within_its_budget(quick_run: Path) -> None:
    results = json.loads((quick_run / "results.json").read_text())
    assert results["code"] == code_hash()
    assert {r["strategy"] for r in results["runs"]} == {"ours", "tpe_sh", "lrfree_sh",
                                                        "tpe_sh_constant"}
    for run in results["runs"]:
        assert 0 < run["images"] <= run["budget"]
        assert all(t["state"] in ("complete", "pruned", "cut") for t in run["trials"])
        assert all(isinstance(t["chance_level"], bool) for t in run["trials"])
    table = (quick_run / "table.md").read_text()
    assert all(f"| {s} |" in table for s in ("ours", "tpe_sh", "lrfree_sh"))


@needs_fashion_mnist
def test_reused_runs_are_taken_and_other_code_or_sizes_refused(quick_run: Path,
                                                               tmp_path: Path) -> None:
    again = _run("--quick", "--seeds", "0", "--out", str(tmp_path / "again"), "--reuse",
                 str(quick_run / "results.json"))
    assert again.returncode == 0, again.stderr[-3000:]
    first = json.loads((quick_run / "results.json").read_text())["runs"]
    second = json.loads((tmp_path / "again" / "results.json").read_text())["runs"]
    assert second == first  # taken, not measured again
    other = json.loads((quick_run / "results.json").read_text())
    other["code"] = "0" * 16
    (tmp_path / "other.json").write_text(json.dumps(other))
    refused = _run("--quick", "--seeds", "0", "--out", str(tmp_path / "x"), "--reuse",
                   str(tmp_path / "other.json"))
    assert refused.returncode == 2 and "other code" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
    sized = _run("--quick", "--seeds", "0", "--budget-trials", "5", "--out",
                 str(tmp_path / "y"), "--reuse", str(quick_run / "results.json"))
    assert sized.returncode == 2 and "budget_trials" in sized.stderr

"""Smoke test of ``python -m benchmarks.strategies --quick``: it runs end to end on real
Fashion-MNIST and its outputs are complete. It never asserts which strategy wins."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, needs_fashion_mnist

pytestmark = [needs_fashion_mnist, pytest.mark.slow]

STRATEGIES = ("ours", "ours_sh", "tpe_median", "tpe_hyperband", "tpe_sh", "screening", "random")
RUN_COLUMNS = 11
TARGET_COLUMNS = (5, 6)
"""Budget and seconds to the target: the only cells allowed to be '-' (not reached)."""


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("strategies")
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.strategies", "--quick", "--out", str(out)],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True,
        timeout=290, check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return out


def table_rows(text: str, header_start: str) -> list[list[str]]:
    """Cells of the Markdown table whose header row starts with ``header_start``."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header_start))
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
    return rows


def test_outputs_exist_and_parse(quick_run: Path) -> None:
    results = json.loads((quick_run / "results.json").read_text())
    assert results["settings"]["mode"] == "quick"
    html = (quick_run / "budget_curves.html").read_text()
    assert "plotly" in html.lower() and len(html) > 100_000  # plotly.js is inlined
    seeds = results["settings"]["seeds"]
    assert {(r["strategy"], r["seed"]) for r in results["runs"]} == {
        (s, seed) for s in STRATEGIES for seed in seeds}


def test_every_strategy_stays_within_its_budget(quick_run: Path) -> None:
    results = json.loads((quick_run / "results.json").read_text())
    for run in results["runs"]:
        assert 0 < run["images"] <= run["budget"]
        assert sum(t["images"] for t in run["trials"]) == run["images"]
        assert run["trials"], run["strategy"]


def test_table_has_every_strategy_and_seed_with_every_cell_filled(quick_run: Path) -> None:
    results = json.loads((quick_run / "results.json").read_text())
    rows = table_rows((quick_run / "table.md").read_text(), "| strategy | seed |")
    seeds = results["settings"]["seeds"]
    assert sorted((row[0], int(row[1])) for row in rows) == sorted(
        (s, seed) for s in STRATEGIES for seed in seeds)
    target = str(results["settings"]["target"])
    reached = {(m["strategy"], m["seed"]): m["to_target"][target] for m in results["metrics"]}
    for row in rows:
        assert len(row) == RUN_COLUMNS, row
        assert all(row), row
        for index, cell in enumerate(row):
            if cell == "-":
                assert index in TARGET_COLUMNS, row
                assert reached[(row[0], int(row[1]))] is None, row


def test_reused_runs_are_taken_not_measured_and_other_sizes_are_refused(
        quick_run: Path, tmp_path: Path) -> None:
    """``--reuse`` rebuilds the outputs from earlier runs of the same sizes (nothing is
    trained again, so the runs are identical); a file measured at other sizes is refused
    with one line and exit code 2."""
    out = tmp_path / "merged"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.strategies", "--quick", "--out", str(out),
         "--reuse", str(quick_run / "results.json")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    before = json.loads((quick_run / "results.json").read_text())
    after = json.loads((out / "results.json").read_text())
    assert after["runs"] == before["runs"] and after["summary"] == before["summary"]
    assert done.stdout.count("(reused)") == len(before["runs"])
    refused = subprocess.run(
        [sys.executable, "-m", "benchmarks.strategies", "--quick", "--epochs", "3", "--out",
         str(tmp_path / "other"), "--reuse", str(quick_run / "results.json")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert refused.returncode == 2
    assert refused.stderr.strip().splitlines() == [
        f"error: --reuse {quick_run / 'results.json'}: measured with other epochs, budget"]

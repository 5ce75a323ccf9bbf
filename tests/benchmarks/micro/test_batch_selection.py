"""Smoke test of ``python -m benchmarks.micro.batch_selection --quick``: it runs end to end on real
Fashion-MNIST and its outputs are complete and well formed. It never asserts who wins."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, needs_fashion_mnist

pytestmark = [needs_fashion_mnist, pytest.mark.slow]

STRATEGIES = {"uniform", "obs", "adaptive"}
COLUMNS = 10


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sampling")
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.micro.batch_selection", "--quick", "--out", str(out)],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True,
        timeout=240, check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "| batch | strategy |" in done.stdout  # the table is printed too
    return out


def test_every_run_has_a_finite_curve_of_every_epoch(quick_run: Path) -> None:
    results = json.loads((quick_run / "results.json").read_text())
    settings = results["settings"]
    assert settings["mode"] == "quick"
    expected = {(s, b, seed) for s in STRATEGIES for b in settings["batch_sizes"]
                for seed in settings["seeds"]}
    assert {(r["strategy"], r["batch_size"], r["seed"]) for r in results["runs"]} == expected
    assert len(results["runs"]) == len(expected)
    for run in results["runs"]:
        curve = run["curve"]
        assert [p["epoch"] for p in curve] == list(range(settings["epochs"] + 1))
        assert all(math.isfinite(p["probe_loss"]) and p["probe_loss"] > 0 for p in curve)
        assert all(math.isfinite(p["batch_loss"]) for p in curve[1:])
        seconds = [p["seconds"] for p in curve]
        assert seconds[0] == 0 and all(b > a for a, b in zip(seconds, seconds[1:]))
        assert 0 <= run["val_accuracy"] <= 1
    assert results["wall_seconds"] > 0 and results["machine"] and results["load_at_end"]


def test_the_summary_covers_each_batch_size_and_strategy(quick_run: Path) -> None:
    results = json.loads((quick_run / "results.json").read_text())
    summary = results["summary"]
    sizes = results["settings"]["batch_sizes"]
    assert {(row["batch_size"], row["strategy"]) for row in summary} == {
        (b, s) for b in sizes for s in STRATEGIES}
    for row in summary:
        assert len(row["probe_loss"]) == len(row["seconds"]) == results["settings"]["epochs"] + 1
        assert row["seconds_per_epoch"] > 0 and math.isfinite(row["overhead_vs_uniform"])
        if row["strategy"] == "uniform":
            assert row["overhead_vs_uniform"] == 0
            assert row["epochs_to_uniform_final"] == pytest.approx(results["settings"]["epochs"])


def test_the_table_has_one_full_row_per_batch_size_and_strategy(quick_run: Path) -> None:
    lines = (quick_run / "table.md").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| batch |"))
    header = [c.strip() for c in lines[start].strip("|").split("|")]
    rows = [[c.strip() for c in line.strip().strip("|").split("|")]
            for line in lines[start + 2:] if line.startswith("|")]
    assert len(header) == COLUMNS
    assert len(rows) == 3 * len(json.loads((quick_run / "results.json").read_text())
                                ["settings"]["batch_sizes"])
    for row in rows:
        assert len(row) == COLUMNS and row[1] in STRATEGIES
        assert all(cell for cell in row)


def test_the_figure_is_a_png(quick_run: Path) -> None:
    pytest.importorskip("matplotlib")
    png = (quick_run / "loss_curves.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 10_000

"""The replay benchmark's quick mode (what ``make test`` runs) and its arithmetic: outputs
well formed, budgets kept, every strategy searching through real Optuna studies. It never
asserts who wins."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.replay.__main__ import main, ratio_interval
from benchmarks.replay.search import STRATEGY_KEYS
from tests.conftest import needs_fashion_mnist


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("replay")
    main(["--quick", "--out", str(out)])
    return out


@needs_fashion_mnist
def test_every_strategy_replays_every_seed_within_its_budget(quick_run: Path) -> None:
    runs = json.loads((quick_run / "results.json").read_text())
    assert {r["strategy"] for r in runs} == set(STRATEGY_KEYS)
    assert all(len([r for r in runs if r["strategy"] == s]) == 3 for s in STRATEGY_KEYS)
    for run in runs:
        assert 0 < run["images"] <= run["budget"]
        assert sum(t["images"] for t in run["trials"]) == run["images"]
        used = [point[0] for point in run["timeline"]]
        assert used == sorted(used)
        best = [point[2] for point in run["timeline"]]
        assert best == sorted(best)  # best-so-far never falls


@needs_fashion_mnist
def test_the_summary_has_targets_curves_and_the_headline(quick_run: Path) -> None:
    summary = json.loads((quick_run / "summary.json").read_text())
    assert set(summary["targets"]["0"]) == {"p95", "p99"}
    assert summary["targets"]["0"]["p95"] <= summary["targets"]["0"]["p99"]
    for entry in summary["strategies"].values():
        assert entry["runs"] == 3 and len(entry["median_curve"]) == 101
        assert all(low <= high for low, high in zip(entry["curve_low"], entry["curve_high"],
                                                    strict=True))
        assert 0.0 <= entry["chance_share"] <= 1.0
    assert set(summary["headline"]) == {"p95", "p99"}
    assert (quick_run / "table.md").read_text().startswith("# Replayed searches")
    assert (quick_run / "curves.png").read_bytes()[:4] == b"\x89PNG"


def test_the_ratio_is_of_medians_with_a_censored_interval() -> None:
    found = ratio_interval([1.0, 2.0, 3.0], [2.0, 4.0, 6.0])
    assert found["ratio"] == pytest.approx(0.5)
    assert found["low"] <= 0.5 <= found["high"]
    never = ratio_interval([1.0, 1.0, 1.0], [None, None, None])
    assert never["ratio"] is None and never["high"] == 0.0  # they never got there
    assert ratio_interval([None] * 3, [1.0] * 3)["unbounded_above"]


"""``python -m benchmarks.rejection``: its arithmetic, and a quick run end to end on a dataset
it has never seen (an image folder) whose outputs are complete. It never asserts who wins."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.common.metrics import bootstrap_median
from benchmarks.rejection.figures import families, figures, gate_rates, ranking, spearman
from benchmarks.rejection.protocol import extremes_of, stratified, trivial_verdict
from search.config import load_config
from search.method.lrrt.curve import LRRTCurve
from search.method.lrrt.result import LRRTResult, summarise
from tests.conftest import ROOT, worker_config, write_brightness_folder, write_config

SUMMARY_KEYS = ("recall", "false_rejection_rate", "cost_fraction", "spearman",
                "spearman_one_epoch", "bound_regret_median", "counts",
                # issue 20
                "recall_weighted", "false_rejection_rate_weighted", "trivial_rule",
                "regret_noise_floor", "oracle_interior_fraction", "spearman_ceiling_fraction",
                "spearman_screening_fair")


def test_spearman_by_hand() -> None:
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    # one swap in five: 1 - 6 * 2 / (5 * 24) = 0.9
    assert spearman([1, 2, 3, 4, 5], [1, 2, 3, 5, 4]) == pytest.approx(0.9)
    assert spearman([1, 1, 1], [1, 2, 3]) is None and spearman([1, 2], [1, 2]) is None


def test_bootstrap_median_brackets_the_median() -> None:
    interval = bootstrap_median([0.1, 0.5, 0.2, 0.4, 0.3])
    assert interval["median"] == pytest.approx(0.3)
    assert interval["low"] <= 0.3 <= interval["high"] and interval["n"] == 5
    assert bootstrap_median([None])["median"] is None  # never reached: +inf
    assert bootstrap_median([])["n"] == 0


def row(reason: str | None, votes: tuple[bool, ...], *, trivial: str | None = None,
        family: str = "adam|0.0001-0.01", **extra: object) -> dict:
    """A protocol row whose trainings end at chance as ``votes`` says."""
    trainings = [0.1 if chance else 0.8 for chance in votes]
    values = {"reason": reason, "trivial_reason": trivial, "family": family,
              "chance_probability": sum(votes) / len(votes),
              "chance_level": sum(votes) * 2 > len(votes), "trainings": trainings,
              "mean_best_val_accuracy": sum(trainings) / len(trainings),
              "best_val_accuracy": trainings[0], "lrrt_images": 100, "train_images": 900,
              "lrrt_score": 0.5, "lrrt_val_accuracy": 0.5, "screening_accuracy": 0.3,
              "screening_constant_accuracy": 0.2, "n_params": 10, "limit_found": False,
              "bounds": [0.001, 0.004], "lr_range": [1e-4, 1e-2], "lrrt_steps": 100,
              "optimizer": "adam", "lr_range_label": "0.0001-0.01", "batch_size": 64,
              "extension": None, "part": "main"}
    return {**values, **extra}


def test_majority_labels_and_probability_weighted_rates() -> None:
    rows = [row("chance_level", (True, True, True)), row(None, (True, True, False)),
            row("chance_level", (False, False, True)), row(None, (False, False, False))]
    rates = gate_rates(rows)
    assert (rates["chance_level"], rates["good"]) == (2, 2)
    assert rates["recall"] == pytest.approx(0.5)  # 1 of the 2 majority-chance designs
    assert rates["false_rejection_rate"] == pytest.approx(0.5)
    # probability mass: chance 1 + 2/3 + 1/3 + 0 = 2; rejected 1 + 1/3
    assert rates["recall_weighted"] == pytest.approx((1 + 1 / 3) / 2)
    # the rest: 0 + 1/3 + 2/3 + 1 = 2; rejected 0 + 2/3
    assert rates["false_rejection_rate_weighted"] == pytest.approx((2 / 3) / 2)


def test_the_trivial_rule_is_compared_on_the_families_whose_outcome_varies() -> None:
    wholesale = [row("diverged", (True,) * 3, trivial="diverged_early", family="adam|0.5-5")
                 for _ in range(3)]
    varied = [row("chance_level", (True,) * 3, family="sgd|1e-06-1e-05"),
              row(None, (False,) * 3, trivial="weights_still", family="sgd|1e-06-1e-05"),
              row(None, (True, False, False), family="sgd|1e-06-1e-05")]
    found = families(wholesale + varied)
    assert not found["per_family"]["adam|0.5-5"]["varies"]
    assert found["varied"]["families"] == ["sgd|1e-06-1e-05"]
    assert found["varied"]["gate"]["recall"] == 1.0
    assert found["varied"]["trivial"]["false_rejection_rate"] == pytest.approx(0.5)
    assert found["varied"]["gate_beats_trivial"] is True


def test_the_ranking_is_read_against_the_mean_and_its_noise_ceiling() -> None:
    rows = [row(None, (False, False, False), lrrt_score=s, trainings=[t, t2, t3],
                mean_best_val_accuracy=(t + t2 + t3) / 3)
            for s, t, t2, t3 in [(0.1, 0.5, 0.52, 0.5), (0.2, 0.6, 0.58, 0.61),
                                 (0.3, 0.7, 0.72, 0.69), (0.4, 0.8, 0.79, 0.8),
                                 (0.5, 0.55, 0.9, 0.7)]]
    found = ranking(rows)
    r = found["truth_reliability"]
    assert r == pytest.approx(spearman([0.5, 0.6, 0.7, 0.8, 0.55], [0.52, 0.58, 0.72, 0.79, 0.9]))
    assert found["spearman_ceiling"] == pytest.approx(math.sqrt(3 * r / (1 + 2 * r)))
    assert found["spearman_ceiling_fraction"] == pytest.approx(
        found["spearman"] / found["spearman_ceiling"])


def test_figures_count_recall_false_rejections_cost_and_the_oracle() -> None:
    rows = [row("chance_level", (True,) * 3), row(None, (True,) * 3),
            row("diverged", (False,) * 3),
            row(None, (False,) * 3, bound_regret=2.0, regret_noise_floor=1.0,
                oracle_interior=True, oracle_best_multiplier=2.0),
            row(None, (False,) * 3, bound_regret=0.0, regret_noise_floor=3.0,
                oracle_interior=False, oracle_best_multiplier=0.5)]
    found = figures(rows, rows)
    assert found["recall"] == 0.5 and found["false_rejection_rate"] == pytest.approx(1 / 3)
    assert found["cost_fraction"] == pytest.approx(0.1)
    assert found["bound_regret_median"] == 1.0 and found["regret_noise_floor"] == 2.0
    assert found["oracle_interior_fraction"] == 0.5
    assert found["counts"]["oracle_designs"] == 2


def _result(*, diverged_at: float | None = None, moved: float = 1.0) -> LRRTResult:
    curve = LRRTCurve(1e-3, 1e-1, 100, 100, 5)
    steps = 100 if diverged_at is None else int(diverged_at * 100)
    curve.lrs, curve.losses = [1e-3] * steps, [2.0] * steps
    curve.accuracies = [0.1] * steps
    curve.diverged, curve.weight_change = diverged_at is not None, moved
    return summarise(curve, bound_rule="sustained_limit", compare_rule=None,
                     disagreement_factor=10.0)


def test_the_trivial_rule_rejects_early_divergence_and_still_weights_only() -> None:
    assert trivial_verdict(_result(diverged_at=0.05), 2.5e-3) == "diverged_early"
    assert trivial_verdict(_result(diverged_at=0.5), 2.5e-3) is None
    assert trivial_verdict(_result(moved=1e-4), 2.5e-3) == "weights_still"
    assert trivial_verdict(_result(), 2.5e-3) is None


def test_stratified_spreads_over_groups() -> None:
    rows = [{"optimizer": o, "lr_range_label": r, "chance_level": c, "n": i}
            for i, (o, r, c) in enumerate([("adam", "a", False)] * 5 + [("sgd", "b", True)] * 2)]
    chosen = stratified(rows, 3)
    assert {(r["optimizer"], r["chance_level"]) for r in chosen} == {("adam", False),
                                                                     ("sgd", True)}


def test_extremes_of_a_config_is_its_grid_a_decade_too_low_and_too_high() -> None:
    main = load_config(ROOT / "benchmarks/protocols/contest.yaml")
    derived = extremes_of(main)
    assert derived.space.lr_range == ((1e-6, 1e-5), (0.5, 5.0))
    assert derived.space.batch_size == (64,)
    assert (derived.space.blocks, derived.space.optimizer) == (main.space.blocks,
                                                               main.space.optimizer)


def _run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "benchmarks.rejection", *args],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"},
        capture_output=True, text=True, timeout=600, check=False)


@pytest.mark.slow
def test_quick_run_on_an_image_folder_writes_a_complete_summary(tmp_path: Path) -> None:
    folder = write_brightness_folder(tmp_path / "images", images_per_class=60)
    config = worker_config(folder, "protocol", epochs=2)
    config["space"]["optimizer"] = ["adam", "sgd"]
    config["lrrt"] = {"share": 0.3, "min_steps": 6, "sma_periods": 3, "ramp": "exponential",
                      "bound_rule": "sustained_limit", "compare_rule": None}
    config["pruner"] = {"warmup_trials": 1}
    path = write_config(tmp_path / "protocol.yaml", config)
    out = tmp_path / "out"
    done = _run(tmp_path, "--config", str(path), "--out", str(out), "--quick", "--seeds", "7",
                "--extremes")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    for key in SUMMARY_KEYS:
        assert key in summary, key
    assert summary["configs"] == [str(path), f"{path}#extremes"]
    counts = summary["counts"]
    assert counts["designs"] == 8 and counts["chance_level"] + counts["good"] == 8
    assert summary["seeds"] == [7] and summary["seed_role"] == "custom"
    rows = json.loads((out / "rows.json").read_text())
    assert len(rows) == 8 and all(len(r["trainings"]) == 2 for r in rows)
    assert all(r["chance_level"] == (sum(t < r["threshold"] for t in r["trainings"]) * 2 > 2)
               for r in rows)
    oracle = [r for r in rows if "oracle" in r]
    assert oracle and all(r["part"] == str(path) for r in oracle)
    assert all(r["oracle_interior"] == (min(map(float, r["oracle"])) < r[
        "oracle_best_multiplier"] * r["bounds"][1] < max(map(float, r["oracle"])))
        for r in oracle)
    for value in (summary["recall"], summary["false_rejection_rate"],
                  summary["trivial_rule"]["recall"]):
        assert value is None or 0.0 <= value <= 1.0
    # a second run resumes from the cache: nothing is measured twice
    lines = (out / "cache.jsonl").read_text().count("\n")
    again = _run(tmp_path, "--config", str(path), "--out", str(out), "--quick", "--seeds", "7",
                 "--extremes")
    assert again.returncode == 0, again.stderr[-3000:]
    assert (out / "cache.jsonl").read_text().count("\n") == lines
    assert json.loads((out / "summary.json").read_text())["counts"] == counts

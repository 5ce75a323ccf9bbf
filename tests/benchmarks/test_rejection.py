"""``python -m benchmarks.rejection``: its arithmetic, and a quick run end to end on a dataset
it has never seen (an image folder) whose outputs are complete. It never asserts who wins."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.metrics import bootstrap_median
from benchmarks.rejection import extremes_of, figures, spearman, stratified
from search.config import load_config
from tests.conftest import ROOT, worker_config, write_brightness_folder, write_config

SUMMARY_KEYS = ("recall", "false_rejection_rate", "cost_fraction", "spearman",
                "spearman_one_epoch", "bound_regret_median", "counts")


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


def row(reason: str | None, chance: bool, **extra: object) -> dict:
    values = {"reason": reason, "chance_level": chance, "lrrt_images": 100,
              "train_images": 900, "lrrt_score": 0.5, "lrrt_val_accuracy": 0.5,
              "best_val_accuracy": 0.1 if chance else 0.8, "screening_accuracy": 0.3,
              "n_params": 10, "limit_found": False, "bounds": [0.001, 0.004],
              "lr_range": [1e-4, 1e-2], "lrrt_steps": 100, "optimizer": "adam",
              "lr_range_label": "0.0001-0.01", "batch_size": 64}
    return {**values, **extra}


def test_truth_reliability_reads_label_agreement_and_the_second_training_as_a_gate() -> None:
    def twice(reason: str | None, first: bool, second: bool) -> dict:
        return row(reason, first, replicate_chance_level=second,
                   replicate_best_val_accuracy=0.1 if second else 0.8)

    rows = [twice("chance_level", True, True), twice(None, True, True),
            twice(None, True, False), twice("chance_level", False, True),
            twice(None, False, False), twice(None, False, False)]
    reliability = figures(rows)["truth_reliability"]
    assert reliability["designs"] == 6
    assert reliability["chance_label_agreement"] == pytest.approx(4 / 6)
    # the second training as a gate: catches 2 of the 3 first-run chance-level designs and
    # rejects 1 of the 3 that trained
    ceiling = reliability["replicate_as_gate"]
    assert (ceiling["recall"], ceiling["false_rejection_rate"]) == (pytest.approx(2 / 3),
                                                                    pytest.approx(1 / 3))
    # the range test's gate where both trainings agree: 1 of 2 caught, none of 2 wrong
    agreed = reliability["gate_where_labels_agree"]
    assert (agreed["recall"], agreed["false_rejection_rate"]) == (0.5, 0.0)
    assert (agreed["chance_level"], agreed["good"]) == (2, 2)
    assert figures([row(None, True)])["truth_reliability"] is None


def test_figures_count_recall_false_rejections_and_cost() -> None:
    rows = [row("chance_level", True), row(None, True), row("below_peers", False),
            row(None, False), row(None, False, limit_found=True, bounds=[0.002, 0.0095]),
            row(None, False, bound_regret=2.0), row(None, False, bound_regret=0.0)]
    result = figures(rows)
    assert result["recall"] == 0.5  # 1 of 2 chance-level designs rejected
    assert result["false_rejection_rate"] == pytest.approx(1 / 5)
    assert result["cost_fraction"] == pytest.approx(0.1)
    assert result["bound_regret_median"] == pytest.approx(1.0)
    assert result["upper_at_lr_max"] == 1  # 0.0095 >= 0.9 x 0.01, limit found
    assert result["counts"]["peer_free_recall"] == 0.5
    assert result["counts"]["peer_free_false_rejection_rate"] == 0.0


def test_spearman_within_reads_each_factor_value_apart() -> None:
    """Adam's scores order its designs; SGD's are reversed: pooled, that would blur."""
    rows = [row(None, False, optimizer=opt, lrrt_score=score, best_val_accuracy=truth,
                screening_accuracy=truth)
            for opt, pairs in (("adam", ((0.5, 0.80), (0.6, 0.82), (0.7, 0.84))),
                               ("sgd", ((0.3, 0.86), (0.4, 0.85), (0.5, 0.83))))
            for score, truth in pairs]
    within = figures(rows)["spearman_within"]
    assert within["optimizer"]["adam"] == {"designs": 3, "spearman": pytest.approx(1.0),
                                           "spearman_one_epoch": pytest.approx(1.0)}
    assert within["optimizer"]["sgd"]["spearman"] == pytest.approx(-1.0)
    assert within["batch_size"]["64"]["designs"] == 6  # one value: every design
    assert set(within) == {"optimizer", "lr_range_label", "batch_size"}


def test_stratified_spreads_over_groups() -> None:
    rows = [row(None, False, optimizer=o, lr_range_label=r, design=f"{o}{r}{i}")
            for o in ("adam", "sgd") for r in ("a", "b") for i in range(5)]
    chosen = stratified(rows, 4)
    assert {(r["optimizer"], r["lr_range_label"]) for r in chosen} == {
        ("adam", "a"), ("adam", "b"), ("sgd", "a"), ("sgd", "b")}


@pytest.mark.slow
def test_quick_run_on_an_image_folder_writes_a_complete_summary(tmp_path: Path) -> None:
    folder = write_brightness_folder(tmp_path / "images", images_per_class=80)
    config = worker_config(folder, "protocol", epochs=2)
    config["space"]["optimizer"] = ["adam", "sgd"]
    config["lrrt"] = {"steps": 12, "sma_periods": 3, "bound_rule": "smith_quarter",
                      "compare_rule": None}
    config["pruner"] = {"warmup_trials": 1}
    path = write_config(tmp_path / "protocol.yaml", config)
    out = tmp_path / "out"
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.rejection", "--config", str(path), "--out",
         str(out), "--quick", "--seeds", "7"],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True,
        timeout=280, check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    for key in SUMMARY_KEYS:
        assert key in summary, key
    counts = summary["counts"]
    assert counts["designs"] == 4 and counts["chance_level"] + counts["good"] == 4
    assert summary["seeds"] == [7] and summary["seed_role"] == "custom"
    assert counts["oracle_designs"] <= 2
    rows = json.loads((out / "rows.json").read_text())
    assert len(rows) == 4 and all(len(r["history"]) == 1 for r in rows)
    for value in (summary["recall"], summary["false_rejection_rate"]):
        assert value is None or 0.0 <= value <= 1.0
    # a second run resumes from the cache: nothing is measured twice
    lines = (out / "cache.jsonl").read_text().count("\n")
    again = subprocess.run(
        [sys.executable, "-m", "benchmarks.rejection", "--config", str(path), "--out",
         str(out), "--quick", "--seeds", "7"],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True,
        timeout=280, check=False,
    )
    assert again.returncode == 0
    assert (out / "cache.jsonl").read_text().count("\n") == lines
    assert json.loads((out / "summary.json").read_text())["counts"] == counts
    # the development-seed replay reads the same run without training anything
    choice = subprocess.run(
        [sys.executable, "-m", "benchmarks.rule_choice", "--config", str(path), str(out),
         "--out", str(tmp_path / "choice.json")],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True,
        timeout=120, check=False,
    )
    assert choice.returncode == 0, choice.stderr[-3000:]
    assert (out / "cache.jsonl").read_text().count("\n") == lines
    replayed = json.loads((tmp_path / "choice.json").read_text())
    assert set(replayed) == {"gates", "scores", "rules"}
    product = replayed["gates"]["chosen"]
    assert product["chance_level"] + product["good"] == 4
    assert product["caught"] == sum(1 for r in rows if r["chance_level"] and r["reason"])


@pytest.mark.slow
def test_two_configs_are_parts_of_one_protocol(tmp_path: Path) -> None:
    """A second ``--config`` adds its grid to the pooled figures, with its own part figures;
    the oracle grid comes from the first part only."""
    folder = write_brightness_folder(tmp_path / "images", images_per_class=40)
    paths = []
    for name, lr_range in (("main", [1.0e-3, 1.0e-1]), ("extremes", [1.0e-7, 1.0e-6])):
        config = worker_config(folder, f"protocol-{name}", epochs=1)
        config["space"]["lr_range"] = [lr_range]
        config["lrrt"] = {"steps": 8, "sma_periods": 2, "bound_rule": "smith_quarter",
                          "compare_rule": None}
        paths.append(write_config(tmp_path / f"{name}.yaml", config))
    out = tmp_path / "out"
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.rejection", "--config", *map(str, paths), "--out",
         str(out), "--quick", "--seeds", "3", "--replicate"],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True,
        timeout=280, check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    rows = json.loads((out / "rows.json").read_text())
    parts = {r["part"] for r in rows}
    assert parts == {str(p) for p in paths} == set(summary["per_part"])
    assert summary["configs"] == [str(p) for p in paths]
    assert summary["counts"]["designs"] == len(rows) == sum(
        part["counts"]["designs"] for part in summary["per_part"].values())
    assert all("oracle" not in r for r in rows if r["part"] == str(paths[1]))
    # replicates: every design of every part trained twice, its label read at the same cut
    assert all(r["replicate_chance_level"] == (r["replicate_best_val_accuracy"]
                                               < r["threshold"]) for r in rows)
    for path in paths:
        part = [r for r in rows if r["part"] == str(path)]
        reliability = summary["per_part"][str(path)]["truth_reliability"]
        assert reliability["designs"] == len(part)
        ceiling = reliability["replicate_as_gate"]
        assert ceiling["chance_level"] + ceiling["good"] == len(part)
    assert set(summary["per_part"][str(paths[0])]["per_seed"]) == {"3"}


def test_extremes_of_a_config_is_its_grid_a_decade_too_low_and_too_high() -> None:
    main = load_config(ROOT / "benchmarks/protocols/fashion-mnist.yaml")
    derived = extremes_of(main)
    shipped = load_config(ROOT / "benchmarks/protocols/fashion-mnist-extremes.yaml")
    assert derived.space == shipped.space  # the shipped part is the derived one
    assert derived.space.lr_range == ((1e-6, 1e-5), (0.5, 5.0))
    assert derived.space.batch_size == (64,)
    assert (derived.space.blocks, derived.space.optimizer) == (main.space.blocks,
                                                               main.space.optimizer)


@pytest.mark.slow
def test_extremes_flag_adds_a_derived_part_on_any_dataset(tmp_path: Path) -> None:
    folder = write_brightness_folder(tmp_path / "images", images_per_class=40)
    config = worker_config(folder, "protocol", epochs=1)
    config["lrrt"] = {"steps": 8, "sma_periods": 2, "bound_rule": "smith_quarter",
                      "compare_rule": None}
    path = write_config(tmp_path / "protocol.yaml", config)
    out = tmp_path / "out"
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.rejection", "--config", str(path), "--out",
         str(out), "--quick", "--seeds", "5", "--extremes"],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True,
        timeout=280, check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["configs"] == [str(path), f"{path}#extremes"]
    rows = json.loads((out / "rows.json").read_text())
    extreme = [r for r in rows if r["part"].endswith("#extremes")]
    assert extreme and all(r["lr_range"][0] < 1e-4 or r["lr_range"][0] > 0.1 for r in extreme)

"""The LRRT plot as an SVG artifact, and the trial note that shows it in optuna-dashboard."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import optuna
import pytest
from optuna_dashboard import get_note

from search.method.lrrt.curve import LRRTCurve
from search.method.lrrt.result import LRRTResult
from search.record import BELOW_PEERS, TrialRecord, TrialRecorder, Verdict
from search.views.lrrt_artifact import (
    CurveSeries,
    LRRTArtifactStore,
    curve_svg,
    nice_ticks,
    series_from_result,
)
from search.views.trial_notes import TrialNotes

SVG = "{http://www.w3.org/2000/svg}"


def make_result(steps: int = 50, diverge: bool = False) -> LRRTResult:
    lrs = [1e-4 + (1e-2 - 1e-4) * i / (steps - 1) for i in range(steps)]
    accuracies = [min(0.9, 0.1 + 0.02 * i) for i in range(steps)]
    losses = [2.3 - 0.03 * i for i in range(steps)]
    if diverge:
        losses[-3:] = [50.0, math.inf, math.nan]
    curve = LRRTCurve(lr_min=1e-4, lr_max=1e-2, steps_per_epoch=25, total_steps=steps,
                      sma_periods=5, lrs=lrs, losses=losses, accuracies=accuracies,
                      epochs=[{"epoch": 1, "step": 25, "lr": lrs[24], "loss": 1.9,
                               "accuracy": 0.4, "val_loss": 1.8, "val_accuracy": 0.45}],
                      diverged=diverge, divergence="non-finite loss" if diverge else None)
    return LRRTResult(curve=curve, best_smoothed_accuracy=0.8, best_val_accuracy=0.45,
                      bound_rule="smith_quarter", bounds=(0.001, 0.004),
                      compare_rule="accuracy_rise", compare_bounds=(0.0005, 0.005))


def parse(svg: str) -> ElementTree.Element:
    return ElementTree.fromstring(svg)


def test_svg_is_valid_and_draws_both_panels_bounds_and_validation() -> None:
    root = parse(curve_svg(series_from_result(make_result()), "B2FL8Adam: LR range test"))
    assert root.tag == f"{SVG}svg"
    texts = [t.text for t in root.iter(f"{SVG}text")]
    assert "B2FL8Adam: LR range test" in texts
    assert {"LRRT accuracy", "LRRT loss", "learning rate"} <= set(texts)
    assert any(t and t.startswith("bounds 0.001") for t in texts)
    paths = list(root.iter(f"{SVG}path"))
    assert len(paths) == 4  # raw + smoothed, accuracy and loss
    assert len(list(root.iter(f"{SVG}circle"))) >= 2  # validation points (+ legend)
    dashed = [line for line in root.iter(f"{SVG}line") if line.get("stroke-dasharray")]
    assert len(dashed) >= 8  # 2 bounds + 2 cross-check bounds per panel, legend


def test_non_finite_values_break_the_line_instead_of_breaking_the_file() -> None:
    svg = curve_svg(series_from_result(make_result(diverge=True)), "diverged")
    assert "nan" not in svg.lower() and "inf" not in svg.lower()
    parse(svg)


def test_escapes_text_and_survives_an_empty_curve() -> None:
    root = parse(curve_svg(CurveSeries(lr=[], accuracy=[], loss=[]), "a <b> & c"))
    assert "a <b> & c" in [t.text for t in root.iter(f"{SVG}text")]


@pytest.mark.parametrize(("low", "high", "expected"), [
    (0.0, 1.0, [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]),
    (1e-4, 1e-2, [0.002, 0.004, 0.006, 0.008, 0.01]),
    (0.0, 2.4, [0.0, 0.5, 1.0, 1.5, 2.0]),
])
def test_nice_ticks(low: float, high: float, expected: list[float]) -> None:
    assert nice_ticks(low, high) == pytest.approx(expected)


def test_upload_attaches_an_svg_artifact_and_a_note_the_callback_updates(
    tmp_path: Path,
) -> None:
    store = optuna.artifacts.FileSystemArtifactStore(str(tmp_path))
    study = optuna.create_study(direction="maximize")
    result = make_result()

    def objective(trial: optuna.Trial) -> float:
        TrialRecorder(trial).started(config_name="B2FL8Adam", run_seed=0, checkpoint_key="k",
                                     device="cpu", worker="w", trial_config={})
        LRRTArtifactStore(store).upload(trial, result)
        TrialRecorder(trial).pruned(Verdict(BELOW_PEERS))
        raise optuna.TrialPruned(BELOW_PEERS)

    study.optimize(objective, n_trials=1, callbacks=[TrialNotes()])
    frozen = study.trials[0]
    record = TrialRecord.from_frozen(frozen)
    artifact_id = record.lrrt_plot_artifact_id
    meta = optuna.artifacts.get_all_artifact_meta(frozen, storage=study._storage)
    assert sorted((m.artifact_id, m.mimetype, m.filename) for m in meta) == sorted([
        (artifact_id, "image/svg+xml", "lrrt-trial-0.svg"),
        (record.lrrt_artifact_id, "application/json", "lrrt-trial-0.json")])
    with store.open_reader(artifact_id) as reader:
        parse(reader.read().decode())
    note = get_note(optuna.Trial(study, frozen._trial_id))
    assert "pruned, reason **below_peers**" in note
    assert f"/artifacts/{study._study_id}/{frozen._trial_id}/{artifact_id}" in note

"""Uploading each trial's range test: the JSON curve and its SVG plot as artifacts, their
ids in the record, the trial's dashboard note; the plot drawn with the gate's verdict."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import optuna
import pytest
from optuna_dashboard import get_note

from search.method.lrrt.result import LRRTResult, curve_facts
from search.method.pruner import LRRTPruner
from search.record import (
    BELOW_PEERS,
    CHANCE_LEVEL,
    CURVE_POINTS,
    SHORT_CURVE_POINTS,
    LRRTSummary,
    TrialRecord,
    TrialRecorder,
    Verdict,
    frozen_trial,
)
from search.service.lrrt_artifacts import LRRTArtifactStore, TrialNotes
from search.views.lrrt_artifact import artifact_curve
from tests.search.views.test_lrrt_artifact import group, make_result, parse, texts


def test_upload_attaches_an_svg_artifact_and_a_note_the_callback_updates(
    tmp_path: Path,
) -> None:
    store = optuna.artifacts.FileSystemArtifactStore(str(tmp_path))
    study = optuna.create_study(direction="maximize")
    result = make_result()

    def objective(trial: optuna.Trial) -> float:
        TrialRecorder(trial).started(config_name="B2FL8Adam", run_seed=0, checkpoint_key="k",
                                     device="cpu", worker="w", trial_config={})
        LRRTArtifactStore(store).upload(trial, result, None)
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
        assert "B2FL8Adam: LR range test" in texts(parse(reader.read().decode()))
    with store.open_reader(record.lrrt_artifact_id) as reader:
        assert LRRTResult.from_json(reader.read().decode()).summary.bounds == (0.001, 0.004)
    note = get_note(optuna.Trial(study, frozen._trial_id))
    assert "pruned, reason **below_peers**" in note
    assert f"/artifacts/{study._study_id}/{frozen._trial_id}/{artifact_id}" in note


def chance_result() -> LRRTResult:
    """A test that stayed at chance without moving the weights, whose rule still gave bounds
    below the tested range."""
    curve = replace(make_result().curve, weight_change=1e-8, lr_min=0.01, lr_max=0.1,
                    lrs=[0.01 + 0.09 * i / 49 for i in range(50)],
                    accuracies=[0.1 + 0.001 * (i % 5) for i in range(50)])
    return LRRTResult(curve, LRRTSummary(score=0.141, group="g", num_classes=10, **{
        **curve_facts(curve), "bound_rule": "smith_quarter", "bounds": (0.0025, 0.01)}))


def test_the_plot_of_a_design_the_gate_rejects_has_no_bounds_and_shows_the_threshold(
    tmp_path: Path,
) -> None:
    """The SVG is drawn before the gate's verdict is recorded, with the verdict the gate
    reached on the stored facts (the objective asks once and hands it over)."""
    store = optuna.artifacts.FileSystemArtifactStore(str(tmp_path))
    study = optuna.create_study(direction="maximize", pruner=LRRTPruner())
    result = chance_result()

    def objective(trial: optuna.Trial) -> float:
        recorder = TrialRecorder(trial)
        recorder.started(config_name="B2FL2SGD", run_seed=0, checkpoint_key="k",
                         device="cpu", worker="w", trial_config={"lr_range": [0.01, 0.1]})
        recorder.range_test(result.summary, result.curve.points(), n_params=10)
        verdict = study.pruner.gate(study, frozen_trial(trial))
        assert verdict is not None and verdict.reason == CHANCE_LEVEL
        LRRTArtifactStore(store).upload(trial, result, verdict)
        raise optuna.TrialPruned(CHANCE_LEVEL)

    study.optimize(objective, n_trials=1)
    record = TrialRecord.from_frozen(study.trials[0])
    with store.open_reader(record.lrrt_plot_artifact_id) as reader:
        root = parse(reader.read().decode())
    assert group(root, "line0-bounds") is None
    assert not any("LR bounds" in w for w in texts(root))
    assert group(root, "line0-threshold") is not None
    assert "chance threshold 0.190" in texts(root)
    assert any(w.endswith("rejected: chance_level (0.141 < 0.190)") for w in texts(root))


def test_the_artifact_holds_the_curve_and_the_attrs_keep_none_once_it_is_uploaded(
    tmp_path: Path,
) -> None:
    store = optuna.artifacts.FileSystemArtifactStore(str(tmp_path))
    study = optuna.create_study(direction="maximize")
    result = make_result(steps=3000)

    def objective(trial: optuna.Trial) -> float:
        recorder = TrialRecorder(trial)
        recorder.started(config_name="B1", run_seed=0, checkpoint_key="k", device="cpu",
                         worker="w", trial_config={})
        recorder.range_test(result.summary, result.curve.points(),
                            n_params=10)
        short = TrialRecord.from_frozen(frozen_trial(trial)).lrrt_curve
        assert short is not None and len(short.lr) == SHORT_CURVE_POINTS
        assert all(len(repr(v)) <= 10 for v in short.lr + short.accuracy + short.loss)
        LRRTArtifactStore(store).upload(trial, result, None)
        return 0.5

    study.optimize(objective, n_trials=1)
    frozen = study.trials[0]
    record = TrialRecord.from_frozen(frozen)
    assert record.lrrt_curve is None and frozen.user_attrs["lrrt_curve"] is None
    curve = artifact_curve(record, store)
    assert curve is not None and len(curve.lr) == CURVE_POINTS
    assert curve.lr[0] == pytest.approx(1e-4) and curve.lr[-1] == pytest.approx(1e-2)
    assert artifact_curve(record, None) is None  # no store: nothing to draw
    assert artifact_curve(record, optuna.artifacts.FileSystemArtifactStore(
        str(tmp_path / "elsewhere"))) is None

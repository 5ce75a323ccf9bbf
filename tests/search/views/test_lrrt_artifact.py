"""The LRRT plot as an SVG artifact, and the trial note that shows it in optuna-dashboard."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import optuna
from optuna_dashboard import get_note

from search.method.lrrt.curve import LRRTCurve
from search.method.lrrt.result import LRRTResult
from search.record import BELOW_PEERS, CurvePoints, TrialRecord, TrialRecorder, Verdict
from search.views.lrrt_artifact import LRRTArtifactStore, result_svg
from search.views.lrrt_figure import LRRTLine, lrrt_svg
from search.views.trial_notes import TrialNotes

SVG = "{http://www.w3.org/2000/svg}"


def make_result(steps: int = 50, diverge: bool = False) -> LRRTResult:
    lrs = [1e-4 + (1e-2 - 1e-4) * i / (steps - 1) for i in range(steps)]
    accuracies = [min(0.9, 0.1 + 0.8 * i / steps) for i in range(steps)]
    losses = [2.3 - 1.5 * i / steps for i in range(steps)]
    if diverge:
        losses[-3:] = [50.0, math.inf, math.nan]
    curve = LRRTCurve(lr_min=1e-4, lr_max=1e-2, steps_per_epoch=steps // 2, total_steps=steps,
                      sma_periods=5, lrs=lrs, losses=losses, accuracies=accuracies,
                      epochs=[{"epoch": 1, "step": steps // 2, "lr": lrs[steps // 2 - 1],
                               "loss": 1.9, "accuracy": 0.4, "val_loss": 1.8,
                               "val_accuracy": 0.45}],
                      diverged=diverge, divergence="non-finite loss" if diverge else None)
    return LRRTResult(curve=curve, best_smoothed_accuracy=0.8, best_val_accuracy=0.45,
                      bound_rule="smith_quarter", bounds=(0.001, 0.004),
                      compare_rule="accuracy_rise", compare_bounds=(0.0005, 0.005))


def parse(svg: str) -> ElementTree.Element:
    return ElementTree.fromstring(svg)


def texts(root: ElementTree.Element) -> list[str]:
    return ["".join(t.itertext()) for t in root.iter(f"{SVG}text")]


def group(root: ElementTree.Element, gid: str) -> ElementTree.Element | None:
    return next((g for g in root.iter(f"{SVG}g") if g.get("id") == gid), None)


def test_svg_draws_both_panels_text_as_text_with_the_bounds_and_validation() -> None:
    svg = result_svg(make_result(), "B2FL8Adam", 3)
    assert svg.startswith("<svg")  # served as is by optuna-dashboard
    root = parse(svg)
    assert root.tag == f"{SVG}svg" and root.get("width") == "720pt"  # 960 px in a browser
    words = texts(root)
    assert "B2FL8Adam: LR range test" in words
    assert any(w.startswith("trial 3 - LR 0.0001..0.01 - best smoothed") for w in words)
    assert {"smoothed accuracy", "smoothed loss", "accuracy", "loss"} <= set(words)
    assert words.count("learning rate") == 2  # one per axes
    assert {"B2FL8Adam", "per batch", "validation (epoch end)",
            "LR bounds 0.001..0.004"} <= set(words)  # the legend
    for gid in ("line0-accuracy", "line0-loss", "line0-raw-accuracy", "line0-raw-loss",
                "line0-validation-accuracy", "line0-validation-loss", "line0-bounds"):
        assert group(root, gid) is not None, gid
    ticks = [path.get("d").split() for path in group(root, "line0-bounds").iter(f"{SVG}path")]
    assert all(d[0] == "M" and d[3] == "L" and d[1] == d[4] for d in ticks)  # vertical
    assert len({d[1] for d in ticks}) == 2  # one tick per bound


def test_long_curves_are_thinned_and_the_file_stays_small() -> None:
    svg = result_svg(make_result(steps=5000), "B2FL8Adam")
    path = group(parse(svg), "line0-raw-loss").find(f"{SVG}path")
    assert path.get("d").count("L") <= 400
    assert len(svg) < 120_000


def test_non_finite_values_break_the_line_instead_of_breaking_the_file() -> None:
    svg = result_svg(make_result(diverge=True), "diverged")
    words = texts(parse(svg))
    assert any(w.endswith("diverged: non-finite loss") for w in words)
    assert "nan" not in svg.lower().replace("nan-", "") and "inf" not in svg.lower()


def test_escapes_text_and_survives_an_empty_curve() -> None:
    empty = LRRTLine(label="a <b> & c $x$", curve=CurvePoints((), (), ()), bounds=(0.1, 0.2))
    svg = lrrt_svg([empty], "a <b> & c", "x < y")
    assert "a &lt;b&gt; &amp; c" in svg
    words = texts(parse(svg))
    assert {"a <b> & c", "x < y"} <= set(words)  # title and subtitle
    assert "a <b> & c $x$" in words  # legend: no TeX, no tags
    parse(lrrt_svg([], "nothing yet"))


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
        assert "B2FL8Adam: LR range test" in texts(parse(reader.read().decode()))
    with store.open_reader(record.lrrt_artifact_id) as reader:
        assert LRRTResult.from_json(reader.read().decode()).bounds == (0.001, 0.004)
    note = get_note(optuna.Trial(study, frozen._trial_id))
    assert "pruned, reason **below_peers**" in note
    assert f"/artifacts/{study._study_id}/{frozen._trial_id}/{artifact_id}" in note

"""``cnnsearch report``: the thesis-shaped table, grouped LRRT curves, best trials and Optuna
views in one self-contained HTML file. Figures are checked as plotly objects, the file as
text; ``test_browser.py`` opens it in Chromium."""

from __future__ import annotations

import json
import re
from html import escape as html_escape
from pathlib import Path

import optuna
import pytest
import torch
from optuna.distributions import CategoricalDistribution
from optuna.trial import TrialState, create_trial

from search.method.training import make_triangular2
from search.record import CURVE_POINTS, STUDY_ARTIFACT_DIR, TrialRecord
from search.views.lrrt_artifact import read_result
from search.views.report import (
    best_trials,
    build_report,
    group_trials,
    lrrt_group_figure,
    optuna_views,
    report_trial,
    triangular2_lr,
    triangular2_schedule,
)
from search.views.report.build import report_artifacts
from tests.conftest import run_cli

DISTRIBUTIONS = {
    "blocks": CategoricalDistribution([1, 2]),
    "optimizer": CategoricalDistribution(["adam", "sgd"]),
    "lr_range": CategoricalDistribution(["0.0001-0.01", "0.01-0.1"]),
}


def attrs_for(name: str, optimizer: str, lr_range: tuple[float, float], *, dataset: str,
              score: float, bounds: list[float] | None = None,
              val_curve: list[float] | None = None, reason: str | None = None) -> dict:
    lrs = [lr_range[0] + (lr_range[1] - lr_range[0]) * i / 9 for i in range(10)]
    attrs = {
        "config_name": name,
        "trial_config": {"dataset": {"name": dataset}, "optimizer": optimizer,
                         "lr_range": list(lr_range),
                         "train": {"epochs": 4, "step_size_epochs": 1}},
        "lrrt": {"max_batch_accuracy": score + 0.05, "max_epoch_accuracy": score - 0.05,
                 "best_val_accuracy": score - 0.02, "best_smoothed_accuracy": score,
                 "bounds": bounds, "lr_min": lr_range[0], "lr_max": lr_range[1]},
        "num_classes": 10,
        "lrrt_curve": {"lr": lrs, "accuracy": [score * i / 9 for i in range(10)],
                       "loss": [2.3 - 0.1 * i for i in range(10)]},
        "seconds": 1.5,
    }
    if bounds:
        attrs["lr_bounds"] = bounds
    if val_curve:
        attrs["val_curve"] = val_curve
        attrs["lr_curve"] = [bounds[1], bounds[0]] * (len(val_curve) // 2)
    if reason:
        attrs["prune_reason"] = reason
        attrs["prune_detail"] = "detail of " + reason
    return attrs


def synthetic_study(complete: int = 3) -> optuna.study.Study:
    """Two datasets x two ranges; pruned and complete trials, no training needed."""
    study = optuna.create_study(direction="maximize", study_name="synthetic")
    specs = [
        ("B2FL32Adam", "adam", (1e-4, 1e-2), "cifar10", 0.49, None),
        ("B3FL8Adam", "adam", (1e-4, 1e-2), "cifar10", 0.10, "chance_level"),
        ("B2FL32SGD", "sgd", (1e-2, 1e-1), "cifar10", 0.50, None),
        ("B2FL8Adam", "adam", (1e-4, 1e-2), "eurosat", 0.60, None),
        ("B4FL8Adam", "adam", (1e-2, 1e-1), "eurosat", 0.30, "below_peers"),
    ]
    done = 0
    for number, (name, optimizer, lr_range, dataset, score, reason) in enumerate(specs):
        params = {"blocks": 1 + number % 2, "optimizer": optimizer,
                  "lr_range": f"{lr_range[0]:g}-{lr_range[1]:g}"}
        if reason is None and done < complete:
            done += 1
            bounds = [lr_range[0], lr_range[0] * 10]
            curve = [score - 0.1, score, score + 0.05, score + 0.1]
            trial = create_trial(
                state=TrialState.COMPLETE, value=max(curve), params=params,
                distributions=DISTRIBUTIONS,
                user_attrs=attrs_for(name, optimizer, lr_range, dataset=dataset, score=score,
                                     bounds=bounds, val_curve=curve),
                intermediate_values={0: score, **{i + 1: v for i, v in enumerate(curve)}},
            )
        else:
            trial = create_trial(
                state=TrialState.PRUNED, params=params, distributions=DISTRIBUTIONS,
                user_attrs=attrs_for(name, optimizer, lr_range, dataset=dataset, score=score,
                                     reason=reason or "median"),
                intermediate_values={0: score},
            )
        study.add_trial(trial)
    return study


def test_rows_read_the_thesis_columns_from_user_attrs() -> None:
    rows = [report_trial(t) for t in synthetic_study().trials]
    first, pruned = rows[0], rows[1]
    assert (first.name, first.dataset, first.lr_range, first.optimizer) == (
        "B2FL32Adam", "cifar10", (1e-4, 1e-2), "adam")
    assert first.max_batch_accuracy == pytest.approx(0.54)
    assert first.max_epoch_accuracy == pytest.approx(0.44)
    assert first.lrrt_val_accuracy == pytest.approx(0.47)
    assert first.lr_bounds == (1e-4, 1e-3)
    assert first.final_val_accuracy == pytest.approx(0.59)
    assert (pruned.state, pruned.reason, pruned.detail) == (
        "PRUNED", "chance_level", "detail of chance_level")
    assert pruned.final_val_accuracy is None and pruned.lr_bounds is None


def test_groups_follow_the_thesis_dataset_then_range() -> None:
    groups = group_trials(report_trial(t) for t in synthetic_study().trials)
    assert list(groups) == [("cifar10", (1e-4, 1e-2)), ("cifar10", (1e-2, 1e-1)),
                            ("eurosat", (1e-4, 1e-2)), ("eurosat", (1e-2, 1e-1))]
    assert [t.name for t in groups[("cifar10", (1e-4, 1e-2))]] == ["B2FL32Adam", "B3FL8Adam"]


def test_lrrt_figure_greys_and_dashes_pruned_designs_with_their_reason() -> None:
    trials = [report_trial(t) for t in synthetic_study().trials][:2]
    figure = lrrt_group_figure("cifar10", trials)
    lines = [trace for trace in figure.data
             if trace.mode == "lines" and trace.name != "chance threshold"]
    assert len(lines) == 4  # accuracy + loss per configuration
    survivor, pruned = lines[0], lines[2]
    assert survivor.line.dash == "solid" and pruned.line.dash == "dash"
    assert pruned.line.color == "#9e9e9e" and "pruned: chance_level" in pruned.name
    assert "chance_level" in pruned.hovertemplate
    assert [t.xaxis for t in lines] == ["x", "x2", "x", "x2"]
    markers = [trace for trace in figure.data if trace.mode == "markers"]
    assert len(markers) == 1 and tuple(markers[0].x) == (1e-4, 1e-3)  # survivor's bounds


@pytest.mark.parametrize(("bounds", "step_size", "iterations"), [
    ((1e-4, 1.3375e-3), 8, 100), ((0.01, 0.047125), 5, 61), ((0.001, 0.004), 1, 7),
])
def test_triangular2_matches_the_trainings_torch_cycliclr(
    bounds: tuple[float, float], step_size: int, iterations: int,
) -> None:
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=bounds[0])
    scheduler = make_triangular2(optimizer, bounds, steps_per_epoch=step_size,
                                 step_size_epochs=1)
    expected = []
    for _ in range(iterations):
        expected.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert [triangular2_lr(i, bounds, step_size) for i in range(iterations)] == pytest.approx(
        expected, rel=1e-9)


def test_triangular2_schedule_halves_the_amplitude_every_cycle() -> None:
    xs, lrs = triangular2_schedule((0.001, 0.005), epochs=8, step_size_epochs=2,
                                   points_per_epoch=4)
    assert xs[0] == 0 and xs[-1] == 8
    peaks = {x: lr for x, lr in zip(xs, lrs, strict=True) if x in (2, 6)}
    assert peaks == pytest.approx({2: 0.005, 6: 0.003})
    assert lrs[xs.index(4)] == pytest.approx(0.001)


def test_best_trials_are_the_completed_ones_by_final_accuracy() -> None:
    rows = [report_trial(t) for t in synthetic_study().trials]
    assert [t.name for t in best_trials(rows, 2)] == ["B2FL8Adam", "B2FL32SGD"]


def test_report_is_self_contained_sortable_and_complete() -> None:
    html = build_report(synthetic_study())
    assert html.count("<script") == html.count("</script>")
    assert not re.search(r"<script[^>]+src=|<link[^>]+href=\"?https?:|@import", html)
    assert html.count("Plotly.newPlot") >= 4 + 1 + 4  # LRRT groups, best trials, Optuna
    for heading in ("cifar10, LR range [0.0001, 0.01]", "eurosat, LR range [0.01, 0.1]"):
        assert f">{heading}</h3>" in html
    assert html.count('<table class="sortable results"') == 4
    assert 'data-value="chance_level"' in html and "detail of chance_level" in html
    assert "pruned: below_peers" in html  # legend of the LRRT figure
    for title in ("Optimization history", "Parameter importances", "Parallel coordinates"):
        assert f"<h3>{title}</h3>" in html
    assert "addEventListener('click'" in html


def test_parameter_importances_are_skipped_with_a_note_when_they_cannot_be_computed() -> None:
    html = build_report(synthetic_study(complete=1))
    assert ("Parameter importances</h3>\n<p class=\"note\">not available for this study: "
            "needs at least 2 completed trials (1 so far)") in html


def test_report_of_an_empty_study() -> None:
    html = build_report(optuna.create_study(direction="maximize", study_name="empty"))
    assert "This study has no trials yet." in html and "No completed trials yet." in html


def test_cli_report_of_a_real_search(tiny_visual_study: dict, tmp_path: Path) -> None:
    out = tmp_path / "nested" / "report.html"
    result = run_cli("report", "--study", "visual", "--storage", tiny_visual_study["url"],
                     "-o", str(out))  # a folder that does not exist: one line, nothing made
    assert result.returncode == 2 and "does not exist" in result.stderr, result.stderr
    assert not out.parent.exists()
    out.parent.mkdir()
    result = run_cli("report", "--study", "visual", "--storage", tiny_visual_study["url"],
                     "-o", str(out))
    assert result.returncode == 0, result.stderr
    assert f"wrote {out}" in result.stdout
    html = out.read_text()
    study = optuna.load_study(study_name="visual", storage=tiny_visual_study["url"])
    for trial in study.trials:
        assert f'data-trial="{trial.number}"' in html
        assert trial.user_attrs["config_name"] in html
        if trial.state == TrialState.PRUNED:
            assert f'data-value="{trial.user_attrs["prune_reason"]}"' in html
    assert "fashion-mnist, LR range [0.0001, 0.01]" in html
    assert "fashion-mnist, LR range [0.01, 0.1]" in html
    config = json.dumps(study.user_attrs["cnnsearch_config"], indent=2)
    assert "search configuration" in html
    assert html_escape(config.splitlines()[1].strip()) in html


def test_cli_report_errors_are_one_line(tiny_visual_study: dict, tmp_path: Path) -> None:
    unknown = run_cli("report", "--study", "nope", "--storage", tiny_visual_study["url"],
                      "-o", str(tmp_path / "r.html"))
    assert unknown.returncode == 2
    assert unknown.stderr.strip().count("\n") == 0 and "no study named 'nope'" in unknown.stderr
    missing = run_cli("report", "--study", "visual", "--storage",
                      f"sqlite:///{tmp_path / 'absent.db'}", "-o", str(tmp_path / "r.html"))
    assert missing.returncode == 2 and "does not exist" in missing.stderr
    assert not (tmp_path / "absent.db").exists() and not (tmp_path / "r.html").exists()


def test_cli_report_finds_the_curves_in_a_moved_artifact_folder(
        tiny_visual_study: dict, tmp_path: Path) -> None:
    """The study records where it was searched; the folder was moved since (or the study
    is read on another machine): ``--artifact-dir`` points the report at it."""
    import shutil

    shutil.copy(tiny_visual_study["folder"] / "study.db", tmp_path / "study.db")
    shutil.copytree(tiny_visual_study["artifacts"], tmp_path / "moved")
    url = f"sqlite:///{tmp_path / 'study.db'}"
    optuna.load_study(study_name="visual", storage=url).set_user_attr(
        STUDY_ARTIFACT_DIR, str(tmp_path / "gone"))
    missing_note = "range test curve(s) are in the trials' artifacts"
    without = run_cli("report", "--study", "visual", "--storage", url,
                      "-o", str(tmp_path / "without.html"))
    assert without.returncode == 0, without.stderr
    assert missing_note in (tmp_path / "without.html").read_text()
    moved = run_cli("report", "--study", "visual", "--storage", url,
                    "--artifact-dir", str(tmp_path / "moved"), "-o", str(tmp_path / "r.html"))
    assert moved.returncode == 0, moved.stderr
    html = (tmp_path / "r.html").read_text()
    assert missing_note not in html
    assert html.count('class="lrrt-figure"') == 2  # both {dataset, range} groups drawn


def test_failed_and_running_trials_are_listed_with_their_state() -> None:
    study = synthetic_study()
    study.add_trial(create_trial(state=TrialState.FAIL, user_attrs={
        "config_name": "B4FL32Adam", "fail_reason": "oom", "fail_detail": "CUDA out of memory",
        "trial_config": {"dataset": {"name": "cifar10"}, "optimizer": "adam",
                         "lr_range": [1e-4, 1e-2]}}))
    running = study.ask()
    running.set_user_attr("config_name", "B2FL2SGD")  # nothing else recorded yet
    rows = {row.name: row for row in map(report_trial, study.trials)}
    assert (rows["B4FL32Adam"].state, rows["B4FL32Adam"].reason) == ("FAIL", "oom")
    assert (rows["B2FL2SGD"].state, rows["B2FL2SGD"].dataset) == ("RUNNING", "?")
    html = build_report(study)
    assert 'class="failed" data-trial="5"' in html and "CUDA out of memory" in html
    assert 'data-trial="6"' in html and ">?, LR range ?</h3>" in html


def evidence_study() -> optuna.study.Study:
    """A chance_level design with its evidence, one never validated during its range test,
    and one that trained to chance with a range too narrow."""
    study = optuna.create_study(direction="maximize", study_name="evidence")
    base = attrs_for("B1FL2SGD", "sgd", (1e-2, 1e-1), dataset="cifar10", score=0.141)
    study.add_trial(create_trial(
        state=TrialState.PRUNED, params={}, distributions={}, intermediate_values={0: 0.141},
        user_attrs={**base, "prune_reason": "chance_level",
                    "prune_evidence": {"score": 0.141, "threshold": 0.19}}))
    unmeasured = attrs_for("B2FL2SGD", "sgd", (1e-2, 1e-1), dataset="cifar10", score=0.4,
                           reason="below_peers")
    unmeasured["lrrt"].update(best_val_accuracy=0.0, max_epoch_accuracy=0.0)  # older: no epoch
    study.add_trial(create_trial(state=TrialState.PRUNED, params={}, distributions={},
                                 intermediate_values={0: 0.4}, user_attrs=unmeasured))
    chance = attrs_for("B3FL2SGD", "sgd", (1e-2, 1e-1), dataset="cifar10", score=0.5,
                       bounds=[0.025, 0.1], val_curve=[0.1, 0.1])
    study.add_trial(create_trial(state=TrialState.COMPLETE, value=0.1, params={},
                                 distributions={}, intermediate_values={0: 0.5, 1: 0.1},
                                 user_attrs={**chance, "lrrt_limit_found": False}))
    return study


def cells(html: str, trial: int) -> list[str]:
    row = re.search(rf'<tr[^>]*data-trial="{trial}">(.*?)</tr>', html, re.S).group(1)
    return [re.sub(r"<[^>]+>", "", cell) for cell in re.findall(r"<td.*?</td>", row, re.S)]


def test_the_reason_cell_states_the_chance_threshold_missed() -> None:
    html = build_report(evidence_study())
    assert cells(html, 0)[10] == "chance_level: 0.141 &lt; 0.190"
    assert 'data-value="chance_level"' in html  # sorting reads the bare reason
    rows = [report_trial(t) for t in evidence_study().trials]
    assert rows[0].reason_text == "chance_level: 0.141 < 0.190"
    figure = lrrt_group_figure("cifar10", rows)
    (level,) = [t for t in figure.data if t.name == "chance threshold"]
    assert tuple(level.y) == (0.19, 0.19)


def test_values_never_measured_are_a_dash_in_the_report() -> None:
    html = build_report(evidence_study())
    row = cells(html, 1)
    assert row[5:7] == ["-", "-"]  # max epoch acc, val acc (LRRT): no epoch ended
    assert "0.0000" not in html.split('<section id="results"')[1].split("</section>")[0]


def test_flags_are_in_the_report_table() -> None:
    html = build_report(evidence_study())
    assert COLUMNS_FLAGS in html
    assert cells(html, 2)[-1] == "trained_to_chance range_too_narrow"
    assert "range_too_narrow: the range test found no LR where training stops" in html


COLUMNS_FLAGS = '<th data-type="text" title="click to sort">flags</th>'


def test_optunas_views_name_the_value() -> None:
    views = {title: figure for title, figure, _ in optuna_views(synthetic_study())}
    assert views["Optimization history"].layout.yaxis.title.text == "validation accuracy"
    assert "validation accuracy" in str(views["Parallel coordinates"].to_plotly_json())


def test_every_user_attr_of_a_real_search_is_small(tiny_visual_study: dict) -> None:
    """optuna-dashboard shows each attr on one line and ``optuna trials`` as a column: a
    long one makes the page thousands of pixels wide. The curves are in the artifacts."""
    study = optuna.load_study(study_name="visual", storage=tiny_visual_study["url"])
    sizes = {}
    for trial in study.trials:
        for key, value in trial.user_attrs.items():
            if key != "trial_config":
                sizes[f"{trial.number}:{key}"] = len(json.dumps(value))
        assert len(json.dumps(trial.user_attrs["trial_config"])) < 1500
    assert max(sizes.values()) <= 300, sorted(sizes.items(), key=lambda kv: -kv[1])[:5]


def test_the_report_draws_the_curves_from_the_artifacts(tiny_visual_study: dict) -> None:
    study = optuna.load_study(study_name="visual", storage=tiny_visual_study["url"])
    store = report_artifacts(study)
    assert store is not None  # the folder the study was searched with
    for frozen in study.trials:
        line = report_trial(frozen, store).line
        record = TrialRecord.from_frozen(frozen)
        result = read_result(store, record.lrrt_artifact_id)
        assert line is not None and record.lrrt_curve is None, frozen.number
        assert len(line.curve.lr) == min(len(result.curve.lrs), CURVE_POINTS)
    bare = [report_trial(t) for t in study.trials]  # no artifact store
    assert all(t.line is None for t in bare)
    html = build_report(study, artifact_dir="")
    assert "range test curve(s) are in the trials' artifacts" in html

"""export lists designs, not trials: ``--top N`` gives N different designs (each its best
trial), ``--pareto`` each design of the front once; on a real SQLite study."""

from __future__ import annotations

from typing import Any

import optuna
from optuna.distributions import CategoricalDistribution
from optuna.trial import TrialState, create_trial

from search.config import parse_config
from search.jobs.export import export_best, export_pareto
from search.method.suggest import sample_trial_config
from search.record import CONFIG_NAME, LR_BOUNDS, REPEAT_OF, TRIAL_CONFIG

CONFIG = parse_config({
    "study": "export", "dataset": {"name": "fashion-mnist"},
    "space": {"filters": [4, 8, 16], "optimizer": ["adam"], "lr_range": [[1.0e-4, 1.0e-2]]},
})
DISTRIBUTIONS = {"filters": CategoricalDistribution([4, 8, 16])}


def add(study: optuna.Study, number: int, filters: int, values: list[float],
        **attrs: Any) -> None:
    """A finished trial of the design ``filters`` as a search records it (run seed from
    its number: a design trained twice has two seeds)."""
    design = sample_trial_config(optuna.trial.FixedTrial({"filters": filters}, number),
                                 CONFIG)
    trained = {} if REPEAT_OF in attrs else {LR_BOUNDS: [1e-3, 4e-3]}
    study.add_trial(create_trial(
        state=TrialState.COMPLETE, values=values, params={"filters": filters},
        distributions=DISTRIBUTIONS,
        user_attrs={CONFIG_NAME: design.name, TRIAL_CONFIG: design.to_dict(), **trained,
                    **attrs}))


def test_top_two_are_two_designs_each_its_best_trial(tmp_path) -> None:
    study = optuna.create_study(study_name="export", direction="maximize",
                                storage=f"sqlite:///{tmp_path / 'export.db'}")
    add(study, 0, 8, [0.85])
    add(study, 1, 8, [0.90])  # the same design trained again, another seed: better
    add(study, 2, 8, [0.90], **{REPEAT_OF: 1})  # a skipped repeat: not trained
    add(study, 3, 4, [0.80])
    add(study, 4, 16, [0.70])
    entries = export_best(study, 2)["configs"]
    assert [(e["rank"], e["trial"], e["name"]) for e in entries] == [
        (1, 1, "B2FL8Adam"), (2, 3, "B2FL4Adam")]
    assert [e["trial"] for e in export_best(study, 10)["configs"]] == [1, 3, 4]


def test_pareto_lists_each_design_of_the_front_once(tmp_path) -> None:
    study = optuna.create_study(study_name="front", directions=["maximize", "minimize"],
                                storage=f"sqlite:///{tmp_path / 'front.db'}")
    add(study, 0, 8, [0.9, 100.0])
    add(study, 1, 8, [0.9, 100.0])  # the same design and point, another run seed
    add(study, 2, 4, [0.8, 50.0])
    entries = export_pareto(study)["configs"]
    assert [(e["trial"], e["name"]) for e in entries] == [(0, "B2FL8Adam"), (2, "B2FL4Adam")]


# --------------------------------------------------------------------------- told from outside
def test_values_told_from_outside_are_left_out_of_export_and_flagged_by_trials_and_report(
    tmp_path,
) -> None:
    """A dashboard's "tell" of 999.0 was ranked first by export. On a copy of the legacy
    study: its best trial's record told again as 999.0 (as the dashboard would, on a trial
    cnnsearch trained), and a trial cnnsearch never started, told 998.0."""
    import json
    import shutil

    from tests.conftest import ROOT, run_cli

    shutil.copy(ROOT / "tests" / "fixtures" / "legacy_study" / "study.db", tmp_path / "s.db")
    url = f"sqlite:///{tmp_path / 's.db'}"
    study = optuna.load_study(study_name="legacy", storage=url)
    best = max((t for t in study.trials if t.state == TrialState.COMPLETE),
               key=lambda t: t.value)
    study.add_trial(create_trial(state=TrialState.COMPLETE, value=999.0, params=best.params,
                                 distributions=best.distributions, user_attrs=best.user_attrs))
    study.add_trial(create_trial(state=TrialState.COMPLETE, value=998.0))
    told, bare = len(study.trials) - 2, len(study.trials) - 1

    export = run_cli("export", "--study", "legacy", "--storage", url, "--format", "json",
                     cwd=tmp_path)
    assert export.returncode == 0, export.stderr
    ranked = json.loads(export.stdout)["configs"]
    assert ranked[0]["trial"] == best.number and ranked[0]["score"] == best.value
    assert {entry["trial"] for entry in ranked}.isdisjoint({told, bare})
    assert f"left out trial(s) {told}, {bare}: their values were not recorded by cnnsearch" \
        in export.stderr

    table = run_cli("trials", "--study", "legacy", "--storage", url, cwd=tmp_path)
    assert table.returncode == 0, table.stderr
    assert "2 untrusted (values not recorded by cnnsearch: not ranked)" in table.stdout
    assert f"best trial {best.number} " in table.stdout
    rows = [line for line in table.stdout.splitlines() if line.startswith(f"{told} ")]
    assert rows and "untrusted" in rows[0]

    report = run_cli("report", "--study", "legacy", "--storage", url, "-o",
                     str(tmp_path / "r.html"), cwd=tmp_path, timeout=300)
    assert report.returncode == 0, report.stderr
    assert "untrusted: it holds 999" in (tmp_path / "r.html").read_text()

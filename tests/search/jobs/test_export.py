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

"""The trial's note on its optuna-dashboard page: the verdict above the LRRT plot."""

from __future__ import annotations

import optuna
from optuna.trial import TrialState

from search.record import (
    CHANCE_LEVEL,
    CurvePoints,
    LRRTSummary,
    TrialRecord,
    TrialRecorder,
    Verdict,
)
from search.views.trial_notes import note_markdown


def recorded(state: TrialState, **steps: object) -> TrialRecord:
    """A trial recorded the way the objective records it, ended in ``state``."""
    study = optuna.create_study(direction="maximize")
    trial = study.ask()
    record = TrialRecorder(trial)
    record.started(config_name="B2FL2SGD", run_seed=0, checkpoint_key="k", device="cpu",
                   worker="w", trial_config={"lr_range": [0.01, 0.1]})
    record.range_test(LRRTSummary(score=0.12, group="g", num_classes=10,
                                  lr_range=(0.01, 0.1), bounds=(0.0025, 0.01)),
                      CurvePoints((), (), ()), n_params=10)
    if "verdict" in steps:
        record.pruned(steps["verdict"])  # type: ignore[arg-type]
    if "val" in steps:
        record.bounds((0.001, 0.004))
        record.epochs(steps["val"], [0.001, 0.002])  # type: ignore[arg-type]
    study.tell(trial, state=state, values=None if state != TrialState.COMPLETE else [0.61])
    return TrialRecord.from_frozen(study.trials[0])


def test_note_states_the_verdict_above_the_plot() -> None:
    verdict = Verdict(CHANCE_LEVEL, "best smoothed accuracy 0.120 < 0.190 needed")
    text = note_markdown(recorded(TrialState.PRUNED, verdict=verdict), "/artifacts/1/2/abc")
    assert text.startswith("**B2FL2SGD**: pruned, reason **chance_level** (best smoothed "
                           "accuracy 0.120 < 0.190 needed)")
    assert "![LR range test of B2FL2SGD](/artifacts/1/2/abc)" in text
    assert "LR bounds" not in text  # a pruned design's bounds were never used
    done = note_markdown(recorded(TrialState.COMPLETE, val=[0.5, 0.61]), "/a")
    assert "best validation accuracy **0.6100**" in done and "LR bounds 0.001..0.004" in done

"""The trial's note on its optuna-dashboard page: the verdict above the LRRT plot."""

from __future__ import annotations

import optuna
from optuna.trial import TrialState

from search.record import (
    CHANCE_LEVEL,
    DIVERGED,
    CurvePoints,
    DivergencePoint,
    LRRTSummary,
    TrialRecord,
    TrialRecorder,
    Verdict,
)
from search.views.trial_notes import note_markdown


def recorded(state: TrialState, summary: dict | None = None, value: float = 0.61,
             **steps: object) -> TrialRecord:
    """A trial recorded the way the objective records it, ended in ``state``; ``summary``
    overrides fields of its range test's summary."""
    study = optuna.create_study(direction="maximize")
    trial = study.ask()
    record = TrialRecorder(trial)
    record.started(config_name="B2FL2SGD", run_seed=0, checkpoint_key="k", device="cpu",
                   worker="w", trial_config={"lr_range": [0.01, 0.1]})
    fields = {"score": 0.12, "lr_range": (0.01, 0.1), "bounds": (0.0025, 0.01),
              "limit_found": True, **(summary or {})}
    record.range_test(LRRTSummary(group="g", num_classes=10, **fields),
                      CurvePoints((), (), ()), n_params=10)
    if "verdict" in steps:
        record.pruned(steps["verdict"])  # type: ignore[arg-type]
    if "val" in steps:
        record.bounds((0.001, 0.004))
        record.epochs(steps["val"], [0.001, 0.002])  # type: ignore[arg-type]
    if "failed" in steps:
        record.failed(str(steps["failed"]))
    study.tell(trial, state=state, values=None if state != TrialState.COMPLETE else [value])
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


def test_a_chance_level_note_says_the_threshold_it_missed() -> None:
    verdict = Verdict(CHANCE_LEVEL, "best smoothed accuracy 0.141 < 0.200 needed",
                      {"score": 0.141, "threshold": 0.2})
    text = note_markdown(recorded(TrialState.PRUNED, {"score": 0.141}, verdict=verdict), "/a")
    assert "best smoothed accuracy 0.141 < 0.200, the chance threshold" in text
    old = note_markdown(recorded(TrialState.PRUNED, {"score": 0.141},
                                 verdict=Verdict(CHANCE_LEVEL)), "/a")  # no evidence
    assert "best smoothed accuracy 0.141 < 0.190, the chance threshold" in old


def test_a_diverged_note_says_where_and_how_high() -> None:
    point = DivergencePoint(73, 0.0826, 94.6)
    verdict = Verdict(DIVERGED, "smoothed loss 94.6 > 4x minimum at step 73 (lr 0.0826)")
    text = note_markdown(recorded(TrialState.PRUNED, {"diverged": True,
                                                      "divergence_point": point},
                                  verdict=verdict), "/a")
    assert "diverged at lr 0.0826 (smoothed loss 94.6)" in text


def test_bounds_never_trained_with_are_not_in_the_note() -> None:
    failed = note_markdown(recorded(TrialState.FAIL, failed="interrupted"), "/a")
    assert "failed (interrupted)" in failed and "LR bounds" not in failed
    rejected = note_markdown(recorded(TrialState.PRUNED, verdict=Verdict(CHANCE_LEVEL)), "/a")
    assert "LR bounds" not in rejected and "0.0025" not in rejected


def test_the_note_warns_about_the_records_flags() -> None:
    at_chance = note_markdown(recorded(TrialState.COMPLETE, {"score": 0.5}, value=0.1,
                                       val=[0.1, 0.1]), "/a")
    assert ("**warning** trained_to_chance: best validation accuracy 0.1000 < 0.190, the "
            "chance threshold") in at_chance
    narrow = note_markdown(recorded(TrialState.COMPLETE, {"score": 0.5, "limit_found": False},
                                    val=[0.5, 0.61]), "/a")
    assert ("**warning** range_too_narrow: the range test found no LR where training stops "
            "improving; a better LR may lie above lr_max (0.1)") in narrow
    assert "trained_to_chance" not in narrow
    peak = note_markdown(recorded(TrialState.COMPLETE, {"score": 0.5, "best_accuracy_lr": 0.095},
                                  val=[0.5, 0.61]), "/a")
    assert "**warning** range_too_narrow: the best smoothed accuracy is at 0.9 x lr_max" in peak
    fine = note_markdown(recorded(TrialState.COMPLETE, {"score": 0.5, "best_accuracy_lr": 0.05},
                                  val=[0.5, 0.61]), "/a")
    assert "warning" not in fine

"""``TrialRecord``: a trial read back, typed and defaulted; why it ended; its flags, each
with the sentence that explains it."""

from __future__ import annotations

from dataclasses import replace

import pytest
from optuna.trial import TrialState, create_trial

from search.record import (
    DEGRADED,
    FLAGS,
    RANGE_TOO_NARROW,
    TRAINED_TO_CHANCE,
    UNTRUSTED,
    DivergencePoint,
    TrialRecord,
    Verdict,
    flag_notes,
    flags_legend,
    pareto_front,
    trusted,
)
from tests.search.views.test_lrrt_artifact import make_result
from tests.search.views.test_results import trial


def test_a_bare_trial_reads_with_defaults_and_malformed_attrs_read_as_unknown() -> None:
    record = TrialRecord.from_frozen(create_trial(
        state=TrialState.COMPLETE, value=0.5,
        user_attrs={"run_seed": True, "n_params": "many", "lr_bounds": [0.1],
                    "val_curve": [0.2, float("nan"), "x", 0.4], "degraded": ["a", 3]}))
    assert (record.config_name, record.trial_config, record.lrrt) == ("?", {}, None)
    assert record.run_seed is None and record.n_params is None and record.lr_bounds is None
    assert record.val_curve == (0.2, 0.4) and record.best_val_accuracy == 0.4
    assert record.degraded == ("a",) and record.design_key == ""


def test_why_a_trial_ended() -> None:
    pruned = TrialRecord.from_frozen(create_trial(
        state=TrialState.PRUNED, intermediate_values={0: 0.1},
        user_attrs={"prune_reason": "chance_level", "prune_detail": "too low",
                    "prune_evidence": {"score": 0.1, "threshold": 0.3}}))
    assert pruned.pruned_because == Verdict("chance_level", "too low",
                                            {"score": 0.1, "threshold": 0.3})
    assert (pruned.reason, pruned.detail, pruned.chance_threshold) == (
        "chance_level", "too low", 0.3)
    assert pruned.rejected_at_lrrt and pruned.trained_bounds is None
    repeat = TrialRecord.from_frozen(create_trial(state=TrialState.COMPLETE, value=0.5,
                                                  user_attrs={"repeat_of": 4}))
    assert repeat.reason == "repeat of 4"
    assert repeat.detail == "same design as trial 4: not trained again"
    failed = TrialRecord.from_frozen(create_trial(state=TrialState.FAIL,
                                                  user_attrs={"fail_reason": "oom"}))
    assert failed.reason == "oom" and failed.failed_because == Verdict("oom")


def test_each_flag_has_a_name_a_meaning_and_a_sentence() -> None:
    assert [flag.name for flag in FLAGS] == [TRAINED_TO_CHANCE, RANGE_TOO_NARROW, DEGRADED,
                                             UNTRUSTED]
    assert all(f"{flag.name} (" in flags_legend() for flag in FLAGS)
    flagged = TrialRecord.from_frozen(trial(
        TrialState.COMPLETE, value=0.1, epochs=2, val_curve=[0.1, 0.1],
        summary={"limit_found": False}, degraded=["checkpoint: disk full"]))
    assert flagged.flags == (TRAINED_TO_CHANCE, RANGE_TOO_NARROW, DEGRADED)
    assert flag_notes(flagged) == [
        "trained_to_chance: best validation accuracy 0.1000 < 0.190, the chance threshold",
        "range_too_narrow: the range test found no LR where training stops improving; a "
        "better LR may lie above lr_max (0.1)",
        "degraded: checkpoint: disk full (the trial went on without what failed to be "
        "written)"]


def test_a_trial_trained_to_chance_is_flagged() -> None:
    record = TrialRecord.from_frozen(trial(TrialState.COMPLETE, value=0.1, epochs=2,
                                           lr_bounds=[0.025, 0.1], val_curve=[0.1, 0.1]))
    assert record.trained_to_chance and record.flags == (TRAINED_TO_CHANCE,)
    good = TrialRecord.from_frozen(trial(TrialState.COMPLETE, value=0.61, epochs=2,
                                         val_curve=[0.5, 0.61]))
    assert not good.trained_to_chance and good.flags == ()
    pruned = TrialRecord.from_frozen(trial(TrialState.PRUNED, epochs=1, val_curve=[0.1],
                                           prune_reason="median"))
    assert not pruned.trained_to_chance  # it did not end COMPLETE


def test_a_range_that_found_no_upper_limit_is_flagged() -> None:
    def flags(**summary: object) -> tuple[str, ...]:
        return TrialRecord.from_frozen(trial(TrialState.COMPLETE, value=0.6, epochs=1,
                                             val_curve=[0.6], summary=summary)).flags

    assert flags(limit_found=False) == (RANGE_TOO_NARROW,)
    assert flags(best_accuracy_lr=0.091) == (RANGE_TOO_NARROW,)  # >= 0.9 x lr_max
    assert flags(best_accuracy_lr=0.05) == ()
    assert flags(limit_found=False, diverged=True,
                 divergence_point=DivergencePoint(5, 0.05, 9.0)) == ()  # it found its limit
    # an older trial: no limit_found, the peak read off the curve its attrs keep
    curve = {"lr": [0.01, 0.05, 0.1], "accuracy": [0.1, 0.3, 0.5], "loss": [2.3, 2, 1.5]}
    old = TrialRecord.from_frozen(trial(TrialState.COMPLETE, value=0.6, epochs=1,
                                        summary={"limit_found": None}, lrrt_curve=curve))
    assert old.lrrt.limit_found is None and old.flags == (RANGE_TOO_NARROW,)


def test_the_summary_says_whether_the_test_found_its_limit() -> None:
    result = make_result()  # a loss still falling at the end of the ramp
    summary = result.summary
    assert summary.limit_found is False
    assert summary.best_accuracy_lr == pytest.approx(result.curve.lrs[-1])


def test_a_value_cnnsearch_did_not_record_is_untrusted() -> None:
    """A dashboard's "tell" of 999.0: on a trial that trained (its own best was 0.61), on
    one cnnsearch never trained, and against the values cnnsearch told."""
    told = TrialRecord.from_frozen(trial(TrialState.COMPLETE, value=999.0, epochs=2,
                                         val_curve=[0.5, 0.61]))
    assert told.untrusted and told.flags == (UNTRUSTED,)
    assert flag_notes(told) == ["untrusted: it holds 999, cnnsearch recorded a best "
                                "validation accuracy of 0.61: told from outside (e.g. the "
                                "dashboard); not exported, not ranked"]
    bare = TrialRecord.from_frozen(create_trial(state=TrialState.COMPLETE, value=999.0))
    assert bare.untrusted  # no design: cnnsearch never started it
    recorded = trial(TrialState.COMPLETE, value=999.0, epochs=2, val_curve=[0.5, 0.61])
    recorded.user_attrs["told_values"] = [0.61]
    assert TrialRecord.from_frozen(recorded).untrusted
    recorded.user_attrs["told_values"] = [999.0]  # what cnnsearch itself told: ours
    assert not TrialRecord.from_frozen(recorded).untrusted
    ours = TrialRecord.from_frozen(trial(TrialState.COMPLETE, value=0.61, epochs=2,
                                         val_curve=[0.5, 0.61]))
    assert not ours.untrusted and not trusted([told, bare]) and trusted([ours]) == [ours]
    repeat = TrialRecord.from_frozen(create_trial(state=TrialState.COMPLETE, value=0.5,
                                                  user_attrs={"repeat_of": 4}))
    assert not repeat.untrusted


def test_the_pareto_front_is_computed_over_the_records_given() -> None:
    import optuna

    directions = [optuna.study.StudyDirection.MAXIMIZE, optuna.study.StudyDirection.MINIMIZE]
    points = {0: (0.9, 100.0), 1: (0.8, 50.0), 2: (0.7, 80.0), 3: (0.9, 100.0), 4: (0.5, 10.0)}
    records = [TrialRecord.from_frozen(create_trial(state=TrialState.COMPLETE, values=list(v)))
               for v in points.values()]
    records = [replace(r, number=n) for r, n in zip(records, points, strict=True)]
    assert sorted(r.number for r in pareto_front(records, directions)) == [0, 1, 3, 4]

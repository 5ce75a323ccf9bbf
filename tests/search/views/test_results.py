"""The results table (``search``, ``trials``, the progress line): never-measured values and
never-used bounds are ``-``; the record's flags have their own column."""

from __future__ import annotations

from dataclasses import replace

import pytest
from optuna.trial import TrialState, create_trial

from search.method.lrrt.result import summarise
from search.record import (
    DEGRADED,
    LRRTSummary,
    TrialRecord,
    flag_notes,
)
from search.views.results import (
    HEADER,
    format_row,
    format_table,
    objective_names,
    row_fields,
    study_table,
    trial_row,
)
from tests.search.views.test_lrrt_artifact import make_result


def trial(state: TrialState, *, value: float | None = None, epochs: int = 0,
          summary: dict | None = None, values: list[float] | None = None, **attrs: object):
    fields = {"score": 0.5, "lr_range": (0.01, 0.1), "limit_found": True, **(summary or {})}
    lrrt = LRRTSummary(group="fashion-mnist|0.01-0.1", num_classes=10, **fields)
    frozen = create_trial(
        state=state, value=value, values=values,
        user_attrs={"config_name": "B1FL2SGD", "trial_config": {"lr_range": [0.01, 0.1]},
                    **lrrt.to_attrs(), **attrs},
        intermediate_values={0: fields["score"], **{e: 0.3 for e in range(1, epochs + 1)}})
    frozen.number = 3
    return frozen


def test_a_design_the_gate_rejected_shows_no_bounds() -> None:
    rejected = trial(TrialState.PRUNED, prune_reason="chance_level",
                     lr_bounds=[0.0025, 0.01], summary={"bounds": (0.0025, 0.01)})
    assert format_row(trial_row(rejected))[4] == "-"
    median = trial(TrialState.PRUNED, epochs=1, prune_reason="median",
                   lr_bounds=[0.025, 0.1], val_curve=[0.3])
    assert format_row(trial_row(median))[4] == "0.025..0.1"  # it trained with them


def test_values_never_measured_are_a_dash() -> None:
    # the ramp ended before an epoch did: no validation
    summary = summarise(replace(make_result().curve, epochs=[]), bound_rule="smith_quarter",
                        compare_rule=None, disagreement_factor=10.0, group="g",
                        num_classes=10).summary
    assert summary.best_val_accuracy is None and summary.max_epoch_accuracy is None
    assert summary.max_batch_accuracy == pytest.approx(0.884)
    # what older versions wrote when no epoch ended
    older = {**summary.to_attrs(), "lrrt_best_val_accuracy": 0.0,
             "lrrt_max_epoch_accuracy": 0.0}
    read = LRRTSummary.from_attrs(older)
    assert read.best_val_accuracy is None and read.max_epoch_accuracy is None
    row = format_row(trial_row(trial(TrialState.PRUNED, prune_reason="below_peers")))
    assert row[5] == "-" and "0.0000" not in row


def test_flags_have_a_column_in_the_table() -> None:
    assert HEADER[-1] == "flags"
    flagged = trial(TrialState.COMPLETE, value=0.1, epochs=2, lr_bounds=[0.025, 0.1],
                    val_curve=[0.1, 0.1], summary={"limit_found": False})
    row = format_row(trial_row(flagged))
    assert row[-1] == "trained_to_chance range_too_narrow"
    assert row[:7] == ["3", "B1FL2SGD", "COMPLETE", "0.500", "0.025..0.1", "0.1000", "-"]
    table = format_table([trial_row(flagged), trial_row(trial(TrialState.COMPLETE, value=0.6,
                                                              epochs=1, val_curve=[0.6]))])
    assert table.splitlines()[0].endswith("flags")
    assert table.splitlines()[3].endswith("-")  # nothing flagged: no trailing text


@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")
def test_a_multi_objective_study_has_a_column_per_objective_beyond_the_first() -> None:
    from dataclasses import asdict

    import optuna

    study = optuna.create_study(directions=["maximize", "minimize"])
    study.set_metric_names(["val_accuracy", "n_params"])
    study.add_trial(trial(TrialState.COMPLETE, values=[0.6, 1234.0], epochs=1,
                          val_curve=[0.6]))
    study.add_trial(trial(TrialState.PRUNED, prune_reason="chance_level"))
    assert objective_names(study) == ("n_params",)
    table = study_table(study).splitlines()
    assert table[0].split() == ["trial", "config", "state", "lrrt", "acc", "lr", "bounds",
                                "val", "acc", "n_params", "seconds", "flags"]
    complete, pruned = (format_row(trial_row(t, ("n_params",))) for t in study.trials)
    assert complete[5:8] == ["0.6000", "1234", "-"] and pruned[5:8] == ["-", "-", "-"]
    fields = row_fields(trial_row(study.trials[0], ("n_params",)))
    assert list(fields)[6:8] == ["best_val_accuracy", "n_params"]
    assert fields["n_params"] == 1234.0 and "objectives" not in fields
    single = trial_row(trial(TrialState.COMPLETE, value=0.6, epochs=1, val_curve=[0.6]))
    assert row_fields(single) == {k: v for k, v in asdict(single).items() if k != "objectives"}
    assert format_table([single]).splitlines()[0].split()[-3:] == ["acc", "seconds", "flags"]


def test_a_repeat_shows_the_value_it_carries_and_says_of_which_trial() -> None:
    """A skipped repeat was not trained (no val_curve) yet ends COMPLETE with its earlier
    trial's value: the table shows that value and the trial it repeats; JSON has both."""
    repeat = create_trial(state=TrialState.COMPLETE, value=0.72,
                          user_attrs={"config_name": "B1FL2SGD", "repeat_of": 1})
    repeat.number = 4
    row = trial_row(repeat)
    assert format_row(row)[:6] == ["4", "B1FL2SGD", "COMPLETE (repeat of 1)", "-", "-",
                                   "0.7200"]
    fields = row_fields(row)
    assert fields["repeat_of"] == 1 and fields["best_val_accuracy"] == 0.72
    pruned = create_trial(state=TrialState.PRUNED, intermediate_values={0: 0.1},
                          user_attrs={"config_name": "B1FL2SGD", "repeat_of": 0,
                                      "prune_reason": "repeat"})
    assert format_row(trial_row(pruned))[2:6] == ["PRUNED (repeat of 0)", "-", "-", "-"]
    trained = trial(TrialState.COMPLETE, value=0.6, epochs=1, val_curve=[0.6])
    assert row_fields(trial_row(trained))["repeat_of"] is None


def test_a_degraded_trial_is_flagged_with_what_failed_to_be_written() -> None:
    degraded = trial(TrialState.COMPLETE, value=0.6, epochs=1, val_curve=[0.6],
                     degraded=["artifact: No space left on device"])
    record = TrialRecord.from_frozen(degraded)
    assert record.flags == (DEGRADED,)
    assert format_row(trial_row(degraded))[-1] == "degraded"
    assert flag_notes(record) == ["degraded: artifact: No space left on device (the trial "
                                  "went on without what failed to be written)"]
    assert TrialRecord.from_frozen(trial(TrialState.COMPLETE, value=0.6, epochs=1,
                                         val_curve=[0.6])).flags == ()

"""``TrialRecorder``, the one writer: each step of a trial's life written on a real trial and
read back through ``TrialRecord``."""

from __future__ import annotations

import optuna

from search.record import (
    SHORT_CURVE_POINTS,
    CurvePoints,
    LRRTSummary,
    TrialRecord,
    TrialRecorder,
    Verdict,
    frozen_trial,
)


def test_a_trial_s_life_written_step_by_step_reads_back() -> None:
    study = optuna.create_study(direction="maximize")
    summary = LRRTSummary(score=0.6, group="g", num_classes=10, bounds=(0.001, 0.004))
    curve = CurvePoints(tuple(0.001 * i for i in range(1, 101)), (0.5,) * 100, (1.0,) * 100)

    def objective(trial: optuna.Trial) -> float:
        recorder = TrialRecorder(trial)
        recorder.started(config_name="B1", run_seed=7, checkpoint_key="k", device="cpu",
                         worker="host:1", trial_config={"optimizer": "adam", "seed": 7})
        recorder.range_test(summary, curve, n_params=99)
        short = TrialRecord.from_frozen(frozen_trial(trial)).lrrt_curve
        assert short is not None and len(short.lr) == SHORT_CURVE_POINTS
        recorder.artifacts(curve_id="c", plot_id="p")  # the artifact holds the curve now
        recorder.bounds((0.001, 0.004))
        recorder.epochs([0.5, 0.7], [0.001, 0.004])
        recorder.resumed(1)
        assert recorder.degraded("checkpoint: disk full")
        assert not recorder.degraded("checkpoint: disk full")  # once
        recorder.failed("oom", "x" * 900)
        recorder.seconds(1.23456)
        recorder.repeat(0)
        recorder.pruned(Verdict("median", "epoch 2", {"epoch": 2}))
        assert recorder.inherited_seed(0) == 7 and recorder.inherited_checkpoint_key("") == "k"
        assert recorder.inherited_lrrt() == summary
        return 0.7

    study.optimize(objective, n_trials=1)
    record = TrialRecord.from_frozen(study.trials[0])
    assert (record.config_name, record.run_seed, record.device, record.n_params) == (
        "B1", 7, "cpu", 99)
    assert record.lrrt == summary and record.lrrt_curve is None
    assert (record.lrrt_artifact_id, record.lrrt_plot_artifact_id) == ("c", "p")
    assert record.lr_bounds == (0.001, 0.004) and record.val_curve == (0.5, 0.7)
    assert record.resumed_from_epoch == 1 and record.degraded == ("checkpoint: disk full",)
    assert record.failed_because == Verdict("oom", "x" * 500)
    assert record.seconds == 1.235 and record.repeat_of == 0
    assert record.pruned_because == Verdict("median", "epoch 2", {"epoch": 2})

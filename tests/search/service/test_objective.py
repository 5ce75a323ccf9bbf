"""The objective in this process, on an in-memory study and tiny device-resident data: what a
trial records, why it stops, and how a retry reuses and resumes."""

from __future__ import annotations

import dataclasses
import logging
import pickle
import time
from collections.abc import Callable
from pathlib import Path

import optuna
import pytest
import sqlalchemy.exc
import torch
from optuna.storages import RDBStorage
from optuna.trial import TrialState

from data import ImageDataset
from search.config import parse_config
from search.method.prepared_data import DataOnDevice
from search.method.pruner import LRRTPruner
from search.record import CHANCE_LEVEL, INTERRUPTED, STORAGE_UNREACHABLE, TrialRecord, Verdict
from search.service.checkpoints import CheckpointStore
from search.service.lrrt_artifacts import open_lrrt_artifacts
from search.service.objective import Objective, TrialAbandoned, TrialPaused
from search.service.reaper import queue_retries
from search.service.resilient_storage import ResilientRDBStorage
from search.service.stop_flag import StopFlag, WorkerInterrupted
from search.service.storage import open_storage
from search.service.study import build_pruner
from tests.search.conftest import TINY_CLASSES, quadrant_images


def tiny_dataset() -> ImageDataset:
    train_images, train_labels = quadrant_images(256, seed=0)
    val_images, val_labels = quadrant_images(64, seed=1)
    return ImageDataset("tiny", train_images, train_labels, val_images, val_labels,
                        tuple(str(k) for k in range(TINY_CLASSES)))


def config(**space: object):
    raw = {
        "study": "objective",
        "dataset": {"name": "fashion-mnist"},  # the data below stand in for it
        "space": {"blocks": [1], "filters": [4], "optimizer": ["adam"],
                  "lr_range": [[1.0e-3, 3.0e-2]], "batch_size": [16], "fc_units": [16],
                  **space},
        "model": {"l2": 0.0},
        "lrrt": {"epochs": 2, "sma_periods": 4, "bound_rule": "smith_quarter",
                 "compare_rule": None},
        "pruner": {"warmup_trials": 100, "after_lrrt": "none"},
        "train": {"epochs": 3, "step_size_epochs": 1},
    }
    return parse_config(raw)


def run(search_config, data: DataOnDevice, **options: object) -> tuple[optuna.Study, Objective]:
    study = optuna.create_study(direction="maximize", pruner=build_pruner(search_config))
    objective = Objective(search_config, data, study.pruner, **options)  # type: ignore[arg-type]
    return study, objective


@pytest.fixture(scope="module")
def data() -> DataOnDevice:
    return DataOnDevice(tiny_dataset(), torch.device("cpu"), eval_batch_size=64)


def test_a_trial_that_learns_completes_with_its_whole_record(data: DataOnDevice) -> None:
    study, objective = run(config(), data)
    study.optimize(objective, n_trials=1)
    frozen = study.trials[0]
    record = TrialRecord.from_frozen(frozen)
    assert record.state == TrialState.COMPLETE
    assert record.config_name == "B1FL4Adam"
    assert record.lrrt is not None and record.lrrt.score > 0.5
    assert record.lrrt.group == "fashion-mnist|0.001-0.03"
    assert record.lrrt.num_classes == TINY_CLASSES
    assert record.lr_bounds == record.lrrt.bounds
    assert len(record.val_curve) == 3 and frozen.value == max(record.val_curve)
    assert record.n_params and record.n_params > 0
    assert record.lrrt_curve is not None and len(record.lrrt_curve.lr) > 1
    assert frozen.intermediate_values[0] == record.lrrt.score
    assert sorted(frozen.intermediate_values) == [0, 1, 2, 3]
    assert record.reason == "" and record.pruned_because is None


def test_a_design_stuck_at_chance_is_pruned_with_its_reason_and_evidence(
    data: DataOnDevice,
) -> None:
    # An LR so small the ramp cannot move the weights; a long SMA over 32-image batches.
    search_config = config(lr_range=[[1.0e-9, 2.0e-9]], optimizer=["sgd"], batch_size=[32])
    search_config = dataclasses.replace(
        search_config, lrrt=dataclasses.replace(search_config.lrrt, sma_periods=16))
    study, objective = run(search_config, data)
    study.optimize(objective, n_trials=1)
    record = TrialRecord.from_frozen(study.trials[0])
    assert record.state == TrialState.PRUNED
    assert record.reason == CHANCE_LEVEL
    assert record.pruned_because is not None
    evidence = record.pruned_because.evidence
    assert evidence["score"] < evidence["threshold"] == pytest.approx(0.25 + 0.1 * 0.75)
    assert record.lr_bounds is None and not record.val_curve
    assert sorted(study.trials[0].intermediate_values) == [0]


class CountingGate(LRRTPruner):
    """The product's gate, counting how often it is asked."""

    asked = 0

    def gate(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> Verdict | None:
        CountingGate.asked += 1
        return super().gate(study, trial)


def test_the_gate_is_asked_once_and_the_plot_shows_its_verdict(data: DataOnDevice,
                                                               tmp_path: Path) -> None:
    """The objective asks the gate once a test is recorded, and hands the verdict to the
    upload: the plot of a rejected design is drawn rejected, nothing asked again."""
    search_config = config(lr_range=[[1.0e-9, 2.0e-9]], optimizer=["sgd"], batch_size=[32])
    pruner = CountingGate(None, search_config.pruner.gate_rules())
    study = optuna.create_study(direction="maximize", pruner=pruner)
    objective = Objective(search_config, data, pruner,
                          artifacts=open_lrrt_artifacts(str(tmp_path)))
    CountingGate.asked = 0
    study.optimize(objective, n_trials=1)
    assert CountingGate.asked == 1
    record = TrialRecord.from_frozen(study.trials[0])
    assert record.reason == CHANCE_LEVEL and record.lrrt_plot_artifact_id
    store = optuna.artifacts.FileSystemArtifactStore(str(tmp_path))
    with store.open_reader(record.lrrt_plot_artifact_id) as reader:
        assert "rejected: chance_level" in reader.read().decode()


class StopAfterFirstEpoch:
    """A progress display that asks the worker to stop (as SIGTERM would) after epoch 1."""

    def __init__(self, stop: StopFlag) -> None:
        self.stop = stop

    def trial_started(self, number: int, name: str, epochs: int) -> None:
        pass

    def lrrt_step(self, step: int, total_steps: int, lr: float, loss: float) -> None:
        pass

    def epoch(self, epoch: int, epochs: int, lr: float, accuracy: float) -> None:
        self.stop.set("SIGTERM")


def test_a_stop_request_fails_the_trial_as_interrupted_and_keeps_its_checkpoint(
    data: DataOnDevice, tmp_path: Path,
) -> None:
    stop = StopFlag()
    checkpoints = CheckpointStore(tmp_path)
    study, objective = run(config(), data, checkpoints=checkpoints, stop=stop)

    objective.progress = StopAfterFirstEpoch(stop)
    study.optimize(objective, n_trials=1, catch=(WorkerInterrupted,))
    failed = TrialRecord.from_frozen(study.trials[0])
    assert failed.state == TrialState.FAIL and failed.reason == INTERRUPTED
    assert objective.interrupted_trials == [0]
    assert len(list(tmp_path.glob("*.pt"))) == 1

    # The retry (same params and attrs, as Optuna's retry callback makes it) reuses the
    # range test and resumes from epoch 1.
    with pytest.warns(optuna.exceptions.ExperimentalWarning):
        retry = optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=1)
    retry(study, study.trials[0])
    objective.stop = StopFlag()
    objective.progress = None
    study.optimize(objective, n_trials=1)
    resumed = TrialRecord.from_frozen(study.trials[1])
    assert resumed.state == TrialState.COMPLETE
    assert resumed.lrrt_reused and resumed.resumed_from_epoch == 1
    assert resumed.lrrt == failed.lrrt
    assert len(resumed.val_curve) == 3 and resumed.val_curve[0] == failed.val_curve[0]
    assert not list(tmp_path.glob("*.pt"))  # a finished trial forgets its checkpoint


class WritesAMarker:
    """A pickle that, if it were ever unpickled with full pickle, would write a file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.write_text, (self.marker, "code ran"))


def other_designs_checkpoint(data: DataOnDevice, folder: Path) -> bytes:
    """A real checkpoint, after one epoch, of a design with other layer sizes."""
    stop = StopFlag()
    study, objective = run(config(filters=[8]), data, checkpoints=CheckpointStore(folder),
                           stop=stop)

    objective.progress = StopAfterFirstEpoch(stop)
    study.optimize(objective, n_trials=1, catch=(WorkerInterrupted,))
    [path] = folder.glob("*.pt")
    return path.read_bytes()


def test_garbage_and_hostile_checkpoints_never_crash_a_trial_nor_run_code(
    data: DataOnDevice, tmp_path: Path, caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    foreign = other_designs_checkpoint(data, tmp_path / "other")
    marker = tmp_path / "marker"
    folder = tmp_path / "ckpt"
    folder.mkdir()
    hostile = {
        "truncated": foreign[: len(foreign) // 2],
        "random": bytes(range(256)) * 16,
        "pickle": pickle.dumps({"model": WritesAMarker(marker)}),
        "foreign": foreign,
    }
    # Five trials of the one design, each to train: repeats allowed.
    search_config = dataclasses.replace(config(), repeats="allow")
    study = optuna.create_study(study_name="objective", direction="maximize",
                                pruner=build_pruner(search_config))
    store = CheckpointStore(folder)
    for name, content in hostile.items():
        # A retry inherits its checkpoint key from the record: here, the hostile file's.
        store.path(f"retried-{name}").write_bytes(content)
        study.enqueue_trial({}, user_attrs={"checkpoint_key": f"retried-{name}"})
    # A brand-new trial must not load what lies where an older cnnsearch put trial 4's.
    store.path("objective-4").write_bytes(foreign)
    objective = Objective(search_config, data, study.pruner, checkpoints=store)
    capsys.readouterr()
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        study.optimize(objective, n_trials=5)

    records = [TrialRecord.from_frozen(t) for t in study.trials]
    assert [r.state for r in records] == [TrialState.COMPLETE] * 5
    assert all(r.resumed_from_epoch is None and len(r.val_curve) == 3 for r in records)
    assert not marker.exists()  # the hostile pickle never ran
    discarded = [r.getMessage() for r in caplog.records if "discarded checkpoint" in
                 r.getMessage()]
    assert len(discarded) == 4 and all("restarts from epoch 0" in m for m in discarded)
    assert all(r.exc_info is None and "\n" not in r.getMessage() for r in caplog.records)
    assert "Traceback" not in capsys.readouterr().err
    assert sorted(p.name for p in folder.iterdir()) == ["objective-4.pt"]  # left alone


def test_new_trials_get_checkpoint_keys_of_their_own(data: DataOnDevice) -> None:
    study, objective = run(config(), data)
    study.optimize(objective, n_trials=2)
    keys = [t.user_attrs["checkpoint_key"] for t in study.trials]
    assert len(set(keys)) == 2
    assert all(k.startswith(f"{study.study_name}-{n}-") for n, k in enumerate(keys))


def disk_full(*_args: object, **_kwargs: object) -> None:
    raise OSError(28, "No space left on device")


def test_a_checkpoint_that_cannot_be_written_degrades_the_trial_which_goes_on(
    data: DataOnDevice, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(CheckpointStore, "save", disk_full)
    study, objective = run(config(), data, checkpoints=CheckpointStore(tmp_path))
    study.optimize(objective, n_trials=1)
    record = TrialRecord.from_frozen(study.trials[0])
    assert record.state == TrialState.COMPLETE and len(record.val_curve) == 3
    assert record.degraded == ("checkpoint: No space left on device",)  # once, not per epoch


def test_a_checkpoint_folder_under_a_file_degrades_the_trial(data: DataOnDevice,
                                                              tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a folder")
    study, objective = run(config(), data, checkpoints=CheckpointStore(tmp_path / "file" / "x"))
    study.optimize(objective, n_trials=1)
    record = TrialRecord.from_frozen(study.trials[0])
    assert record.state == TrialState.COMPLETE
    assert len(record.degraded) == 1 and record.degraded[0].startswith("checkpoint: ")


def test_an_artifact_that_cannot_be_uploaded_degrades_the_trial(data: DataOnDevice) -> None:
    class FullDisk:
        def upload(self, trial: optuna.Trial, result: object, verdict: object) -> None:
            disk_full()

    study, objective = run(config(), data, artifacts=FullDisk())
    study.optimize(objective, n_trials=1)
    record = TrialRecord.from_frozen(study.trials[0])
    assert record.state == TrialState.COMPLETE
    assert record.degraded == ("artifact: No space left on device",)


class Outage:
    """Trial user-attr writes fail as if the database were away, from the end of the first
    epoch until ``seconds`` later (the storage retries are shortened to 0.3 s);
    ``when_down`` runs as it goes down."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, storage: ResilientRDBStorage,
                 seconds: float, when_down: Callable[[], object] | None = None) -> None:
        self.down = False
        self.seconds = seconds
        self.started: float | None = None
        self.when_down = when_down
        storage.retry_seconds = 0.3

        def write(storage: ResilientRDBStorage, *args: object, **kwargs: object) -> None:
            def call() -> None:
                if self.down and time.monotonic() - self.started < self.seconds:
                    raise sqlalchemy.exc.OperationalError("UPDATE", {},
                                                          Exception("server closed"))
                self.down = False
                RDBStorage.set_trial_user_attr(storage, *args, **kwargs)
            storage._with_retry("set_trial_user_attr", call)

        monkeypatch.setattr(ResilientRDBStorage, "set_trial_user_attr", write)

    def trial_started(self, number: int, name: str, epochs: int) -> None:
        pass

    def lrrt_step(self, step: int, total_steps: int, lr: float, loss: float) -> None:
        pass

    def epoch(self, epoch: int, epochs: int, lr: float, accuracy: float) -> None:
        if epoch == 1 and self.started is None:
            if self.when_down is not None:
                self.when_down()
            self.down, self.started = True, time.monotonic()


def test_an_outage_longer_than_the_retries_pauses_the_trial_and_its_retry_resumes(
    data: DataOnDevice, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    storage = open_storage(f"sqlite:///{tmp_path / 's.db'}")
    search_config = config()
    study = optuna.create_study(study_name="paused", storage=storage, direction="maximize",
                                pruner=build_pruner(search_config))
    objective = Objective(search_config, data, study.pruner,
                          progress=Outage(monkeypatch, storage, seconds=2.0),
                          checkpoints=CheckpointStore(tmp_path / "ckpt"))
    study.optimize(objective, n_trials=1, catch=(TrialPaused,))
    paused = TrialRecord.from_frozen(study.trials[0])
    assert paused.state == TrialState.FAIL and paused.reason == STORAGE_UNREACHABLE
    assert objective.paused_trials == [0]
    assert len(list((tmp_path / "ckpt").glob("*.pt"))) == 1  # kept for the retry

    queue_retries(study, objective.paused_trials)
    objective.progress = None
    study.optimize(objective, n_trials=1)
    resumed = TrialRecord.from_frozen(study.trials[1])
    assert resumed.state == TrialState.COMPLETE and resumed.resumed_from_epoch == 1
    assert not list((tmp_path / "ckpt").glob("*.pt"))


def test_a_trial_reaped_while_cut_off_is_abandoned_with_its_checkpoint(
    data: DataOnDevice, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    storage = open_storage(f"sqlite:///{tmp_path / 's.db'}")
    search_config = config()
    study = optuna.create_study(study_name="abandoned", storage=storage,
                                direction="maximize", pruner=build_pruner(search_config))

    def another_workers_reaper_fails_it() -> None:
        RDBStorage.set_trial_state_values(storage, study.trials[0]._trial_id, TrialState.FAIL)

    objective = Objective(search_config, data, study.pruner,
                          progress=Outage(monkeypatch, storage, seconds=1.0,
                                          when_down=another_workers_reaper_fails_it),
                          checkpoints=CheckpointStore(tmp_path / "ckpt"))
    with pytest.raises(ValueError, match="Cannot tell a FAIL trial"):  # the worker's cue
        study.optimize(objective, n_trials=1, catch=(TrialPaused, TrialAbandoned))
    assert study.trials[0].state == TrialState.FAIL
    assert objective.paused_trials == []  # the reaper queued its retry: not a second one
    assert len(list((tmp_path / "ckpt").glob("*.pt"))) == 1  # the reaper's retry resumes it


def test_a_trial_finished_elsewhere_between_its_report_and_its_verdict_is_abandoned(
    data: DataOnDevice, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The window a loaded machine opened: the epoch's report was written, a reaper failed
    the trial, then the verdict read it back. That was a RuntimeError and a traceback in the
    search's output; it is the trial given up, as when the report itself finds it finished."""
    storage = open_storage(f"sqlite:///{tmp_path / 's.db'}")
    search_config = config()
    study = optuna.create_study(study_name="elsewhere", storage=storage,
                                direction="maximize", pruner=build_pruner(search_config))
    report = optuna.Trial.report

    def report_then_reaped(trial: optuna.Trial, value: float, step: int) -> None:
        report(trial, value, step)
        if step == 1:  # the first epoch: past the range test's gate
            RDBStorage.set_trial_state_values(storage, trial._trial_id, TrialState.FAIL)

    monkeypatch.setattr(optuna.Trial, "report", report_then_reaped)
    objective = Objective(search_config, data, study.pruner,
                          checkpoints=CheckpointStore(tmp_path / "ckpt"))
    with pytest.raises(TrialAbandoned, match="finished by another process"):
        objective(study.ask())
    assert study.trials[0].state == TrialState.FAIL

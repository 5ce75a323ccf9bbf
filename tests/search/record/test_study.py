"""A study's own attrs, read and written through the study record, and where its artifacts
are."""

from __future__ import annotations

import optuna
import pytest

from search.record import STUDY_ATTRS, StudyRecord, StudyRecorder
from search.record.study import artifact_folder


def test_a_study_records_what_it_was_made_with_and_counts_its_processes() -> None:
    study = optuna.create_study()
    assert StudyRecord.of(study) == StudyRecord()
    recorder = StudyRecorder(study)
    recorder.made_with(config={"study": "s", "seed": 3}, fingerprint="abc",
                       artifact_dir="art")
    assert [recorder.process_joined() for _ in range(3)] == [0, 1, 2]
    record = StudyRecord.of(study)
    assert record == StudyRecord({"study": "s", "seed": 3}, "abc", "art", 3)
    assert set(study.user_attrs) == set(STUDY_ATTRS)
    assert StudyRecord.of(study._storage.get_all_studies()[0]) == record  # a FrozenStudy too


def test_no_artifact_folder_is_recorded_when_there_is_none() -> None:
    study = optuna.create_study()
    StudyRecorder(study).made_with(config={}, fingerprint="f", artifact_dir=None)
    assert StudyRecord.of(study).artifact_dir is None
    study.set_user_attr("cnnsearch_sampling_processes", "garbage")
    assert StudyRecord.of(study).processes == 0


def test_where_the_artifacts_are(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CNNSEARCH_ARTIFACT_DIR", "from-env")
    assert artifact_folder("flag", "stored") == "flag"
    assert artifact_folder("", "stored") is None  # '' turns them off
    assert artifact_folder(None, "stored") == "stored"
    assert artifact_folder(None) == "from-env"
    monkeypatch.delenv("CNNSEARCH_ARTIFACT_DIR")
    assert artifact_folder(None) == "cnnsearch-artifacts"
    monkeypatch.setenv("CNNSEARCH_ARTIFACT_DIR", "")
    assert artifact_folder(None) is None

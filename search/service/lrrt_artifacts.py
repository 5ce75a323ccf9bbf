"""Each trial's range test as artifacts, and its dashboard note: the writers.

The objective uploads a trial's full range test once it is recorded and judged: the JSON
curve (``lrrt-trial-N.json``: views read a trial's smoothed curve from it, and its attrs
keep none once it is uploaded) and its plot (``lrrt-trial-N.svg``, drawn by
``search.views.lrrt_artifact.result_svg`` with the gate's verdict, the one the objective
asked for). optuna-dashboard previews image artifacts on a trial's page and renders the
trial's Markdown note at the top of it, so the plot is also shown full width in the note
(``search.views.trial_notes.note_markdown``), written when the test is uploaded and again
when the trial ends (``TrialNotes``).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import BinaryIO

import optuna
from optuna.trial import FrozenTrial

from search.method.lrrt.result import LRRTResult
from search.record import TrialRecord, TrialRecorder, Verdict, frozen_trial
from search.views.lrrt_artifact import result_svg
from search.views.trial_notes import artifact_url, note_markdown


def _upload(store: optuna.artifacts.FileSystemArtifactStore, trial: optuna.Trial,
            filename: str, text: str, mimetype: str) -> str:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / filename
        path.write_text(text, encoding="utf-8")
        return optuna.artifacts.upload_artifact(artifact_store=store, file_path=str(path),
                                                study_or_trial=trial, mimetype=mimetype)


class LRRTArtifactStore:
    """Uploads each trial's full range test: the JSON curve and its plot (which
    optuna-dashboard previews), records their ids, and writes the trial's first note."""

    def __init__(self, store: optuna.artifacts.FileSystemArtifactStore) -> None:
        self.store = store

    def upload(self, trial: optuna.Trial, result: LRRTResult, verdict: Verdict | None) -> None:
        """``verdict``: the gate's on this test (None: the design goes on), drawn on the
        plot."""
        record = TrialRecord.from_frozen(frozen_trial(trial))
        curve_id = _upload(self.store, trial, f"lrrt-trial-{trial.number}.json",
                           result.to_json(), "application/json")
        plot_id = _upload(self.store, trial, f"lrrt-trial-{trial.number}.svg",
                          result_svg(result, record.config_name, trial.number, verdict),
                          "image/svg+xml")
        TrialRecorder(trial).artifacts(curve_id=curve_id, plot_id=plot_id)
        save_note(trial.study, frozen_trial(trial))


class AtomicFileSystemArtifactStore(optuna.artifacts.FileSystemArtifactStore):
    """Optuna's folder of artifacts, each written to a temp file and renamed into place: a
    write that fails (a full disk) leaves no half file behind under an artifact's id."""

    def write(self, artifact_id: str, content_body: BinaryIO) -> None:
        target = self._get_filepath(artifact_id)
        temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        try:
            with open(temporary, "wb") as handle:
                shutil.copyfileobj(content_body, handle)
            os.replace(temporary, target)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise


def open_lrrt_artifacts(artifact_dir: str | None) -> LRRTArtifactStore | None:
    """The artifact store in ``artifact_dir`` (created), or None when artifacts are off."""
    if not artifact_dir:
        return None
    Path(artifact_dir).mkdir(parents=True, exist_ok=True)
    return LRRTArtifactStore(AtomicFileSystemArtifactStore(artifact_dir))


def save_note(study: optuna.study.Study, frozen: FrozenTrial) -> None:
    """Write the trial's note, if it has an LRRT plot to show."""
    from optuna_dashboard import save_note as dashboard_save_note

    record = TrialRecord.from_frozen(frozen)
    if not record.lrrt_plot_artifact_id:
        return
    url = artifact_url(study._study_id, frozen._trial_id, record.lrrt_plot_artifact_id)
    dashboard_save_note(optuna.Trial(study, frozen._trial_id), note_markdown(record, url))


class TrialNotes:
    """``study.optimize`` callback: when a trial ends, its note gets the verdict above the
    LRRT plot."""

    def __call__(self, study: optuna.study.Study, frozen: FrozenTrial) -> None:
        save_note(study, frozen)

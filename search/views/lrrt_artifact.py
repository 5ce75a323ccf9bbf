"""Each trial's range test as artifacts: the JSON curve and its plot as an SVG image.

optuna-dashboard previews image artifacts on a trial's page (``image/*`` mimetypes, as a
thumbnail in the trial's Artifacts card) and renders the trial's Markdown note at the top of
the page, so the plot is uploaded as an SVG next to the JSON curve and shown full width in
the trial's note, with the verdict once the trial ends (``TrialNotes``). The SVG is the
report's LRRT figure drawn by matplotlib (``search.views.lrrt_figure``): no browser, no
network.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import optuna

from search.method.lrrt.result import LRRTResult
from search.record import TrialRecord, TrialRecorder, frozen_trial
from search.views.lrrt_figure import LRRTLine, lrrt_svg
from search.views.trial_notes import save_note


def result_svg(result: LRRTResult, name: str, number: int | None = None) -> str:
    """The plot of one range test: smoothed and per-batch accuracy and loss, validation at
    epoch ends, the chosen LR bounds; the subtitle says what the test found."""
    curve = result.curve
    subtitle = (f"LR {curve.lr_min:g}..{curve.lr_max:g} - best smoothed accuracy "
                f"{result.best_smoothed_accuracy:.3f}")
    if number is not None:
        subtitle = f"trial {number} - {subtitle}"
    if curve.diverged:
        subtitle += f" - diverged: {curve.divergence}"
    return lrrt_svg([LRRTLine.from_result(result, name)], f"{name}: LR range test", subtitle)


def _upload(store: optuna.artifacts.FileSystemArtifactStore, trial: optuna.Trial,
            filename: str, text: str, mimetype: str) -> str:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / filename
        path.write_text(text, encoding="utf-8")
        return optuna.artifacts.upload_artifact(artifact_store=store, file_path=str(path),
                                                study_or_trial=trial, mimetype=mimetype)


class LRRTArtifactStore:
    """Uploads each trial's full range test: the JSON curve (``lrrt-trial-N.json``) and its
    plot (``lrrt-trial-N.svg``, which optuna-dashboard previews), records their ids, and
    writes the trial's first dashboard note."""

    def __init__(self, store: optuna.artifacts.FileSystemArtifactStore) -> None:
        self.store = store

    def upload(self, trial: optuna.Trial, result: LRRTResult) -> None:
        record = TrialRecord.from_frozen(frozen_trial(trial))
        curve_id = _upload(self.store, trial, f"lrrt-trial-{trial.number}.json",
                           result.to_json(), "application/json")
        plot_id = _upload(self.store, trial, f"lrrt-trial-{trial.number}.svg",
                          result_svg(result, record.config_name, trial.number),
                          "image/svg+xml")
        TrialRecorder(trial).artifacts(curve_id=curve_id, plot_id=plot_id)
        save_note(trial.study, frozen_trial(trial))


def open_lrrt_artifacts(artifact_dir: str | None) -> LRRTArtifactStore | None:
    """The artifact store in ``artifact_dir`` (created), or None when artifacts are off."""
    if not artifact_dir:
        return None
    Path(artifact_dir).mkdir(parents=True, exist_ok=True)
    return LRRTArtifactStore(optuna.artifacts.FileSystemArtifactStore(artifact_dir))

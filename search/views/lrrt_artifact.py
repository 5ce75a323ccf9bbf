"""Each trial's range test as artifacts: the JSON curve and its plot as an SVG image.

optuna-dashboard previews image artifacts on a trial's page (``image/*`` mimetypes, as a
thumbnail in the trial's Artifacts card) and renders the trial's Markdown note at the top of
the page, so the plot is uploaded as an SVG next to the JSON curve and shown full width in
the trial's note, with the verdict once the trial ends (``TrialNotes``). The SVG is the
report's LRRT figure drawn by matplotlib (``search.views.lrrt_figure``): no browser, no
network.

The JSON artifact holds the whole curve: views read a trial's smoothed curve from it
(``artifact_curve``), and the trial's attrs keep none once it is uploaded.
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

import optuna
from optuna.artifacts.exceptions import ArtifactNotFound

from search.method.lrrt.result import LRRTResult
from search.method.pruner import LRRTPruner, lrrt_verdict, peer_scores
from search.record import (
    CHANCE_LEVEL,
    CURVE_POINTS,
    DIVERGED,
    CurvePoints,
    LRRTSummary,
    TrialRecord,
    TrialRecorder,
    Verdict,
    frozen_trial,
)
from search.views.lrrt_figure import LRRTLine, lrrt_svg
from search.views.trial_notes import save_note


def result_svg(result: LRRTResult, name: str, number: int | None = None,
               verdict: Verdict | None = None) -> str:
    """The plot of one range test: smoothed and per-batch accuracy and loss, validation at
    epoch ends, the chosen LR bounds (none for a design the gate rejects: ``verdict``),
    where it diverged; the subtitle says what the test found."""
    curve, score = result.curve, result.summary.score
    subtitle = f"LR {curve.lr_min:g}..{curve.lr_max:g} - best smoothed accuracy {score:.3f}"
    if number is not None:
        subtitle = f"trial {number} - {subtitle}"
    if curve.diverged:
        subtitle += f" - diverged: {curve.divergence}"
    if verdict is not None and not (curve.diverged and verdict.reason == DIVERGED):
        subtitle += f" - rejected: {verdict.reason}"
        threshold = verdict.evidence.get("threshold")
        if verdict.reason == CHANCE_LEVEL and isinstance(threshold, int | float):
            subtitle += f" ({score:.3f} < {threshold:.3f})"
    return lrrt_svg([LRRTLine.from_result(result, name, verdict)], f"{name}: LR range test",
                    subtitle)


def gate_verdict(trial: optuna.Trial) -> Verdict | None:
    """What the LRRT gate will decide for the trial whose range test was just recorded: the
    SVG is drawn before the objective asks, from the same stored facts (``lrrt_verdict`` is
    a pure function of the summary, the peers' scores and the rules). None when the study's
    pruner is no ``LRRTPruner`` or the design passes."""
    pruner = trial.study.pruner
    if not isinstance(pruner, LRRTPruner):
        return None
    summary = LRRTSummary.from_attrs(frozen_trial(trial).user_attrs)
    if summary is None:
        return None
    peers = peer_scores(trial.study, trial.number, summary, pruner.rules)
    return lrrt_verdict(summary, peers, pruner.rules)


def read_result(store: optuna.artifacts.FileSystemArtifactStore,
                artifact_id: str) -> LRRTResult | None:
    """A trial's range test from its JSON artifact; None when it is missing or unreadable."""
    try:
        with store.open_reader(artifact_id) as reader:
            return LRRTResult.from_json(reader.read().decode("utf-8"))
    except (OSError, ValueError, TypeError, KeyError, ArtifactNotFound):
        return None


def artifact_curve(record: TrialRecord,
                   store: optuna.artifacts.FileSystemArtifactStore | None,
                   points: int = CURVE_POINTS) -> CurvePoints | None:
    """The trial's smoothed curve, ``points`` at most: from its JSON artifact when the store
    has it, else the copy its attrs keep (short; 200 points in older studies); None if
    neither."""
    if store is not None and record.lrrt_artifact_id:
        result = read_result(store, record.lrrt_artifact_id)
        if result is not None and result.curve.lrs:
            smoothed = result.curve.points(points)
            return CurvePoints(*(tuple(v if v is not None and math.isfinite(v) else None
                                       for v in column)
                                 for column in (smoothed.lr, smoothed.accuracy, smoothed.loss)))
    return record.lrrt_curve


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
        """Called once the range test is recorded and before the gate judges it: the plot
        is drawn with the gate's verdict (``gate_verdict``)."""
        record = TrialRecord.from_frozen(frozen_trial(trial))
        curve_id = _upload(self.store, trial, f"lrrt-trial-{trial.number}.json",
                           result.to_json(), "application/json")
        plot_id = _upload(self.store, trial, f"lrrt-trial-{trial.number}.svg",
                          result_svg(result, record.config_name, trial.number,
                                     gate_verdict(trial)),
                          "image/svg+xml")
        TrialRecorder(trial).artifacts(curve_id=curve_id, plot_id=plot_id)
        save_note(trial.study, frozen_trial(trial))


def open_lrrt_artifacts(artifact_dir: str | None) -> LRRTArtifactStore | None:
    """The artifact store in ``artifact_dir`` (created), or None when artifacts are off."""
    if not artifact_dir:
        return None
    Path(artifact_dir).mkdir(parents=True, exist_ok=True)
    return LRRTArtifactStore(optuna.artifacts.FileSystemArtifactStore(artifact_dir))

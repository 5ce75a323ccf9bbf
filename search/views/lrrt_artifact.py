"""Each trial's range test as artifacts, read: the plot uploaded as an SVG (``result_svg``),
and the JSON curve read back (``read_result``, ``artifact_curve``). The service uploads them
(``search.service.lrrt_artifacts``); this module only draws and reads.

optuna-dashboard previews image artifacts on a trial's page (``image/*`` mimetypes, as a
thumbnail in the trial's Artifacts card), so the SVG is the report's LRRT figure drawn by
matplotlib (``search.views.lrrt_figure``): no browser, no network. The JSON artifact holds
the whole curve: views read a trial's smoothed curve from it, and the trial's attrs keep
none once it is uploaded.
"""

from __future__ import annotations

import math

import optuna
from optuna.artifacts.exceptions import ArtifactNotFound

from search.method.lrrt.result import LRRTResult
from search.record import CHANCE_LEVEL, CURVE_POINTS, DIVERGED, CurvePoints, TrialRecord, Verdict
from search.views.lrrt_figure import LRRTLine, lrrt_svg


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

"""An LRRT curve as a standalone SVG image: accuracy and loss against LR, two panels.

optuna-dashboard previews image artifacts on a trial's page (``image/*`` mimetypes, as a
thumbnail in the trial's Artifacts card) and renders the trial's Markdown note at the top of
the page, so each trial's range test is uploaded as an SVG next to its JSON curve and shown
full width in the trial's note, with the verdict once the trial ends (``TrialNotes``). The
SVG is written by hand from the curve points: no browser, no kaleido, no network.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from xml.sax.saxutils import escape

import optuna

from search.method.lrrt.result import LRRTResult
from search.record import TrialRecord, TrialRecorder, frozen_trial
from search.views.trial_notes import save_note

MAX_POINTS = 400
"""Points per polyline: enough for a 400 px panel, small enough to keep the file light."""

WIDTH, HEIGHT = 960, 400
PANEL_WIDTH, PANEL_HEIGHT = 380, 250
LEFT, TOP, GAP = 70, 60, 110

RAW_ACCURACY, SMOOTH_ACCURACY = "#9ecae1", "#1f77b4"
RAW_LOSS, SMOOTH_LOSS = "#fcbba1", "#d62728"
VALIDATION, BOUNDS, COMPARE = "#ff7f0e", "#2ca02c", "#9467bd"


@dataclass
class CurveSeries:
    """What one SVG shows; ``raw_*`` (per batch) and ``val`` (per epoch) are optional."""

    lr: list[float]
    accuracy: list[float]
    loss: list[float]
    raw_accuracy: list[float] = field(default_factory=list)
    raw_loss: list[float] = field(default_factory=list)
    val: list[tuple[float, float, float]] = field(default_factory=list)
    """(lr, val_accuracy, val_loss) at each epoch end."""
    bounds: tuple[float, float] | None = None
    compare_bounds: tuple[float, float] | None = None
    lr_range: tuple[float, float] | None = None


def series_from_result(result: LRRTResult) -> CurveSeries:
    curve = result.curve
    return CurveSeries(
        lr=list(curve.lrs),
        accuracy=curve.smoothed_accuracies,
        loss=curve.smoothed_losses,
        raw_accuracy=list(curve.accuracies),
        raw_loss=list(curve.losses),
        val=[(e["lr"], e["val_accuracy"], e["val_loss"]) for e in curve.epochs],
        bounds=tuple(result.bounds) if result.bounds else None,
        compare_bounds=tuple(result.compare_bounds) if result.compare_bounds else None,
        lr_range=(curve.lr_min, curve.lr_max),
    )


def _finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


def _thin(xs: Sequence[float], ys: Sequence[float]) -> list[tuple[float, float | None]]:
    count = min(len(xs), len(ys))
    if count <= MAX_POINTS:
        indices = range(count)
    else:
        step = (count - 1) / (MAX_POINTS - 1)
        indices = sorted({round(i * step) for i in range(MAX_POINTS)})
    return [(xs[i], ys[i] if _finite(ys[i]) else None) for i in indices]


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values covering ``[low, high]`` (1, 2, 5 times a power of ten)."""
    if not (_finite(low) and _finite(high)) or high <= low:
        return [low]
    raw = (high - low) / count
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = math.ceil(low / step - 1e-9) * step
    ticks = []
    value = first
    while value <= high + step * 1e-9:
        ticks.append(round(value, 12))
        value += step
    return ticks


def _label(value: float) -> str:
    return f"{value:.3g}" if value else "0"


@dataclass(frozen=True)
class _Panel:
    x0: float
    x_low: float
    x_high: float
    y_low: float
    y_high: float

    def x(self, value: float) -> float:
        return self.x0 + (value - self.x_low) / (self.x_high - self.x_low) * PANEL_WIDTH

    def y(self, value: float) -> float:
        clipped = min(max(value, self.y_low), self.y_high)
        return TOP + PANEL_HEIGHT - (clipped - self.y_low) / (self.y_high - self.y_low) \
            * PANEL_HEIGHT


def _path(panel: _Panel, points: list[tuple[float, float | None]], color: str,
          width: float, dash: str = "") -> str:
    commands, pen_down = [], False
    for x, y in points:
        if y is None or not _finite(x):
            pen_down = False
            continue
        commands.append(f"{'L' if pen_down else 'M'}{panel.x(x):.1f},{panel.y(y):.1f}")
        pen_down = True
    if not commands:
        return ""
    dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
    return (f'<path d="{" ".join(commands)}" fill="none" stroke="{color}" '
            f'stroke-width="{width}"{dash_attr}/>')


def _axes(panel: _Panel, title: str, y_title: str) -> list[str]:
    parts = [f'<rect x="{panel.x0}" y="{TOP}" width="{PANEL_WIDTH}" height="{PANEL_HEIGHT}" '
             'fill="#fff" stroke="#ccc"/>',
             f'<text x="{panel.x0 + PANEL_WIDTH / 2}" y="{TOP - 8}" text-anchor="middle" '
             f'font-size="14" font-weight="bold">{escape(title)}</text>']
    for tick in nice_ticks(panel.x_low, panel.x_high):
        x = panel.x(tick)
        parts.append(f'<line x1="{x:.1f}" y1="{TOP}" x2="{x:.1f}" y2="{TOP + PANEL_HEIGHT}" '
                     'stroke="#eee"/>')
        parts.append(f'<text x="{x:.1f}" y="{TOP + PANEL_HEIGHT + 16}" text-anchor="middle" '
                     f'font-size="11">{_label(tick)}</text>')
    for tick in nice_ticks(panel.y_low, panel.y_high):
        y = panel.y(tick)
        parts.append(f'<line x1="{panel.x0}" y1="{y:.1f}" x2="{panel.x0 + PANEL_WIDTH}" '
                     f'y2="{y:.1f}" stroke="#eee"/>')
        parts.append(f'<text x="{panel.x0 - 6}" y="{y + 4:.1f}" text-anchor="end" '
                     f'font-size="11">{_label(tick)}</text>')
    parts.append(f'<text x="{panel.x0 + PANEL_WIDTH / 2}" y="{TOP + PANEL_HEIGHT + 36}" '
                 'text-anchor="middle" font-size="12">learning rate</text>')
    parts.append(f'<text transform="translate({panel.x0 - 48},{TOP + PANEL_HEIGHT / 2}) '
                 f'rotate(-90)" text-anchor="middle" font-size="12">{escape(y_title)}</text>')
    return parts


def _bound_lines(panel: _Panel, bounds: tuple[float, float] | None, color: str,
                 dash: str) -> list[str]:
    if not bounds:
        return []
    parts = []
    for value in bounds:
        if panel.x_low <= value <= panel.x_high:
            x = panel.x(value)
            parts.append(f'<line x1="{x:.1f}" y1="{TOP}" x2="{x:.1f}" y2="{TOP + PANEL_HEIGHT}" '
                         f'stroke="{color}" stroke-width="1.5" stroke-dasharray="{dash}"/>')
    return parts


def _loss_ceiling(series: CurveSeries) -> float:
    """Keep the healthy part readable: a blow-up runs off the top instead of flattening it."""
    finite = [v for v in series.loss if _finite(v)]
    if not finite:
        return 1.0
    start = finite[0]
    return max(min(max(finite), 2.0 * start if start > 0 else max(finite)), 1e-6) * 1.05


def curve_svg(series: CurveSeries, title: str, subtitle: str = "") -> str:
    """The SVG document: smoothed (bold) and per-batch (light) accuracy and loss against LR,
    validation at epoch ends, and the chosen LR bounds."""
    xs = [x for x in series.lr if _finite(x)]
    x_low, x_high = series.lr_range or (min(xs, default=0.0), max(xs, default=1.0))
    if x_high <= x_low:
        x_high = x_low + 1.0
    accuracies = [v for v in [*series.accuracy, *series.raw_accuracy,
                              *(a for _, a, _ in series.val)] if _finite(v)]
    acc_high = min(1.0, math.ceil(max(accuracies, default=0.1) * 10 + 0.5) / 10)
    accuracy_panel = _Panel(LEFT, x_low, x_high, 0.0, max(acc_high, 0.1))
    loss_panel = _Panel(LEFT + PANEL_WIDTH + GAP, x_low, x_high, 0.0, _loss_ceiling(series))

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
             f'viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif">',
             f'<rect width="{WIDTH}" height="{HEIGHT}" fill="#fafafa"/>',
             f'<text x="{WIDTH / 2}" y="22" text-anchor="middle" font-size="16" '
             f'font-weight="bold">{escape(title)}</text>']
    if subtitle:
        parts.append(f'<text x="{WIDTH / 2}" y="40" text-anchor="middle" font-size="12" '
                     f'fill="#555">{escape(subtitle)}</text>')
    for panel, name, raw, smooth, raw_color, color, val_index in (
        (accuracy_panel, "accuracy", series.raw_accuracy, series.accuracy, RAW_ACCURACY,
         SMOOTH_ACCURACY, 1),
        (loss_panel, "loss", series.raw_loss, series.loss, RAW_LOSS, SMOOTH_LOSS, 2),
    ):
        parts += _axes(panel, f"LRRT {name}", name)
        parts += _bound_lines(panel, series.compare_bounds, COMPARE, "2,3")
        parts += _bound_lines(panel, series.bounds, BOUNDS, "6,4")
        if raw:
            parts.append(_path(panel, _thin(series.lr, raw), raw_color, 0.8))
        parts.append(_path(panel, _thin(series.lr, smooth), color, 2.2))
        for point in series.val:
            lr, value = point[0], point[val_index]
            if _finite(lr) and _finite(value) and x_low <= lr <= x_high:
                parts.append(f'<circle cx="{panel.x(lr):.1f}" cy="{panel.y(value):.1f}" r="4" '
                             f'fill="{VALIDATION}" stroke="#fff"/>')
    parts += _legend(series)
    parts.append("</svg>")
    return "\n".join(part for part in parts if part)


def _legend(series: CurveSeries) -> list[str]:
    entries = [(SMOOTH_ACCURACY, "smoothed accuracy", ""), (SMOOTH_LOSS, "smoothed loss", "")]
    if series.raw_accuracy:
        entries.append((RAW_ACCURACY, "per batch", ""))
    if series.val:
        entries.append((VALIDATION, "validation (epoch end)", "dot"))
    if series.bounds:
        entries.append((BOUNDS, f"bounds {_label(series.bounds[0])}..."
                                f"{_label(series.bounds[1])}", "6,4"))
    if series.compare_bounds:
        entries.append((COMPARE, f"cross-check {_label(series.compare_bounds[0])}..."
                                 f"{_label(series.compare_bounds[1])}", "2,3"))
    parts, x, y = [], LEFT, HEIGHT - 32
    for color, text, dash in entries:
        width = 36 + 7 * len(text)
        if x + width > WIDTH - 10:
            x, y = LEFT, y + 20
        if dash == "dot":
            parts.append(f'<circle cx="{x + 11}" cy="{y - 4}" r="4" fill="{color}"/>')
        else:
            dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
            parts.append(f'<line x1="{x}" y1="{y - 4}" x2="{x + 22}" y2="{y - 4}" '
                         f'stroke="{color}" stroke-width="2.5"{dash_attr}/>')
        parts.append(f'<text x="{x + 28}" y="{y}" font-size="12">{escape(text)}</text>')
        x += width
    return parts


def _upload(store: optuna.artifacts.FileSystemArtifactStore, trial: optuna.Trial,
            filename: str, text: str, mimetype: str) -> str:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / filename
        path.write_text(text)
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
        curve = result.curve
        subtitle = (f"trial {trial.number} - LR {curve.lr_min:g}..{curve.lr_max:g} - best "
                    f"smoothed accuracy {result.best_smoothed_accuracy:.3f}")
        if curve.diverged:
            subtitle += f" - diverged: {curve.divergence}"
        curve_id = _upload(self.store, trial, f"lrrt-trial-{trial.number}.json",
                           result.to_json(), "application/json")
        plot_id = _upload(self.store, trial, f"lrrt-trial-{trial.number}.svg",
                          curve_svg(series_from_result(result),
                                    f"{record.config_name}: LR range test", subtitle),
                          "image/svg+xml")
        TrialRecorder(trial).artifacts(curve_id=curve_id, plot_id=plot_id)
        save_note(trial.study, frozen_trial(trial))


def open_lrrt_artifacts(artifact_dir: str | None) -> LRRTArtifactStore | None:
    """The artifact store in ``artifact_dir`` (created), or None when artifacts are off."""
    if not artifact_dir:
        return None
    Path(artifact_dir).mkdir(parents=True, exist_ok=True)
    return LRRTArtifactStore(optuna.artifacts.FileSystemArtifactStore(artifact_dir))

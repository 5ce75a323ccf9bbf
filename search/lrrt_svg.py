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
from optuna.trial import FrozenTrial, TrialState

from search.lrrt import LRRTResult

ATTR_PLOT_ARTIFACT = "lrrt_plot_artifact_id"
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


def series_from_attrs(attrs: dict) -> CurveSeries:
    """From a trial's user attrs (the 200-point smoothed ``lrrt_curve``): for trials whose
    full curve is not at hand."""
    curve = attrs.get("lrrt_curve") or {"lr": [], "accuracy": [], "loss": []}
    summary = attrs.get("lrrt") or {}
    bounds = summary.get("bounds")
    compare = summary.get("compare_bounds")
    lr_range = (summary["lr_min"], summary["lr_max"]) if "lr_min" in summary else None
    return CurveSeries(
        lr=list(curve["lr"]), accuracy=list(curve["accuracy"]), loss=list(curve["loss"]),
        bounds=tuple(bounds) if bounds else None,
        compare_bounds=tuple(compare) if compare else None, lr_range=lr_range,
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


def upload_lrrt_svg(
    artifact_store: optuna.artifacts.FileSystemArtifactStore,
    trial: optuna.Trial,
    series: CurveSeries,
    title: str,
    subtitle: str = "",
) -> str:
    """Upload the curve as ``lrrt-trial-N.svg`` (``image/svg+xml``) to the trial; its id is
    stored in the ``lrrt_plot_artifact_id`` user attr."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"lrrt-trial-{trial.number}.svg"
        path.write_text(curve_svg(series, title, subtitle))
        artifact_id = optuna.artifacts.upload_artifact(
            artifact_store=artifact_store, file_path=str(path), study_or_trial=trial,
            mimetype="image/svg+xml",
        )
    trial.set_user_attr(ATTR_PLOT_ARTIFACT, artifact_id)
    return artifact_id


def artifact_url(study_id: int, trial_id: int, artifact_id: str) -> str:
    """Where optuna-dashboard serves a trial's artifact."""
    return f"/artifacts/{study_id}/{trial_id}/{artifact_id}"


def note_markdown(attrs: dict, url: str, state: TrialState | None = None) -> str:
    """The trial's note on its dashboard page: the verdict, then the LRRT plot full width
    (the Artifacts card only shows a thumbnail)."""
    name = attrs.get("config_name", "?")
    summary = attrs.get("lrrt") or {}
    lines = []
    if state == TrialState.PRUNED:
        reason = attrs.get("prune_reason", "pruned")
        detail = attrs.get("prune_detail")
        lines.append(f"**{name}**: pruned, reason **{reason}**" + (f" ({detail})" if detail
                                                                    else ""))
    elif state == TrialState.COMPLETE:
        curve = attrs.get("val_curve") or []
        best = f", best validation accuracy **{max(curve):.4f}**" if curve else ""
        lines.append(f"**{name}**: complete{best}")
    elif state == TrialState.FAIL:
        lines.append(f"**{name}**: failed ({attrs.get('fail_reason', 'error')})")
    else:
        lines.append(f"**{name}**: LR range test done")
    text = "LR range test"
    if "lr_min" in summary:
        text += f" over [{summary['lr_min']:g}, {summary['lr_max']:g}]"
    if summary.get("best_smoothed_accuracy") is not None:
        text += f": best smoothed accuracy {summary['best_smoothed_accuracy']:.3f}"
    bounds = attrs.get("lr_bounds") or (None if state == TrialState.PRUNED
                                        else summary.get("bounds"))
    if bounds:
        text += f", LR bounds {bounds[0]:.4g}..{bounds[1]:.4g}"
    lines += ["", text, "", f"![LR range test of {name}]({url})", ""]
    return "\n".join(lines)


def save_lrrt_note(trial: optuna.Trial, attrs: dict, artifact_id: str,
                   state: TrialState | None = None) -> None:
    from optuna_dashboard import save_note

    url = artifact_url(trial.study._study_id, trial._trial_id, artifact_id)
    save_note(trial, note_markdown(attrs, url, state))


class TrialNotes:
    """``study.optimize`` callback: when a trial ends, its note gets the verdict (pruned and
    why, or its validation accuracy) above the LRRT plot."""

    def __call__(self, study: optuna.study.Study, frozen: FrozenTrial) -> None:
        artifact_id = frozen.user_attrs.get(ATTR_PLOT_ARTIFACT)
        if not artifact_id:
            return
        trial = optuna.Trial(study, frozen._trial_id)
        save_lrrt_note(trial, frozen.user_attrs, artifact_id, frozen.state)


def upload_result_svg(
    artifact_store: optuna.artifacts.FileSystemArtifactStore,
    trial: optuna.Trial,
    result: LRRTResult,
) -> str:
    """What the objective calls after the range test: titled with the trial's config name
    (its ``config_name`` user attr) and LR range."""
    name = trial.user_attrs.get("config_name", f"trial {trial.number}")
    curve = result.curve
    subtitle = (f"trial {trial.number} - LR {curve.lr_min:g}..{curve.lr_max:g} - best smoothed "
                f"accuracy {result.best_smoothed_accuracy:.3f}")
    if curve.diverged:
        subtitle += f" - diverged: {curve.divergence}"
    artifact_id = upload_lrrt_svg(artifact_store, trial, series_from_result(result),
                                  f"{name}: LR range test", subtitle)
    save_lrrt_note(trial, {**trial.user_attrs, "lrrt": result.summary()}, artifact_id)
    return artifact_id

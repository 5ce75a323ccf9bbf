"""The LRRT figure (the thesis' figures 4.2-4.9): smoothed accuracy and loss against LR, one
line per design, described once and drawn two ways.

``LRRTLine`` is what one design contributes, read from a ``TrialRecord`` (the report) or
from an ``LRRTResult`` (``cnnsearch lrrt`` and the trial's SVG artifact). ``line_styles``
colours N of them (pruned designs grey and dashed) and ``loss_ceiling`` bounds the loss
axis. Besides its curve a line may carry its LR bounds (ticks on the accuracy line, only
inside the tested range, only for a design that trained with them), the chance threshold
it missed (a dotted level on the accuracy panel) and the point where its test diverged (an
x on the loss panel, clipped under the ceiling, its value in the hover and the legend).

``lrrt_figure`` draws the lines with plotly (interactive: the report, ``cnnsearch lrrt``),
``lrrt_svg`` with matplotlib (a static SVG that optuna-dashboard shows in a trial's note):
same lines, colours, bounds, markers and loss ceiling. matplotlib is imported only when an
SVG is drawn.
"""

from __future__ import annotations

import html
import io
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import plotly.graph_objects as go
from optuna.trial import TrialState
from plotly.subplots import make_subplots

from search.method.lrrt.curve import downsample
from search.record import CHANCE_LEVEL, Bounds, CurvePoints, DivergencePoint, TrialRecord

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from search.method.lrrt.result import LRRTResult
    from search.record import Verdict

MAX_POINTS = 400
"""Points per drawn line: enough for a 400 px panel, few enough to keep files light."""

PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
           "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#393b79"]
PRUNED_COLOR = "#9e9e9e"
PANELS = ("smoothed accuracy", "smoothed loss")
LR_TITLE = "learning rate"
RAW_OPACITY = 0.35
"""Per-batch values are drawn light under the smoothed line, in its colour."""
BOUND_MARKER = {"size": 14, "width": 3}
"""The LR bounds: vertical ticks on the accuracy line (px)."""
VALIDATION_MARKER = 8
DIVERGENCE_MARKER = {"size": 12, "width": 2.5}
"""Where a test diverged: an x on the loss panel (px)."""
CEILING_HEADROOM = 1.05
"""The loss axis ends this much above the highest loss it shows."""


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def _thinned(lrs: Sequence[float], accuracies: Sequence[float],
             losses: Sequence[float]) -> CurvePoints:
    """At most ``MAX_POINTS`` points, the same ones of each column; non-finite become gaps."""
    return CurvePoints(*(tuple(_finite(v) for v in downsample(list(column), MAX_POINTS))
                         for column in (lrs, accuracies, losses)))


@dataclass(frozen=True)
class LRRTLine:
    """One design in an LRRT figure."""

    label: str
    curve: CurvePoints
    """Smoothed accuracy and loss against LR."""
    raw: CurvePoints | None = None
    """Per-batch values (only a fresh ``LRRTResult`` has them; trial attrs keep the smoothed
    curve)."""
    validation: CurvePoints | None = None
    """Validation accuracy and loss at each epoch end of the range test."""
    bounds: Bounds | None = None
    pruned: bool = False
    reason: str = ""
    status: str = ""
    """The trial's state in words ("complete", "running"); empty outside a study."""
    lr_range: Bounds | None = None
    """The range tested: bounds are drawn only inside it."""
    divergence: DivergencePoint | None = None
    """Where the test diverged; the curve stops before it."""
    threshold: float | None = None
    """The chance threshold a design rejected as ``chance_level`` missed."""

    @classmethod
    def from_record(cls, record: TrialRecord, curve: CurvePoints | None = None
                    ) -> LRRTLine | None:
        """A trial's smoothed curve (``curve``, read from its artifact, else the one its
        attrs keep); None before its range test is recorded. Bounds only where the trial
        trained with them: a design the gate rejected never used its test's bounds."""
        curve = curve or record.lrrt_curve
        if curve is None or not any(lr is not None for lr in curve.lr):
            return None
        gap = record.chance_gap
        return cls(label=f"#{record.number} {record.config_name}", curve=curve,
                   bounds=record.trained_bounds, pruned=record.state == TrialState.PRUNED,
                   reason=record.reason, status=record.state.name.lower(),
                   lr_range=record.lr_range,
                   divergence=record.lrrt.divergence_point if record.lrrt else None,
                   threshold=gap[1] if gap else None)

    @classmethod
    def from_result(cls, result: LRRTResult, label: str,
                    verdict: Verdict | None = None) -> LRRTLine:
        """A range test just run: smoothed and per-batch values, validation, bounds. With
        the gate's ``verdict`` the design is drawn rejected: no bounds, the threshold it
        missed."""
        curve = result.curve
        epochs = curve.epochs
        threshold = None
        if verdict is not None and verdict.reason == CHANCE_LEVEL:
            threshold = _number(verdict.evidence.get("threshold"))
        return cls(
            label=label,
            curve=_thinned(curve.lrs, curve.smoothed_accuracies, curve.smoothed_losses),
            raw=_thinned(curve.lrs, curve.accuracies, curve.losses),
            validation=_thinned([e["lr"] for e in epochs], [e["val_accuracy"] for e in epochs],
                                [e["val_loss"] for e in epochs]) if epochs else None,
            bounds=result.summary.bounds if verdict is None else None,
            pruned=verdict is not None,
            reason=verdict.reason if verdict is not None else "",
            lr_range=(curve.lr_min, curve.lr_max),
            divergence=curve.divergence_point,
            threshold=threshold,
        )

    @property
    def legend(self) -> str:
        if self.pruned:
            return f"{self.label} - pruned: {self.reason or 'pruned'}"
        return f"{self.label} - {self.status}" if self.status else self.label

    @property
    def tested_range(self) -> Bounds | None:
        """The LR range of the test, else the LRs its curve spans."""
        if self.lr_range is not None:
            return self.lr_range
        known = [lr for lr in self.curve.lr if lr is not None]
        return (min(known), max(known)) if known else None

    @property
    def bound_markers(self) -> list[tuple[float, float]]:
        """(LR, accuracy) where each bound sits on the accuracy line; a bound outside the
        tested range is not drawn (there is no curve there to put it on)."""
        tested = self.tested_range
        if tested is None:
            return []
        low, high = tested[0] * (1 - 1e-9), tested[1] * (1 + 1e-9)
        markers = []
        for bound in self.bounds or ():
            accuracy = _value_at(self.curve, bound) if low <= bound <= high else None
            if accuracy is not None:
                markers.append((bound, accuracy))
        return markers

    def divergence_marker(self, ceiling: float | None) -> tuple[float, float] | None:
        """(LR, loss) of the divergence marker: the smoothed loss there, clipped to the top
        of the plot (``ceiling``) when it is higher or not finite."""
        point = self.divergence
        if point is None:
            return None
        top = ceiling / CEILING_HEADROOM if ceiling else None
        if point.loss is None:
            return None if top is None else (point.lr, top)
        return point.lr, point.loss if top is None else min(point.loss, top)

    @property
    def divergence_text(self) -> str:
        point = self.divergence
        if point is None:
            return ""
        loss = "not finite" if point.loss is None else f"{point.loss:.3g}"
        return f"diverged at lr {point.lr:.3g}: smoothed loss {loss}"

    @property
    def threshold_text(self) -> str:
        return "" if self.threshold is None else f"chance threshold {self.threshold:.3f}"


def _number(value: object) -> float | None:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return _finite(number)


def _value_at(curve: CurvePoints, lr: float) -> float | None:
    """Accuracy at the recorded LR closest to ``lr``."""
    known = [(abs(x - lr), y) for x, y in zip(curve.lr, curve.accuracy, strict=False)
             if x is not None and y is not None]
    return min(known, key=lambda pair: pair[0])[1] if known else None


@dataclass(frozen=True)
class LineStyle:
    color: str
    dashed: bool
    width: float
    """Pixels (plotly); matplotlib gets the same on screen in points * 4/3."""
    opacity: float


def line_styles(lines: Sequence[LRRTLine]) -> list[LineStyle]:
    """Survivors take the palette in order; pruned designs are grey, dashed and thinner."""
    styles, colour = [], 0
    for line in lines:
        if line.pruned:
            styles.append(LineStyle(PRUNED_COLOR, True, 1.5, 0.75))
        else:
            styles.append(LineStyle(PALETTE[colour % len(PALETTE)], False, 2.5, 1.0))
            colour += 1
    return styles


def loss_ceiling(lines: Iterable[LRRTLine]) -> float | None:
    """Top of the loss axis: the highest smoothed loss, but at most twice the largest
    starting loss, so a diverging curve leaves the plot instead of flattening the others.
    None when no line has a loss."""
    starts, highs = [], []
    for line in lines:
        finite = [v for v in line.curve.loss if v is not None]
        if finite:
            starts.append(finite[0])
            highs.append(max(finite))
    if not starts:
        return None
    return max(min(max(highs), 2.0 * max(starts)), 1e-6) * CEILING_HEADROOM


# --- plotly ----------------------------------------------------------------------------------

def lrrt_figure(lines: Sequence[LRRTLine], title: str, subtitle: str = "") -> go.Figure:
    """The interactive figure: accuracy and loss subplots, a legend entry per design (names
    html-escaped: plotly reads tags in them), bound markers, log/linear LR buttons."""
    figure = make_subplots(rows=1, cols=2, horizontal_spacing=0.08, subplot_titles=PANELS)
    ceiling = loss_ceiling(lines)
    for index, (line, style) in enumerate(zip(lines, line_styles(lines), strict=True)):
        group = f"line-{index}"
        label = html.escape(line.label)
        verdict = line.status.upper() + (f": {html.escape(line.reason)}" if line.reason else "")
        hover = f"{label}<br>{verdict}<br>" if verdict else f"{label}<br>"
        stroke = {"color": style.color, "dash": "dash" if style.dashed else "solid",
                  "width": style.width}
        for column, key in ((1, "accuracy"), (2, "loss")):
            if line.raw is not None:
                figure.add_trace(go.Scatter(
                    x=line.raw.lr, y=getattr(line.raw, key), mode="lines", name="per batch",
                    legendgroup=group, showlegend=False, hoverinfo="skip",
                    line={**stroke, "width": 1}, opacity=RAW_OPACITY * style.opacity,
                ), row=1, col=column)
            figure.add_trace(go.Scatter(
                x=line.curve.lr, y=getattr(line.curve, key), mode="lines",
                name=html.escape(line.legend), legendgroup=group, showlegend=column == 1,
                line=stroke, opacity=style.opacity,
                hovertemplate=hover + "lr %{x:.4g}<br>%{y:.4f}<extra></extra>",
            ), row=1, col=column)
            if line.validation is not None:
                figure.add_trace(go.Scatter(
                    x=line.validation.lr, y=getattr(line.validation, key), mode="markers",
                    name="validation (epoch end)", legendgroup=group, showlegend=False,
                    marker={"color": style.color, "size": VALIDATION_MARKER,
                            "line": {"color": "#fff", "width": 1}},
                    hovertemplate=f"{label} validation<br>lr %{{x:.4g}}<br>%{{y:.4f}}"
                                  "<extra></extra>",
                ), row=1, col=column)
        markers = line.bound_markers
        if markers:
            figure.add_trace(go.Scatter(
                x=[lr for lr, _ in markers], y=[accuracy for _, accuracy in markers],
                mode="markers", legendgroup=group, showlegend=False,
                marker={"color": style.color, "size": BOUND_MARKER["size"],
                        "symbol": "line-ns-open",
                        "line": {"width": BOUND_MARKER["width"], "color": style.color}},
                hovertemplate=f"{label} LR bound %{{x:.4g}}<extra></extra>",
            ), row=1, col=1)
        tested = line.tested_range
        if line.threshold is not None and tested is not None:
            figure.add_trace(go.Scatter(
                x=list(tested), y=[line.threshold] * 2, mode="lines", name="chance threshold",
                legendgroup=group, showlegend=False,
                line={"color": style.color, "dash": "dot", "width": 1.5},
                hovertemplate=f"{label}<br>{line.threshold_text}<extra></extra>",
            ), row=1, col=1)
        marker = line.divergence_marker(ceiling)
        if marker is not None:
            figure.add_trace(go.Scatter(
                x=[marker[0]], y=[marker[1]], mode="markers", name="diverged",
                legendgroup=group, showlegend=False,
                marker={"color": style.color, "symbol": "x-thin-open",
                        "size": DIVERGENCE_MARKER["size"],
                        "line": {"width": DIVERGENCE_MARKER["width"], "color": style.color}},
                hovertemplate=f"{label}<br>{html.escape(line.divergence_text)}"
                              "<extra></extra>",
            ), row=1, col=2)
    if ceiling:
        figure.update_yaxes(range=[0, ceiling], row=1, col=2)
    figure.update_xaxes(title_text=LR_TITLE, exponentformat="e")
    figure.update_yaxes(title_text="accuracy", row=1, col=1)
    figure.update_yaxes(title_text="loss", row=1, col=2)
    text = html.escape(title) + (f"<br><sup>{html.escape(subtitle)}</sup>" if subtitle else "")
    figure.update_layout(
        title={"text": text}, template="plotly_white",
        height=470 + 22 * math.ceil(len(lines) / 3),
        legend={"orientation": "h", "x": 0, "y": -0.18, "yanchor": "top", "font": {"size": 12}},
        margin={"t": 90},
        updatemenus=[{
            "type": "buttons", "direction": "right", "x": 1.0, "xanchor": "right", "y": 1.2,
            "buttons": [
                {"label": "linear LR", "method": "relayout",
                 "args": [{"xaxis.type": "linear", "xaxis2.type": "linear"}]},
                {"label": "log LR", "method": "relayout",
                 "args": [{"xaxis.type": "log", "xaxis2.type": "log"}]},
            ],
        }],
    )
    return figure


# --- matplotlib (SVG) ------------------------------------------------------------------------

SVG_SIZE = (10.0, 4.4)
"""Inches; the SVG is written in points (72 per inch), which browsers show at 96 px per
inch: 960 px wide."""
PX = 0.75
"""Points per pixel: plotly's pixel widths and sizes, the same on screen in the SVG."""
_SVG_RC = {"svg.fonttype": "none", "svg.hashsalt": "cnnsearch", "text.parse_math": False,
           "font.family": "sans-serif", "font.size": 9.5,
           "font.sans-serif": ["DejaVu Sans", "Arial", "Helvetica", "sans-serif"]}
"""Text stays text (small, searchable, selectable), ids are stable, and a ``$`` in a name
is a dollar, not TeX."""


def _legend_text(text: str) -> str:
    """matplotlib hides legend entries whose label starts with an underscore."""
    return "\u200b" + text if text.startswith("_") else text


def lrrt_matplotlib(lines: Sequence[LRRTLine], title: str, subtitle: str = "") -> Figure:
    """The static figure: what ``lrrt_figure`` shows, at its default linear LR axis. Each
    design's artists carry ids (``line0-accuracy``, ``line0-bounds``...) in the SVG."""
    import matplotlib
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter

    with matplotlib.rc_context(_SVG_RC):
        figure = Figure(figsize=SVG_SIZE, layout="constrained", facecolor="#fff")
        accuracy_axes, loss_axes = figure.subplots(1, 2)
        for axes, panel, name in ((accuracy_axes, PANELS[0], "accuracy"),
                                  (loss_axes, PANELS[1], "loss")):
            axes.set_title(panel, fontsize=11)
            axes.set_xlabel(LR_TITLE)
            axes.set_ylabel(name)
            axes.grid(color="#e5e5e5", linewidth=0.6)
            axes.set_axisbelow(True)
            axes.margins(x=0.015)  # room for a marker at either end of the LR range
            axes.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:.3g}"))
            for spine in axes.spines.values():
                spine.set_color("#bbb")
        ceiling = loss_ceiling(lines)
        for index, (line, style) in enumerate(zip(lines, line_styles(lines), strict=True)):
            _draw_line(accuracy_axes, loss_axes, index, line, style, alone=len(lines) == 1,
                       ceiling=ceiling)
        if ceiling:
            loss_axes.set_ylim(0, ceiling)
        figure.suptitle(title + (f"\n{subtitle}" if subtitle else ""), fontsize=11)
        handles, labels = accuracy_axes.get_legend_handles_labels()
        more_handles, more_labels = loss_axes.get_legend_handles_labels()  # divergences
        handles, labels = handles + more_handles, labels + more_labels
        if handles:
            figure.legend(handles, labels, loc="outside lower center", frameon=False,
                          ncols=min(len(handles), 4), fontsize=9)
    return figure


def _draw_line(accuracy_axes: Axes, loss_axes: Axes, index: int, line: LRRTLine,
               style: LineStyle, *, alone: bool, ceiling: float | None = None) -> None:
    import numpy as np
    from matplotlib import patheffects

    def values(column: tuple[float | None, ...]) -> np.ndarray:
        return np.array([np.nan if v is None else v for v in column], dtype=float)

    stroke = {"color": style.color, "linestyle": "--" if style.dashed else "-"}
    for axes, key in ((accuracy_axes, "accuracy"), (loss_axes, "loss")):
        legend = axes is accuracy_axes and index == 0
        (smooth,) = axes.plot(values(line.curve.lr), values(getattr(line.curve, key)),
                              **stroke, linewidth=style.width * PX, alpha=style.opacity,
                              zorder=3, label=_legend_text(line.legend)
                              if axes is accuracy_axes else "_nolegend_")
        smooth.set_gid(f"line{index}-{key}")
        if line.raw is not None:  # under the smoothed line, after it in the legend
            (raw,) = axes.plot(values(line.raw.lr), values(getattr(line.raw, key)), **stroke,
                               linewidth=1 * PX, alpha=RAW_OPACITY * style.opacity, zorder=2,
                               label="per batch" if legend else "_nolegend_")
            raw.set_gid(f"line{index}-raw-{key}")
        if line.validation is not None:
            (points,) = axes.plot(values(line.validation.lr),
                                  values(getattr(line.validation, key)), linestyle="none",
                                  marker="o", markersize=VALIDATION_MARKER * PX,
                                  markerfacecolor=style.color, markeredgecolor="#fff",
                                  label="validation (epoch end)" if legend else "_nolegend_")
            points.set_gid(f"line{index}-validation-{key}")
    markers = line.bound_markers
    if markers:
        low, high = line.bounds
        text = f"LR bounds {low:.3g}..{high:.3g}"
        label = text if alone else f"{line.label}: {text}"
        width = BOUND_MARKER["width"] * PX
        (ticks,) = accuracy_axes.plot(
            [lr for lr, _ in markers], [accuracy for _, accuracy in markers], linestyle="none",
            marker="|", markersize=BOUND_MARKER["size"] * PX, markeredgewidth=width,
            color=style.color, zorder=4, label=label)
        # a white halo: the tick stands out on the line it sits on
        ticks.set_path_effects([patheffects.Stroke(linewidth=width + 2, foreground="#fff"),
                                patheffects.Normal()])
        ticks.set_gid(f"line{index}-bounds")
    tested = line.tested_range
    if line.threshold is not None and tested is not None:
        text = line.threshold_text
        (level,) = accuracy_axes.plot(list(tested), [line.threshold] * 2, color=style.color,
                                      linestyle=":", linewidth=1.5 * PX, zorder=2,
                                      label=text if alone else f"{line.label}: {text}")
        level.set_gid(f"line{index}-threshold")
    marker = line.divergence_marker(ceiling)
    if marker is not None:
        text = line.divergence_text
        (cross,) = loss_axes.plot([marker[0]], [marker[1]], linestyle="none", marker="x",
                                  markersize=DIVERGENCE_MARKER["size"] * PX,
                                  markeredgewidth=DIVERGENCE_MARKER["width"] * PX,
                                  color=style.color, zorder=4, clip_on=False,
                                  label=text if alone else f"{line.label}: {text}")
        cross.set_gid(f"line{index}-divergence")


def lrrt_svg(lines: Sequence[LRRTLine], title: str, subtitle: str = "") -> str:
    """The SVG document of ``lrrt_matplotlib`` (no browser, no network, text kept as text)."""
    import matplotlib

    figure = lrrt_matplotlib(lines, title, subtitle)
    buffer = io.StringIO()
    with matplotlib.rc_context(_SVG_RC):
        figure.savefig(buffer, format="svg", metadata={"Date": None})
    document = buffer.getvalue()
    return document[document.index("<svg"):]  # no XML prolog or DTD: UTF-8 is the default

"""Plotly figures of LRRT curves: accuracy and loss against LR (the thesis' figures 4.2-4.9)."""

from __future__ import annotations

from collections.abc import Sequence

import plotly.graph_objects as go
from plotly.subplots import make_subplots


def lrrt_figure(
    curves: Sequence[tuple[str, dict[str, list[float]], tuple[float, float] | None, bool]],
    title: str = "LR range test",
) -> go.Figure:
    """One line per configuration: ``(name, {"lr", "accuracy", "loss"}, bounds, pruned)``.

    Pruned designs are dashed; chosen bounds are drawn as markers on the accuracy line.
    """
    figure = make_subplots(rows=1, cols=2, subplot_titles=("smoothed accuracy", "smoothed loss"))
    for index, (name, curve, bounds, pruned) in enumerate(curves):
        color = _PALETTE[index % len(_PALETTE)]
        label = f"{name} (pruned)" if pruned else name
        line = {"color": color, "dash": "dash" if pruned else "solid"}
        figure.add_trace(go.Scatter(x=curve["lr"], y=curve["accuracy"], name=label,
                                    legendgroup=label, line=line), row=1, col=1)
        figure.add_trace(go.Scatter(x=curve["lr"], y=curve["loss"], name=label,
                                    legendgroup=label, showlegend=False, line=line), row=1, col=2)
        if bounds:
            figure.add_trace(go.Scatter(
                x=list(bounds), y=[_value_at(curve, b) for b in bounds], mode="markers",
                marker={"color": color, "size": 10, "symbol": "line-ns-open"},
                name=f"{name} bounds", legendgroup=label, showlegend=False,
            ), row=1, col=1)
    figure.update_xaxes(title_text="learning rate")
    figure.update_yaxes(title_text="accuracy", row=1, col=1)
    figure.update_yaxes(title_text="loss", row=1, col=2)
    figure.update_layout(title=title, template="plotly_white", height=450)
    return figure


def _value_at(curve: dict[str, list[float]], lr: float) -> float | None:
    """Accuracy at the recorded LR closest to ``lr`` (for bound markers)."""
    if not curve["lr"]:
        return None
    index = min(range(len(curve["lr"])), key=lambda i: abs(curve["lr"][i] - lr))
    return curve["accuracy"][index]


_PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
            "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]

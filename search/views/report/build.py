"""``cnnsearch report``: one self-contained HTML file of a study, in the thesis' shapes.

- the results table of tables 4.1-4.5 (config name, LR range, optimizer, LRRT maxima, LR
  bounds, final validation accuracy, state and prune reason), one sortable table per
  {dataset, LR range} group;
- the LRRT curves of figures 4.2-4.9: smoothed accuracy and loss against LR, one line per
  configuration, one figure per group, pruned designs dashed and grey with their reason;
- the triangular2 schedule and validation curve of the best trials;
- Optuna's own plotly views (``optuna.visualization``).

plotly.js is inlined once, so the file opens with no network. Everything is read from the
trials' user attrs: the report never writes to the study.
"""

from __future__ import annotations

import datetime
import html
import json
import math
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
import plotly.graph_objects as go
from optuna.trial import FrozenTrial, TrialState
from plotly.offline import get_plotlyjs
from plotly.subplots import make_subplots

from search.record import STUDY_CONFIG, TrialRecord
from search.views.results import summary_line

BEST_TRIALS = 3
SCHEDULE_POINTS_PER_EPOCH = 24
PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
           "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#393b79"]
PRUNED_COLOR = "#9e9e9e"
PLOT_CONFIG = {"displaylogo": False, "responsive": True}


@dataclass(frozen=True)
class ReportTrial:
    """One trial as the report sees it (plain data from user attrs)."""

    number: int
    name: str
    state: str
    reason: str
    detail: str
    dataset: str
    lr_range: tuple[float, float] | None
    optimizer: str
    max_batch_accuracy: float | None
    max_epoch_accuracy: float | None
    lrrt_val_accuracy: float | None
    best_smoothed_accuracy: float | None
    lr_bounds: tuple[float, float] | None
    final_val_accuracy: float | None
    seconds: float | None
    curve: dict[str, list[float]] | None = None
    val_curve: list[float] = field(default_factory=list)
    lr_curve: list[float] = field(default_factory=list)
    epochs: int | None = None
    step_size_epochs: float | None = None

    @property
    def pruned(self) -> bool:
        return self.state == TrialState.PRUNED.name

    @property
    def label(self) -> str:
        return f"#{self.number} {self.name}"

    @property
    def range_label(self) -> str:
        return "?" if self.lr_range is None else f"[{self.lr_range[0]:g}, {self.lr_range[1]:g}]"


def _float(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def report_trial(trial: FrozenTrial) -> ReportTrial:
    record = TrialRecord.from_frozen(trial)
    lrrt = record.lrrt
    final = record.value if record.state == TrialState.COMPLETE else record.best_val_accuracy
    train = record.train_settings
    curve = record.lrrt_curve
    return ReportTrial(
        number=record.number,
        name=record.config_name,
        state=record.state.name,
        reason=record.reason,
        detail=record.detail,
        dataset=record.dataset,
        lr_range=record.lr_range,
        optimizer=record.optimizer,
        max_batch_accuracy=lrrt.max_batch_accuracy if lrrt else None,
        max_epoch_accuracy=lrrt.max_epoch_accuracy if lrrt else None,
        lrrt_val_accuracy=lrrt.best_val_accuracy if lrrt else None,
        best_smoothed_accuracy=lrrt.score if lrrt else None,
        lr_bounds=record.lr_bounds,
        final_val_accuracy=final,
        seconds=record.seconds,
        curve=curve.to_attr() if curve else None,
        val_curve=list(record.val_curve),
        lr_curve=list(record.lr_curve),
        epochs=train.get("epochs"),
        step_size_epochs=train.get("step_size_epochs"),
    )


GroupKey = tuple[str, tuple[float, float] | None]


def group_trials(trials: Iterable[ReportTrial]) -> dict[GroupKey, list[ReportTrial]]:
    """The thesis' grouping: same dataset and LR range, ordered by dataset then range."""
    groups: dict[GroupKey, list[ReportTrial]] = {}
    for trial in trials:
        groups.setdefault((trial.dataset, trial.lr_range), []).append(trial)

    def order(key: GroupKey) -> tuple:
        return (key[0], key[1] is None, key[1] or (0.0, 0.0))

    return {key: sorted(groups[key], key=lambda t: t.number) for key in sorted(groups, key=order)}


def group_title(key: GroupKey) -> str:
    dataset, lr_range = key
    text = "?" if lr_range is None else f"[{lr_range[0]:g}, {lr_range[1]:g}]"
    return f"{dataset}, LR range {text}"


# --- figures -------------------------------------------------------------------------------

def _clean(values: Iterable[Any]) -> list[float | None]:
    return [_float(v) for v in values]


def _loss_ceiling(trials: list[ReportTrial]) -> float | None:
    """Twice the largest starting loss: a diverging curve leaves the top of the plot instead
    of flattening every other one."""
    starts = []
    for trial in trials:
        finite = [v for v in _clean((trial.curve or {}).get("loss", [])) if v is not None]
        if finite:
            starts.append(finite[0])
    return 2.0 * max(starts) if starts else None


def lrrt_group_figure(title: str, trials: list[ReportTrial]) -> go.Figure:
    """Smoothed accuracy and loss against LR, one line per configuration of the group.

    Pruned designs are grey and dashed, their reason in the legend and the hover text;
    survivors carry their chosen LR bounds as markers on the accuracy line.
    """
    figure = make_subplots(rows=1, cols=2, horizontal_spacing=0.08,
                           subplot_titles=("smoothed accuracy", "smoothed loss"))
    colour_index = 0
    for trial in trials:
        curve = trial.curve
        if not curve or not curve.get("lr"):
            continue
        if trial.pruned:
            color, dash, width, opacity = PRUNED_COLOR, "dash", 1.5, 0.75
            name = f"{trial.label} - pruned: {trial.reason}"
        else:
            color = PALETTE[colour_index % len(PALETTE)]
            colour_index += 1
            dash, width, opacity = "solid", 2.5, 1.0
            name = f"{trial.label} - {trial.state.lower()}"
        hover = (f"{html.escape(trial.label)}<br>{trial.state}"
                 + (f": {html.escape(trial.reason)}" if trial.reason else "")
                 + "<br>lr %{x:.4g}<br>%{y:.4f}<extra></extra>")
        line = {"color": color, "dash": dash, "width": width}
        lrs = _clean(curve["lr"])
        for column, key in ((1, "accuracy"), (2, "loss")):
            figure.add_trace(go.Scatter(
                x=lrs, y=_clean(curve.get(key, [])), mode="lines", name=name,
                legendgroup=f"trial-{trial.number}", showlegend=column == 1, line=line,
                opacity=opacity, hovertemplate=hover,
            ), row=1, col=column)
        if trial.lr_bounds and not trial.pruned:
            figure.add_trace(go.Scatter(
                x=list(trial.lr_bounds),
                y=[_value_at(lrs, _clean(curve["accuracy"]), b) for b in trial.lr_bounds],
                mode="markers", marker={"color": color, "size": 14, "symbol": "line-ns-open",
                                        "line": {"width": 3, "color": color}},
                legendgroup=f"trial-{trial.number}", showlegend=False,
                hovertemplate=f"{html.escape(trial.label)} LR bound %{{x:.4g}}<extra></extra>",
            ), row=1, col=1)
    ceiling = _loss_ceiling(trials)
    if ceiling:
        figure.update_yaxes(range=[0, ceiling], row=1, col=2)
    figure.update_xaxes(title_text="learning rate", exponentformat="e")
    figure.update_yaxes(title_text="accuracy", row=1, col=1)
    figure.update_yaxes(title_text="loss", row=1, col=2)
    figure.update_layout(
        title={"text": f"LR range test: {html.escape(title)}"}, template="plotly_white",
        height=470 + 22 * math.ceil(len(trials) / 3),
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


def _value_at(lrs: list[float | None], values: list[float | None], lr: float) -> float | None:
    candidates = [i for i, x in enumerate(lrs) if x is not None and i < len(values)]
    if not candidates:
        return None
    return values[min(candidates, key=lambda i: abs(lrs[i] - lr))]


def triangular2_lr(iteration: int, bounds: tuple[float, float], step_size: int) -> float:
    """Smith's triangular2 LR at ``iteration``: torch ``CyclicLR(mode="triangular2")``'s
    formula (the search trains with that scheduler; the tests hold the two equal). Written
    out because building a torch optimizer only to read its LR costs seconds of imports."""
    low, high = bounds
    cycle = math.floor(1 + iteration / (2 * step_size))
    x = abs(iteration / step_size - 2 * cycle + 1)
    return low + (high - low) * max(0.0, 1.0 - x) / 2 ** (cycle - 1)


def triangular2_schedule(
    bounds: tuple[float, float], epochs: int, step_size_epochs: float,
    points_per_epoch: int = SCHEDULE_POINTS_PER_EPOCH,
) -> tuple[list[float], list[float]]:
    """The LR the training used, ``points_per_epoch`` points per epoch; x in epochs. Half a
    cycle is ``step_size_epochs`` epochs, as in ``search.method.training.make_triangular2``."""
    step_size = max(1, round(step_size_epochs * points_per_epoch))
    steps = range(epochs * points_per_epoch + 1)
    return ([step / points_per_epoch for step in steps],
            [triangular2_lr(step, bounds, step_size) for step in steps])


def best_trials(trials: list[ReportTrial], count: int = BEST_TRIALS) -> list[ReportTrial]:
    complete = [t for t in trials if t.state == TrialState.COMPLETE.name
                and t.final_val_accuracy is not None]
    return sorted(complete, key=lambda t: (-t.final_val_accuracy, t.number))[:count]


def best_trials_figure(trials: list[ReportTrial]) -> go.Figure | None:
    """Top: the triangular2 LR between each best trial's bounds; bottom: its validation
    accuracy per epoch."""
    best = [t for t in trials if t.lr_bounds]
    if not best:
        return None
    figure = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.08,
                           subplot_titles=("triangular2 learning rate",
                                           "validation accuracy"))
    for index, trial in enumerate(best):
        color = PALETTE[index % len(PALETTE)]
        epochs = trial.epochs or len(trial.val_curve) or 1
        step = trial.step_size_epochs or 1
        xs, lrs = triangular2_schedule(trial.lr_bounds, int(epochs), float(step))
        name = f"{trial.label} ({trial.final_val_accuracy:.4f})"
        figure.add_trace(go.Scatter(
            x=xs, y=lrs, mode="lines", name=name, legendgroup=name, line={"color": color},
            hovertemplate=f"{html.escape(trial.label)}<br>epoch %{{x:.2f}}<br>lr %{{y:.4g}}"
                          "<extra></extra>",
        ), row=1, col=1)
        if trial.lr_curve:
            figure.add_trace(go.Scatter(
                x=list(range(1, len(trial.lr_curve) + 1)), y=_clean(trial.lr_curve),
                mode="markers", marker={"color": color, "size": 7}, legendgroup=name,
                showlegend=False, name=f"{trial.label} recorded LR",
                hovertemplate="recorded at epoch end %{x}: lr %{y:.4g}<extra></extra>",
            ), row=1, col=1)
        figure.add_trace(go.Scatter(
            x=list(range(1, len(trial.val_curve) + 1)), y=trial.val_curve,
            mode="lines+markers", name=name, legendgroup=name, showlegend=False,
            line={"color": color},
            hovertemplate=f"{html.escape(trial.label)}<br>epoch %{{x}}<br>val acc %{{y:.4f}}"
                          "<extra></extra>",
        ), row=2, col=1)
    figure.update_xaxes(title_text="epoch", row=2, col=1)
    figure.update_yaxes(title_text="learning rate", exponentformat="e", row=1, col=1)
    figure.update_yaxes(title_text="accuracy", row=2, col=1)
    figure.update_layout(title={"text": "Best trials: schedule and validation"},
                         template="plotly_white", height=620)
    return figure


def optuna_views(study: optuna.study.Study) -> list[tuple[str, go.Figure | None, str]]:
    """(title, figure or None, note): Optuna's own plots, each guarded (importances need
    two completed trials and a parameter that varies)."""
    from optuna import visualization

    views: list[tuple[str, Callable[[optuna.study.Study], go.Figure]]] = [
        ("Optimization history", visualization.plot_optimization_history),
        ("Intermediate values (step 0 = LRRT score, then validation accuracy per epoch)",
         visualization.plot_intermediate_values),
        ("Parameter importances", visualization.plot_param_importances),
        ("Parallel coordinates", visualization.plot_parallel_coordinate),
    ]
    out = []
    for title, plot in views:
        reason = _importances_unavailable(study) if plot is visualization.plot_param_importances \
            else None
        if reason:
            out.append((title, None, f"not available for this study: {reason}"))
            continue
        verbosity = optuna.logging.get_verbosity()
        optuna.logging.set_verbosity(optuna.logging.ERROR)  # "no complete trials" etc.
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                figure = plot(study)
            out.append((title, figure, ""))
        except (ValueError, RuntimeError, ZeroDivisionError) as error:
            out.append((title, None, f"not available for this study: {error}"))
        finally:
            optuna.logging.set_verbosity(verbosity)
    return out


def _importances_unavailable(study: optuna.study.Study) -> str | None:
    """Why parameter importances mean nothing yet (fANOVA needs completed trials that
    differ in some parameter), or None."""
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if len(complete) < 2:
        return f"needs at least 2 completed trials ({len(complete)} so far)"
    names = {name for trial in complete for name in trial.params}
    if not any(len({repr(t.params.get(name)) for t in complete}) > 1 for name in names):
        return "no parameter varies among the completed trials"
    return None


# --- HTML ----------------------------------------------------------------------------------

COLUMNS = [
    ("trial", "num"), ("config", "text"), ("LR range", "num"), ("optimizer", "text"),
    ("max batch acc (LRRT)", "num"), ("max epoch acc (LRRT)", "num"),
    ("val acc (LRRT)", "num"), ("LR bounds", "num"), ("final val acc", "num"),
    ("state", "text"), ("prune reason", "text"), ("seconds", "num"),
]


def _cell(text: str, value: Any = None, css: str = "", title: str = "") -> str:
    sort_value = text if value is None else value
    attrs = f' data-value="{html.escape(str(sort_value), quote=True)}"'
    if css:
        attrs += f' class="{css}"'
    if title:
        attrs += f' title="{html.escape(title, quote=True)}"'
    return f"<td{attrs}>{html.escape(text)}</td>"


def _number_cell(value: float | None, spec: str = ".4f") -> str:
    if value is None:
        return _cell("-", "")
    return _cell(format(value, spec), repr(value), "num")


def _row(trial: ReportTrial, best: set[int]) -> str:
    bounds = trial.lr_bounds
    css = {"PRUNED": "pruned", "FAIL": "failed", "COMPLETE": "complete"}.get(trial.state, "")
    if trial.number in best:
        css += " best"
    cells = [
        _cell(str(trial.number), trial.number, "num"),
        _cell(trial.name + (" \u2605" if trial.number in best else ""), trial.name, "config"),
        _cell(trial.range_label, trial.lr_range[0] if trial.lr_range else ""),
        _cell(trial.optimizer),
        _number_cell(trial.max_batch_accuracy),
        _number_cell(trial.max_epoch_accuracy),
        _number_cell(trial.lrrt_val_accuracy),
        _cell("-" if not bounds else f"[{bounds[0]:.4g}, {bounds[1]:.4g}]",
              bounds[1] if bounds else ""),
        _number_cell(trial.final_val_accuracy),
        _cell(trial.state, trial.state, "state"),
        _cell(trial.reason or "", trial.reason, "reason", trial.detail),
        _number_cell(trial.seconds, ".1f"),
    ]
    return f'<tr class="{css.strip()}" data-trial="{trial.number}">' + "".join(cells) + "</tr>"


def results_table(key: GroupKey, trials: list[ReportTrial], best: set[int]) -> str:
    head = "".join(f'<th data-type="{kind}" title="click to sort">{html.escape(name)}</th>'
                   for name, kind in COLUMNS)
    rows = "\n".join(_row(t, best) for t in trials)
    return (f'<div class="table-wrap"><table class="sortable results" '
            f'data-group="{html.escape(group_title(key))}">'
            f"<thead><tr>{head}</tr></thead>\n<tbody>\n{rows}\n</tbody></table></div>")


def _figure_html(figure: go.Figure, div_id: str) -> str:
    return figure.to_html(full_html=False, include_plotlyjs=False, div_id=div_id,
                          config=PLOT_CONFIG)


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in text.lower()).strip("-")


STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0 auto;
max-width:1280px;padding:0 24px 48px;color:#222}
h1{margin:24px 0 4px}h2{border-bottom:2px solid #ddd;padding-bottom:4px;margin-top:40px}
h3{margin:24px 0 8px}.meta{color:#555;margin:4px 0}.note{color:#777;font-style:italic}
nav a{margin-right:16px}
table.results{border-collapse:collapse;width:100%;font-size:13px;margin-bottom:12px}
table.results th{background:#f0f3f7;cursor:pointer;user-select:none;text-align:left;
padding:6px 8px;border-bottom:2px solid #ccd;vertical-align:bottom}
table.results th[aria-sort=ascending]::after{content:" \\25B2"}
table.results th[aria-sort=descending]::after{content:" \\25BC"}
table.results td{padding:4px 8px;border-bottom:1px solid #eee;white-space:nowrap}
td.num{text-align:right;font-variant-numeric:tabular-nums}
tr.pruned td{color:#888}tr.pruned td.reason{color:#b35c00;font-weight:600}
tr.failed td.reason{color:#c00;font-weight:600}tr.best td.config{font-weight:700}
tr.complete td.state{color:#1a7f37}
.table-wrap{overflow-x:auto}
details pre{background:#f7f7f7;padding:8px;font-size:12px;overflow:auto}
"""

SORTER = """
document.querySelectorAll('table.sortable').forEach(function (table) {
  table.querySelectorAll('th').forEach(function (th, col) {
    th.addEventListener('click', function () {
      var body = table.tBodies[0], rows = Array.prototype.slice.call(body.rows);
      var ascending = th.getAttribute('aria-sort') !== 'ascending';
      table.querySelectorAll('th').forEach(function (h) { h.removeAttribute('aria-sort'); });
      th.setAttribute('aria-sort', ascending ? 'ascending' : 'descending');
      var numeric = th.getAttribute('data-type') === 'num';
      rows.sort(function (a, b) {
        var x = a.cells[col].getAttribute('data-value');
        var y = b.cells[col].getAttribute('data-value');
        if (x === y) return 0;
        if (x === '') return 1;
        if (y === '') return -1;
        var order = numeric ? parseFloat(x) - parseFloat(y) : x.localeCompare(y);
        return ascending ? order : -order;
      });
      rows.forEach(function (row) { body.appendChild(row); });
    });
  });
});
document.body.setAttribute('data-report-ready-ms', String(performance.now()));
document.body.setAttribute('data-report-ready', '1');
"""


def build_report(study: optuna.study.Study, *, source: str = "") -> str:
    """The whole HTML document as a string."""
    frozen = study.get_trials(deepcopy=False)
    trials = [report_trial(t) for t in frozen]
    groups = group_trials(trials)
    best = best_trials(trials)
    best_numbers = {t.number for t in best}
    name = html.escape(study.study_name)

    sections = [f"<h1>cnnsearch study <span id=\"study-name\">{name}</span></h1>",
                f'<p class="meta">{html.escape(summary_line(study))}</p>']
    generated = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    sections.append(f'<p class="meta">generated {html.escape(generated)}'
                    + (f" from {html.escape(source)}" if source else "") + "</p>")
    config = study.user_attrs.get(STUDY_CONFIG)
    if config is not None:
        sections.append("<details><summary>search configuration</summary><pre>"
                        + html.escape(json.dumps(config, indent=2, default=str))
                        + "</pre></details>")
    sections.append('<nav><a href="#results">results</a><a href="#lrrt">LRRT curves</a>'
                    '<a href="#best">best trials</a><a href="#optuna">Optuna views</a></nav>')

    sections.append('<section id="results"><h2>Results</h2>'
                    '<p class="note">One table per dataset and LR range (the thesis\' tables '
                    "4.1-4.5); click a column header to sort. LRRT columns are the maxima "
                    "during the range test; final val acc is the best validation accuracy of "
                    "the triangular2 training (\u2605 = best trials).</p>")
    if not groups:
        sections.append('<p class="note">This study has no trials yet.</p>')
    for key, members in groups.items():
        slug = _slug(group_title(key))
        sections.append(f'<h3 id="table-{slug}">{html.escape(group_title(key))}</h3>')
        sections.append(results_table(key, members, best_numbers))
    sections.append("</section>")

    sections.append('<section id="lrrt"><h2>LRRT curves</h2><p class="note">Smoothed '
                    "accuracy and loss against learning rate, one line per configuration, "
                    "grouped by dataset and LR range (the thesis' figures 4.2-4.9). Pruned "
                    "designs are grey and dashed, with the reason in the legend; vertical "
                    "ticks mark the LR bounds chosen for the survivors.</p>")
    for key, members in groups.items():
        if any(t.curve and t.curve.get("lr") for t in members):
            slug = _slug(group_title(key))
            sections.append(f'<div class="lrrt-figure" data-group="'
                            f'{html.escape(group_title(key))}">'
                            + _figure_html(lrrt_group_figure(group_title(key), members),
                                           f"lrrt-{slug}") + "</div>")
    sections.append("</section>")

    sections.append('<section id="best"><h2>Best trials</h2><p class="note">The triangular2 '
                    "learning rate between each best trial's LRRT bounds (recomputed with "
                    "torch's CyclicLR; dots: the LR recorded at each epoch end) and its "
                    "validation accuracy per epoch.</p>")
    figure = best_trials_figure(best)
    sections.append(_figure_html(figure, "best-trials") if figure is not None
                    else '<p class="note">No completed trials yet.</p>')
    sections.append("</section>")

    sections.append('<section id="optuna"><h2>Optuna views</h2>')
    for title, view, note in optuna_views(study):
        sections.append(f"<h3>{html.escape(title)}</h3>")
        sections.append(_figure_html(view, f"optuna-{_slug(title)[:40]}") if view is not None
                        else f'<p class="note">{html.escape(note)}</p>')
    sections.append("</section>")

    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>cnnsearch report: {name}</title><style>{STYLE}</style>"
            f"<script>{get_plotlyjs()}</script></head>\n<body>\n"
            + "\n".join(sections)
            + f"\n<script>{SORTER}</script>\n</body></html>\n")


def write_report(study: optuna.study.Study, path: Path, *, source: str = "") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(build_report(study, source=source), encoding="utf-8")
    return path

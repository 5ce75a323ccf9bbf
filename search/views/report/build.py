"""``cnnsearch report``: one self-contained HTML file of a study, in the thesis' shapes.

- the results table of tables 4.1-4.5 (config name, LR range, optimizer, LRRT maxima, LR
  bounds, final validation accuracy, state and prune reason), one sortable table per
  {dataset, LR range} group;
- the LRRT curves of figures 4.2-4.9: smoothed accuracy and loss against LR, one line per
  configuration, one figure per group, pruned designs dashed and grey with their reason;
- the LR schedule (triangular2, or a fixed-LR one) and validation curve of the best trials;
- in a multi-objective study, the Pareto front: every completed trial by its objectives,
  the front highlighted, and a table of the designs on it;
- Optuna's own plotly views (``optuna.visualization``);
- with ``--models DIR``, the designs ``cnnsearch train`` retrained, linked to their model
  cards (``search.views.report.models``).

plotly.js, the style (``report.css``) and the table sorter (``report.js``, package data next
to this module) are inlined, so the file opens with no network. Everything is read through
``TrialRecord``: the report never writes to the study.
"""

from __future__ import annotations

import datetime
import html
import json
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import optuna
import plotly.graph_objects as go
from plotly.offline import get_plotlyjs

from search.record import (
    StudyRecord,
    flags_legend,
    pareto_front,
    read_trials,
    trusted,
)
from search.record.study import artifact_folder
from search.views.output_files import write_output
from search.views.report.figures import (
    best_trials_figure,
    is_multi_objective,
    lrrt_group_figure,
    objective_labels,
    optuna_views,
    pareto_front_figure,
)
from search.views.report.models import FoundModels, find_models, models_section
from search.views.report.trials import (
    GroupKey,
    ReportTrial,
    best_trials,
    group_title,
    group_trials,
    report_trial,
)
from search.views.results import summary_line

PLOT_CONFIG = {"displaylogo": False, "responsive": True}


@cache
def asset(name: str) -> str:
    """A file shipped with this package (``report.css``, ``report.js``)."""
    return resources.files(__package__).joinpath(name).read_text(encoding="utf-8")


COLUMNS = [
    ("trial", "num"), ("config", "text"), ("LR range", "num"), ("optimizer", "text"),
    ("max batch acc (LRRT)", "num"), ("max epoch acc (LRRT)", "num"),
    ("val acc (LRRT)", "num"), ("LR bounds", "num"), ("final val acc", "num"),
    ("state", "text"), ("prune reason", "text"), ("seconds", "num"), ("flags", "text"),
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
        _cell(trial.reason_text, trial.reason, "reason", trial.detail),
        _number_cell(trial.seconds, ".1f"),
        _cell(" ".join(trial.flags), " ".join(trial.flags), "flags",
              "\n".join(trial.flag_notes)),
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


def pareto_section(study: optuna.study.Study) -> str:
    """The Pareto front of a multi-objective study: its figure and its designs."""
    parts = ['<section id="pareto"><h2>Pareto front</h2><p class="note">Every completed '
             "trial by its objectives; the trials no other trial beats on every objective "
             "(the front) are highlighted and listed below. Designs the LRRT gate rejected "
             "never trained and have no values.</p>"]
    figure = pareto_front_figure(study)
    if figure is None:
        parts.append('<p class="note">No completed trials yet.</p></section>')
        return "\n".join(parts)
    parts.append(_figure_html(figure, "pareto-front"))
    labels = objective_labels(study)
    head = "".join(f'<th data-type="{kind}" title="click to sort">{html.escape(name)}</th>'
                   for name, kind in [("trial", "num"), ("config", "text"),
                                      *((label, "num") for label in labels)])
    rows = []
    front = sorted(pareto_front(trusted(read_trials(study)), study.directions),
                   key=lambda r: (-(r.value or 0.0), r.number))
    for record in front:
        if record.repeat_of is not None:  # its earlier trial, the same point, is listed
            continue
        cells = [_cell(str(record.number), record.number, "num"),
                 _cell(record.config_name, record.config_name, "config")]
        cells += [_number_cell(value, ".4f" if index == 0 else ".4g")
                  for index, value in enumerate(record.values)]
        rows.append(f'<tr data-trial="{record.number}">' + "".join(cells) + "</tr>")
    parts.append(f'<div class="table-wrap"><table class="sortable pareto"><thead><tr>{head}'
                 f"</tr></thead>\n<tbody>\n" + "\n".join(rows) + "\n</tbody></table></div>")
    parts.append("</section>")
    return "\n".join(parts)


def report_artifacts(study: optuna.study.Study, artifact_dir: str | None = None
                     ) -> optuna.artifacts.FileSystemArtifactStore | None:
    """Where the trials' LRRT curves are: ``artifact_dir`` (``''``: nowhere), else the
    folder the study was searched with, else ``$CNNSEARCH_ARTIFACT_DIR`` or
    ``cnnsearch-artifacts``; None when that folder is not here (the trials' attrs keep a
    short curve, older studies a full one)."""
    artifact_dir = artifact_folder(artifact_dir, StudyRecord.of(study).artifact_dir)
    if not artifact_dir or not Path(artifact_dir).is_dir():
        return None
    return optuna.artifacts.FileSystemArtifactStore(artifact_dir)


def build_report(study: optuna.study.Study, *, source: str = "",
                 artifact_dir: str | None = None, models: FoundModels | None = None,
                 path: Path | None = None) -> str:
    """The whole HTML document as a string (``artifact_dir``: see ``report_artifacts``);
    ``models``, the retrained designs to link, relative to ``path`` (the report file)."""
    frozen = study.get_trials(deepcopy=False)
    store = report_artifacts(study, artifact_dir)
    trials = [report_trial(t, store) for t in frozen]
    groups = group_trials(trials)
    best = best_trials(trials)
    best_numbers = {t.number for t in best}
    name = html.escape(study.study_name)

    sections = [f"<h1>cnnsearch study <span id=\"study-name\">{name}</span></h1>",
                f'<p class="meta">{html.escape(summary_line(study))}</p>']
    generated = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    sections.append(f'<p class="meta">generated {html.escape(generated)}'
                    + (f" from {html.escape(source)}" if source else "") + "</p>")
    config = StudyRecord.of(study).config
    if config is not None:
        sections.append("<details><summary>search configuration</summary><pre>"
                        + html.escape(json.dumps(config, indent=2, default=str))
                        + "</pre></details>")
    multi = is_multi_objective(study)
    sections.append('<nav><a href="#results">results</a><a href="#lrrt">LRRT curves</a>'
                    '<a href="#best">best trials</a>'
                    + ('<a href="#pareto">Pareto front</a>' if multi else "")
                    + ('<a href="#models">retrained models</a>' if models else "")
                    + '<a href="#optuna">Optuna views</a></nav>')

    sections.append('<section id="results"><h2>Results</h2>'
                    '<p class="note">One table per dataset and LR range (the thesis\' tables '
                    "4.1-4.5); click a column header to sort. LRRT columns are the maxima "
                    "during the range test; final val acc is the best validation accuracy of "
                    "the training (\u2605 = best trials); - is a value never "
                    "measured, or bounds a design never trained with. Flags: "
                    + html.escape(flags_legend()) + ".</p>")
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
                    "ticks mark the LR bounds a design trained with; a dotted level, the "
                    "chance threshold a chance_level design missed; an x, where a test "
                    "diverged (at the top of the panel when its loss is off the scale).</p>")
    missing = sum(t.line is None and t.best_smoothed_accuracy is not None for t in trials)
    if missing:
        sections.append(f'<p class="note">{missing} range test curve(s) are in the trials\' '
                        "artifacts, and the artifact folder is not here: pass it (--artifact-dir) "
                        "to draw them.</p>")
    for key, members in groups.items():
        if any(t.line is not None for t in members):
            slug = _slug(group_title(key))
            sections.append(f'<div class="lrrt-figure" data-group="'
                            f'{html.escape(group_title(key))}">'
                            + _figure_html(lrrt_group_figure(group_title(key), members),
                                           f"lrrt-{slug}") + "</div>")
    sections.append("</section>")

    sections.append('<section id="best"><h2>Best trials</h2><p class="note">The learning '
                    "rate of each best trial: triangular2 between its LRRT bounds (torch's "
                    "CyclicLR's formula), or its fixed-LR schedule from the upper bound "
                    "(exponential, step, multistep, constant; dots: the LR recorded at each "
                    "epoch end) and its validation accuracy per epoch.</p>")
    figure = best_trials_figure(best)
    sections.append(_figure_html(figure, "best-trials") if figure is not None
                    else '<p class="note">No completed trials yet.</p>')
    sections.append("</section>")

    if multi:
        sections.append(pareto_section(study))

    if models is not None:
        sections.append(models_section(models, path or Path("report.html")))

    sections.append('<section id="optuna"><h2>Optuna views</h2>')
    for title, view, note in optuna_views(study):
        sections.append(f"<h3>{html.escape(title)}</h3>")
        sections.append(_figure_html(view, f"optuna-{_slug(title)[:40]}") if view is not None
                        else f'<p class="note">{html.escape(note)}</p>')
    sections.append("</section>")

    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>cnnsearch report: {name}</title><style>{asset('report.css')}</style>"
            f"<script>{get_plotlyjs()}</script></head>\n<body>\n"
            + "\n".join(sections)
            + f"\n<script>{asset('report.js')}</script>\n</body></html>\n")


def write_report(study: optuna.study.Study, path: Path, *, source: str = "",
                 artifact_dir: str | None = None, models: list[str] | None = None) -> Path:
    """Write the report; ``models``: the ``--models`` folders (none: no such section)."""
    found = find_models(models, study.study_name) if models else None
    return write_output(path, build_report(study, source=source, artifact_dir=artifact_dir,
                                           models=found, path=path), "-o")

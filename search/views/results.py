"""The results table: one row per trial, shared by ``search``, ``trials`` and the report.

A value never measured is ``-``; bounds are the ones the trial trained with (``-`` for a
design the LRRT gate rejected); ``flags`` lists what the record warns about
(``TrialRecord.flags``, explained in words by ``search.record.flag_notes``). A
multi-objective study has one more column per objective beyond the first, named after its
metric (``n_params``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from search.record import TrialRecord, pareto_front, trusted


@dataclass(frozen=True)
class TrialRow:
    number: int
    name: str
    state: str
    reason: str
    lrrt_score: float | None
    lr_bounds: tuple[float, float] | None
    best_val_accuracy: float | None
    seconds: float | None
    flags: tuple[str, ...] = ()
    repeat_of: int | None = None
    """The trial whose design this one sampled again (not trained: its values are that
    trial's)."""
    objectives: tuple[tuple[str, float | None], ...] = ()
    """Each objective beyond the first: (metric name, the trial's value or None)."""


def objective_names(study: optuna.study.Study) -> tuple[str, ...]:
    """The metric names of a study's objectives beyond the first (none: single-objective)."""
    names = study.metric_names or [f"objective_{i}" for i in range(len(study.directions))]
    return tuple(names[1:])


def trial_row(trial: FrozenTrial, objectives: Sequence[str] = ()) -> TrialRow:
    """``objectives``: the study's ``objective_names``, for their columns."""
    record = TrialRecord.from_frozen(trial)
    values = trial.values or ()
    best = record.best_val_accuracy
    if best is None and record.repeat_of is not None and record.state == TrialState.COMPLETE:
        best = record.value  # a repeat was not trained: it carries its earlier trial's value
    return TrialRow(
        number=record.number,
        name=record.config_name,
        state=record.state.name,
        reason=record.reason,
        lrrt_score=record.lrrt.score if record.lrrt else None,
        lr_bounds=record.trained_bounds,
        best_val_accuracy=best,
        seconds=record.seconds,
        flags=record.flags,
        repeat_of=record.repeat_of,
        objectives=tuple((name, values[i] if i < len(values) else None)
                         for i, name in enumerate(objectives, start=1)),
    )


def row_fields(row: TrialRow) -> dict[str, Any]:
    """The row as ``cnnsearch trials --format json`` prints it: each objective beyond the
    first under its metric name, after ``best_val_accuracy`` as in the table."""
    fields: dict[str, Any] = {}
    for key, value in asdict(row).items():
        if key != "objectives":
            fields[key] = value
        if key == "best_val_accuracy":
            fields.update(row.objectives)
    return fields


def _number(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def _objective(value: float | None) -> str:
    if value is None:
        return "-"
    return str(int(value)) if float(value).is_integer() else format(value, ".4g")  # n_params


def format_row(row: TrialRow) -> list[str]:
    """The row's cells in ``HEADER``'s order, each objective beyond the first after
    ``val acc``."""
    state = f"{row.state} ({row.reason})" if row.reason else row.state
    bounds = "-" if row.lr_bounds is None else f"{row.lr_bounds[0]:.3g}..{row.lr_bounds[1]:.3g}"
    return [str(row.number), row.name, state, _number(row.lrrt_score, ".3f"), bounds,
            _number(row.best_val_accuracy, ".4f"),
            *(_objective(value) for _, value in row.objectives),
            _number(row.seconds, ".1f"), " ".join(row.flags)]


HEADER = ["trial", "config", "state", "lrrt acc", "lr bounds", "val acc", "seconds", "flags"]


def format_table(rows: list[TrialRow], objectives: Sequence[str] = ()) -> str:
    """``objectives``: the names of the rows' objectives beyond the first (their columns)."""
    at = HEADER.index("val acc") + 1
    header = [*HEADER[:at], *objectives, *HEADER[at:]]
    cells = [header] + [format_row(row) for row in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(header))]
    lines = ["  ".join(value.ljust(width) for value, width in zip(line, widths, strict=True))
             for line in cells]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(line.rstrip() for line in lines)


def study_table(study: optuna.study.Study) -> str:
    names = objective_names(study)
    return format_table([trial_row(t, names) for t in study.get_trials(deepcopy=False)],
                        names)


def summary_line(study: optuna.study.Study) -> str:
    trials = study.get_trials(deepcopy=False)
    counts = {state: sum(t.state == state for t in trials) for state in TrialState}
    text = (f"{len(trials)} trials: {counts[TrialState.COMPLETE]} complete, "
            f"{counts[TrialState.PRUNED]} pruned, {counts[TrialState.FAIL]} failed")
    complete = [TrialRecord.from_frozen(t) for t in trials if t.state == TrialState.COMPLETE]
    ours = trusted(complete)
    if ours:
        best = max(ours, key=lambda r: r.value or 0.0)
        text += (f"; best trial {best.number} ({best.config_name}) val acc "
                 f"{_number(best.value, '.4f')}")
        if len(study.directions) > 1:
            text += f"; {len(pareto_front(ours, study.directions))} on the Pareto front"
    if len(ours) < len(complete):
        text += (f"; {len(complete) - len(ours)} untrusted (values not recorded by cnnsearch: "
                 "not ranked)")
    return text

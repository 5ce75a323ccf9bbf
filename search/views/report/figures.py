"""The report's figures: the LRRT curves of each group (``search.views.lrrt_figure``), the
triangular2 schedule and validation of the best trials, the Pareto front of a
multi-objective study, and Optuna's own views."""

from __future__ import annotations

import html
import math
import warnings
from collections.abc import Callable
from functools import partial

import optuna
import plotly.graph_objects as go
from optuna.trial import TrialState
from plotly.subplots import make_subplots

from search.record import Bounds
from search.views.lrrt_figure import PALETTE, lrrt_figure
from search.views.report.trials import ReportTrial

SCHEDULE_POINTS_PER_EPOCH = 24
VALUE_NAME = "validation accuracy"
"""What a trial's value is (Optuna's views say "Objective Value" unless told)."""
OBJECTIVE_LABELS = {"val_accuracy": VALUE_NAME, "n_params": "parameters",
                    "latency_ms": "inference latency (ms per eval batch)"}


def is_multi_objective(study: optuna.study.Study) -> bool:
    return len(study.directions) > 1


def objective_labels(study: optuna.study.Study) -> list[str]:
    """The objectives' names as the figures show them."""
    names = study.metric_names or [f"objective {i}" for i in range(len(study.directions))]
    return [OBJECTIVE_LABELS.get(name, name) for name in names]


def pareto_front_figure(study: optuna.study.Study) -> go.Figure | None:
    """Every completed trial of a two-objective study, the Pareto front highlighted
    (Optuna's ``plot_pareto_front``); None without a completed trial."""
    from optuna.visualization import plot_pareto_front

    if not study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # experimental in Optuna
        figure = plot_pareto_front(study, target_names=objective_labels(study),
                                   include_dominated_trials=True)
    figure.update_layout(title={"text": "Pareto front (best trials highlighted)"},
                         template="plotly_white")
    return figure


def lrrt_group_figure(title: str, trials: list[ReportTrial]) -> go.Figure:
    """Smoothed accuracy and loss against LR, one line per configuration of the group:
    pruned designs grey and dashed with their reason, survivors with their LR bounds."""
    return lrrt_figure([t.line for t in trials if t.line is not None],
                       f"LR range test: {title}")


def triangular2_lr(iteration: int, bounds: Bounds, step_size: int) -> float:
    """Smith's triangular2 LR at ``iteration``: torch ``CyclicLR(mode="triangular2")``'s
    formula (the search trains with that scheduler; the tests hold the two equal). Written
    out because building a torch optimizer only to read its LR costs seconds of imports."""
    low, high = bounds
    cycle = math.floor(1 + iteration / (2 * step_size))
    x = abs(iteration / step_size - 2 * cycle + 1)
    return low + (high - low) * max(0.0, 1.0 - x) / 2 ** (cycle - 1)


def triangular2_schedule(
    bounds: Bounds, epochs: int, step_size_epochs: float,
    points_per_epoch: int = SCHEDULE_POINTS_PER_EPOCH,
) -> tuple[list[float], list[float]]:
    """The LR the training used, ``points_per_epoch`` points per epoch; x in epochs. Half a
    cycle is ``step_size_epochs`` epochs, as in ``search.method.training.make_triangular2``."""
    step_size = max(1, round(step_size_epochs * points_per_epoch))
    steps = range(epochs * points_per_epoch + 1)
    return ([step / points_per_epoch for step in steps],
            [triangular2_lr(step, bounds, step_size) for step in steps])


DEFAULT_GAMMA = {"exponential": 0.95, "step": 0.1, "multistep": 0.1}
"""``search.method.schedules.SCHEDULES``' default gammas (a test holds them equal): this
module draws schedules without importing torch."""


def fixed_lr_schedule(
    start: float, epochs: int, kind: str, *, gamma: float | None = None, step_size: int = 10,
    milestones: tuple[int, ...] = (15, 30),
    points_per_epoch: int = SCHEDULE_POINTS_PER_EPOCH,
) -> tuple[list[float], list[float]]:
    """The LR of a per-epoch schedule (exponential, step, multistep, constant) from
    ``start`` (the LRRT's upper bound), as ``search.method.schedules.EpochFactor``."""
    decay = DEFAULT_GAMMA.get(kind, 1.0) if gamma is None else gamma
    xs, lrs = [], []
    for point in range(epochs * points_per_epoch + 1):
        epoch = min(point // points_per_epoch, max(epochs - 1, 0))
        if kind == "exponential":
            factor = decay ** epoch
        elif kind == "step":
            factor = decay ** (epoch // max(step_size, 1))
        elif kind == "multistep":
            factor = decay ** sum(epoch >= m for m in milestones)
        else:
            factor = 1.0
        xs.append(point / points_per_epoch)
        lrs.append(start * factor)
    return xs, lrs


def trial_schedule(trial: ReportTrial) -> tuple[list[float], list[float]]:
    """The LR a trial trained with, against epochs."""
    assert trial.lr_bounds is not None
    epochs = int(trial.epochs or len(trial.val_curve) or 1)
    if trial.schedule == "triangular2":
        return triangular2_schedule(trial.lr_bounds, epochs, float(trial.step_size_epochs or 1))
    decay = trial.decay
    return fixed_lr_schedule(trial.lr_bounds[1], epochs, trial.schedule,
                             gamma=decay.get("gamma"), step_size=decay.get("step_size") or 10,
                             milestones=tuple(decay.get("milestones") or (15, 30)))


def best_trials_figure(trials: list[ReportTrial]) -> go.Figure | None:
    """Top: the LR of each best trial's schedule (triangular2 between its bounds, or a
    fixed-LR schedule from the upper one); bottom: its validation accuracy per epoch."""
    best = [t for t in trials if t.lr_bounds]
    if not best:
        return None
    figure = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.08,
                           subplot_titles=("learning rate", "validation accuracy"))
    for index, trial in enumerate(best):
        color = PALETTE[index % len(PALETTE)]
        xs, lrs = trial_schedule(trial)
        label = html.escape(trial.label)
        name = f"{label} ({trial.final_val_accuracy:.4f})"
        figure.add_trace(go.Scatter(
            x=xs, y=lrs, mode="lines", name=name, legendgroup=name, line={"color": color},
            hovertemplate=f"{label}<br>epoch %{{x:.2f}}<br>lr %{{y:.4g}}<extra></extra>",
        ), row=1, col=1)
        if trial.lr_curve:
            figure.add_trace(go.Scatter(
                x=list(range(1, len(trial.lr_curve) + 1)), y=trial.lr_curve,
                mode="markers", marker={"color": color, "size": 7}, legendgroup=name,
                showlegend=False, name=f"{label} recorded LR",
                hovertemplate="recorded at epoch end %{x}: lr %{y:.4g}<extra></extra>",
            ), row=1, col=1)
        figure.add_trace(go.Scatter(
            x=list(range(1, len(trial.val_curve) + 1)), y=trial.val_curve,
            mode="lines+markers", name=name, legendgroup=name, showlegend=False,
            line={"color": color},
            hovertemplate=f"{label}<br>epoch %{{x}}<br>val acc %{{y:.4f}}<extra></extra>",
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

    named: dict[str, object] = {"target_name": VALUE_NAME}
    if is_multi_objective(study):  # Optuna's views plot one objective: the accuracy
        named["target"] = _accuracy
    views: list[tuple[str, Callable[[optuna.study.Study], go.Figure]]] = [
        ("Optimization history", partial(visualization.plot_optimization_history, **named)),
        ("Intermediate values (step 0 = LRRT score, then validation accuracy per epoch)",
         visualization.plot_intermediate_values),
        ("Parameter importances", partial(visualization.plot_param_importances, **named)),
        ("Parallel coordinates", partial(visualization.plot_parallel_coordinate, **named)),
    ]
    if is_multi_objective(study):
        views.pop(1)  # a multi-objective study reports no intermediate values
    out = []
    for title, plot in views:
        reason = _importances_unavailable(study) if title == "Parameter importances" else None
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


def _accuracy(trial: optuna.trial.FrozenTrial) -> float:
    return float(trial.values[0])


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

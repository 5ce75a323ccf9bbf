"""``cnnsearch report``: the study as one self-contained HTML file (``build``), from the
trials as the report reads them (``trials``) and its figures (``figures``)."""

from search.views.report.build import build_report, write_report
from search.views.report.figures import (
    best_trials_figure,
    lrrt_group_figure,
    optuna_views,
    triangular2_lr,
    triangular2_schedule,
)
from search.views.report.trials import (
    ReportTrial,
    best_trials,
    group_title,
    group_trials,
    report_trial,
)

__all__ = [
    "ReportTrial", "best_trials", "best_trials_figure", "build_report", "group_title",
    "group_trials", "lrrt_group_figure", "optuna_views", "report_trial", "triangular2_lr",
    "triangular2_schedule", "write_report",
]

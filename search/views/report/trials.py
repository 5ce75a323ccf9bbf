"""The trials as the report sees them, and the thesis' grouping by dataset and LR range."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from search.record import UNTRUSTED, Bounds, TrialRecord, flag_notes
from search.views.lrrt_artifact import artifact_curve
from search.views.lrrt_figure import LRRTLine

BEST_TRIALS = 3


@dataclass(frozen=True)
class ReportTrial:
    """One trial as the report sees it (plain data read through ``TrialRecord``)."""

    number: int
    name: str
    state: str
    reason: str
    detail: str
    dataset: str
    lr_range: Bounds | None
    optimizer: str
    max_batch_accuracy: float | None
    max_epoch_accuracy: float | None
    lrrt_val_accuracy: float | None
    best_smoothed_accuracy: float | None
    lr_bounds: Bounds | None
    final_val_accuracy: float | None
    seconds: float | None
    line: LRRTLine | None = None
    """Its line in the group's LRRT figure; None before the range test is recorded."""
    val_curve: list[float] = field(default_factory=list)
    lr_curve: list[float] = field(default_factory=list)
    epochs: int | None = None
    step_size_epochs: float | None = None
    schedule: str = "triangular2"
    """The LR schedule it trained with; the fixed-LR ones decay by ``decay``'s settings."""
    decay: dict[str, Any] = field(default_factory=dict)
    chance_gap: tuple[float, float] | None = None
    """``(score, threshold)`` of a design rejected as ``chance_level``."""
    flags: tuple[str, ...] = ()
    flag_notes: tuple[str, ...] = ()
    repeat_of: int | None = None
    """The trial whose design this one sampled again (not trained: it carries that result)."""

    @property
    def label(self) -> str:
        return f"#{self.number} {self.name}"

    @property
    def reason_text(self) -> str:
        """The reason, with the numbers of a chance_level rejection ("chance_level: 0.141 <
        0.190")."""
        if self.chance_gap is None:
            return self.reason
        score, threshold = self.chance_gap
        return f"{self.reason}: {score:.3f} < {threshold:.3f}"

    @property
    def range_label(self) -> str:
        return "?" if self.lr_range is None else f"[{self.lr_range[0]:g}, {self.lr_range[1]:g}]"


def report_trial(trial: FrozenTrial,
                 store: optuna.artifacts.FileSystemArtifactStore | None = None) -> ReportTrial:
    """The trial as the report shows it; its LRRT curve from its artifact in ``store``
    when there, else the copy its attrs keep."""
    record = TrialRecord.from_frozen(trial)
    lrrt = record.lrrt
    final = record.value if record.state == TrialState.COMPLETE else record.best_val_accuracy
    train = record.train_settings
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
        lr_bounds=record.trained_bounds,
        final_val_accuracy=final,
        seconds=record.seconds,
        line=LRRTLine.from_record(record, artifact_curve(record, store)),
        val_curve=list(record.val_curve),
        lr_curve=list(record.lr_curve),
        epochs=train.get("epochs"),
        step_size_epochs=train.get("step_size_epochs"),
        schedule=str(record.trial_config.get("schedule") or "triangular2"),
        decay=dict(train.get("decay") or {}),
        chance_gap=record.chance_gap,
        flags=record.flags,
        flag_notes=tuple(flag_notes(record)),
        repeat_of=record.repeat_of,
    )


GroupKey = tuple[str, Bounds | None]


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


def best_trials(trials: list[ReportTrial], count: int = BEST_TRIALS) -> list[ReportTrial]:
    """The best trained trials (a repeat carries its earlier trial's result: not again; a
    trial whose value cnnsearch did not record is not ranked)."""
    complete = [t for t in trials if t.state == TrialState.COMPLETE.name
                and t.final_val_accuracy is not None and t.repeat_of is None
                and UNTRUSTED not in t.flags]
    return sorted(complete, key=lambda t: (-t.final_val_accuracy, t.number))[:count]

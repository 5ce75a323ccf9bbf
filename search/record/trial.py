"""One trial as cnnsearch reads it back: ``TrialRecord``, typed, defaulted, old layouts
understood. Everything else (the pruner, the tables, the report, the dashboard notes,
export, the benchmarks) reads a trial through it, never through ``user_attrs[...]``.

What a record warns about (its flags) is here too, each flag's name, meaning and wording
side by side (``FLAGS``)."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from optuna.exceptions import UpdateFinishedTrialError
from optuna.trial import FrozenTrial, TrialState

import search.record.keys as keys
from search.record.design import design_key
from search.record.summary import CurvePoints, LRRTSummary, chance_threshold
from search.record.values import (
    Bounds,
    read_float,
    read_floats,
    read_int,
    read_pair,
    read_strings,
)

if TYPE_CHECKING:
    import optuna

TRAINED_TO_CHANCE = "trained_to_chance"
RANGE_TOO_NARROW = "range_too_narrow"
UNTRUSTED = "untrusted"
NARROW_PEAK_SHARE = 0.9
"""A best smoothed accuracy at or above this share of ``lr_max`` says the range ended while
the design was still improving."""


@dataclass(frozen=True)
class Verdict:
    """Why a trial was pruned or failed, with the numbers that decided it."""

    reason: str
    detail: str = ""
    evidence: Mapping[str, float | int | str] = field(default_factory=dict)


@dataclass(frozen=True)
class TrialRecord:
    """One trial as cnnsearch reads it back: typed, defaulted, old layouts understood."""

    number: int
    state: TrialState
    value: float | None
    """The validation accuracy a COMPLETE trial scored (its first value in a multi-objective
    study)."""
    config_name: str
    trial_config: Mapping[str, Any]
    params: Mapping[str, Any]
    run_seed: int | None = None
    device: str | None = None
    precision: str | None = None
    """fp32, bf16 or fp16; None for a trial recorded before precisions existed (fp32)."""
    card: str | None = None
    slot: int | None = None
    """The GPU (UUID) and its slot the trial ran in, when its process held one."""
    n_params: int | None = None
    seconds: float | None = None
    lrrt: LRRTSummary | None = None
    lrrt_curve: CurvePoints | None = None
    lrrt_artifact_id: str | None = None
    lrrt_plot_artifact_id: str | None = None
    lrrt_reused: bool = False
    lr_bounds: Bounds | None = None
    val_curve: tuple[float, ...] = ()
    lr_curve: tuple[float, ...] = ()
    resumed_from_epoch: int | None = None
    pruned_because: Verdict | None = None
    failed_because: Verdict | None = None
    bench_images: int = 0
    bench_seconds: float = 0.0
    bench_cut: bool = False
    degraded: tuple[str, ...] = ()
    last_step: int | None = None
    """The last step a value was reported at: 0 is the LRRT score, then training epochs."""
    values: tuple[float | None, ...] = ()
    """Every objective's value of a COMPLETE trial (one in a single-objective study)."""
    repeat_of: int | None = None
    """The trial whose design this one sampled again, and whose result it carries."""
    told_values: tuple[float | None, ...] | None = None
    """The values cnnsearch told Optuna (None: a trial recorded before they were kept)."""

    @classmethod
    def from_frozen(cls, trial: FrozenTrial) -> TrialRecord:
        attrs = trial.user_attrs
        config = attrs.get(keys.TRIAL_CONFIG)
        pruned = failed = None
        if keys.PRUNE_REASON in attrs:
            evidence = attrs.get(keys.PRUNE_EVIDENCE)
            pruned = Verdict(str(attrs[keys.PRUNE_REASON]),
                             str(attrs.get(keys.PRUNE_DETAIL) or ""),
                             evidence if isinstance(evidence, dict) else {})
        if keys.FAIL_REASON in attrs:
            failed = Verdict(str(attrs[keys.FAIL_REASON]), str(attrs.get(keys.FAIL_DETAIL) or ""))
        return cls(
            number=trial.number,
            state=trial.state,
            value=read_float(trial.values[0]) if trial.values else None,
            config_name=str(attrs.get(keys.CONFIG_NAME, "?")),
            trial_config=config if isinstance(config, dict) else {},
            params=trial.params,
            run_seed=read_int(attrs.get(keys.RUN_SEED)),
            device=attrs.get(keys.DEVICE),
            precision=attrs.get(keys.PRECISION),
            card=attrs.get(keys.CARD),
            slot=read_int(attrs.get(keys.SLOT)),
            n_params=read_int(attrs.get(keys.N_PARAMS)),
            seconds=read_float(attrs.get(keys.SECONDS)),
            lrrt=LRRTSummary.from_attrs(attrs),
            lrrt_curve=CurvePoints.from_attr(attrs.get(keys.LRRT_CURVE)),
            lrrt_artifact_id=attrs.get(keys.LRRT_ARTIFACT),
            lrrt_plot_artifact_id=attrs.get(keys.LRRT_PLOT_ARTIFACT),
            lrrt_reused=bool(attrs.get(keys.LRRT_REUSED, False)),
            lr_bounds=read_pair(attrs.get(keys.LR_BOUNDS)),
            val_curve=read_floats(attrs.get(keys.VAL_CURVE)),
            lr_curve=read_floats(attrs.get(keys.LR_CURVE)),
            resumed_from_epoch=read_int(attrs.get(keys.RESUMED_FROM_EPOCH)),
            pruned_because=pruned,
            failed_because=failed,
            bench_images=int(attrs.get(keys.BENCH_IMAGES, 0) or 0),
            bench_seconds=read_float(attrs.get(keys.BENCH_SECONDS)) or 0.0,
            bench_cut=bool(attrs.get(keys.BENCH_CUT, False)),
            degraded=read_strings(attrs.get(keys.DEGRADED)),
            last_step=trial.last_step,
            values=tuple(read_float(v) for v in trial.values or ()),
            repeat_of=read_int(attrs.get(keys.REPEAT_OF)),
            told_values=(tuple(read_floats(attrs.get(keys.TOLD_VALUES)))
                         if keys.TOLD_VALUES in attrs else None),
        )

    @property
    def untrusted(self) -> bool:
        """A COMPLETE trial whose values cnnsearch did not record: told from outside (a
        dashboard's "tell", a script), or never started by cnnsearch at all (no design in
        its attrs). Its values are the ones cnnsearch told (``told_values``); for a trial
        from before they were kept, the best of its validation curve, when it has one (a
        repeat carries the values of the trial it repeats)."""
        if self.state != TrialState.COMPLETE or not self.values:
            return False
        if self.told_values is not None:
            return not _same_values(self.values, self.told_values)
        if not self.trial_config and self.repeat_of is None:
            return True
        best = self.best_val_accuracy
        return best is not None and self.repeat_of is None and (
            self.value is None or not math.isclose(self.value, best, rel_tol=1e-9))

    @property
    def reason(self) -> str:
        """Why the trial ended as it did: the prune or fail reason, '' when it completed
        (or still runs); ``repeat of N`` for a repeat, complete or pruned."""
        if self.repeat_of is not None:
            return f"{keys.REPEAT} of {self.repeat_of}"
        if self.state == TrialState.PRUNED:
            return self.pruned_because.reason if self.pruned_because else "pruned"
        if self.state == TrialState.FAIL:
            return self.failed_because.reason if self.failed_because else "failed"
        return ""

    @property
    def detail(self) -> str:
        verdict = self.pruned_because or self.failed_because
        if verdict is None and self.repeat_of is not None:
            return f"same design as trial {self.repeat_of}: not trained again"
        return verdict.detail if verdict else ""

    @property
    def design_key(self) -> str:
        """What makes two trials one design (``search.record.design``); '' for a trial that
        recorded none."""
        return design_key(self.trial_config)

    @property
    def best_val_accuracy(self) -> float | None:
        """Best validation accuracy of the triangular2 training; None if it never ran."""
        return max(self.val_curve) if self.val_curve else None

    @property
    def rejected_at_lrrt(self) -> bool:
        """Pruned before any training epoch ended: the LRRT gate's rejections (a
        multi-objective study reports no steps: its epochs are in ``val_curve``)."""
        return (self.state == TrialState.PRUNED and (self.last_step or 0) == 0
                and not self.val_curve)

    @property
    def trained_bounds(self) -> Bounds | None:
        """The LR bounds the trial trained with; None for a design the gate rejected (its
        range test's bounds were never used) and before training starts."""
        return None if self.rejected_at_lrrt else self.lr_bounds

    @property
    def chance_threshold(self) -> float | None:
        """The accuracy the gate asked of the range test: its recorded evidence, else the
        default margin's threshold (trials recorded before the evidence was, or never
        judged against it); None without a range test."""
        for verdict in (self.pruned_because, self.failed_because):
            if verdict is not None and read_float(verdict.evidence.get("threshold")) is not None:
                return read_float(verdict.evidence["threshold"])
        return chance_threshold(self.lrrt.num_classes) if self.lrrt else None

    @property
    def chance_gap(self) -> tuple[float, float] | None:
        """``(score, threshold)`` of a design rejected as ``chance_level``."""
        if self.reason != keys.CHANCE_LEVEL or self.lrrt is None:
            return None
        threshold = self.chance_threshold
        evidence = self.pruned_because.evidence if self.pruned_because else {}
        score = read_float(evidence.get("score"))
        return None if threshold is None else (
            self.lrrt.score if score is None else score, threshold)

    @property
    def trained_to_chance(self) -> bool:
        """COMPLETE, yet its best validation accuracy is under the chance threshold."""
        if self.state != TrialState.COMPLETE or self.lrrt is None:
            return False
        best = self.value if self.value is not None else self.best_val_accuracy
        threshold = self.chance_threshold
        return best is not None and threshold is not None and best < threshold

    @property
    def range_too_narrow(self) -> bool:
        """The range test found no upper limit (``LRRTSummary.limit_found``), or its best
        smoothed accuracy sits at ``NARROW_PEAK_SHARE`` of ``lr_max`` or above: a better
        LR may lie beyond the range. A test that diverged found its limit."""
        lrrt = self.lrrt
        if lrrt is None or lrrt.diverged:
            return False
        if lrrt.limit_found is False:
            return True
        peak = lrrt.best_accuracy_lr
        if peak is None and self.lrrt_curve is not None:
            peak = self.lrrt_curve.best_accuracy_lr
        lr_range = self.lr_range
        return peak is not None and lr_range is not None and \
            peak >= NARROW_PEAK_SHARE * lr_range[1]

    @property
    def flags(self) -> tuple[str, ...]:
        """What the record warns about (``search.record.flags.FLAGS``)."""
        return tuple(flag.name for flag in FLAGS if flag.raised(self))

    @property
    def lr_range(self) -> Bounds | None:
        """The LRRT range the design was tested over."""
        stored = read_pair(self.trial_config.get("lr_range"))
        return stored or (self.lrrt.lr_range if self.lrrt else None)

    @property
    def dataset(self) -> str:
        name = (self.trial_config.get("dataset") or {}).get("name")
        if name:
            return str(name)
        return self.lrrt.group.split("|")[0] if self.lrrt else "?"

    @property
    def optimizer(self) -> str:
        return str(self.trial_config.get("optimizer") or self.params.get("optimizer", "?"))

    @property
    def train_settings(self) -> Mapping[str, Any]:
        return self.trial_config.get("train") or {}


@dataclass(frozen=True)
class Flag:
    name: str
    meaning: str
    """What it warns about, in a few words (the report's legend, the docs)."""
    raised: Callable[[TrialRecord], bool]
    note: Callable[[TrialRecord], str]
    """The warning for one trial, with the numbers that raised it."""


def _trained_to_chance_note(record: TrialRecord) -> str:
    best = record.value if record.value is not None else record.best_val_accuracy
    return (f"{TRAINED_TO_CHANCE}: best validation accuracy {best:.4f} < "
            f"{record.chance_threshold:.3f}, the chance threshold")


def _range_too_narrow_note(record: TrialRecord) -> str:
    lrrt, lr_range = record.lrrt, record.lr_range
    if lrrt is not None and lrrt.limit_found is False:
        why = "the range test found no LR where training stops improving"
    else:
        why = f"the best smoothed accuracy is at {NARROW_PEAK_SHARE:g} x lr_max or above"
    top = f" ({lr_range[1]:g})" if lr_range else ""
    return f"{RANGE_TOO_NARROW}: {why}; a better LR may lie above lr_max{top}"


def _same_values(values: tuple[float | None, ...], told: tuple[float | None, ...]) -> bool:
    return len(values) == len(told) and all(
        a is not None and b is not None and math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
        for a, b in zip(values, told, strict=True))


def _untrusted_note(record: TrialRecord) -> str:
    if record.told_values is not None:
        told = ", ".join(f"{v:g}" for v in record.told_values if v is not None)
    elif record.best_val_accuracy is not None:
        told = f"a best validation accuracy of {record.best_val_accuracy:g}"
    else:
        told = "none (cnnsearch did not start it)"
    return (f"{UNTRUSTED}: it holds {', '.join(f'{v:g}' for v in record.values if v is not None)}"
            f", cnnsearch recorded {told}: told from outside (e.g. the dashboard); not "
            "exported, not ranked")


def _degraded_note(record: TrialRecord) -> str:
    return (f"{keys.DEGRADED}: {'; '.join(record.degraded)} (the trial went on without what "
            "failed to be written)")


FLAGS = (
    Flag(TRAINED_TO_CHANCE, "complete, yet under the chance threshold",
         lambda record: record.trained_to_chance, _trained_to_chance_note),
    Flag(RANGE_TOO_NARROW, "the range test found no upper limit: a better LR may lie above "
         "the range", lambda record: record.range_too_narrow, _range_too_narrow_note),
    Flag(keys.DEGRADED, "a checkpoint or artifact write failed: the trial went on without it",
         lambda record: bool(record.degraded), _degraded_note),
    Flag(UNTRUSTED, "its value was not recorded by cnnsearch (told from outside, e.g. the "
         "dashboard): not exported, not ranked", lambda record: record.untrusted,
         _untrusted_note),
)
"""Every flag, in the order a record lists them."""


def flag_notes(record: TrialRecord) -> list[str]:
    """Each of the record's flags in a sentence, with the numbers that raised it."""
    return [flag.note(record) for flag in FLAGS if flag.raised(record)]


def flags_legend() -> str:
    """The flags and their meanings in one line: ``a (meaning), b (meaning)``."""
    return ", ".join(f"{flag.name} ({flag.meaning})" for flag in FLAGS)


def frozen_trial(trial: optuna.Trial) -> FrozenTrial:
    """A running trial as stored: what the pruner and the notes read (what Optuna's own
    ``trial.should_prune`` fetches). Not running any more means another process finished it
    (a reaper, the dashboard) since this one last wrote: Optuna's finished-trial error, which
    the service reads as "taken over" wherever it comes from."""
    for frozen in trial.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if frozen.number == trial.number:
            return frozen
    raise UpdateFinishedTrialError(f"trial {trial.number} is not running: another process "
                                   "finished it")


def trusted(records: list[TrialRecord]) -> list[TrialRecord]:
    """The records whose values cnnsearch recorded (``TrialRecord.untrusted``)."""
    return [record for record in records if not record.untrusted]


def pareto_front(records: list[TrialRecord],
                 directions: list[optuna.study.StudyDirection]) -> list[TrialRecord]:
    """The COMPLETE records no other one dominates (at least as good in every objective,
    better in one), ``directions`` saying which way each objective is better."""
    signs = [1.0 if direction.name == "MAXIMIZE" else -1.0 for direction in directions]
    points = [(record, tuple(sign * (value if value is not None else -math.inf * sign)
                             for sign, value in zip(signs, record.values, strict=False)))
              for record in records
              if record.state == TrialState.COMPLETE and len(record.values) == len(signs)]

    def dominates(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
        return all(x >= y for x, y in zip(a, b, strict=True)) and a != b

    return [record for record, point in points
            if not any(dominates(other, point) for _, other in points)]


def read_trials(study: optuna.study.Study,
                states: tuple[TrialState, ...] | None = None) -> list[TrialRecord]:
    return [TrialRecord.from_frozen(t) for t in study.get_trials(deepcopy=False, states=states)]

"""The trial record: every user attr cnnsearch keeps on a trial or study, with one writer
(``TrialRecorder``) and one reader (``TrialRecord.from_frozen``).

Optuna stores user attrs as loose JSON under string keys. Everything else in cnnsearch (the
pruner, the results table, the report, the dashboard notes, export, the benchmarks) reads a
trial through ``TrialRecord``, never through ``user_attrs[...]``, so a key is spelled once,
defaults are decided once, and studies written by older versions are read in one place
(``_legacy_lrrt``).

Attrs stay small and flat: one fact per key, so optuna-dashboard and ``optuna trials`` show
them as short columns. The range test's curves live in the trial's JSON artifact; only a
trial without one keeps a short smoothed curve here (``SHORT_CURVE_POINTS``), and studies
written before keep their 200-point one.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

from optuna.trial import FrozenTrial, TrialState

if TYPE_CHECKING:
    import optuna

# --- trial attr keys -------------------------------------------------------------------------
CONFIG_NAME = "config_name"
TRIAL_CONFIG = "trial_config"
RUN_SEED = "run_seed"
CHECKPOINT_KEY = "checkpoint_key"
DEVICE = "device"
WORKER = "worker"
N_PARAMS = "n_params"
SECONDS = "seconds"

LRRT_PREFIX = "lrrt_"
"""Every fact of the LRRT summary is stored flat as ``lrrt_<field>``."""
LRRT_SCORE = "lrrt_score"
LRRT_GROUP = "lrrt_group"
NUM_CLASSES = "num_classes"
LRRT_CURVE = "lrrt_curve"
LRRT_ARTIFACT = "lrrt_artifact_id"
LRRT_PLOT_ARTIFACT = "lrrt_plot_artifact_id"
LRRT_REUSED = "lrrt_reused"

LR_BOUNDS = "lr_bounds"
VAL_CURVE = "val_curve"
LR_CURVE = "lr_curve"
RESUMED_FROM_EPOCH = "resumed_from_epoch"

PRUNE_REASON = "prune_reason"
PRUNE_DETAIL = "prune_detail"
PRUNE_EVIDENCE = "prune_evidence"
FAIL_REASON = "fail_reason"
FAIL_DETAIL = "fail_detail"
DEGRADED = "degraded"
REPEAT_OF = "repeat_of"
"""The number of the finished trial whose design this one sampled again: it was not
trained, its result is that trial's (``search.service.repeats``)."""
"""Problems a trial survived (e.g. ``["checkpoint: No space left on device"]``): it ran on,
without what failed to be written."""

# What the strategies benchmark charges to each trial (benchmarks/).
BENCH_IMAGES = "bench_images"
BENCH_SECONDS = "bench_seconds"
BENCH_CUT = "bench_cut"

# --- study attr keys -------------------------------------------------------------------------
STUDY_CONFIG = "cnnsearch_config"
STUDY_FINGERPRINT = "cnnsearch_config_fingerprint"
STUDY_ARTIFACT_DIR = "cnnsearch_artifact_dir"
STUDY_PROCESSES = "cnnsearch_sampling_processes"
"""How many searching processes have joined the study: each takes the next number."""

# --- reasons ---------------------------------------------------------------------------------
DIVERGED = "diverged"
CHANCE_LEVEL = "chance_level"
UNSTABLE = "unstable"
BELOW_PEERS = "below_peers"
INTERRUPTED = "interrupted"
OOM = "oom"
STORAGE_UNREACHABLE = "storage_unreachable"
"""The database was away longer than the storage retries: the trial was paused (its
checkpoint kept) and its retry resumes it."""
REPEAT = "repeat"
"""The prune reason of a repeat of a pruned design (``REPEAT_OF`` says of which trial)."""

CURVE_POINTS = 200
"""Points of the smoothed LRRT curve a view draws (read from the trial's artifact, which
holds the full curve; studies written before this kept it in the ``lrrt_curve`` attr)."""
SHORT_CURVE_POINTS = 40
"""Points of the smoothed curve kept in the attrs until the trial's artifact holds it (or
for good when the search writes no artifacts)."""
CURVE_DIGITS = 4
"""Significant digits of the numbers of that short curve."""

DEFAULT_CHANCE_MARGIN = 0.1
"""The gate's default ``chance_margin``: what a trial without recorded evidence is read with."""
NARROW_PEAK_SHARE = 0.9
"""A best smoothed accuracy at or above this share of ``lr_max`` says the range ended while
the design was still improving."""

# --- flags: what a trial's record warns about (``TrialRecord.flags``) ------------------------
TRAINED_TO_CHANCE = "trained_to_chance"
"""COMPLETE, but its best validation accuracy is under the chance threshold."""
RANGE_TOO_NARROW = "range_too_narrow"
"""The range test found no upper limit: the best LR may lie beyond ``lr_max``."""
# ``DEGRADED`` (the attr's name) is a flag too: a checkpoint or artifact write failed and the
# trial went on without it (its LRRT plot may be missing from the dashboard).

Bounds = tuple[float, float]


def _float(value: Any) -> float | None:
    """A finite float, or None for anything missing, malformed or non-finite."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _int(value: Any) -> int | None:
    """A positive int, or None for anything missing or malformed."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def _pair(value: Any) -> Bounds | None:
    if not isinstance(value, list | tuple) or len(value) != 2:
        return None
    low, high = _float(value[0]), _float(value[1])
    return None if low is None or high is None else (low, high)


def _floats(values: Any) -> tuple[float, ...]:
    """The finite numbers of a stored list (a NaN epoch is not an accuracy)."""
    if not isinstance(values, list | tuple):
        return ()
    return tuple(v for v in (_float(x) for x in values) if v is not None)


def _significant(value: float | None, digits: int = CURVE_DIGITS) -> float | None:
    return None if value is None else float(f"{value:.{digits}g}")


def chance_threshold(num_classes: int, margin: float = DEFAULT_CHANCE_MARGIN) -> float:
    """Accuracy a design must beat to count as learning: ``margin`` of the way from chance
    (1/num_classes) to perfect (``search.method.pruner``'s rule; 10 classes -> 0.19)."""
    chance = 1.0 / num_classes
    return chance + margin * (1.0 - chance)


class DivergencePoint(NamedTuple):
    """The batch whose smoothed loss made the range test stop: the curve is cut before it,
    so views draw it as a marker. Stored as ``[step, lr, loss]``."""

    step: int
    lr: float
    loss: float | None
    """The smoothed loss there; None when it was not finite."""

    @classmethod
    def parse(cls, value: Any) -> DivergencePoint | None:
        if not isinstance(value, list | tuple) or len(value) != 3:
            return None
        step, lr = value[0], _float(value[1])
        if not isinstance(step, int) or lr is None:
            return None
        return cls(step, lr, _float(value[2]))

    @classmethod
    def from_text(cls, text: Any) -> DivergencePoint | None:
        """What an older summary's ``divergence`` text says ("smoothed loss 94.6 > 4x
        minimum at step 73 (lr 0.0826)"), for trials recorded before the point was."""
        if not isinstance(text, str):
            return None
        found = re.search(r"at step (\d+) \(lr ([-+.\deE]+)\)", text)
        if found is None or _float(found.group(2)) is None:
            return None
        loss = re.match(r"smoothed loss ([-+.\deE]+) ", text)
        return cls(int(found.group(1)), float(found.group(2)),
                   _float(loss.group(1)) if loss else None)


def _strings(values: Any) -> tuple[str, ...]:
    if not isinstance(values, list | tuple):
        return ()
    return tuple(v for v in values if isinstance(v, str))


@dataclass(frozen=True)
class LRRTSummary:
    """What a range test found, in the trial's attrs: enough for the pruner, the tables and
    the notes, without the per-batch arrays."""

    score: float
    """Best smoothed training accuracy during the ramp (the value reported at step 0)."""
    group: str
    """``dataset|lr_range``: the peers a design is compared with (the thesis' groups)."""
    num_classes: int
    lr_range: Bounds | None = None
    best_val_accuracy: float | None = None
    max_batch_accuracy: float | None = None
    max_epoch_accuracy: float | None = None
    diverged: bool = False
    divergence: str | None = None
    completed_fraction: float = 1.0
    """Share of the planned ramp that ran before the test stopped."""
    bound_rule: str | None = None
    bounds: Bounds | None = None
    compare_rule: str | None = None
    compare_bounds: Bounds | None = None
    disagreement: float | None = None
    unstable: bool = False
    peak_memory_bytes: int = 0
    memory_kind: str = ""
    seconds: float | None = None
    divergence_point: DivergencePoint | None = None
    """Where the test diverged (the curve stops before it); None if it did not."""
    limit_found: bool | None = None
    """Whether the ramp reached an LR where training stops improving
    (``LRRTCurve.limit_found``); None for trials recorded before it was."""
    best_accuracy_lr: float | None = None
    """LR of the best smoothed accuracy."""
    weight_change: float | None = None
    """How far the ramp moved the weights, relative to their norm (``LRRTCurve``)."""
    ramp_steps: int | None = None
    """Batches the ramp ran: the weight movement is judged per hundred of them
    (``search.method.pruner.weights_still``)."""

    @property
    def has_bounds(self) -> bool:
        return self.bounds is not None

    def to_attrs(self) -> dict[str, Any]:
        """Flat ``lrrt_<field>`` attrs, in writing order: the score comes last, because its
        presence is what makes a summary exist for readers (peers read RUNNING trials while
        their attrs are being written one by one)."""
        values: dict[str, Any] = {}
        for name in _SUMMARY_FIELDS:
            value = getattr(self, name)
            values[LRRT_PREFIX + name] = list(value) if isinstance(value, tuple) else value
        values[LRRT_GROUP] = self.group
        values[NUM_CLASSES] = self.num_classes
        values[LRRT_SCORE] = self.score
        return values

    @classmethod
    def from_attrs(cls, attrs: Mapping[str, Any]) -> LRRTSummary | None:
        """None for a trial whose range test has not been recorded."""
        legacy = _legacy_lrrt(attrs)
        score = _float(attrs.get(LRRT_SCORE, legacy.get("score")))
        num_classes = attrs.get(NUM_CLASSES)
        if score is None or not isinstance(num_classes, int) or num_classes < 1:
            return None
        stored = {**legacy, **{name: attrs[LRRT_PREFIX + name] for name in _SUMMARY_FIELDS
                               if LRRT_PREFIX + name in attrs}}
        best_val, max_epoch = (_float(stored.get("best_val_accuracy")),
                               _float(stored.get("max_epoch_accuracy")))
        if best_val == 0.0 and max_epoch == 0.0:
            best_val = max_epoch = None  # older versions wrote 0.0 when no epoch ended
        limit_found = stored.get("limit_found")
        return cls(
            score=score,
            group=str(attrs.get(LRRT_GROUP, "?|?")),
            num_classes=num_classes,
            lr_range=_pair(stored.get("lr_range")),
            best_val_accuracy=best_val,
            max_batch_accuracy=_float(stored.get("max_batch_accuracy")),
            max_epoch_accuracy=max_epoch,
            diverged=bool(stored.get("diverged", False)),
            divergence=stored.get("divergence"),
            completed_fraction=_float(stored.get("completed_fraction", 1.0)) or 0.0,
            bound_rule=stored.get("bound_rule"),
            bounds=_pair(stored.get("bounds")),
            compare_rule=stored.get("compare_rule"),
            compare_bounds=_pair(stored.get("compare_bounds")),
            disagreement=_float(stored.get("disagreement")),
            unstable=bool(stored.get("unstable", False)),
            peak_memory_bytes=int(stored.get("peak_memory_bytes") or 0),
            memory_kind=str(stored.get("memory_kind") or ""),
            seconds=_float(stored.get("seconds")),
            divergence_point=DivergencePoint.parse(stored.get("divergence_point"))
            or (DivergencePoint.from_text(stored.get("divergence"))
                if stored.get("diverged") else None),
            limit_found=limit_found if isinstance(limit_found, bool) else None,
            best_accuracy_lr=_float(stored.get("best_accuracy_lr")),
            weight_change=_float(stored.get("weight_change")),
            ramp_steps=_int(stored.get("ramp_steps")),
        )


_SUMMARY_FIELDS = (
    "lr_range", "best_val_accuracy", "max_batch_accuracy", "max_epoch_accuracy", "diverged",
    "divergence", "completed_fraction", "bound_rule", "bounds", "compare_rule",
    "compare_bounds", "disagreement", "unstable", "peak_memory_bytes", "memory_kind", "seconds",
    "divergence_point", "limit_found", "best_accuracy_lr", "weight_change",
    "ramp_steps",
)

_LEGACY_SUMMARY = "lrrt"
"""Before the record had one owner the summary was one nested attr (plus flat copies of a
few facts); studies written then are still read."""


def _legacy_lrrt(attrs: Mapping[str, Any]) -> dict[str, Any]:
    nested = attrs.get(_LEGACY_SUMMARY)
    if not isinstance(nested, dict):
        return {}
    values = {name: nested[name] for name in _SUMMARY_FIELDS if name in nested}
    if "best_smoothed_accuracy" in nested:
        values["score"] = nested["best_smoothed_accuracy"]
    if "lr_min" in nested and "lr_max" in nested:
        values["lr_range"] = [nested["lr_min"], nested["lr_max"]]
    if "lrrt_has_bounds" in attrs and not attrs["lrrt_has_bounds"]:
        values["bounds"] = None
    return values


@dataclass(frozen=True)
class CurvePoints:
    """The smoothed LRRT curve, downsampled: accuracy and loss against LR."""

    lr: tuple[float | None, ...]
    accuracy: tuple[float | None, ...]
    loss: tuple[float | None, ...]

    def to_attr(self) -> dict[str, list[float | None]]:
        return {"lr": list(self.lr), "accuracy": list(self.accuracy), "loss": list(self.loss)}

    def shortened(self, count: int = SHORT_CURVE_POINTS,
                  digits: int = CURVE_DIGITS) -> CurvePoints:
        """``count`` points at most, evenly spread (first and last kept), each number to
        ``digits`` significant digits: the copy a trial's attrs keep."""
        size = len(self.lr)
        if size > count:
            step = (size - 1) / (count - 1)
            index = [round(i * step) for i in range(count)]
        else:
            index = list(range(size))

        def column(values: tuple[float | None, ...]) -> tuple[float | None, ...]:
            return tuple(_significant(values[i], digits) if i < len(values) else None
                         for i in index)

        return CurvePoints(column(self.lr), column(self.accuracy), column(self.loss))

    @property
    def best_accuracy_lr(self) -> float | None:
        """LR of the highest accuracy (the first, on a tie); None for an empty curve."""
        known = [(y, -i, x) for i, (x, y) in enumerate(zip(self.lr, self.accuracy,
                                                            strict=False))
                 if x is not None and y is not None]
        return max(known)[2] if known else None

    @classmethod
    def from_attr(cls, value: Any) -> CurvePoints | None:
        if not isinstance(value, dict) or not value.get("lr"):
            return None

        def column(key: str) -> tuple[float | None, ...]:
            return tuple(_float(v) for v in value.get(key) or [])

        return cls(column("lr"), column("accuracy"), column("loss"))


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

    @classmethod
    def from_frozen(cls, trial: FrozenTrial) -> TrialRecord:
        attrs = trial.user_attrs
        config = attrs.get(TRIAL_CONFIG)
        pruned = failed = None
        if PRUNE_REASON in attrs:
            evidence = attrs.get(PRUNE_EVIDENCE)
            pruned = Verdict(str(attrs[PRUNE_REASON]), str(attrs.get(PRUNE_DETAIL) or ""),
                             evidence if isinstance(evidence, dict) else {})
        if FAIL_REASON in attrs:
            failed = Verdict(str(attrs[FAIL_REASON]), str(attrs.get(FAIL_DETAIL) or ""))
        n_params = attrs.get(N_PARAMS)
        seed = attrs.get(RUN_SEED)
        resumed = attrs.get(RESUMED_FROM_EPOCH)
        repeat_of = attrs.get(REPEAT_OF)
        return cls(
            number=trial.number,
            state=trial.state,
            value=_float(trial.values[0]) if trial.values else None,
            config_name=str(attrs.get(CONFIG_NAME, "?")),
            trial_config=config if isinstance(config, dict) else {},
            params=trial.params,
            run_seed=int(seed) if isinstance(seed, int) else None,
            device=attrs.get(DEVICE),
            n_params=int(n_params) if isinstance(n_params, int) else None,
            seconds=_float(attrs.get(SECONDS)),
            lrrt=LRRTSummary.from_attrs(attrs),
            lrrt_curve=CurvePoints.from_attr(attrs.get(LRRT_CURVE)),
            lrrt_artifact_id=attrs.get(LRRT_ARTIFACT),
            lrrt_plot_artifact_id=attrs.get(LRRT_PLOT_ARTIFACT),
            lrrt_reused=bool(attrs.get(LRRT_REUSED, False)),
            lr_bounds=_pair(attrs.get(LR_BOUNDS)),
            val_curve=_floats(attrs.get(VAL_CURVE)),
            lr_curve=_floats(attrs.get(LR_CURVE)),
            resumed_from_epoch=int(resumed) if isinstance(resumed, int) else None,
            pruned_because=pruned,
            failed_because=failed,
            bench_images=int(attrs.get(BENCH_IMAGES, 0) or 0),
            bench_seconds=_float(attrs.get(BENCH_SECONDS)) or 0.0,
            bench_cut=bool(attrs.get(BENCH_CUT, False)),
            degraded=_strings(attrs.get(DEGRADED)),
            last_step=trial.last_step,
            values=tuple(_float(v) for v in trial.values or ()),
            repeat_of=repeat_of if isinstance(repeat_of, int) else None,
        )

    @property
    def reason(self) -> str:
        """Why the trial ended as it did: the prune or fail reason, '' when it completed
        (or still runs); ``repeat of N`` for a repeat, complete or pruned."""
        if self.repeat_of is not None:
            return f"{REPEAT} of {self.repeat_of}"
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
        """What makes two trials one design: their whole recipe but the run seed (another
        seed is another run of the same design). '' for a trial that recorded none."""
        if not self.trial_config:
            return ""
        design = {k: v for k, v in self.trial_config.items() if k != "seed"}
        return json.dumps(design, sort_keys=True, default=str)

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
            if verdict is not None and _float(verdict.evidence.get("threshold")) is not None:
                return _float(verdict.evidence["threshold"])
        return chance_threshold(self.lrrt.num_classes) if self.lrrt else None

    @property
    def chance_gap(self) -> tuple[float, float] | None:
        """``(score, threshold)`` of a design rejected as ``chance_level``."""
        if self.reason != CHANCE_LEVEL or self.lrrt is None:
            return None
        threshold = self.chance_threshold
        evidence = self.pruned_because.evidence if self.pruned_because else {}
        score = _float(evidence.get("score"))
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
        """What the record warns about (``TRAINED_TO_CHANCE``, ``RANGE_TOO_NARROW``,
        ``DEGRADED``)."""
        return tuple(name for name, raised in ((TRAINED_TO_CHANCE, self.trained_to_chance),
                                               (RANGE_TOO_NARROW, self.range_too_narrow),
                                               (DEGRADED, bool(self.degraded)))
                     if raised)

    @property
    def lr_range(self) -> Bounds | None:
        """The LRRT range the design was tested over."""
        stored = _pair(self.trial_config.get("lr_range"))
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


def frozen_trial(trial: optuna.Trial) -> FrozenTrial:
    """A running trial as stored: what the pruner and the notes read (what Optuna's own
    ``trial.should_prune`` fetches)."""
    for frozen in trial.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if frozen.number == trial.number:
            return frozen
    raise RuntimeError(f"trial {trial.number} is not running")


def read_trials(study: optuna.study.Study,
                states: tuple[TrialState, ...] | None = None) -> list[TrialRecord]:
    return [TrialRecord.from_frozen(t) for t in study.get_trials(deepcopy=False, states=states)]


class TrialRecorder:
    """The one writer: each method stores one step of a trial's life in its user attrs."""

    def __init__(self, trial: optuna.Trial) -> None:
        self.trial = trial

    def _set(self, values: Mapping[str, Any]) -> None:
        for key, value in values.items():
            self.trial.set_user_attr(key, value)

    # what a retried trial inherits from the failed attempt (Optuna copies user attrs)
    def inherited_seed(self, default: int) -> int:
        return int(self.trial.user_attrs.get(RUN_SEED, default))

    def inherited_checkpoint_key(self, default: str) -> str:
        return str(self.trial.user_attrs.get(CHECKPOINT_KEY, default))

    def inherited_lrrt(self) -> LRRTSummary | None:
        """The range test a previous attempt of this trial already ran."""
        return LRRTSummary.from_attrs(self.trial.user_attrs)

    def started(self, *, config_name: str, run_seed: int, checkpoint_key: str, device: str,
                worker: str, trial_config: Mapping[str, Any]) -> None:
        self._set({CONFIG_NAME: config_name, RUN_SEED: run_seed,
                   CHECKPOINT_KEY: checkpoint_key, DEVICE: device, WORKER: worker,
                   TRIAL_CONFIG: dict(trial_config)})

    def range_test(self, summary: LRRTSummary, curve: CurvePoints, n_params: int) -> None:
        """The summary, flat, and a short copy of the smoothed curve (``CurvePoints
        .shortened``): the one a trial keeps when no artifact holds its curve."""
        self._set({N_PARAMS: n_params, **summary.to_attrs(),
                   LRRT_CURVE: curve.shortened().to_attr()})

    def range_test_reused(self) -> None:
        self._set({LRRT_REUSED: True})

    def artifacts(self, *, curve_id: str | None = None, plot_id: str | None = None) -> None:
        """The artifacts' ids. The curve artifact holds the whole curve, so the attrs' copy
        is dropped (Optuna cannot delete an attr: it becomes null)."""
        values = {LRRT_ARTIFACT: curve_id, LRRT_PLOT_ARTIFACT: plot_id}
        self._set({key: value for key, value in values.items() if value is not None})
        if curve_id is not None and self.trial.user_attrs.get(LRRT_CURVE) is not None:
            self._set({LRRT_CURVE: None})

    def bounds(self, bounds: Bounds) -> None:
        self._set({LR_BOUNDS: list(bounds)})

    def epochs(self, val_accuracies: list[float], lrs: list[float]) -> None:
        self._set({VAL_CURVE: val_accuracies, LR_CURVE: lrs})

    def resumed(self, epoch: int) -> None:
        self._set({RESUMED_FROM_EPOCH: epoch})

    def pruned(self, verdict: Verdict) -> None:
        values: dict[str, Any] = {PRUNE_REASON: verdict.reason}
        if verdict.detail:
            values[PRUNE_DETAIL] = verdict.detail
        if verdict.evidence:
            values[PRUNE_EVIDENCE] = dict(verdict.evidence)
        self._set(values)

    def failed(self, reason: str, detail: str = "") -> None:
        self._set({FAIL_REASON: reason, **({FAIL_DETAIL: detail[:500]} if detail else {})})

    def degraded(self, problem: str) -> bool:
        """Add one problem the trial survived; False if it was already recorded."""
        problems = list(self.trial.user_attrs.get(DEGRADED) or [])
        problem = problem[:200]
        if problem in problems:
            return False
        self._set({DEGRADED: [*problems, problem]})
        return True

    def seconds(self, seconds: float) -> None:
        self._set({SECONDS: round(seconds, 3)})

    def repeat(self, of: int) -> None:
        """This trial sampled the design of trial ``of`` again and takes its result."""
        self._set({REPEAT_OF: of})

    def bench(self, *, images: int, seconds: float, cut: bool = False) -> None:
        self._set({BENCH_IMAGES: images, BENCH_SECONDS: round(seconds, 3),
                   **({BENCH_CUT: True} if cut else {})})

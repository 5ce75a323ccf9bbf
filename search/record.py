"""The trial record: every user attr cnnsearch keeps on a trial or study, with one writer
(``TrialRecorder``) and one reader (``TrialRecord.from_frozen``).

Optuna stores user attrs as loose JSON under string keys. Everything else in cnnsearch (the
pruner, the results table, the report, the dashboard notes, export, the benchmarks) reads a
trial through ``TrialRecord``, never through ``user_attrs[...]``, so a key is spelled once,
defaults are decided once, and studies written by older versions are read in one place
(``_legacy_lrrt``).

Attrs stay small and flat: one fact per key, so optuna-dashboard and ``optuna trials`` show
them as short columns. Per-batch curves live in artifacts; only a 200-point smoothed curve
is kept here for the report and the notes.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

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

CURVE_POINTS = 200
"""Points of the smoothed LRRT curve kept in the trial's attrs (the full curve is an
artifact)."""

Bounds = tuple[float, float]


def _float(value: Any) -> float | None:
    """A finite float, or None for anything missing, malformed or non-finite."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


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
        return cls(
            score=score,
            group=str(attrs.get(LRRT_GROUP, "?|?")),
            num_classes=num_classes,
            lr_range=_pair(stored.get("lr_range")),
            best_val_accuracy=_float(stored.get("best_val_accuracy")),
            max_batch_accuracy=_float(stored.get("max_batch_accuracy")),
            max_epoch_accuracy=_float(stored.get("max_epoch_accuracy")),
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
        )


_SUMMARY_FIELDS = (
    "lr_range", "best_val_accuracy", "max_batch_accuracy", "max_epoch_accuracy", "diverged",
    "divergence", "completed_fraction", "bound_rule", "bounds", "compare_rule",
    "compare_bounds", "disagreement", "unstable", "peak_memory_bytes", "memory_kind", "seconds",
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
        return cls(
            number=trial.number,
            state=trial.state,
            value=_float(trial.value) if trial.values is not None else None,
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
        )

    @property
    def reason(self) -> str:
        """Why the trial ended as it did: the prune or fail reason, '' when it completed
        (or still runs)."""
        if self.state == TrialState.PRUNED:
            return self.pruned_because.reason if self.pruned_because else "pruned"
        if self.state == TrialState.FAIL:
            return self.failed_because.reason if self.failed_because else "failed"
        return ""

    @property
    def detail(self) -> str:
        verdict = self.pruned_because or self.failed_because
        return verdict.detail if verdict else ""

    @property
    def best_val_accuracy(self) -> float | None:
        """Best validation accuracy of the triangular2 training; None if it never ran."""
        return max(self.val_curve) if self.val_curve else None

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
        self._set({N_PARAMS: n_params, **summary.to_attrs(), LRRT_CURVE: curve.to_attr()})

    def range_test_reused(self) -> None:
        self._set({LRRT_REUSED: True})

    def artifacts(self, *, curve_id: str | None = None, plot_id: str | None = None) -> None:
        values = {LRRT_ARTIFACT: curve_id, LRRT_PLOT_ARTIFACT: plot_id}
        self._set({key: value for key, value in values.items() if value is not None})

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

    def bench(self, *, images: int, seconds: float, cut: bool = False) -> None:
        self._set({BENCH_IMAGES: images, BENCH_SECONDS: round(seconds, 3),
                   **({BENCH_CUT: True} if cut else {})})

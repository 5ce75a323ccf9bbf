"""The trial record: every user attr cnnsearch keeps on a trial or a study, with one writer
and one reader each.

Optuna stores user attrs as loose JSON under string keys. Everything else in cnnsearch (the
pruner, the results table, the report, the dashboard notes, export, the benchmarks) reads a
trial through ``TrialRecord``, never through ``user_attrs[...]``, so a key is spelled once,
defaults are decided once, and studies written by older versions are read in one place.

- ``keys``: every trial attr key with what it holds, and the reasons a trial ends;
- ``summary``: ``LRRTSummary``, what a range test found (its ``lrrt_*`` attrs), its curve
  points and divergence point;
- ``trial``: ``TrialRecord``, one trial read back, and what a record warns about (its
  flags) with the words for it; ``design``: what makes two trials one design;
- ``recorder``: ``TrialRecorder``, the one writer of a trial's attrs;
- ``study``: ``StudyRecord`` and ``StudyRecorder``, a study's own attrs.

Attrs stay small and flat: one fact per key, so optuna-dashboard and ``optuna trials`` show
them as short columns. The range test's curves live in the trial's JSON artifact; only a
trial without one keeps a short smoothed curve here (``SHORT_CURVE_POINTS``), and studies
written before keep their 200-point one.
"""

from search.record.design import design_key
from search.record.keys import (
    BELOW_PEERS,
    BENCH_CUT,
    BENCH_IMAGES,
    BENCH_SECONDS,
    CHANCE_LEVEL,
    CHECKPOINT_KEY,
    CONFIG_NAME,
    DEGRADED,
    DEVICE,
    DIVERGED,
    FAIL_DETAIL,
    FAIL_REASON,
    INTERRUPTED,
    LR_BOUNDS,
    LR_CURVE,
    LRRT_ARTIFACT,
    LRRT_CURVE,
    LRRT_PLOT_ARTIFACT,
    LRRT_REUSED,
    N_PARAMS,
    NOT_PROMOTED,
    OOM,
    PRUNE_DETAIL,
    PRUNE_EVIDENCE,
    PRUNE_REASON,
    REPEAT,
    REPEAT_OF,
    RESUMED_FROM_EPOCH,
    RUN_SEED,
    SECONDS,
    STORAGE_UNREACHABLE,
    TRIAL_ATTRS,
    TRIAL_CONFIG,
    UNSTABLE,
    VAL_CURVE,
    WORKER,
)
from search.record.recorder import TrialRecorder
from search.record.study import (
    STUDY_ARTIFACT_DIR,
    STUDY_ATTRS,
    STUDY_CONFIG,
    STUDY_FINGERPRINT,
    STUDY_PROCESSES,
    StudyRecord,
    StudyRecorder,
)
from search.record.summary import (
    CURVE_DIGITS,
    CURVE_POINTS,
    DEFAULT_CHANCE_MARGIN,
    LRRT_GROUP,
    LRRT_PREFIX,
    LRRT_SCORE,
    NUM_CLASSES,
    SHORT_CURVE_POINTS,
    UNKNOWN_GROUP,
    CurvePoints,
    DivergencePoint,
    LRRTSummary,
    chance_threshold,
    summary_attrs,
)
from search.record.trial import (
    FLAGS,
    NARROW_PEAK_SHARE,
    RANGE_TOO_NARROW,
    TRAINED_TO_CHANCE,
    TrialRecord,
    Verdict,
    flag_notes,
    flags_legend,
    frozen_trial,
    read_trials,
)
from search.record.values import Bounds

__all__ = [
    "BELOW_PEERS",
    "BENCH_CUT",
    "BENCH_IMAGES",
    "BENCH_SECONDS",
    "Bounds",
    "CHANCE_LEVEL",
    "CHECKPOINT_KEY",
    "CONFIG_NAME",
    "CURVE_DIGITS",
    "CURVE_POINTS",
    "CurvePoints",
    "DEFAULT_CHANCE_MARGIN",
    "DEGRADED",
    "DEVICE",
    "DIVERGED",
    "DivergencePoint",
    "FAIL_DETAIL",
    "FAIL_REASON",
    "FLAGS",
    "INTERRUPTED",
    "LRRTSummary",
    "LRRT_ARTIFACT",
    "NOT_PROMOTED",
    "LRRT_CURVE",
    "LRRT_GROUP",
    "LRRT_PLOT_ARTIFACT",
    "LRRT_PREFIX",
    "LRRT_REUSED",
    "LRRT_SCORE",
    "LR_BOUNDS",
    "LR_CURVE",
    "NARROW_PEAK_SHARE",
    "NUM_CLASSES",
    "N_PARAMS",
    "OOM",
    "PRUNE_DETAIL",
    "PRUNE_EVIDENCE",
    "PRUNE_REASON",
    "RANGE_TOO_NARROW",
    "REPEAT",
    "REPEAT_OF",
    "RESUMED_FROM_EPOCH",
    "RUN_SEED",
    "SECONDS",
    "SHORT_CURVE_POINTS",
    "STORAGE_UNREACHABLE",
    "STUDY_ARTIFACT_DIR",
    "STUDY_ATTRS",
    "STUDY_CONFIG",
    "STUDY_FINGERPRINT",
    "STUDY_PROCESSES",
    "StudyRecord",
    "StudyRecorder",
    "TRAINED_TO_CHANCE",
    "TRIAL_ATTRS",
    "TRIAL_CONFIG",
    "TrialRecord",
    "TrialRecorder",
    "UNKNOWN_GROUP",
    "UNSTABLE",
    "VAL_CURVE",
    "Verdict",
    "WORKER",
    "chance_threshold",
    "design_key",
    "flag_notes",
    "flags_legend",
    "frozen_trial",
    "read_trials",
    "summary_attrs",
]

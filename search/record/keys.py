"""Every user attr key cnnsearch writes on a trial, each with what it holds, and the reasons
a trial is pruned or fails.

``TRIAL_ATTRS`` is the reference of the trial attrs: the keys below, then the range test's
summary, one ``lrrt_<field>`` key per field of ``LRRTSummary`` (``summary_attrs``). The
trial-record page of the docs is checked against it, so neither can go stale. A study's own
attrs are in ``search.record.study``.
"""

from __future__ import annotations

from search.record.summary import CURVE_DIGITS, SHORT_CURVE_POINTS

TRIAL_ATTRS: dict[str, str] = {}
"""Trial attr key -> what it holds (the range test's ``lrrt_*`` keys are
``search.record.summary.summary_attrs``)."""


def _trial(key: str, meaning: str) -> str:
    TRIAL_ATTRS[key] = meaning
    return key


# --- the design and where it ran -------------------------------------------------------------
CONFIG_NAME = _trial("config_name", "the design's name (`B2FL16Adam`, `ResNet18W64SGD`)")
TRIAL_CONFIG = _trial("trial_config", "everything to rebuild and retrain the design "
                      "(`TrialConfig.to_dict`; `cnnsearch export` writes it)")
RUN_SEED = _trial("run_seed", "the seed of its weights and batches (a retry keeps it)")
CHECKPOINT_KEY = _trial("checkpoint_key", "the name of its epoch checkpoint (a retry "
                        "resumes from it)")
DEVICE = _trial("device", "the device it ran on (`cpu`, `cuda:0`)")
WORKER = _trial("worker", "`host:pid` of the process that ran it")
N_PARAMS = _trial("n_params", "the network's parameter count")
SECONDS = _trial("seconds", "wall time of the whole trial")

# --- the range test beyond its summary -------------------------------------------------------
LRRT_CURVE = _trial("lrrt_curve", f"a short copy of the smoothed curve ({SHORT_CURVE_POINTS} "
                    f"points, {CURVE_DIGITS} significant digits), kept until the curve "
                    "artifact is uploaded (then null); older studies kept 200 points here")
LRRT_ARTIFACT = _trial("lrrt_artifact_id", "the artifact that holds the whole range test "
                       "(JSON)")
LRRT_PLOT_ARTIFACT = _trial("lrrt_plot_artifact_id", "the artifact that holds its plot (SVG), "
                            "shown in the trial's dashboard note")
LRRT_REUSED = _trial("lrrt_reused", "true when a retry reused the range test an earlier "
                     "attempt recorded")

# --- the training ----------------------------------------------------------------------------
LR_BOUNDS = _trial("lr_bounds", "the LR bounds it trained with (none for a design the gate "
                   "rejected)")
VAL_CURVE = _trial("val_curve", "validation accuracy at each epoch end")
LR_CURVE = _trial("lr_curve", "the LR at each epoch end")
RESUMED_FROM_EPOCH = _trial("resumed_from_epoch", "the epoch a retry resumed from (its "
                            "checkpoint)")

# --- how it ended ----------------------------------------------------------------------------
PRUNE_REASON = _trial("prune_reason", "why it was pruned (`diverged`, `chance_level`, "
                      "`median`...; `repeat`)")
PRUNE_DETAIL = _trial("prune_detail", "the reason in words")
PRUNE_EVIDENCE = _trial("prune_evidence", "the numbers that decided it (e.g. "
                        '`{"score": 0.141, "threshold": 0.19}`)')
FAIL_REASON = _trial("fail_reason", "why it failed (`oom`, `interrupted`, "
                     "`storage_unreachable`)")
FAIL_DETAIL = _trial("fail_detail", "the failure in words")
DEGRADED = _trial("degraded", "problems it survived, e.g. `[\"checkpoint: No space left on "
                  "device\"]`: it ran on without what failed to be written (also a flag)")
REPEAT_OF = _trial("repeat_of", "the finished trial whose design this one sampled again: it "
                   "was not trained, its result is that trial's (`repeats: skip`)")
TOLD_VALUES = _trial("told_values", "the values cnnsearch told Optuna when the trial ended: "
                     "a trial holding other values (told from outside, e.g. the dashboard) "
                     "is flagged `untrusted` and left out of exports")

# --- what the strategies benchmark charges to each trial (benchmarks/) -----------------------
BENCH_IMAGES = _trial("bench_images", "benchmarks only: images the trial's work processed")
BENCH_SECONDS = _trial("bench_seconds", "benchmarks only: seconds charged to it")
BENCH_CUT = _trial("bench_cut", "benchmarks only: true when the budget cut it short")

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

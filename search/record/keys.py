"""Every user attr key cnnsearch writes on a trial, with what it holds, and the reasons a
trial is pruned or fails.

``TRIAL_ATTRS`` is the reference of the trial attrs: each key below with what it holds (the
range test's summary adds one ``lrrt_<field>`` key per field of ``LRRTSummary``:
``summary_attrs``). The trial-record page of the docs is checked against it, and a test
checks that it holds every key defined here, so neither can go stale. A study's own attrs
are in ``search.record.study``.
"""

from __future__ import annotations

from search.record.summary import CURVE_DIGITS, SHORT_CURVE_POINTS
from search.record.values import read_table

# --- the design and where it ran -------------------------------------------------------------
CONFIG_NAME = "config_name"
TRIAL_CONFIG = "trial_config"
RUN_SEED = "run_seed"
CHECKPOINT_KEY = "checkpoint_key"
DEVICE = "device"
WORKER = "worker"
PRECISION = "precision"
CARD = "card"
SLOT = "slot"
N_PARAMS = "n_params"
SECONDS = "seconds"

# --- the range test beyond its summary -------------------------------------------------------
LRRT_CURVE = "lrrt_curve"
LRRT_ARTIFACT = "lrrt_artifact_id"
LRRT_PLOT_ARTIFACT = "lrrt_plot_artifact_id"
LRRT_REUSED = "lrrt_reused"

# --- the training ----------------------------------------------------------------------------
LR_BOUNDS = "lr_bounds"
VAL_CURVE = "val_curve"
LR_CURVE = "lr_curve"
RESUMED_FROM_EPOCH = "resumed_from_epoch"

# --- how it ended ----------------------------------------------------------------------------
PRUNE_REASON = "prune_reason"
PRUNE_DETAIL = "prune_detail"
PRUNE_EVIDENCE = "prune_evidence"
FAIL_REASON = "fail_reason"
FAIL_DETAIL = "fail_detail"
DEGRADED = "degraded"
REPEAT_OF = "repeat_of"
TOLD_VALUES = "told_values"

# --- what the strategies benchmark charges to each trial (benchmarks/) -----------------------
BENCH_IMAGES = "bench_images"
BENCH_SECONDS = "bench_seconds"
BENCH_CUT = "bench_cut"

TRIAL_ATTRS = read_table("""
config_name             the design's name (`B2FL16Adam`, `ResNet18W64SGD`)
trial_config            everything to rebuild and retrain the design (`TrialConfig.to_dict`;
                        `cnnsearch export` writes it)
run_seed                the seed of its weights and batches (a retry keeps it)
checkpoint_key          the name of its epoch checkpoint (a retry resumes from it)
device                  the device it ran on (`cpu`, `cuda:0`)
worker                  `host:pid` of the process that ran it
precision               what `train.precision` resolved to on its device: `fp32`, `bf16` or
                        `fp16` (none: recorded before precisions existed, fp32)
card                    the UUID of the GPU it ran on, when its process held a slot of one
                        (`--device auto` on a GPU machine, `--trials-per-gpu`)
slot                    its slot on that card (0, 1, ...): trials with the same card ran side
                        by side
n_params                the network's parameter count
seconds                 wall time of the whole trial
lrrt_curve              a short copy of the smoothed curve ({short_curve_points} points,
                        {curve_digits} significant digits), kept until the curve artifact is
                        uploaded (then null); older studies kept 200 points here
lrrt_artifact_id        the artifact that holds the whole range test (JSON)
lrrt_plot_artifact_id   the artifact that holds its plot (SVG), shown in the trial's
                        dashboard note
lrrt_reused             true when a retry reused the range test an earlier attempt recorded
lr_bounds               the LR bounds it trained with (none for a design the gate rejected)
val_curve               validation accuracy at each epoch end
lr_curve                the LR at each epoch end
resumed_from_epoch      the epoch a retry resumed from (its checkpoint)
prune_reason            why it was pruned (`diverged`, `chance_level`, `median`...;
                        `repeat`)
prune_detail            the reason in words
prune_evidence          the numbers that decided it, e.g.
                        `{{"score": 0.141, "threshold": 0.19}}`
fail_reason             why it failed (`oom`, `interrupted`, `storage_unreachable`)
fail_detail             the failure in words
degraded                problems it survived, e.g. `["checkpoint: No space left on
                        device"]`: it ran on without what failed to be written (also a flag)
repeat_of               the finished trial whose design this one sampled again: it was not
                        trained, its result is that trial's (`repeats: skip`)
told_values             the values cnnsearch told Optuna when the trial ended: a trial
                        holding other values (told from outside, e.g. the dashboard) is
                        flagged `untrusted` and left out of exports
bench_images            benchmarks only: images the trial's work processed
bench_seconds           benchmarks only: seconds charged to it
bench_cut               benchmarks only: true when the budget cut it short
""", short_curve_points=SHORT_CURVE_POINTS, curve_digits=CURVE_DIGITS)
"""Trial attr key -> what it holds."""

# --- reasons ---------------------------------------------------------------------------------
DIVERGED = "diverged"
CHANCE_LEVEL = "chance_level"
UNSTABLE = "unstable"
BELOW_PEERS = "below_peers"
NOT_PROMOTED = "not_promoted"
"""Passed the gate, but its range-test score was not in the top 1/eta of the study's
(``pruner.promotion_eta``): a search-efficiency cut, not a verdict that it cannot train."""
INTERRUPTED = "interrupted"
OOM = "oom"
STORAGE_UNREACHABLE = "storage_unreachable"
"""The database was away longer than the storage retries: the trial was paused (its
checkpoint kept) and its retry resumes it."""
REPEAT = "repeat"
"""The prune reason of a repeat of a pruned design (``REPEAT_OF`` says of which trial)."""
REASONS = (DIVERGED, CHANCE_LEVEL, UNSTABLE, BELOW_PEERS, NOT_PROMOTED, INTERRUPTED, OOM,
           STORAGE_UNREACHABLE, REPEAT)
"""Why a trial was pruned or failed (besides the after-LRRT pruner's name)."""

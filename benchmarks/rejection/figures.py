"""The rejection protocol's figures, one definition each, computed from its rows.

Labels: a design "ends at chance level" when most of its trainings do (the majority label,
fixed before any gate is scored); its chance probability is the share of its trainings that
do. Recall is the share of chance-level designs the gate rejects, false rejections the share
of the others it rejects; the weighted versions count each design by its probability
(``recall_weighted``: rejected probability mass over all of it). The trivial rule is scored
the same way, and both are compared on the families (optimizer x LR range) whose outcome
varies, where a rule must tell designs apart rather than reject a family wholesale.

Ranking is read on the first part (designs that should train): Spearman's rank correlation
of a score with the mean of the trainings, and as a fraction of its noise ceiling: a score
that knew each design's true accuracy would reach only ``sqrt(k r / (1 + (k - 1) r))``
against a mean of ``k`` trainings that correlate ``r`` with each other.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from typing import Any

import numpy as np

from benchmarks.common.metrics import BOOTSTRAP, bootstrap_median

AT_LR_MAX = 0.9
"""An upper bound at >= this share of the range's lr_max "sits at the end of the ramp"."""


def spearman(xs: Sequence[float], ys: Sequence[float]) -> float | None:
    """Spearman's rank correlation (average ranks for ties); None under 3 points or with a
    constant side."""
    if len(xs) < 3:
        return None

    def ranks(values: Sequence[float]) -> np.ndarray:
        array = np.asarray(values, dtype=float)
        order = array.argsort(kind="mergesort")
        ranked = np.empty(len(array))
        ranked[order] = np.arange(len(array), dtype=float)
        for value in np.unique(array):  # ties share their mean rank
            tied = array == value
            ranked[tied] = ranked[tied].mean()
        return ranked

    a, b = ranks(xs), ranks(ys)
    if a.std() == 0 or b.std() == 0:
        return None
    return float(np.corrcoef(a, b)[0, 1])


def gate_rates(rows: list[dict[str, Any]], reason: str = "reason") -> dict[str, Any]:
    """Recall and false rejections of the rule whose verdict is ``row[reason]``, by the
    majority labels and weighted by each design's chance probability, with counts."""
    chance = [r for r in rows if r["chance_level"]]
    good = [r for r in rows if not r["chance_level"]]
    caught = sum(1 for r in chance if r[reason])
    wrong = sum(1 for r in good if r[reason])
    mass = sum(r["chance_probability"] for r in rows)
    rest = sum(1 - r["chance_probability"] for r in rows)
    return {
        "recall": caught / len(chance) if chance else None,
        "false_rejection_rate": wrong / len(good) if good else None,
        "recall_weighted": (sum(r["chance_probability"] for r in rows if r[reason]) / mass
                            if mass else None),
        "false_rejection_rate_weighted": (sum(1 - r["chance_probability"] for r in rows
                                              if r[reason]) / rest if rest else None),
        "chance_level": len(chance), "good": len(good), "caught": caught,
        "false_rejections": wrong,
    }


def youden(rates: dict[str, Any]) -> float | None:
    """Recall minus false-rejection rate: 0 for a rule that rejects at random."""
    if rates["recall"] is None or rates["false_rejection_rate"] is None:
        return None
    return rates["recall"] - rates["false_rejection_rate"]


def interval(rows: list[dict[str, Any]], key: str, reason: str = "reason", seed: int = 0
             ) -> dict[str, float | None]:
    """A 90 % bootstrap interval of one of ``gate_rates``' figures, resampling designs."""
    if not rows:
        return {"low": None, "high": None}
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(BOOTSTRAP // 4):
        sample = [rows[i] for i in rng.integers(0, len(rows), len(rows))]
        value = gate_rates(sample, reason)[key]
        if value is not None:
            values.append(value)
    if not values:
        return {"low": None, "high": None}
    return {"low": float(np.percentile(values, 5)), "high": float(np.percentile(values, 95))}


def families(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Gate and trivial rule per family (optimizer x LR range), and on the families whose
    outcome varies (designs with other labels, or trainings that split)."""
    out: dict[str, Any] = {}
    for name in sorted({r["family"] for r in rows}):
        members = [r for r in rows if r["family"] == name]
        labels = {r["chance_level"] for r in members}
        split = any(0 < r["chance_probability"] < 1 for r in members)
        out[name] = {"designs": len(members), "varies": len(labels) > 1 or split,
                     "gate": gate_rates(members), "trivial": gate_rates(members,
                                                                        "trivial_reason")}
    varied = [r for r in rows if out[r["family"]]["varies"]]
    gate, trivial = gate_rates(varied), gate_rates(varied, "trivial_reason")
    return {"per_family": out, "varied": {
        "families": [k for k, v in out.items() if v["varies"]], "designs": len(varied),
        "gate": gate, "trivial": trivial, "gate_youden": youden(gate),
        "trivial_youden": youden(trivial),
        "gate_beats_trivial": (None if youden(gate) is None or youden(trivial) is None
                               else youden(gate) > youden(trivial))}}


def ranking(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Spearman of each score with the mean of the trainings, the ground truth's own
    reliability and the ceiling it puts on any score."""
    truth = [r["mean_best_val_accuracy"] for r in rows]
    twice = [r for r in rows if len(r["trainings"]) >= 2]
    reliability = spearman([r["trainings"][0] for r in twice],
                           [r["trainings"][1] for r in twice]) if twice else None
    k = min((len(r["trainings"]) for r in rows), default=1)
    ceiling = (math.sqrt(k * reliability / (1 + (k - 1) * reliability))
               if reliability is not None and reliability > 0 else None)
    score = spearman([r["lrrt_score"] for r in rows], truth)
    return {
        "spearman": score,
        "spearman_lrrt_val": spearman([r["lrrt_val_accuracy"] or 0.0 for r in rows], truth),
        "spearman_screening_fair": spearman([r["screening_accuracy"] for r in rows], truth),
        "spearman_one_epoch": spearman([r["screening_constant_accuracy"] for r in rows],
                                       truth),
        "spearman_params": spearman([r["n_params"] for r in rows], truth),
        "truth_reliability": reliability,
        "spearman_ceiling": ceiling,
        "spearman_ceiling_fraction": (score / ceiling if score is not None and ceiling
                                      else None),
    }


WITHIN = ("optimizer", "lr_range_label", "batch_size")
"""Design factors the ranking is also read within: where the score orders and where not."""


def spearman_within(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for factor in WITHIN:
        for value in sorted({str(r[factor]) for r in rows}):
            group = [r for r in rows if str(r[factor]) == value]
            truth = [r["mean_best_val_accuracy"] for r in group]
            out.setdefault(factor, {})[value] = {
                "designs": len(group),
                "spearman": spearman([r["lrrt_score"] for r in group], truth),
                "spearman_screening_fair": spearman([r["screening_accuracy"] for r in group],
                                                    truth)}
    return out


def bounds_quality(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """How good the chosen bounds are against the uncensored oracle, beside the regret that
    training noise alone gives."""
    oracle = [r for r in rows if "bound_regret" in r]
    limited = [r for r in rows if r["limit_found"] and r["bounds"]]
    at_max = sum(1 for r in limited if r["bounds"][1] >= AT_LR_MAX * r["lr_range"][1])
    multipliers = [r["oracle_best_multiplier"] for r in oracle]
    return {
        "bound_regret_median": (statistics.median(r["bound_regret"] for r in oracle)
                                if oracle else None),
        "regret_noise_floor": (statistics.median(r["regret_noise_floor"] for r in oracle)
                               if oracle else None),
        "oracle_interior_fraction": (sum(r["oracle_interior"] for r in oracle) / len(oracle)
                                     if oracle else None),
        "oracle_best_multiplier_median": statistics.median(multipliers) if oracle else None,
        "oracle_best_multiplier_log2": (
            {"median": statistics.median(math.log2(m) for m in multipliers),
             "below_1": sum(m < 0.99 for m in multipliers),
             "above_1": sum(m > 1.01 for m in multipliers)} if oracle else None),
        "upper_at_lr_max": at_max,
        "oracle_designs": len(oracle),
    }


def figures(rows: list[dict[str, Any]], ranked: list[dict[str, Any]]) -> dict[str, Any]:
    """Every figure for ``rows`` (the gate's) and ``ranked`` (the ranking's and bounds')."""
    rejected = [r for r in rows if r["reason"]]
    costs = [r["lrrt_images"] / (r["lrrt_images"] + r["train_images"]) for r in rows]
    rejection_costs = [r["lrrt_images"] / (r["lrrt_images"] + r["train_images"])
                       for r in rejected]
    gate = gate_rates(rows)
    trivial = gate_rates(rows, "trivial_reason")
    return {
        **{k: gate[k] for k in ("recall", "false_rejection_rate", "recall_weighted",
                                "false_rejection_rate_weighted")},
        "intervals": {k: interval(rows, k) for k in (
            "recall", "false_rejection_rate", "recall_weighted",
            "false_rejection_rate_weighted")},
        "trivial_rule": {**trivial, "intervals": {k: interval(rows, k, "trivial_reason")
                                                  for k in ("recall", "false_rejection_rate")}},
        "families": families(rows),
        "cost_fraction": statistics.median(rejection_costs) if rejection_costs else None,
        "test_cost_fraction": statistics.median(costs) if costs else None,
        **ranking(ranked),
        "spearman_within": spearman_within(ranked),
        **bounds_quality(ranked),
        "extensions": {kind: sum(1 for r in rows if r["extension"] == kind)
                       for kind in ("up", "down")},
        "counts": {
            "designs": len(rows), "ranked_designs": len(ranked),
            "chance_level": gate["chance_level"], "good": gate["good"],
            "rejected": len(rejected), "caught": gate["caught"],
            "false_rejections": gate["false_rejections"],
            "trivial_rejected": sum(1 for r in rows if r["trivial_reason"]),
            "oracle_designs": sum(1 for r in ranked if "bound_regret" in r),
            "lrrt_steps_median": statistics.median(r["lrrt_steps"] for r in rows)
            if rows else None,
        },
    }


OVER_SEEDS = ("recall", "false_rejection_rate", "recall_weighted",
              "false_rejection_rate_weighted", "cost_fraction", "spearman",
              "spearman_screening_fair", "spearman_ceiling_fraction", "bound_regret_median",
              "regret_noise_floor", "oracle_interior_fraction")
"""Figures also given as a median over seeds, with a bootstrap interval."""


def summarise(rows: list[dict[str, Any]], *, seeds: Sequence[int], parts: Sequence[str]
              ) -> dict[str, Any]:
    """Pooled figures (ranking and bounds on the first part), each part's, each seed's, and
    the median over seeds of each."""
    def of(selected: list[dict[str, Any]]) -> dict[str, Any]:
        return figures(selected, [r for r in selected if r["part"] == parts[0]])

    per_seed = {str(seed): of([r for r in rows if r["seed"] == seed]) for seed in seeds}
    return {
        **of(rows),
        "over_seeds": {k: bootstrap_median([s[k] for s in per_seed.values()
                                            if s[k] is not None]) for k in OVER_SEEDS},
        "per_seed": per_seed,
        "per_part": {part: figures([r for r in rows if r["part"] == part],
                                   [r for r in rows if r["part"] == part])
                     for part in parts} if len(parts) > 1 else {},
        "seeds": list(seeds),
    }

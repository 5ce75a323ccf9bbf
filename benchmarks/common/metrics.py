"""Numbers read off a search's timeline: best accuracy at a share of the budget, budget to
a target, budget wasted on chance-level trials, and their medians across seeds.

An unreached target is ``None`` per run and counts as infinitely far for the median, so a
strategy that reaches it in one seed of three has no median budget-to-target.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from typing import Any

import numpy as np

FRACTIONS = (0.25, 0.5, 1.0)
BOOTSTRAP = 2000
"""Resamples behind every interval."""

Timeline = list[tuple[int, float, float]]
"""``(training images used, seconds, best validation accuracy so far)`` per evaluation."""


def best_at(timeline: Timeline, images: float) -> float:
    """Best validation accuracy of any model evaluated within ``images`` training images."""
    return max((best for used, _s, best in timeline if used <= images), default=0.0)


def to_target(timeline: Timeline, target: float) -> tuple[int, float] | None:
    """(images, seconds) when the best accuracy first reached ``target``; None if never."""
    for used, seconds, best in timeline:
        if best >= target:
            return used, seconds
    return None


def run_metrics(run: dict[str, Any], targets: tuple[float, ...]) -> dict[str, Any]:
    """Everything the strategy x seed table shows for one run."""
    timeline = [tuple(point) for point in run["timeline"]]
    budget = run["budget"]
    trials = run["trials"]
    states = [t["state"] for t in trials]
    reached = {str(t): to_target(timeline, t) for t in targets}  # type: ignore[arg-type]
    return {
        "strategy": run["strategy"],
        "seed": run["seed"],
        "best_at": {str(f): best_at(timeline, f * budget) for f in FRACTIONS},  # type: ignore
        "to_target": {k: (list(v) if v else None) for k, v in reached.items()},
        "chance_images": sum(t["images"] for t in trials if t["chance_level"]),
        "budget": budget,
        "images": run["images"],
        "eval_images": run["eval_images"],
        "seconds": run["seconds"],
        "complete": states.count("complete"),
        "pruned": states.count("pruned"),
        "cut": states.count("cut"),
        "trials": len(trials),
    }


def median_or_none(values: list[float | None]) -> float | None:
    """Median with ``None`` as +inf; None when the median itself is infinite."""
    finite = [math.inf if v is None else v for v in values]
    if not finite:
        return None
    value = statistics.median(finite)
    return None if math.isinf(value) else value


def bootstrap_median(values: Sequence[float | None], seed: int = 0) -> dict[str, Any]:
    """Median across seeds with a bootstrap 90 % interval (resampling the seeds). ``None``
    counts as +inf (a target never reached), so an end of the interval can be None too."""
    finite = np.asarray([math.inf if v is None else float(v) for v in values], dtype=float)
    if len(finite) == 0:
        return {"median": None, "low": None, "high": None, "n": 0}
    rng = np.random.default_rng(seed)
    samples = np.median(rng.choice(finite, size=(BOOTSTRAP, len(finite))), axis=1)

    def value(number: float) -> float | None:
        return None if math.isinf(number) or math.isnan(number) else float(number)

    return {"median": value(float(np.median(finite))),
            "low": value(float(np.percentile(samples, 5))),
            "high": value(float(np.percentile(samples, 95))), "n": len(finite)}


def summary(metrics: list[dict[str, Any]], strategies: tuple[str, ...],
            targets: tuple[float, ...]) -> dict[str, Any]:
    """Medians across seeds per strategy, and the headline comparison for each target."""
    per_strategy: dict[str, Any] = {}
    for key in strategies:
        runs = [m for m in metrics if m["strategy"] == key]
        if not runs:
            continue
        per_strategy[key] = {
            "seeds": len(runs),
            "best_at": {str(f): statistics.median(r["best_at"][str(f)] for r in runs)
                        for f in FRACTIONS},
            "to_target_images": {
                str(t): median_or_none([(r["to_target"][str(t)] or [None])[0] for r in runs])
                for t in targets},
            "to_target_seconds": {
                str(t): median_or_none([(r["to_target"][str(t)] or [None, None])[1]
                                        for r in runs])
                for t in targets},
            "reached": {str(t): sum(r["to_target"][str(t)] is not None for r in runs)
                        for t in targets},
            "chance_share": statistics.median(r["chance_images"] / r["budget"] for r in runs),
            "intervals": {
                "best_at": {str(f): bootstrap_median([r["best_at"][str(f)] for r in runs])
                            for f in FRACTIONS},
                "to_target_images": {
                    str(t): bootstrap_median([(r["to_target"][str(t)] or [None])[0]
                                              for r in runs])
                    for t in targets},
            },
        }
    budget = max((m["budget"] for m in metrics), default=0)
    headline = {}
    if "ours" in per_strategy and len(per_strategy) > 1:
        headline = {str(t): compare(per_strategy, str(t), budget) for t in targets}
    return {"strategies": per_strategy, "headline": headline}


def compare(per_strategy: dict[str, Any], target: str, budget: int) -> dict[str, Any]:
    """Ours' median budget-to-target over the best (smallest) median of the others.

    The goal is a ratio of at most 0.5. When no other strategy reached the target within
    the budget their budget is only known to exceed it, so the ratio is only bounded above
    by ours / budget: the goal is then met if that bound is <= 0.5, else undecided (None).
    """
    others = {k: v["to_target_images"][target] for k, v in per_strategy.items()
              if not k.startswith("ours")}  # ours' variants are not baselines
    best_other = min(others, key=lambda k: math.inf if others[k] is None else others[k])
    ours, theirs = per_strategy["ours"]["to_target_images"][target], others[best_other]
    result: dict[str, Any] = {"ours_images": ours, "best_other": best_other,
                              "best_other_images": theirs, "ratio": None, "ratio_below": None}
    if ours is None:
        result["target_met"] = False
    elif theirs is not None:
        result["ratio"] = ours / theirs
        result["target_met"] = result["ratio"] <= 0.5
    else:
        result["ratio_below"] = ours / budget
        result["target_met"] = True if result["ratio_below"] <= 0.5 else None
    return result


def median_curve(runs: list[dict[str, Any]], budget: int, points: int = 201
                 ) -> tuple[list[float], list[float | None]]:
    """Best-so-far against budget on a common grid, median across seeds; None before every
    seed has evaluated a model (a median of 'nothing yet' is not an accuracy)."""
    xs = [budget * i / (points - 1) for i in range(points)]
    ys: list[float | None] = []
    for x in xs:
        values = [best_at([tuple(p) for p in r["timeline"]], x) for r in runs]  # type: ignore
        ys.append(statistics.median(values) if all(v > 0 for v in values) else None)
    return xs, ys

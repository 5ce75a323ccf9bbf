"""Numbers read off a search's timeline: best accuracy at a share of the budget, budget to
a target, budget wasted on chance-level trials, and their medians across seeds.

An unreached target is ``None`` per run and counts as infinitely far for the median, so a
strategy that reaches it in one seed of three has no median budget-to-target.
"""

from __future__ import annotations

import math
import statistics
from typing import Any

FRACTIONS = (0.25, 0.5, 1.0)

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


def summary(metrics: list[dict[str, Any]], strategies: tuple[str, ...],
            targets: tuple[float, ...]) -> dict[str, Any]:
    """Medians across seeds per strategy, and the headline comparison for each target:
    ours' median budget-to-target over the best (smallest) median of the others."""
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
        }
    headline = {}
    others = [k for k in per_strategy if k != "ours"]
    for target in targets:
        if "ours" not in per_strategy or not others:
            break
        ours = per_strategy["ours"]["to_target_images"][str(target)]
        best_other_key = min(others, key=lambda k: per_strategy[k]["to_target_images"][str(target)]
                             or math.inf)
        best_other = per_strategy[best_other_key]["to_target_images"][str(target)]
        ratio = ours / best_other if ours is not None and best_other is not None else None
        headline[str(target)] = {
            "ours_images": ours, "best_other": best_other_key, "best_other_images": best_other,
            "ratio": ratio,
            # At most half the best other's budget; met too if ours reaches and none other.
            "target_met": ours is not None and (best_other is None or ours <= 0.5 * best_other),
        }
    return {"strategies": per_strategy, "headline": headline}


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

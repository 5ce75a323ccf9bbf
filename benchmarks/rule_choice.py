"""Choose the LRRT's bound rule, gate and score on development seeds, without training again.

    python -m benchmarks.rule_choice --config FILE RUN_DIR [RUN_DIR ...] [--out FILE]

Each ``RUN_DIR`` is the output of ``python -m benchmarks.rejection`` on development seeds.
Its cache holds every design's range-test curve, its ground truth (trained at the run's
bound rule) and, for the oracle subset, the accuracies at x0.25 ... x4 that rule's upper
bound. Here every candidate is replayed on those curves:

- **bound rules**: each rule's upper bound is placed on the oracle grid (accuracy
  interpolated linearly in log2 of the LR between grid points; outside the grid, the
  nearest end, counted as ``outside``) and its regret is the grid's best minus that, in
  accuracy points;
- **gates**: the verdict of each candidate, in the order designs arrived, with the same
  peers, against the ground truth (recall of chance-level designs, false rejections);
- **scores**: Spearman between each candidate score and the ground truth.

The figures are for choosing only: the reporting seeds are then run once with the choice
(``benchmarks.rejection --seeds report``), and those are the figures reported.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.rejection import (
    Cache,
    cached_lrrt,
    design_base,
    design_key,
    designs,
    spearman,
)
from search.config import load_config
from search.config.space import lr_range_label
from search.method.lrrt.bounds import BOUND_RULES, apply_rule, backed_off_limit
from search.method.lrrt.curve import LRRTCurve
from search.method.lrrt.result import LRRTResult
from search.method.pruner import GateRules, chance_threshold, lrrt_verdict

Gate = Callable[[LRRTResult, list[float], float], str | None]
"""(test, peers' scores, chance threshold) -> reason or None."""


def loss_fall(curve: LRRTCurve) -> float:
    """How much of its starting value the smoothed loss lost during the ramp (0..1)."""
    losses = curve.smoothed_losses
    if len(losses) < 2 or not math.isfinite(losses[0]) or losses[0] <= 0:
        return 0.0
    return max(0.0, (losses[0] - min(losses)) / losses[0])


def tail_accuracy(curve: LRRTCurve) -> float:
    """Mean batch accuracy over the last quarter of the healthy ramp."""
    values = curve.accuracies
    if not values:
        return 0.0
    return float(np.mean(values[-max(1, len(values) // 4):]))


def lowest_loss_score(curve: LRRTCurve) -> float:
    """The smoothed loss's minimum, negated so that higher ranks higher like the others."""
    finite = [v for v in curve.smoothed_losses if math.isfinite(v)]
    return -min(finite) if finite else -math.inf


SCORES: dict[str, Callable[[LRRTResult], float]] = {
    "best_smoothed_accuracy": lambda r: r.summary.score,
    "final_smoothed_accuracy": lambda r: (r.curve.smoothed_accuracies or [0.0])[-1],
    "tail_accuracy": lambda r: tail_accuracy(r.curve),
    "loss_fall": lambda r: loss_fall(r.curve),
    "mean_accuracy": lambda r: float(np.mean(r.curve.accuracies)) if r.curve.accuracies else 0.0,
    "lowest_smoothed_loss": lambda r: lowest_loss_score(r.curve),
}


def product_gate(rules: GateRules) -> Gate:
    def gate(result: LRRTResult, peers: list[float], num_classes: int) -> str | None:
        summary = replace(result.summary, group="g", num_classes=num_classes)
        verdict = lrrt_verdict(summary, peers, rules)
        return verdict.reason if verdict else None
    return gate


def loss_guarded_gate(rules: GateRules, fall: float) -> Gate:
    """The product's gate, except that a design under the chance threshold is kept when its
    smoothed loss still fell by ``fall`` of its start: it learns, slowly."""
    inner = product_gate(rules)

    def gate(result: LRRTResult, peers: list[float], num_classes: int) -> str | None:
        reason = inner(result, peers, num_classes)
        if reason == "chance_level" and loss_fall(result.curve) >= fall:
            return None
        return reason
    return gate


def limit_needed_gate(rules: GateRules) -> Gate:
    """The product's gate, except that ``chance_level`` needs a test that found its upper
    limit: a ramp that never reached the LRs where the design learns says nothing about it."""
    inner = product_gate(rules)

    def gate(result: LRRTResult, peers: list[float], num_classes: int) -> str | None:
        reason = inner(result, peers, num_classes)
        if reason == "chance_level" and not result.curve.limit_found:
            return None
        return reason
    return gate


def gates(base: GateRules) -> dict[str, Gate]:
    """The candidates compared on the development seeds. ``peers`` is the gate as it was
    (``below_peers`` on, a low score judged on any ramp); ``no_peers`` drops peer rejection;
    the others vary one thing from there; ``chosen`` is the product's gate now."""
    peers = replace(base, peer_rejection=True, chance_needs_limit=False)
    no_peers = replace(peers, peer_rejection=False)
    out: dict[str, Gate] = {"peers": product_gate(peers), "no_peers": product_gate(no_peers),
                            "chosen": product_gate(replace(no_peers, chance_needs_limit=True))}
    for margin in (0.02, 0.05):
        out[f"no_peers_margin_{margin:g}"] = product_gate(replace(no_peers,
                                                                  chance_margin=margin))
    for fall in (0.02, 0.05, 0.1):
        out[f"no_peers_loss_fall_{fall:g}"] = loss_guarded_gate(no_peers, fall)
    for percentile, margin in ((10.0, 0.05), (25.0, 0.05), (10.0, 0.1)):
        out[f"peers_p{percentile:g}_m{margin:g}_loss_fall_0.05"] = loss_guarded_gate(
            replace(peers, percentile=percentile, peer_margin=margin), 0.05)
    for margin in (0.1, 0.05):
        out[f"no_peers_margin_{margin:g}_limit_needed"] = limit_needed_gate(
            replace(no_peers, chance_margin=margin))
    for fraction in (0.1, 0.2, 0.3, 0.5):
        out[f"no_peers_early_{fraction:g}_loss_fall_0.05"] = loss_guarded_gate(
            replace(no_peers, min_usable_fraction=fraction), 0.05)
    return out


def loss_limit_backoff(divisor: float, open_divisor: float = 1.0
                       ) -> Callable[[LRRTCurve], tuple[float, float] | None]:
    """The loss-limit family with another step back from the loss minimum (``loss_limit``
    uses 2) and ``open_divisor`` under the largest tested LR when the ramp found no limit
    (it uses 1)."""
    return backed_off_limit(divisor, open_divisor)


def candidate_rules() -> dict[str, Callable[[LRRTCurve], tuple[float, float] | None]]:
    rules: dict[str, Callable[[LRRTCurve], tuple[float, float] | None]] = {
        name: (lambda c, n=name: apply_rule(n, c)) for name in BOUND_RULES}
    for divisor in (1.0, 2.0, 3.0, 4.0, 6.0, 8.0):
        for open_divisor in (1.0, 2.0, 4.0):
            rules[f"loss_limit_div{divisor:g}_open{open_divisor:g}"] = loss_limit_backoff(
                divisor, open_divisor)
    return rules


def grid_accuracy(oracle: dict[str, float], base_upper: float, upper: float
                  ) -> tuple[float, bool]:
    """Accuracy at ``upper`` read off the oracle grid around ``base_upper``; and whether
    ``upper`` fell outside the grid (then the nearest end is used)."""
    points = sorted((math.log2(float(k)), v) for k, v in oracle.items())
    xs = [p[0] for p in points]
    ys = [p[1] for p in points]
    x = math.log2(upper / base_upper)
    outside = x < xs[0] - 1e-9 or x > xs[-1] + 1e-9
    return float(np.interp(x, xs, ys)), outside


def replay(config_path: Path, run_dirs: list[Path]) -> dict[str, Any]:
    config = load_config(config_path)
    base_rules = config.pruner.gate_rules()
    gate_set = gates(base_rules)
    rules = candidate_rules()
    gate_rows: dict[str, list[tuple[bool, str | None]]] = {name: [] for name in gate_set}
    score_rows: dict[str, list[tuple[float, float]]] = {name: [] for name in SCORES}
    regrets: dict[str, list[float]] = {name: [] for name in rules}
    outside: dict[str, int] = dict.fromkeys(rules, 0)
    at_max: dict[str, list[bool]] = {name: [] for name in rules}
    for run_dir in run_dirs:
        rows = json.loads((run_dir / "rows.json").read_text())
        cache = Cache(run_dir / "cache.jsonl")
        by_design = {(r["seed"], r["design"]): r for r in rows}
        for seed in sorted({r["seed"] for r in rows}):
            peers: dict[str, dict[str, list[float]]] = {name: {} for name in gate_set}
            for trial_config in designs(config, seed):
                key = design_key(trial_config)
                row = by_design.get((seed, key))
                if row is None:
                    continue
                base = row.get("key") or design_base(seed, trial_config)
                result = LRRTResult.from_json(json.dumps(cached_lrrt(cache, base)["result"]))
                margin = config.pruner.chance_margin
                num_classes = round((1.0 - margin) / (row["threshold"] - margin))
                threshold = chance_threshold(num_classes, config.pruner.chance_margin)
                group = lr_range_label(trial_config.lr_range)
                for name, gate in gate_set.items():
                    group_peers = peers[name].setdefault(group, [])
                    reason = gate(result, list(group_peers), num_classes)
                    gate_rows[name].append((row["chance_level"], reason))
                    if result.summary.score >= threshold:
                        group_peers.append(result.summary.score)
                for name, score in SCORES.items():
                    score_rows[name].append((score(result), row["best_val_accuracy"]))
                for name, rule in rules.items():
                    bounds = rule(result.curve)
                    if bounds and result.curve.limit_found:
                        at_max[name].append(bounds[1] >= 0.9 * result.curve.lr_max)
                    if "oracle" not in row or not bounds or not row["bounds"]:
                        continue
                    accuracy, out = grid_accuracy(row["oracle"], row["bounds"][1], bounds[1])
                    regrets[name].append(100.0 * (max(row["oracle"].values()) - accuracy))
                    outside[name] += out
    return {
        "gates": {name: _gate_figures(values) for name, values in gate_rows.items()},
        "scores": {name: spearman([a for a, _ in v], [b for _, b in v])
                   for name, v in score_rows.items()},
        "rules": {name: {"regret_median": statistics.median(v) if v else None,
                         "regret_mean": statistics.fmean(v) if v else None,
                         "designs": len(v), "outside_grid": outside[name],
                         "upper_at_lr_max": sum(at_max[name]),
                         "limit_found": len(at_max[name])}
                  for name, v in regrets.items()},
    }


def _gate_figures(values: list[tuple[bool, str | None]]) -> dict[str, Any]:
    chance = [reason for is_chance, reason in values if is_chance]
    good = [reason for is_chance, reason in values if not is_chance]
    return {"recall": sum(1 for r in chance if r) / len(chance) if chance else None,
            "false_rejection_rate": sum(1 for r in good if r) / len(good) if good else None,
            "chance_level": len(chance), "good": len(good),
            "caught": sum(1 for r in chance if r), "false_rejections": sum(1 for r in good if r)}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, required=True,
                        help="the config the development runs used")
    parser.add_argument("runs", type=Path, nargs="+", help="benchmarks.rejection output dirs")
    parser.add_argument("--out", type=Path, help="write the figures here as JSON")
    args = parser.parse_args(argv)
    figures = replay(args.config, args.runs)
    text = json.dumps(figures, indent=1)
    if args.out:
        args.out.write_text(text)
    print(text)
    return figures


if __name__ == "__main__":
    main()

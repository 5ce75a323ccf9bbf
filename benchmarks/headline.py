"""The fair contest's headline (issue 20), pooled from its runs into one small summary that
BENCHMARKS.md cites and git keeps (the runs themselves are regenerable and stay out of it).

    python -m benchmarks.headline --rejection DIR [DIR ...] --replay DIR
        [--live DIR ...] --out benchmarks/results/contest

``--rejection``: ``python -m benchmarks.rejection`` outputs (one per data seed, or one for
all), pooled into one summary by the same figures (``benchmarks.rejection.figures``).
``--replay``: the replay benchmark's output. ``--live``: the live strategies' outputs (one per
data seed), each with its agreement with the replay. Writes ``OUT/headline.json`` and
``OUT/headline.md``: every goal of the issue with its figure, interval and verdict.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from benchmarks.rejection.figures import summarise

GATE_RECALL, GATE_FALSE = 0.90, 0.05
SPEARMAN_SHARE = 0.9
INTERIOR = 0.9
SEARCH_RATIO = 0.5


def pooled_rejection(folders: list[Path]) -> dict[str, Any]:
    rows, seeds, parts = [], [], []
    for folder in folders:
        summary = json.loads((folder / "summary.json").read_text())
        rows += json.loads((folder / "rows.json").read_text())
        seeds += [s for s in summary["seeds"] if s not in seeds]
        parts += [p for p in summary["configs"] if p not in parts]
    pooled = summarise(rows, seeds=seeds, parts=parts)
    pooled["commands"] = [json.loads((f / "summary.json").read_text())["command"]
                          for f in folders]
    return pooled


def goals(rejection: dict[str, Any], replay: dict[str, Any]) -> list[dict[str, Any]]:
    """Each goal of the issue: its figure(s) and whether it is met (None: undecided)."""
    varied = rejection["families"]["varied"]
    out = [
        {"goal": f"gate recall >= {GATE_RECALL:.0%} under majority labels",
         "figure": rejection["recall"], "interval": rejection["intervals"]["recall"],
         "met": None if rejection["recall"] is None else rejection["recall"] >= GATE_RECALL},
        {"goal": f"false rejections <= {GATE_FALSE:.0%}",
         "figure": rejection["false_rejection_rate"],
         "interval": rejection["intervals"]["false_rejection_rate"],
         "met": None if rejection["false_rejection_rate"] is None
         else rejection["false_rejection_rate"] <= GATE_FALSE},
        {"goal": "better than the trivial rule on the families whose outcome varies "
                 "(recall minus false rejections)",
         "figure": {"gate": varied["gate_youden"], "trivial": varied["trivial_youden"]},
         "met": varied["gate_beats_trivial"]},
        {"goal": f"best oracle multiplier interior for >= {INTERIOR:.0%} of designs",
         "figure": rejection["oracle_interior_fraction"],
         "met": None if rejection["oracle_interior_fraction"] is None
         else rejection["oracle_interior_fraction"] >= INTERIOR},
        {"goal": "median bound regret no larger than the replicate noise floor",
         "figure": {"regret": rejection["bound_regret_median"],
                    "noise_floor": rejection["regret_noise_floor"]},
         "met": None if rejection["bound_regret_median"] is None
         else rejection["bound_regret_median"] <= rejection["regret_noise_floor"]},
        {"goal": f"range-test Spearman >= {SPEARMAN_SHARE} of its noise ceiling",
         "figure": rejection["spearman_ceiling_fraction"],
         "met": None if rejection["spearman_ceiling_fraction"] is None
         else rejection["spearman_ceiling_fraction"] >= SPEARMAN_SHARE},
        {"goal": "range-test Spearman above fair screening at equal cost",
         "figure": {"range_test": rejection["spearman"],
                    "screening": rejection["spearman_screening_fair"]},
         "met": None if None in (rejection["spearman"], rejection["spearman_screening_fair"])
         else rejection["spearman"] > rejection["spearman_screening_fair"]},
    ]
    for target, entry in replay.get("headline", {}).items():
        found = entry.get("ours")
        if found is None:
            continue
        out.append({
            "goal": f"search: ours reaches {target} with <= {SEARCH_RATIO}x the budget of the "
                    "best fair baseline (median over seeds, 90 % interval)",
            "figure": found,
            "met": None if found["high"] is None and not found.get("unbounded_above")
            else (found["high"] is not None and found["high"] <= SEARCH_RATIO)})
    return out


def markdown(headline: dict[str, Any]) -> str:
    lines = ["# The fair contest: headline", "", "| goal | figure | met |", "|---|---|---|"]
    for goal in headline["goals"]:
        met = {True: "yes", False: "no", None: "undecided"}[goal["met"]]
        lines.append(f"| {goal['goal']} | `{json.dumps(goal['figure'])}` | {met} |")
    lines += ["", "Commands:", "", *[f"    {c}" for c in headline["commands"]]]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rejection", type=Path, nargs="+", required=True)
    parser.add_argument("--replay", type=Path, required=True)
    parser.add_argument("--live", type=Path, nargs="*", default=[])
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    rejection = pooled_rejection(args.rejection)
    replay = json.loads((args.replay / "summary.json").read_text())
    live = [json.loads((folder / "summary.json").read_text()) for folder in args.live]
    curveless = {k: {kk: vv for kk, vv in v.items() if "curve" not in kk}
                 for k, v in replay["strategies"].items()}
    headline = {
        "goals": goals(rejection, replay),
        "rejection": {k: v for k, v in rejection.items() if k not in ("per_seed",)},
        "rejection_per_seed": rejection["per_seed"],
        "replay": {**{k: v for k, v in replay.items() if k != "strategies"},
                   "strategies": curveless},
        "live": [{"data_seed": s["data_seeds"], "agreement": s["agreement"],
                  "command": s["command"]} for s in live],
        "commands": [*rejection["commands"], replay["command"], *[s["command"] for s in live]],
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "headline.json").write_text(json.dumps(headline, indent=1))
    (args.out / "headline.md").write_text(markdown(headline))
    return headline


if __name__ == "__main__":
    main()

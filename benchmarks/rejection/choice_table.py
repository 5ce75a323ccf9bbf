"""The development choice as one table (``benchmarks/results/contest-dev/choice.md``).

    python -m benchmarks.rejection.choice_table CHOICE.json [CHOICE.json ...] --out FILE

Reads the ``benchmarks.rejection.choose`` outputs (one per development seed) and writes, per
ramp variant and bound rule, each seed's figures side by side.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

HEADER = """# The method chosen on development seeds (make bench-choose)

Per seed: every (design, LR range) pair of the contest grid and its extremes (its designs
over ranges far under and over its own: `extremes_of`), each trained at the bounds the
variant reads. Gate and trivial rule: recall / false rejections against the pairs that end
at chance at those bounds (their count in brackets). Regret: median points below the best
LR of the (widened) grid; log2 mult.: median log2 of that best LR over the chosen upper
bound (0: unbiased; above 0: bounds low); cost: median share of the trial's batches.
"""


def _rates(rates: dict[str, Any]) -> str:
    return (f"{rates['recall']:.2f} / {rates['false_rejection_rate']:.3f} "
            f"({rates['chance_level']})")


def table(choices: list[dict[str, Any]]) -> str:
    seeds = [next(iter(choice)) for choice in choices]
    per_seed = [choice[seed] for choice, seed in zip(choices, seeds, strict=True)]
    lines = [HEADER, f"Development seeds: {', '.join(seeds)} (figures in that order).\n",
             "| ramp | bounds | gate | trivial rule | regret (pt) | log2 mult. | Spearman "
             "| cost |", "|---|---|---|---|---|---|---|---|"]
    for key in per_seed[0]:
        ramp, rule = key.split("|")
        rows = [seed[key] for seed in per_seed]

        def both(read: Any, rows: list[dict[str, Any]] = rows) -> str:
            return "; ".join(read(row) for row in rows)

        def number(name: str, digits: int, rows: list[dict[str, Any]] = rows) -> str:
            return "; ".join(f"{row[name]:.{digits}f}" for row in rows)

        lines.append(
            f"| {ramp} | {rule} | {both(lambda r: _rates(r['gate']))} "
            f"| {both(lambda r: _rates(r['trivial']))} "
            f"| {number('regret_median', 2)} | {number('log2_multiplier_median', 2)} "
            f"| {number('spearman', 2)} | {number('cost_median', 3)} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("choices", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    choices = [json.loads(path.read_text()) for path in args.choices]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(table(choices))


if __name__ == "__main__":
    main()

"""The development choice's table: one row per variant, each seed's figures in order."""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks.rejection.choice_table import main


def _variant(recall: float, regret: float) -> dict:
    rates = {"recall": recall, "false_rejection_rate": 0.05, "chance_level": 4}
    return {"gate": rates, "trivial": {**rates, "recall": 0.5}, "spearman": 0.7,
            "regret_median": regret, "log2_multiplier_median": 0.25, "cost_median": 0.06}


def test_each_variant_is_a_row_with_both_seeds(tmp_path: Path) -> None:
    paths = []
    for seed, recall in (("0", 1.0), ("1", 0.75)):
        path = tmp_path / f"choice-{seed}.json"
        path.write_text(json.dumps({seed: {"share6-ext2|sustained_limit": _variant(recall, 0.5),
                                           "share6-ext0|loss_limit": _variant(0.5, 2.0)}}))
        paths.append(str(path))
    main([*paths, "--out", str(tmp_path / "choice.md")])
    rows = [line for line in (tmp_path / "choice.md").read_text().splitlines()
            if line.startswith("| share")]
    assert len(rows) == 2
    cells = [cell.strip() for cell in rows[0].strip("|").split("|")]
    assert cells[:3] == ["share6-ext2", "sustained_limit",
                         "1.00 / 0.050 (4); 0.75 / 0.050 (4)"]
    assert cells[4] == "0.50; 0.50" and cells[7] == "0.060; 0.060"

"""``cnnsearch export``: the best completed trials as self-contained retraining recipes."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import optuna
import yaml
from optuna.trial import TrialState

from search.errors import UserError
from search.method.trial_config import TrialConfig
from search.record import read_trials

EXPORT_FORMAT = "cnnsearch-export/1"


def export_best(study: optuna.study.Study, top: int) -> dict[str, Any]:
    complete = [record for record in read_trials(study, (TrialState.COMPLETE,))
                if record.trial_config and record.lr_bounds is not None]
    if not complete:
        raise UserError(f"study '{study.study_name}' has no completed trial to export")
    best = sorted(complete, key=lambda r: (-(r.value or 0.0), r.number))[:top]
    return {
        "format": EXPORT_FORMAT,
        "study": study.study_name,
        "exported_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "configs": [
            {
                "rank": rank,
                "trial": record.number,
                "name": record.config_name,
                "score": record.value,
                "lr_bounds": list(record.lr_bounds or ()),
                "n_params": record.n_params,
                "config": dict(record.trial_config),
            }
            for rank, record in enumerate(best, start=1)
        ],
    }


def dump_export(document: dict[str, Any], fmt: str) -> str:
    if fmt == "json":
        return json.dumps(document, indent=2) + "\n"
    return yaml.safe_dump(document, sort_keys=False)


def load_export(path: str | Path, rank: int) -> tuple[TrialConfig, tuple[float, float], dict]:
    """Read one ranked entry of an export; anything else is a one-line ``UserError``."""
    path = Path(path)
    try:
        document = yaml.safe_load(path.read_text())  # JSON is YAML too
    except OSError as error:
        raise UserError(f"cannot read {path}: {error.strerror or error}") from None
    except yaml.YAMLError:
        raise UserError(f"{path} is not a cnnsearch export (not YAML or JSON)") from None
    if not isinstance(document, dict) or document.get("format") != EXPORT_FORMAT:
        raise UserError(f"{path} is not a cnnsearch export (expected format: {EXPORT_FORMAT}; "
                        "make one with `cnnsearch export`)")
    entries = {entry.get("rank"): entry for entry in document.get("configs") or []}
    if rank not in entries:
        raise UserError(f"{path} has no rank {rank} (ranks: "
                        f"{', '.join(str(r) for r in sorted(entries)) or 'none'})")
    entry = entries[rank]
    try:
        config = TrialConfig.from_dict(entry["config"])
        low, high = (float(v) for v in entry["lr_bounds"])
    except (KeyError, TypeError, ValueError) as error:
        raise UserError(f"{path}: rank {rank} is incomplete or malformed ({error})") from None
    return config, (low, high), entry

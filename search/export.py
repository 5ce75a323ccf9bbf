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
from search.trial_config import TrialConfig

EXPORT_FORMAT = "cnnsearch-export/1"


def export_best(study: optuna.study.Study, top: int) -> dict[str, Any]:
    complete = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
                if "trial_config" in t.user_attrs and "lr_bounds" in t.user_attrs]
    if not complete:
        raise UserError(f"study '{study.study_name}' has no completed trial to export")
    best = sorted(complete, key=lambda t: (-(t.value or 0.0), t.number))[:top]
    return {
        "format": EXPORT_FORMAT,
        "study": study.study_name,
        "exported_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "configs": [
            {
                "rank": rank,
                "trial": trial.number,
                "name": trial.user_attrs.get("config_name"),
                "score": trial.value,
                "lr_bounds": list(trial.user_attrs["lr_bounds"]),
                "n_params": trial.user_attrs.get("n_params"),
                "config": trial.user_attrs["trial_config"],
            }
            for rank, trial in enumerate(best, start=1)
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

"""``cnnsearch export``: the best completed trials as self-contained retraining recipes, each
design once (its best trial: a design trained by more than one trial, with other run seeds,
or repeated, is one entry); ``--pareto``, the Pareto front of a multi-objective study, each
design once too.

An export is read back (``cnnsearch train --from``) by the config's reader and checkers: the
same size, nesting, alias and duplicate-key limits (``search.config.documents``), each
entry's ``config`` through ``TrialConfig.from_dict``, and ``lr_bounds`` as an LR pair
(finite, 0 < low < high <= 10). A hand-edited file that a search could not have written is a
one-line ``UserError`` naming the rank and the key.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import optuna
import yaml
from optuna.trial import TrialState

from models import ArchitectureError
from search.config import short_repr
from search.config.checkers import MAX_DESIGNS
from search.config.documents import (
    EXPORT_MAX_BYTES,
    EXPORT_MAX_NODES,
    load_yaml,
    read_text,
    yaml_problem,
)
from search.config.settings import SpaceSettings, check_one
from search.config.shapes import check_translate, known_input_shape
from search.errors import UserError
from search.method.trial_config import TrialConfig
from search.record import TrialRecord, pareto_front, read_trials, trusted

EXPORT_FORMAT = "cnnsearch-export/1"
MAX_TOP = MAX_DESIGNS
"""Most designs one export holds, so that ``train --from`` can always read it back."""


def export_best(study: optuna.study.Study, top: int) -> dict[str, Any]:
    """The ``top`` best designs, best first: ``top`` different designs where the study has
    them, each its best trial (the first of equals)."""
    if not 1 <= top <= MAX_TOP:
        raise UserError(f"--top must be between 1 and {MAX_TOP}, got {top}")
    complete = [record for record in trusted(read_trials(study, (TrialState.COMPLETE,)))
                if record.trial_config and record.lr_bounds is not None]
    if not complete:
        raise UserError(f"study '{study.study_name}' has no completed trial to export")
    best = _each_design_once(sorted(complete, key=lambda r: (-(r.value or 0.0), r.number)))
    return _document(study, [_entry_of(rank, record) for rank, record in
                             enumerate(best[:top], start=1)])


def export_pareto(study: optuna.study.Study) -> dict[str, Any]:
    """The Pareto front of a multi-objective study, best validation accuracy first; a
    design found by more than one trial (the same config, another run seed) once, its
    first trial's. Each entry also holds its ``objectives``, by name."""
    if len(study.directions) < 2:
        raise UserError(f"study '{study.study_name}' has a single objective: it has no Pareto "
                        "front (export its best trials with --top)")
    names = study.metric_names or [f"objective_{i}" for i in range(len(study.directions))]
    front = sorted(pareto_front(trusted(read_trials(study, (TrialState.COMPLETE,))),
                                study.directions),
                   key=lambda r: (-(r.value or 0.0), r.number))
    designs = _each_design_once([record for record in front
                                 if record.trial_config and record.lr_bounds is not None])
    if not designs:
        raise UserError(f"study '{study.study_name}' has no completed trial to export")
    entries = []
    for rank, record in enumerate(designs, start=1):
        entry = _entry_of(rank, record)
        entry["objectives"] = dict(zip(names, record.values, strict=False))
        entries.append(entry)
    return _document(study, entries)


def untrusted_trials(study: optuna.study.Study) -> list[int]:
    """The COMPLETE trials an export leaves out: their values were not recorded by
    cnnsearch (``TrialRecord.untrusted``: told from outside, e.g. the dashboard)."""
    return [record.number for record in read_trials(study, (TrialState.COMPLETE,))
            if record.untrusted]


def _each_design_once(records: list[TrialRecord]) -> list[TrialRecord]:
    """``records`` in their order, less those whose design (``TrialRecord.design_key``: the
    recipe but the run seed) an earlier one has."""
    designs: dict[str, TrialRecord] = {}
    for record in records:
        designs.setdefault(record.design_key, record)
    return list(designs.values())


def _entry_of(rank: int, record: TrialRecord) -> dict[str, Any]:
    return {
        "rank": rank,
        "trial": record.number,
        "name": record.config_name,
        "score": record.value,
        "lr_bounds": list(record.lr_bounds or ()),
        "n_params": record.n_params,
        "config": dict(record.trial_config),
    }


def _document(study: optuna.study.Study, entries: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "format": EXPORT_FORMAT,
        "study": study.study_name,
        "exported_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "configs": entries,
    }


class _NoAliasDumper(yaml.SafeDumper):
    """Writes a value shared by two entries twice rather than as an anchor and alias: an
    export is meant to be read and edited by people."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def dump_export(document: dict[str, Any], fmt: str) -> str:
    if fmt == "json":
        return json.dumps(document, indent=2) + "\n"
    return yaml.dump(document, Dumper=_NoAliasDumper, sort_keys=False)


def load_export(path: str | Path, rank: int) -> tuple[TrialConfig, tuple[float, float], dict]:
    """Read one ranked entry of an export; anything else is a one-line ``UserError``. The
    entry comes back with the export's ``study`` and ``exported_at`` added (where it has
    none of its own), so a trained model can say where its design came from."""
    path = Path(path)
    text = read_text(path, "export", EXPORT_MAX_BYTES)
    try:
        document = load_yaml(text, max_nodes=EXPORT_MAX_NODES)  # JSON is YAML too
    except yaml.YAMLError as error:
        raise UserError(f"{path} is not a cnnsearch export (not YAML or JSON"
                        f"{yaml_problem(error)})") from None
    except RecursionError:
        raise UserError(f"{path} is not a cnnsearch export (nested too deeply)") from None
    if not isinstance(document, dict) or document.get("format") != EXPORT_FORMAT:
        raise UserError(f"{path} is not a cnnsearch export (expected format: {EXPORT_FORMAT}; "
                        "make one with `cnnsearch export`)")
    entry = _entry(path, document.get("configs"), rank)
    where = f"{path}: rank {rank}"
    for name in ("config", "lr_bounds"):
        if name not in entry:
            raise UserError(f"{where}: key '{name}' is required")
    try:
        config = TrialConfig.from_dict(entry["config"])
        low, high = check_one(SpaceSettings, "lr_range", "lr_bounds", entry["lr_bounds"])
        _check_shape(config)
    except UserError as error:
        raise UserError(f"{where}: {error}") from None
    entry = dict(entry)
    for key in ("study", "exported_at"):
        if isinstance(document.get(key), str):
            entry.setdefault(key, document[key])
    return config, (low, high), entry


def _check_shape(config: TrialConfig) -> None:
    """The design fits its dataset's images and its translation is narrower than them, when
    their shape is known before reading them (a folder's is checked once it is loaded)."""
    shape = known_input_shape(config.dataset)
    if shape is None:
        return
    check_translate(config.translate, shape, "translate")
    try:
        config.architecture.check_fits(shape)
    except ArchitectureError as error:
        raise UserError(f"config key 'architecture': {error}") from None


def _entry(path: Path, configs: Any, rank: int) -> dict[str, Any]:
    """The entry of ``rank`` in the export's ``configs`` list."""
    if not isinstance(configs, list) or not all(isinstance(e, dict) for e in configs):
        raise UserError(f"{path}: 'configs' must be a list of entries (mappings), got "
                        f"{short_repr(configs)}")
    ranks = [entry.get("rank") for entry in configs]
    for value in ranks:
        if isinstance(value, bool) or not isinstance(value, int):
            raise UserError(f"{path}: every entry needs an integer 'rank', got "
                            f"{short_repr(value)}")
    if ranks.count(rank) > 1:
        raise UserError(f"{path} has rank {rank} {ranks.count(rank)} times")
    if rank not in ranks:
        known = sorted(set(ranks))
        shown = ", ".join(str(r) for r in known[:20]) + (", ..." if len(known) > 20 else "")
        raise UserError(f"{path} has no rank {rank} (ranks: {shown or 'none'})")
    return configs[ranks.index(rank)]

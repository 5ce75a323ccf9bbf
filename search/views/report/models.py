"""The report's "Retrained models" section: the model folders ``cnnsearch train`` wrote for
this study's designs, found in the folders given with ``cnnsearch report --models DIR``, each
with its test accuracy and a link to its model card.

``train`` reads an export file, not the study, so it cannot mark the study; its
``model.json`` records the study and trial instead, and the report matches on them. A folder
is a model folder (``model.json`` in it) or a folder of them (one level down). Links are
relative to the report, so a report and its model folders can move together.
"""

from __future__ import annotations

import html
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from search.errors import UserError
from search.trained.card_data import CARD_HTML, CARD_JSON
from search.trained.manifest import MANIFEST_NAME, read_manifest


@dataclass(frozen=True)
class RetrainedModel:
    folder: Path
    name: str
    trial: int | None
    epochs: int | None
    repeats: int | None
    card: dict[str, Any] | None
    """``model_card.json``, when it is there."""


@dataclass(frozen=True)
class FoundModels:
    models: list[RetrainedModel]
    skipped: list[str]
    """One line per folder left out: damaged, or of another study."""


def _candidates(folder: Path) -> list[Path]:
    if (folder / MANIFEST_NAME).is_file():
        return [folder]
    return sorted(p for p in folder.iterdir() if (p / MANIFEST_NAME).is_file())


def find_models(folders: list[str], study_name: str) -> FoundModels:
    """The model folders under ``folders`` whose design came from ``study_name``."""
    models, skipped = [], []
    for text in folders:
        folder = Path(text)
        if not folder.is_dir():
            raise UserError(f"--models {folder} does not exist or is not a folder")
        candidates = _candidates(folder)
        if not candidates:
            skipped.append(f"{folder}: no model folder ({MANIFEST_NAME}) in it")
        for candidate in candidates:
            try:
                manifest = read_manifest(candidate)
            except UserError as error:
                skipped.append(str(error))
                continue
            study = manifest.provenance.get("study")
            if study != study_name:
                skipped.append(f"{candidate}: a design of study {study!r}")
                continue
            card = None
            try:
                card = json.loads((candidate / CARD_JSON).read_text(encoding="utf-8"))
            except (OSError, ValueError):
                pass
            trial = manifest.provenance.get("trial")
            models.append(RetrainedModel(
                candidate, manifest.name, trial if isinstance(trial, int) else None,
                manifest.provenance.get("epochs"), manifest.provenance.get("repeats"),
                card if isinstance(card, dict) else None))
    models.sort(key=lambda m: (m.trial is None, m.trial or 0, str(m.folder)))
    return FoundModels(models, skipped)


def models_section(found: FoundModels, report_path: Path) -> str:
    parts = ['<section id="models"><h2>Retrained models</h2><p class="note">Designs of '
             "this study trained again by cnnsearch train (found with --models), with the "
             "test accuracy of the model run and a link to its model card (its training "
             "curves, per-class accuracy, confusion matrix and confident mistakes).</p>"]
    rows = []
    for model in found.models:
        card = model.card or {}
        accuracy = card.get("accuracy")
        interval = card.get("interval") or {}
        shown = "-" if accuracy is None else (
            f"{accuracy:.4f} [{interval.get('low', 0):.4f}, {interval.get('high', 1):.4f}]")
        target = model.folder / CARD_HTML
        link = "-"
        if target.is_file():
            href = Path(os.path.relpath(target.resolve(), report_path.resolve().parent))
            link = (f'<a class="model-card" href="{html.escape(href.as_posix(), quote=True)}">'
                    "model card</a>")
        rows.append(
            f'<tr data-trial="{"" if model.trial is None else model.trial}">'
            f'<td class="num">{"-" if model.trial is None else model.trial}</td>'
            f"<td>{html.escape(model.name)}</td>"
            f'<td class="num">{model.epochs if model.epochs is not None else "-"}</td>'
            f'<td class="num">{model.repeats if model.repeats is not None else "-"}</td>'
            f"<td>{html.escape(card.get('evaluated_on', '-'))}</td>"
            f'<td class="num">{shown}</td><td>{link}</td>'
            f"<td>{html.escape(str(model.folder))}</td></tr>")
    if rows:
        head = "".join(f"<th>{name}</th>" for name in (
            "trial", "config", "epochs", "repeats", "evaluated on",
            "accuracy [95 % Wilson interval]", "card", "folder"))
        parts.append(f'<div class="table-wrap"><table class="results models"><thead><tr>'
                     f"{head}</tr></thead><tbody>{''.join(rows)}</tbody></table></div>")
    else:
        parts.append('<p class="note">No model folder of this study was found.</p>')
    if found.skipped:
        parts.append('<p class="note">Left out: ' + html.escape("; ".join(found.skipped[:10]))
                     + (" ..." if len(found.skipped) > 10 else "") + "</p>")
    parts.append("</section>")
    return "\n".join(parts)

"""``model.json``: everything ``predict`` and ``package`` need besides the weights, written by
``train`` into its ``--out`` folder: the design (a ``TrialConfig``), the class names, the
input shape and preprocessing, where the design came from (study, trial, LR bounds, seeds),
one entry per repeat (its safetensors file and SHA-256, its accuracies), which run is the
model (the median one) and the portable files made from it.

The run used by default is the median of the repeats by final validation accuracy (the lower
of the two middle ones for an even count, ties to the lower seed): the test split never
selects anything, so the selected run's test accuracy stays an unbiased figure.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from models import CNN, build_cnn
from search.config.documents import read_text
from search.errors import UserError
from search.method.normalisation import standardise_inputs
from search.method.trial_config import TrialConfig
from search.trained.preprocessing import Preprocessing
from search.trained.weights import load_weights

MODEL_FORMAT = "cnnsearch-model/1"
MANIFEST_NAME = "model.json"
MANIFEST_MAX_BYTES = 16 * 2**20
_UNSAFE = re.compile(r'[/\\:*?"<>|\x00-\x1f]')


@dataclass(frozen=True)
class Run:
    """One repeat of ``train``: its seed, weights file (in the model folder) and figures."""

    seed: int
    weights: str
    sha256: str
    final_val_accuracy: float
    test_accuracy: float | None

    def to_dict(self) -> dict[str, Any]:
        return {"seed": self.seed, "weights": self.weights, "sha256": self.sha256,
                "final_val_accuracy": self.final_val_accuracy,
                "test_accuracy": self.test_accuracy}


def median_run(runs: list[Run]) -> Run:
    """The median run by final validation accuracy (module docstring)."""
    ordered = sorted(runs, key=lambda run: (run.final_val_accuracy, run.seed))
    return ordered[(len(ordered) - 1) // 2]


def folder_name(class_name: str, index: int) -> str:
    """A class name usable as a folder name (``T-shirt/top`` -> ``T-shirt_top``), for
    labelled folders of images: ``predict --folder`` accepts either spelling."""
    name = _UNSAFE.sub("_", class_name).strip().lstrip(".")
    return name or f"class{index}"


def folder_names(classes: tuple[str, ...]) -> tuple[str, ...]:
    """``folder_name`` of every class, made unique (a clash gets ``-<index>``)."""
    names: list[str] = []
    for index, name in enumerate(classes):
        safe = folder_name(name, index)
        names.append(safe if safe not in names else f"{safe}-{index}")
    return tuple(names)


@dataclass(frozen=True)
class Manifest:
    folder: Path
    name: str
    dataset: str
    split: str
    classes: tuple[str, ...]
    preprocessing: Preprocessing
    batch_size: int
    """The training's ``eval_batch_size``: predictions are batched as its evaluation was."""
    design: TrialConfig
    provenance: dict[str, Any]
    runs: tuple[Run, ...]
    selected_seed: int
    portable: tuple[dict[str, Any], ...] = ()
    """Portable files made from the runs: ``{"format", "file", "json", "seed", ...}``."""

    @property
    def class_folders(self) -> tuple[str, ...]:
        return folder_names(self.classes)

    def run(self, seed: int | None = None) -> Run:
        """The run of ``seed``, by default the selected (median) one."""
        wanted = self.selected_seed if seed is None else seed
        for run in self.runs:
            if run.seed == wanted:
                return run
        seeds = ", ".join(str(run.seed) for run in self.runs)
        raise UserError(f"{self.folder} has no run with seed {wanted} (its runs: seeds {seeds})")

    def portable_file(self, fmt: str, seed: int) -> dict[str, Any] | None:
        return next((entry for entry in self.portable
                     if entry.get("format") == fmt and entry.get("seed") == seed), None)

    def describe(self) -> str:
        """``B2FL4Adam for 1x28x28 inputs and 10 classes``, for messages."""
        return (f"{self.name} for {'x'.join(map(str, self.preprocessing.input_shape))} "
                f"inputs and {len(self.classes)} classes")

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": MODEL_FORMAT,
            "name": self.name,
            "dataset": self.dataset,
            "split": self.split,
            "classes": list(self.classes),
            "class_folders": list(self.class_folders),
            "input_shape": list(self.preprocessing.input_shape),
            "preprocessing": self.preprocessing.to_dict(),
            "batch_size": self.batch_size,
            "design": self.design.to_dict(),
            "provenance": self.provenance,
            "runs": [run.to_dict() for run in self.runs],
            "selected_seed": self.selected_seed,
            "selected_by": "median final validation accuracy of the runs",
            "portable": list(self.portable),
        }

    def write(self) -> Path:
        """``model.json`` in the folder, replaced whole (never left half written)."""
        path = self.folder / MANIFEST_NAME
        partial = path.with_name(path.name + ".partial")
        partial.write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")
        partial.replace(path)
        return path

    def with_portable(self, entry: dict[str, Any]) -> Manifest:
        """The manifest with ``entry`` in place of any of the same format and seed."""
        kept = tuple(e for e in self.portable
                     if (e.get("format"), e.get("seed")) != (entry["format"], entry["seed"]))
        return replace(self, portable=(*kept, entry))


def read_manifest(folder: str | Path) -> Manifest:
    """The manifest of a ``train --out`` folder; a missing folder, a folder of an older
    ``train`` (``.pt`` state dicts, no ``model.json``) or a damaged manifest is a one-line
    ``UserError`` that says what to do."""
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"model folder {folder} does not exist or is not a folder (give the "
                        "--out folder of cnnsearch train)")
    path = folder / MANIFEST_NAME
    if not path.is_file():
        old = sorted(folder.glob("*-seed*.pt"))
        if old:
            raise UserError(f"{folder} was written by an older cnnsearch train ({old[0].name}: "
                            "a PyTorch state dict, and no model.json): train the design again "
                            "with this version (cnnsearch train --from EXPORT --out "
                            f"{folder}) to use it here")
        raise UserError(f"{folder} holds no {MANIFEST_NAME}: not a model folder of cnnsearch "
                        "train (give its --out folder)")
    text = read_text(path, "model manifest", MANIFEST_MAX_BYTES)
    try:
        values = json.loads(text)
    except json.JSONDecodeError as error:
        raise UserError(f"{path} is not valid JSON (line {error.lineno}, column "
                        f"{error.colno}: {error.msg})") from None
    except RecursionError:
        raise UserError(f"{path} is not valid JSON (nested too deeply)") from None
    if not isinstance(values, dict) or values.get("format") != MODEL_FORMAT:
        raise UserError(f"{path} is not a cnnsearch model manifest (expected format: "
                        f"{MODEL_FORMAT})")
    return _manifest(folder, path, values)


def _manifest(folder: Path, path: Path, values: dict[str, Any]) -> Manifest:
    where = str(path)
    try:
        classes = tuple(values["classes"])
        runs = tuple(Run(int(r["seed"]), str(r["weights"]), str(r["sha256"]),
                         float(r["final_val_accuracy"]),
                         None if r.get("test_accuracy") is None else float(r["test_accuracy"]))
                     for r in values["runs"])
        selected = int(values["selected_seed"])
        batch_size = int(values["batch_size"])
        name, dataset, split = (str(values[key]) for key in ("name", "dataset", "split"))
        provenance = dict(values.get("provenance") or {})
        portable = tuple(dict(entry) for entry in values.get("portable") or ())
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise UserError(f"{where} is damaged: {type(error).__name__} {error} (expected what "
                        "cnnsearch train writes)") from None
    if not all(isinstance(c, str) for c in classes) or len(classes) < 2:
        raise UserError(f"{where}: 'classes' must list at least 2 class names")
    if not runs or batch_size < 1:
        raise UserError(f"{where}: 'runs' is empty or 'batch_size' is not positive")
    for run in runs:
        if Path(run.weights).name != run.weights:
            raise UserError(f"{where}: weights file {run.weights!r} must be a file name in "
                            "the model folder")
    preprocessing = Preprocessing.from_dict(values.get("preprocessing"), where)
    if list(preprocessing.input_shape) != list(values.get("input_shape") or []):
        raise UserError(f"{where}: 'input_shape' {values.get('input_shape')} differs from the "
                        f"preprocessing's {list(preprocessing.input_shape)}")
    try:
        design = TrialConfig.from_dict(values.get("design"))
    except UserError as error:
        raise UserError(f"{where}: design: {error}") from None
    manifest = Manifest(folder, name, dataset, split, classes, preprocessing, batch_size,
                        design, provenance, runs, selected, portable)
    manifest.run()  # the selected seed is one of the runs
    return manifest


def build_model(manifest: Manifest, seed: int | None = None) -> tuple[Run, CNN]:
    """The network of run ``seed`` (default: the selected one) with its weights, on the CPU,
    in eval mode. A design that cannot be built for the recorded input shape, or weights
    that do not fit it, is a one-line ``UserError``."""
    from models import ArchitectureError

    run = manifest.run(seed)
    architecture = manifest.design.architecture
    if architecture.family == "pretrained":  # the saved weights replace ImageNet's
        architecture = replace(architecture, weights="none")
    try:
        model = build_cnn(architecture, manifest.preprocessing.input_shape,
                          len(manifest.classes), seed=0)
    except ArchitectureError as error:
        raise UserError(f"{manifest.folder}: the design {manifest.name} cannot be built for "
                        f"{'x'.join(map(str, manifest.preprocessing.input_shape))} inputs: "
                        f"{error}") from None
    if manifest.design.normalise:
        import torch

        channels = manifest.preprocessing.channels
        standardise_inputs(model, torch.zeros(channels), torch.ones(channels))
    load_weights(model, manifest.folder / run.weights, run.sha256, manifest.describe())
    return run, model.eval()

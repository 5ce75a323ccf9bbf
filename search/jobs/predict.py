"""``cnnsearch predict``: a trained model (``train --out``) on new images, batched.

Images go through the training's preprocessing (``search.trained.preprocessing``) and are
batched as the training evaluated (its ``eval_batch_size``, in order, in eval mode), so an
image of the test split saved as a PNG gets the prediction the training's test figure
counted. With ``--folder``, sub-folders named after the model's classes (the class name,
or its folder-safe spelling: ``T-shirt_top`` for ``T-shirt/top``) make a labelled folder:
each image's true class is its folder's, and the accuracy over them is reported.

``runtime="onnx"`` runs the model's ONNX file with onnxruntime instead of torch (on the
CPU): the same preprocessing, another engine, logits equal within ``portable.TOLERANCE``.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from data.imagefolder import image_files, parallel_map
from search.errors import UserError
from search.trained.inference import logits_of, probabilities
from search.trained.manifest import Manifest, build_model
from search.trained.portable import open_onnx

RUNTIMES = ("torch", "onnx")
FORMATS = ("table", "json", "csv")
CHUNK_BATCHES = 8
"""Images are decoded this many batches at a time: a folder of any size in bounded memory."""


@dataclass(frozen=True)
class ImageFile:
    path: Path
    label: int | None
    """The true class (a labelled folder's sub-folder); None when unknown."""


@dataclass(frozen=True)
class Prediction:
    image: ImageFile
    top: list[tuple[int, float]]
    """(class index, probability), most probable first."""

    @property
    def correct(self) -> bool | None:
        return None if self.image.label is None else self.top[0][0] == self.image.label


@dataclass(frozen=True)
class Predictions:
    manifest: Manifest
    seed: int
    runtime: str
    items: list[Prediction]

    @property
    def labelled(self) -> int:
        return sum(p.image.label is not None for p in self.items)

    @property
    def correct(self) -> int:
        return sum(bool(p.correct) for p in self.items)

    @property
    def accuracy(self) -> float | None:
        return self.correct / self.labelled if self.labelled else None


def image_list(paths: list[str]) -> list[ImageFile]:
    """Images named on the command line (no labels); a missing path or a folder is a
    one-line ``UserError``."""
    images = []
    for text in paths:
        path = Path(text)
        if path.is_dir():
            raise UserError(f"{path} is a folder: give it with --folder")
        if not path.is_file():
            raise UserError(f"image {path} does not exist")
        images.append(ImageFile(path, None))
    return images


def folder_images(folder: str | Path, manifest: Manifest) -> list[ImageFile]:
    """Every image under ``folder``, labelled when its sub-folders are the model's classes
    (module docstring); sorted by path."""
    root = Path(folder)
    if not root.is_dir():
        raise UserError(f"--folder {root} does not exist or is not a folder")
    index = {name: i for i, name in enumerate(manifest.classes)}
    index.update({name: i for i, name in enumerate(manifest.class_folders)})
    subfolders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    known = [p for p in subfolders if p.name in index]
    if not known:  # no class folders: every image, unlabelled
        images = [ImageFile(path, None) for path in image_files(root)]
    else:
        unknown = [p.name for p in subfolders if p.name not in index]
        if unknown:
            raise UserError(f"--folder {root} has class folders ({known[0].name}, ...) and "
                            f"others that are not classes of {manifest.name}: "
                            f"{', '.join(unknown[:5])}{', ...' if len(unknown) > 5 else ''} "
                            f"(its classes: {', '.join(manifest.class_folders[:12])}"
                            f"{', ...' if len(manifest.classes) > 12 else ''})")
        loose = [p for p in image_files(root) if p.parent == root]
        if loose:
            raise UserError(f"--folder {root} is labelled by its class folders, but "
                            f"{loose[0].name} lies outside them: move it into its class "
                            "folder or predict it on its own")
        images = [ImageFile(path, index[sub.name]) for sub in known
                  for path in image_files(sub)]
        images.sort(key=lambda image: image.path.relative_to(root).parts)
    if not images:
        raise UserError(f"--folder {root} holds no images")
    return images


def _torch_logits(manifest: Manifest, seed: int | None, device: torch.device
                  ) -> tuple[int, Callable[[torch.Tensor], torch.Tensor]]:
    run, model = build_model(manifest, seed)
    model.to(device)
    return run.seed, lambda images: logits_of(model, images, batch_size=manifest.batch_size,
                                              device=device)


def _onnx_logits(manifest: Manifest, seed: int | None
                 ) -> tuple[int, Callable[[torch.Tensor], torch.Tensor]]:
    run = manifest.run(seed)
    session = open_onnx(manifest, run.seed)

    def logits(images: torch.Tensor) -> torch.Tensor:
        out = []
        for start in range(0, len(images), manifest.batch_size):
            batch = manifest.preprocessing.inputs(images[start:start + manifest.batch_size])
            out.append(torch.from_numpy(session(batch.numpy())))
        return torch.cat(out)

    return run.seed, logits


def predict(manifest: Manifest, images: list[ImageFile], *, top: int = 1, seed: int | None = None,
            device: torch.device | None = None, runtime: str = "torch") -> Predictions:
    """The ``top`` classes of each image by run ``seed`` (default: the selected run)."""
    device = device or torch.device("cpu")
    if not 1 <= top <= len(manifest.classes):
        raise UserError(f"--top {top}: {manifest.name} has {len(manifest.classes)} classes")
    if runtime == "onnx":
        if device.type != "cpu":
            raise UserError("--runtime onnx runs on the CPU: give --device cpu")
        chosen, logits_fn = _onnx_logits(manifest, seed)
    else:
        chosen, logits_fn = _torch_logits(manifest, seed, device)
    items: list[Prediction] = []
    chunk = manifest.batch_size * CHUNK_BATCHES
    for start in range(0, len(images), chunk):
        part = images[start:start + chunk]
        pixels = torch.stack(parallel_map(lambda image: manifest.preprocessing.load(image.path),
                                          part))
        logits = logits_fn(pixels)
        order = torch.argsort(-logits, dim=1, stable=True)[:, :top]
        probs = probabilities(logits)
        for image, classes, row in zip(part, order.tolist(), probs):
            items.append(Prediction(image, [(c, float(row[c])) for c in classes]))
    return Predictions(manifest, chosen, runtime, items)


def summary_line(result: Predictions) -> str:
    model = f"{result.manifest.name}, run seed {result.seed}, {result.runtime}"
    if result.accuracy is None:
        return f"{len(result.items)} image(s) ({model})"
    return (f"accuracy {result.accuracy:.4f}: {result.correct} of {result.labelled} images in "
            f"class folders predicted right ({model})")


def as_table(result: Predictions) -> str:
    classes = result.manifest.classes
    labelled = result.labelled > 0
    head = ["image", *(f"#{k + 1}" for k in range(len(result.items[0].top)))]
    head += ["true", "ok"] if labelled else []
    rows = []
    for item in result.items:
        row = [str(item.image.path)] + [f"{classes[c]} ({p:.3f})" for c, p in item.top]
        if labelled:
            assert item.image.label is not None
            row += [classes[item.image.label], "yes" if item.correct else "NO"]
        rows.append(row)
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip()
             for row in [head, *rows]]
    return "\n".join(lines) + "\n" + summary_line(result) + "\n"


def as_json(result: Predictions) -> str:
    classes = result.manifest.classes
    document: dict[str, Any] = {
        "model": str(result.manifest.folder), "name": result.manifest.name,
        "seed": result.seed, "runtime": result.runtime,
        "images": [{"path": str(item.image.path),
                    "predictions": [{"class": classes[c], "index": c, "probability": p}
                                    for c, p in item.top],
                    "label": None if item.image.label is None else classes[item.image.label],
                    "correct": item.correct} for item in result.items],
        "labelled": result.labelled, "correct": result.correct, "accuracy": result.accuracy,
    }
    return json.dumps(document, indent=2) + "\n"


def as_csv(result: Predictions) -> str:
    classes = result.manifest.classes
    k = len(result.items[0].top)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["path", *(f"{kind}_{i + 1}" for i in range(k)
                               for kind in ("class", "probability")), "label", "correct"])
    for item in result.items:
        cells: list[Any] = [str(item.image.path)]
        for c, p in item.top:
            cells += [classes[c], f"{p:.6g}"]
        cells += ["" if item.image.label is None else classes[item.image.label],
                  "" if item.correct is None else str(item.correct).lower()]
        writer.writerow(cells)
    return buffer.getvalue()


FORMATTERS: dict[str, Callable[[Predictions], str]] = {
    "table": as_table, "json": as_json, "csv": as_csv}

"""A trained model as a file that runs without cnnsearch, checked before it is kept.

- ``onnx``: torch's ``torch.export``-based exporter (``dynamo=True``, the one torch keeps;
  it needs ``onnxscript``), one self-contained file, a dynamic batch dimension; checked with
  onnxruntime. ``predict_onnx.py`` (numpy + onnxruntime) is copied beside it.
- ``torchscript``: ``torch.jit.trace`` (``torch.jit.load`` with torch alone; PyTorch has
  deprecated TorchScript in favour of ``torch.export``, so prefer one of the others).
- ``torch-export``: ``torch.export`` saved as a ``.pt2`` (``torch.export.load``).

Each is checked on a batch of real images (and on a single one: the batch dimension is
dynamic): its logits must equal torch's within ``TOLERANCE``; otherwise nothing is kept and
the error says by how much it missed. Beside each file goes ``<file>.json``: the input it
expects (colour, size, ``p / 255 - 0.5``, the resize filter), the class names, and the check.

The check images are ``check_images.npy`` in the model folder (``train`` writes 32 images of
the split its card is about; uint8, no pickle), else seeded random images of the model's
shape: any input shows whether two runtimes compute the same.
"""

from __future__ import annotations

import json
import shutil
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from search.errors import UserError
from search.trained.inference import logits_of
from search.trained.manifest import Manifest, build_model

FORMATS = ("onnx", "torchscript", "torch-export")
SUFFIXES = {"onnx": ".onnx", "torchscript": ".torchscript.pt", "torch-export": ".pt2"}
PORTABLE_FORMAT = "cnnsearch-portable/1"
TOLERANCE = 1e-4
"""Largest absolute difference allowed between a portable file's logits and torch's."""
INPUT_NAME, OUTPUT_NAME = "images", "logits"
SCRIPT = "predict_onnx.py"
CHECK_IMAGES = "check_images.npy"
CHECK_COUNT = 32


class PortableError(UserError):
    """The portable file could not be made, or its outputs differ from torch's."""


def portable_name(manifest: Manifest, fmt: str, seed: int) -> str:
    return f"{manifest.name}-seed{seed}{SUFFIXES[fmt]}"


def write_portable(manifest: Manifest, model: nn.Module, seed: int, fmt: str,
                   sample: torch.Tensor) -> dict[str, Any]:
    """Write run ``seed``'s ``model`` (on the CPU) as ``fmt``, check it against torch on
    ``sample`` (uint8 images), write its JSON; return its manifest entry."""
    if fmt not in FORMATS:
        raise UserError(f"unknown portable format {fmt!r}: choose one of {', '.join(FORMATS)}")
    if len(sample) < 2:  # a batch of 1 would fix the exported batch dimension to 1
        sample = sample.repeat(2, 1, 1, 1)
    model = model.to("cpu").eval()
    path = manifest.folder / portable_name(manifest, fmt, seed)
    partial = path.with_name(path.name + ".partial")
    inputs = manifest.preprocessing.inputs(sample)
    expected = logits_of(model, sample, batch_size=len(sample), device=torch.device("cpu"))
    try:
        _EXPORTERS[fmt](model, inputs, partial)
        runner, runtime = _RUNNERS[fmt](partial)
        difference = max(_difference(runner(inputs.numpy()), expected),
                         _difference(runner(inputs[:1].numpy()), expected[:1]))
    except PortableError:
        partial.unlink(missing_ok=True)
        raise
    except Exception as error:  # an exporter or runtime failure: one line, nothing kept
        partial.unlink(missing_ok=True)
        text = " ".join(str(error).split())[:300]
        raise PortableError(f"cannot make the {fmt} file of {manifest.name}: "
                            f"{type(error).__name__}: {text}") from None
    if not difference <= TOLERANCE:
        partial.unlink(missing_ok=True)
        raise PortableError(f"the {fmt} file of {manifest.name} does not reproduce torch's "
                            f"logits: largest difference {difference:.3g} > {TOLERANCE:g}")
    partial.replace(path)
    check = {"runtime": runtime, "images": len(sample), "max_abs_difference": difference,
             "tolerance": TOLERANCE}
    spec_path = path.with_name(path.name + ".json")
    spec_path.write_text(json.dumps(_spec(manifest, path.name, fmt, seed, check), indent=2)
                         + "\n", encoding="utf-8")
    entry = {"format": fmt, "file": path.name, "json": spec_path.name, "seed": seed,
             "check": check}
    if fmt == "onnx":
        shutil.copyfile(Path(__file__).with_name(SCRIPT), manifest.folder / SCRIPT)
        entry["script"] = SCRIPT
    return entry


def write_check_images(manifest: Manifest, images: torch.Tensor) -> torch.Tensor:
    """The first ``CHECK_COUNT`` of uint8 NCHW ``images`` as the folder's check images (for
    ``package``, and a ready input for ``predict_onnx.py``); returns them."""
    sample = images[:CHECK_COUNT].contiguous()
    np.save(manifest.folder / CHECK_IMAGES, sample.numpy(), allow_pickle=False)
    return sample


def read_check_images(manifest: Manifest) -> torch.Tensor:
    """The folder's check images, or (a folder without them) random images of the model's
    shape from a fixed seed."""
    path = manifest.folder / CHECK_IMAGES
    shape = manifest.preprocessing.input_shape
    try:
        array = np.load(path, allow_pickle=False)
        if array.dtype == np.uint8 and array.ndim == 4 and tuple(array.shape[1:]) == shape:
            return torch.from_numpy(array.copy())
    except (OSError, ValueError):
        pass
    generator = torch.Generator().manual_seed(0)
    return torch.randint(0, 256, (CHECK_COUNT, *shape), generator=generator, dtype=torch.uint8)


def add_portable(manifest: Manifest, fmt: str, seed: int | None = None,
                 sample: torch.Tensor | None = None) -> tuple[Manifest, dict[str, Any]]:
    """Write run ``seed``'s (default: the model's) portable ``fmt`` file, checked on
    ``sample`` (default: the check images); return the manifest that lists it (not yet
    written) and its entry."""
    run, model = build_model(manifest, seed)
    entry = write_portable(manifest, model, run.seed, fmt,
                           read_check_images(manifest) if sample is None else sample)
    return manifest.with_portable(entry), entry


def _difference(got: np.ndarray, expected: torch.Tensor) -> float:
    got = np.asarray(got, dtype=np.float64)
    if got.shape != tuple(expected.shape):
        return float("inf")
    return float(np.abs(got - expected.double().numpy()).max())


def _spec(manifest: Manifest, file: str, fmt: str, seed: int,
          check: dict[str, Any]) -> dict[str, Any]:
    preprocessing = manifest.preprocessing.to_dict()
    return {
        "format": PORTABLE_FORMAT,
        "model": file,
        "model_format": fmt,
        "name": manifest.name,
        "seed": seed,
        "input": {"name": INPUT_NAME, "shape": ["batch", *manifest.preprocessing.input_shape],
                  "dtype": "float32", "channels": manifest.preprocessing.channels,
                  "color": preprocessing["color"], "size": preprocessing["size"],
                  "resize": preprocessing["resize"], "scale": preprocessing["scale"]},
        "standardise": preprocessing["standardise"],
        "output": {"name": OUTPUT_NAME, "classes": list(manifest.classes),
                   "meaning": "logits: softmax gives the class probabilities"},
        "check": check,
        "usage": f"python {SCRIPT} {file}.json IMAGE..." if fmt == "onnx" else
                 "see docs/model-in-use.md",
    }


def _export_onnx(model: nn.Module, inputs: torch.Tensor, path: Path) -> None:
    batch = torch.export.Dim("batch", min=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (inputs,), str(path), dynamo=True, external_data=False,
                          input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                          dynamic_shapes={"images": {0: batch}}, verbose=False)


def _run_onnx(path: Path) -> tuple[Callable[[np.ndarray], np.ndarray], str]:
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return (lambda x: session.run(None, {INPUT_NAME: x})[0],
            f"onnxruntime {onnxruntime.__version__}")


def _export_torchscript(model: nn.Module, inputs: torch.Tensor, path: Path) -> None:
    with warnings.catch_warnings():  # TorchScript's deprecation notice, said in the docs
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(model, inputs)
        torch.jit.save(traced, str(path))


def _run_torchscript(path: Path) -> tuple[Callable[[np.ndarray], np.ndarray], str]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        loaded = torch.jit.load(str(path), map_location="cpu")

    def run(x: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return loaded(torch.from_numpy(x)).numpy()

    return run, f"torch.jit {torch.__version__}"


def _export_program(model: nn.Module, inputs: torch.Tensor, path: Path) -> None:
    batch = torch.export.Dim("batch", min=1)
    program = torch.export.export(model, (inputs,), dynamic_shapes={"images": {0: batch}})
    torch.export.save(program, str(path))


def _run_program(path: Path) -> tuple[Callable[[np.ndarray], np.ndarray], str]:
    module = torch.export.load(str(path)).module()

    def run(x: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return module(torch.from_numpy(x)).numpy()

    return run, f"torch.export {torch.__version__}"


_EXPORTERS: dict[str, Callable[[nn.Module, torch.Tensor, Path], None]] = {
    "onnx": _export_onnx, "torchscript": _export_torchscript, "torch-export": _export_program}
_RUNNERS: dict[str, Callable[[Path], tuple[Callable[[np.ndarray], np.ndarray], str]]] = {
    "onnx": _run_onnx, "torchscript": _run_torchscript, "torch-export": _run_program}


def open_onnx(manifest: Manifest, seed: int) -> Callable[[np.ndarray], np.ndarray]:
    """An onnxruntime session of run ``seed``'s ONNX file as a function of float inputs; a
    missing or corrupt file, or one whose input is not the model's, is a one-line
    ``UserError``."""
    entry = manifest.portable_file("onnx", seed)
    if entry is None:
        raise UserError(f"{manifest.folder} has no ONNX file of run seed {seed}: make it with "
                        f"cnnsearch package --model {manifest.folder} --format onnx --seed {seed}")
    path = manifest.folder / str(entry.get("file"))
    if Path(str(entry.get("file"))).name != entry.get("file") or not path.is_file():
        raise UserError(f"ONNX file {path} is missing: make it again with cnnsearch package "
                        f"--model {manifest.folder} --format onnx --seed {seed}")
    import onnxruntime

    try:
        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as error:  # onnxruntime raises its own types (InvalidProtobuf, Fail...)
        first = " ".join(str(error).split())[:200]
        raise UserError(f"ONNX file {path} is not a readable ONNX model ({first}); make it "
                        f"again with cnnsearch package --model {manifest.folder} --format "
                        "onnx") from None
    inputs, outputs = session.get_inputs(), session.get_outputs()
    shape = list(inputs[0].shape[1:]) if inputs else []
    classes = outputs[0].shape[-1] if outputs and outputs[0].shape else None
    if len(inputs) != 1 or shape != list(manifest.preprocessing.input_shape):
        raise UserError(f"ONNX file {path} takes {'x'.join(map(str, shape)) or 'no'} inputs, "
                        f"not those of {manifest.describe()} (a model of another dataset's "
                        "shape?)")
    if classes != len(manifest.classes):
        raise UserError(f"ONNX file {path} gives {classes} outputs, not the "
                        f"{len(manifest.classes)} classes of {manifest.describe()} (a model of "
                        "another dataset?)")
    name = inputs[0].name
    return lambda x: session.run(None, {name: x})[0]

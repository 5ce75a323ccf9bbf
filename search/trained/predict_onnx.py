"""Run a cnnsearch model's ONNX file with nothing but numpy and onnxruntime (Pillow too, for
image files). ``cnnsearch train`` and ``cnnsearch package`` copy this file into the model
folder; it imports nothing of cnnsearch, so the folder can be used where cnnsearch is not
installed:

    pip install onnxruntime numpy pillow
    python predict_onnx.py B2FL4Adam-seed0.onnx.json shoe.png bag.jpg
    python predict_onnx.py B2FL4Adam-seed0.onnx.json images.npy --logits out.npy

The JSON beside the ONNX file says what the model expects (``input``) and names its outputs
(``classes``). A ``.npy`` array holds uint8 pixels already at the model's size: N x C x H x W,
N x H x W x C, or N x H x W for one channel. Image files are converted to the model's colour
mode and, when their size differs, resized with Pillow's bilinear filter: that is the
training's filter for folder datasets; for IDX and CIFAR models (``resize``:
torch-bilinear-antialias) ``cnnsearch predict`` is the reference for images of other sizes.
The pixels then become ``p / 255 - 0.5`` in float32; any per-channel standardisation is
inside the model.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import onnxruntime


def read_images(paths: list[str], spec: dict) -> np.ndarray:
    """uint8 N x C x H x W pixels of ``paths`` (image files, or one .npy array)."""
    channels = int(spec["channels"])
    height, width = (int(v) for v in spec["size"])
    if len(paths) == 1 and paths[0].endswith(".npy"):
        array = np.load(paths[0], allow_pickle=False)
        if array.dtype != np.uint8:
            raise SystemExit(f"{paths[0]}: expected uint8 pixels, got {array.dtype}")
        if array.ndim == 3 and channels == 1:
            array = array[:, None]
        elif array.ndim == 4 and array.shape[-1] == channels and array.shape[1] != channels:
            array = array.transpose(0, 3, 1, 2)
        if array.ndim != 4 or array.shape[1:] != (channels, height, width):
            raise SystemExit(f"{paths[0]}: shape {array.shape}, expected N x {channels} x "
                             f"{height} x {width}")
        return np.ascontiguousarray(array)
    from PIL import Image

    images = []
    for path in paths:
        with Image.open(path) as image:
            image = image.convert("L" if channels == 1 else "RGB")
            if image.size != (width, height):
                image = image.resize((width, height), Image.Resampling.BILINEAR)
            pixels = np.asarray(image, dtype=np.uint8).reshape(height, width, channels)
        images.append(pixels.transpose(2, 0, 1))
    return np.stack(images)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Classify images with a cnnsearch ONNX model")
    parser.add_argument("spec", help="the .onnx.json file beside the ONNX model")
    parser.add_argument("inputs", nargs="+", help="image files, or one .npy of uint8 pixels")
    parser.add_argument("--top", type=int, default=1, help="classes shown per image")
    parser.add_argument("--logits", help="also save the logits to this .npy file")
    parser.add_argument("--batch-size", type=int, default=256)
    args = parser.parse_args(argv)
    spec_path = Path(args.spec)
    spec = json.loads(spec_path.read_text(encoding="utf-8"))
    session = onnxruntime.InferenceSession(str(spec_path.parent / spec["model"]),
                                           providers=["CPUExecutionProvider"])
    pixels = read_images(args.inputs, spec["input"])
    logits = []
    for start in range(0, len(pixels), args.batch_size):
        batch = pixels[start:start + args.batch_size].astype(np.float32) / 255 - 0.5
        logits.append(session.run(None, {spec["input"]["name"]: batch})[0])
    scores = np.concatenate(logits)
    if args.logits:
        np.save(args.logits, scores)
    exp = np.exp(scores - scores.max(axis=1, keepdims=True))
    probabilities = exp / exp.sum(axis=1, keepdims=True)
    names = args.inputs if len(args.inputs) == len(scores) else [
        f"{args.inputs[0]}[{i}]" for i in range(len(scores))]
    classes = spec["output"]["classes"]
    for name, row in zip(names, probabilities):
        best = np.argsort(-row, kind="stable")[:args.top]
        print(name + "\t" + "\t".join(f"{classes[i]} {row[i]:.4f}" for i in best))
    return 0


if __name__ == "__main__":
    sys.exit(main())

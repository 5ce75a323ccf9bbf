"""A trained model's weights as safetensors: plain tensors and a JSON header, no pickle, so
opening a file from elsewhere can never run code (``torch.load`` of a ``.pt`` could). The
SHA-256 of each file is recorded in the manifest and checked on reading: a file changed or
damaged since ``train`` wrote it is refused rather than silently predicting something else.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save
from torch import nn

from search.errors import UserError

WEIGHTS_SUFFIX = ".safetensors"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def save_weights(model: nn.Module, path: Path, metadata: dict[str, str]) -> str:
    """Write the model's state dict (on the CPU) to ``path``, through a temporary file so a
    stopped write leaves no half file under the real name; return its SHA-256."""
    state = {name: tensor.detach().to("cpu").contiguous()
             for name, tensor in model.state_dict().items()}
    partial = path.with_name(path.name + ".partial")
    partial.write_bytes(save(state, metadata=metadata))  # the umask's permissions
    partial.replace(path)
    return sha256_of(path)


def load_weights(model: nn.Module, path: Path, sha256: str | None, what: str) -> None:
    """Load ``path`` into ``model`` (``what`` names the design for messages). A missing,
    unreadable or corrupt file, weights of another shape (a model of another dataset or
    design) or a checksum other than ``sha256`` is a one-line ``UserError``."""
    if not path.is_file():
        raise UserError(f"weights file {path} is missing")
    try:
        state = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else ""
        raise UserError(f"weights file {path} is not a readable safetensors file"
                        + (f" ({first})" if first else "")) from None
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        names = missing[:2] or unexpected[:2]
        raise UserError(f"weights file {path} does not fit {what}: "
                        f"{'missing' if missing else 'unexpected'} tensors "
                        f"{', '.join(names)}{' ...' if len(missing or unexpected) > 2 else ''}"
                        " (the weights of another design?)")
    for name, tensor in expected.items():
        if tuple(state[name].shape) != tuple(tensor.shape):
            raise UserError(f"weights file {path} does not fit {what}: {name} is "
                            f"{'x'.join(map(str, state[name].shape))}, the design needs "
                            f"{'x'.join(map(str, tensor.shape))} (a model of another "
                            "dataset's shape or another design)")
    if sha256 is not None and sha256_of(path) != sha256:
        raise UserError(f"weights file {path} has changed since cnnsearch train wrote it "
                        "(its SHA-256 differs from model.json's): restore it or train again")
    with torch.no_grad():
        model.load_state_dict(state, strict=True)

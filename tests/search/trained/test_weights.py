"""Weights as safetensors: no pickle, read back bit for bit, and every file that is not this
model's (corrupt, another shape, changed since train) refused in one line."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from models import Architecture, build_cnn
from search.errors import UserError
from search.trained.weights import load_weights, save_weights, sha256_of


def model(shape: tuple[int, int, int] = (1, 12, 12), seed: int = 0) -> torch.nn.Module:
    return build_cnn(Architecture(blocks=1, filters=2, fc_units=8, batch_norm=True), shape, 3,
                     seed=seed)


def test_round_trip_is_exact_and_pickle_free(tmp_path: Path) -> None:
    saved, path = model(), tmp_path / "w.safetensors"
    digest = save_weights(saved, path, {"design": "B1FL2"})
    assert digest == sha256_of(path) and not (tmp_path / "w.safetensors.partial").exists()
    raw = path.read_bytes()
    (length,) = struct.unpack("<Q", raw[:8])  # safetensors: a JSON header, then raw tensors
    header = json.loads(raw[8:8 + length])
    assert header["__metadata__"] == {"design": "B1FL2"}
    assert b"\x80\x04" not in raw[:16]  # no pickle protocol marker
    loaded = model(seed=1)
    load_weights(loaded, path, digest, "B1FL2")
    for name, tensor in saved.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], tensor), name


def test_refusals(tmp_path: Path) -> None:
    path = tmp_path / "w.safetensors"
    digest = save_weights(model(), path, {})
    with pytest.raises(UserError, match="is missing"):
        load_weights(model(), tmp_path / "none.safetensors", None, "B1FL2")
    with pytest.raises(UserError, match="another dataset's shape"):
        load_weights(model((3, 12, 12)), path, digest, "B1FL2 for 3x12x12 inputs")
    other = tmp_path / "other.safetensors"
    save_file({"features.0.weight": torch.zeros(2, 1, 3, 3)}, str(other))
    with pytest.raises(UserError, match="missing tensors"):
        load_weights(model(), other, None, "B1FL2")
    changed = bytearray(path.read_bytes())
    changed[-1] ^= 1
    path.write_bytes(bytes(changed))
    with pytest.raises(UserError, match="has changed since cnnsearch train wrote it"):
        load_weights(model(), path, digest, "B1FL2")
    for broken in (b"", b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}", changed[:40]):
        path.write_bytes(bytes(broken))
        with pytest.raises(UserError, match="not a readable safetensors file") as caught:
            load_weights(model(), path, None, "B1FL2")
        assert "\n" not in str(caught.value)

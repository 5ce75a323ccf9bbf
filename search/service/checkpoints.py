"""Per-trial training checkpoints, so a retried trial resumes instead of starting over.

A checkpoint belongs to one trial and one design: every new trial gets a unique key (kept
by its retries through the trial record), and the file carries its owner (study, key, a
hash of the trial config), checked before any state is used. A file that cannot be read,
that ``weights_only`` refuses (it would run code), or that belongs to someone else is
discarded with one warning line: the trial trains from epoch 0 rather than crash.

Written atomically (temp file in the same folder, then ``os.replace``) so a worker killed
mid-write leaves the previous checkpoint intact.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import uuid
import warnings
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from search.errors import first_line

LOGGER = logging.getLogger("cnnsearch.checkpoints")

MAX_NAME = 160
"""Longest checkpoint file name before ``.pt``: with the temp file's ``.NAME.pt.PID.tmp``
far below the 255 bytes a file name may have."""


def new_checkpoint_key(study_name: str, number: int) -> str:
    """A key no other trial has (its retries inherit it through the record)."""
    return f"{study_name}-{number}-{uuid.uuid4().hex[:12]}"


def config_hash(trial_config: Mapping[str, Any]) -> str:
    text = json.dumps(trial_config, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class CheckpointOwner:
    """Whose checkpoint a file is: stored in it, compared before it is used."""

    study: str
    key: str
    config_hash: str

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


class CheckpointStore:
    """One file per trial key under ``folder`` (a shared filesystem for many machines)."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)

    def path(self, key: str) -> Path:
        """``KEY.pt``, the key's odd characters as ``_``; a key too long for a file name
        (a study name of up to 256 characters is part of it) is cut and ends with a hash of
        the whole key, so the temp file beside it fits in 255 bytes too."""
        name = re.sub(r"[^A-Za-z0-9_.-]", "_", key)
        if len(name) > MAX_NAME:
            digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:16]
            name = f"{name[:MAX_NAME - 17]}-{digest}"
        return self.folder / f"{name}.pt"

    def save(self, owner: CheckpointOwner, payload: Mapping[str, Any]) -> Path:
        """Write atomically; an ``OSError`` (disk full, read-only folder) leaves the previous
        checkpoint and no temp file behind."""
        self.folder.mkdir(parents=True, exist_ok=True)
        target = self.path(owner.key)
        temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        try:
            with open(temporary, "wb") as handle:
                torch.save({**payload, "owner": owner.to_dict()}, handle)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, target)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
        return target

    def load(self, owner: CheckpointOwner, device: torch.device) -> dict[str, Any] | None:
        """The checkpoint ``owner`` saved, or None: no file, or one that is unreadable,
        refused by ``weights_only`` or someone else's (discarded with a warning)."""
        target = self.path(owner.key)
        if not target.exists():
            return None
        try:
            with warnings.catch_warnings():  # e.g. "Detected pickle protocol 4": noise here
                warnings.simplefilter("ignore", UserWarning)
                payload = torch.load(target, map_location=device, weights_only=True)
        except Exception as error:  # truncated, random bytes, a pickle that would run code
            if "weights only load failed" in str(error).lower():
                self.discard(owner.key, "refused by weights_only: it holds more than tensors "
                             "(e.g. a pickle that would run code)")
            else:
                self.discard(owner.key, f"unreadable ({first_line(error)})")
            return None
        stored = payload.get("owner") if isinstance(payload, dict) else None
        if stored != owner.to_dict():
            self.discard(owner.key, "it belongs to another trial or design"
                         if isinstance(stored, dict) else "it names no owner")
            return None
        return payload

    def discard(self, key: str, why: str) -> None:
        """Delete a checkpoint that cannot be used, saying why in one line."""
        LOGGER.warning("cnnsearch: discarded checkpoint %s: %s; training restarts from "
                       "epoch 0", self.path(key), why)
        self.delete(key)

    def delete(self, key: str) -> None:
        try:
            self.path(key).unlink(missing_ok=True)
        except OSError as error:
            LOGGER.warning("cnnsearch: could not delete checkpoint %s: %s", self.path(key),
                           error.strerror or error)

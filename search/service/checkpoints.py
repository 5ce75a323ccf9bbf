"""Per-trial training checkpoints, so a retried trial resumes instead of starting over.

Written atomically (temp file in the same folder, then ``os.replace``) so a worker killed
mid-write leaves the previous checkpoint intact; read with ``weights_only=True`` so a
checkpoint file cannot run code.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import torch


class CheckpointStore:
    """One file per trial key under ``folder`` (a shared filesystem for many machines)."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)

    def path(self, key: str) -> Path:
        return self.folder / f"{re.sub(r'[^A-Za-z0-9_.-]', '_', key)}.pt"

    def save(self, key: str, payload: dict[str, Any]) -> Path:
        self.folder.mkdir(parents=True, exist_ok=True)
        target = self.path(key)
        temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        with open(temporary, "wb") as handle:
            torch.save(payload, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, target)
        return target

    def load(self, key: str, device: torch.device) -> dict[str, Any] | None:
        target = self.path(key)
        if not target.exists():
            return None
        return torch.load(target, map_location=device, weights_only=True)

    def delete(self, key: str) -> None:
        self.path(key).unlink(missing_ok=True)

"""Compute device from a flag: ``auto`` picks CUDA when present; a missing GPU is a user error."""

from __future__ import annotations

import torch

from search.errors import UserError


def resolve_device(name: str | None) -> torch.device:
    if name in (None, "", "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise UserError(f"unknown device '{name}': use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise UserError(f"device '{name}' requested but no CUDA GPU is available")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise UserError(f"device '{name}' does not exist: "
                            f"{torch.cuda.device_count()} GPU(s) visible")
    elif device.type != "cpu":
        raise UserError(f"unsupported device '{name}': use auto, cpu, cuda or cuda:N")
    return device

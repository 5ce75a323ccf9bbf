"""The float precision a trial's steps run in: autocast's dtype, and the gradient scaler fp16
needs (``train.precision``).

``auto`` is what a card does best: bf16 autocast on a CUDA card that supports it (Ampere and
newer), fp16 autocast with a ``torch.amp.GradScaler`` on one that does not (Volta, Turing),
fp32 on the CPU (which gains nothing from bf16 without AVX512-BF16/AMX and loses accuracy).
The range test and the training of a trial resolve the same setting on the same device, so
they run in one precision; the trial records the one it resolved to.

Under fp16 a loss or gradient that overflows is the scaler's business: it skips that step
and lowers its scale. The training calls the trial ``diverged`` only when the loss stays
non-finite for ``NONFINITE_PATIENCE`` consecutive steps (``search.method.training``); under
fp32 and bf16 (bf16 has fp32's range) one non-finite loss is divergence, as always.
"""

from __future__ import annotations

import contextlib
import warnings
from contextlib import AbstractContextManager
from typing import Any

import torch

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
"""``train.precision``'s values; ``auto`` resolves per device (``resolve_precision``)."""

NONFINITE_PATIENCE = 16
"""Consecutive fp16 steps with a non-finite loss after which the training is ``diverged``:
the scaler halves its scale at each, so 16 skips take the default 2**16 scale to 1. A loss
still not finite then comes from the forward pass itself, which no scale can mend."""

_DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def resolve_precision(setting: str, device: torch.device) -> str:
    """``fp32``, ``bf16`` or ``fp16``: ``setting`` itself, or what ``auto`` means on
    ``device`` (see the module docstring)."""
    if setting not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {setting!r}")
    if setting != "auto":
        return setting
    if device.type != "cuda":
        return "fp32"
    return "bf16" if torch.cuda.is_bf16_supported(including_emulation=False) else "fp16"


class Precision:
    """One trial's precision on its device: the autocast context of each forward pass and,
    for fp16, the gradient scaler that owns the backward pass and the optimizer step."""

    def __init__(self, name: str, device: torch.device) -> None:
        if name not in _DTYPES:
            raise ValueError(f"a resolved precision is fp32, bf16 or fp16, got {name!r}")
        self.name = name
        self.device_type = torch.device(device).type
        self.dtype = _DTYPES[name]
        self.scaler = None
        if name == "fp16":
            self.scaler = torch.amp.GradScaler(self.device_type)
            # A step the scaler skips makes torch warn, at the next scheduler step, that the
            # scheduler stepped before the optimizer: expected with a scaler, not a bug.
            warnings.filterwarnings("ignore", message=r"Detected call of `lr_scheduler\.step",
                                    category=UserWarning)

    @classmethod
    def for_device(cls, setting: str, device: torch.device) -> Precision:
        """``setting`` (``train.precision``) resolved on ``device``."""
        return cls(resolve_precision(setting, device), device)

    @property
    def skips_nonfinite(self) -> bool:
        """Whether a step with a non-finite loss is skipped (fp16) rather than divergence."""
        return self.scaler is not None

    def autocast(self) -> AbstractContextManager[Any]:
        """Where the forward pass and the loss run; nothing for fp32."""
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device_type, dtype=self.dtype)

    def backward_and_step(self, loss: torch.Tensor, optimizer: torch.optim.Optimizer) -> None:
        """``loss.backward()`` then ``optimizer.step()``; under fp16 through the scaler,
        which skips the step when a gradient is not finite (no host sync: it decides on the
        device)."""
        if self.scaler is None:
            loss.backward()
            optimizer.step()
            return
        self.scaler.scale(loss).backward()
        self.scaler.step(optimizer)
        self.scaler.update()

    def state_dict(self) -> dict[str, Any] | None:
        """The scaler's state (its scale) for a checkpoint; None without a scaler."""
        return None if self.scaler is None else self.scaler.state_dict()

    def load_state_dict(self, state: dict[str, Any] | None) -> None:
        """A checkpoint's scaler back; a checkpoint without one leaves the fresh scale."""
        if self.scaler is not None and state:
            self.scaler.load_state_dict(state)

"""A card's dense peak, to say what share of it the trials use: a table of datasheet figures
by card name, and a peak measured with large matrix products on the card itself.

The table's figures are the vendors' dense (not 2:4 sparse) tensor-core TFLOPS: bf16 (fp16
for cards without bf16) with fp32 accumulation, and plain fp32 (not TF32). The measured
peak is what ``torch.matmul`` reaches on 8192-square operands (smaller on a CPU): an upper
bound a convolution network can approach, never pass.
"""

from __future__ import annotations

import time

import torch

DENSE_TFLOPS: tuple[tuple[tuple[str, ...], dict[str, float]], ...] = (
    # (words all in the card's name, lower case), {precision: dense TFLOPS}; first match wins
    (("h100", "pcie"), {"bf16": 756.0, "fp32": 51.2}),
    (("h100", "nvl"), {"bf16": 835.5, "fp32": 60.0}),
    (("h100",), {"bf16": 989.4, "fp32": 66.9}),   # SXM5
    (("h200",), {"bf16": 989.4, "fp32": 66.9}),
    (("gh200",), {"bf16": 989.4, "fp32": 66.9}),
    (("a100",), {"bf16": 312.0, "fp32": 19.5}),
    (("l40s",), {"bf16": 362.1, "fp32": 91.6}),
    (("l40",), {"bf16": 181.0, "fp32": 90.5}),
    (("l4",), {"bf16": 121.0, "fp32": 30.3}),
    (("a10",), {"bf16": 125.0, "fp32": 31.2}),     # after a100: "a10" is in "a100"
    (("rtx", "a6000"), {"bf16": 154.8, "fp32": 38.7}),
    (("4090",), {"bf16": 82.6, "fp32": 82.6}),     # GeForce: half rate with fp32 accumulate
    (("v100",), {"fp16": 125.0, "fp32": 15.7}),
    (("t4",), {"fp16": 65.0, "fp32": 8.1}),
)
"""Datasheet dense peaks (NVIDIA's product pages and architecture whitepapers)."""


def table_peak(card_name: str) -> dict[str, float] | None:
    """The datasheet peaks of the card called ``card_name``; None for a card not listed."""
    name = card_name.lower()
    for words, peaks in DENSE_TFLOPS:
        if all(word in name for word in words):
            return dict(peaks)
    return None


def half_precision(peaks: dict[str, float] | None) -> str:
    """The tensor-core precision the table lists for a card: bf16, else fp16."""
    return "fp16" if peaks is not None and "bf16" not in peaks else "bf16"


def measured_matmul_tflops(device: torch.device, dtype: torch.dtype, *,
                           seconds: float = 2.0) -> float:
    """TFLOPS of back-to-back square matrix products of ``dtype`` on ``device`` (fp32 on a
    card uses TF32 when the process allows it, as cnnsearch's does)."""
    size = 8192 if device.type == "cuda" else 1024
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    flops_each = 2 * size**3
    torch.matmul(a, b)  # warm up: library handles, kernel choice
    _sync(device)
    count, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        for _ in range(4):
            torch.matmul(a, b)
        count += 4
        _sync(device)
    return flops_each * count / (time.perf_counter() - started) / 1e12


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)

"""Peak memory of a piece of work: CUDA peak allocation on a GPU, sampled process RSS on CPU.

The thesis reported memory per run to size batches and free it between runs; a search
service needs the same figure to decide how many workers share a GPU.
"""

from __future__ import annotations

import os
import resource

import torch

_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def current_rss_bytes() -> int:
    """Resident set size now (Linux ``/proc``; falls back to the lifetime peak elsewhere)."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * _PAGE_SIZE
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


class PeakMemory:
    """Tracks the peak between ``start()`` and ``peak()``; call ``sample()`` in the loop on CPU."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.kind = "cuda_peak_allocated" if device.type == "cuda" else "process_rss"
        self._peak = 0

    def start(self) -> PeakMemory:
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        self._peak = current_rss_bytes() if self.device.type != "cuda" else 0
        return self

    def sample(self) -> None:
        if self.device.type != "cuda":
            self._peak = max(self._peak, current_rss_bytes())

    def peak(self) -> int:
        if self.device.type == "cuda":
            return int(torch.cuda.max_memory_allocated(self.device))
        self.sample()
        return self._peak


def release_memory(device: torch.device) -> None:
    """Give cached blocks back between trials so the next one (or a neighbour) can use them."""
    import gc

    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()

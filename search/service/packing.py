"""How many trials share one GPU (``--trials-per-gpu N | auto``), and what each card has
learnt about it, shared by every process on the host.

Small CNNs leave a modern card mostly idle one at a time (each step is a few dozen tiny
kernel launches), so several trials run side by side on one card, each in its own process
(a process measures its own trial's peak memory; threads would share one figure and the
GIL). ``N`` packs N trials on every card. ``auto`` packs as many as fit: each trial's range
test measures its peak memory (``torch.cuda.max_memory_allocated``, the data the process
holds included), and a card takes ``(usable share of its memory) / (peak * (1 +
margin_share) + margin_bytes)`` trials for the largest of its recent peaks, never more than
``cap``; until a first peak is known it takes one. The margin covers what the allocator
does not count: the CUDA context of each process (about 0.5 GiB) and cached blocks.

An out-of-memory error fails only its own trial (``search.service.objective``) and lowers
the card's ceiling to one trial fewer than were running when it happened (never below
one), for as long as the card's record lives: the workers in the slots above the ceiling
leave after their trial, and none is started in their place.

The record is a small JSON file per card in the placement folder (``<card>.packing.json``,
beside the slot locks of ``search.service.devices``), written atomically under a lock, so
the processes of one host (compose replicas included) share it; it is cleared when a card
has no live slot, so a new run does not inherit an old run's ceiling.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

GiB = 2**30
DEFAULT_CAP = 8
"""Most trials ``auto`` packs on one card (``--max-trials-per-gpu``): beyond about eight,
processes on one card gain little even under MPS and each costs a CUDA context."""
MARGIN_BYTES = GiB
"""Added to each trial's peak: its process's CUDA context and the allocator's cache."""
MARGIN_SHARE = 0.25
"""Added to each trial's peak as a share of it: designs larger than those measured so far,
and the evaluation batches a short range test may not have run."""
USABLE_SHARE = 0.9
"""Share of a card's memory ``auto`` packs into (the rest: the driver, other tenants)."""
RECENT_PEAKS = 16
"""Peaks a card remembers: packing follows the designs the search is trying now."""


@dataclass(frozen=True)
class PackingPolicy:
    """``trials_per_gpu`` trials on every card, or (None) as many as fit, up to ``cap``."""

    trials_per_gpu: int | None = None
    cap: int = DEFAULT_CAP
    margin_bytes: int = MARGIN_BYTES
    margin_share: float = MARGIN_SHARE
    usable_share: float = USABLE_SHARE

    def __post_init__(self) -> None:
        if self.trials_per_gpu is not None and self.trials_per_gpu < 1:
            raise ValueError(f"trials_per_gpu must be at least 1, got {self.trials_per_gpu}")
        if self.cap < 1:
            raise ValueError(f"cap must be at least 1, got {self.cap}")
        if self.margin_bytes < 0 or self.margin_share < 0:
            raise ValueError("margins must not be negative")
        if not 0 < self.usable_share <= 1:
            raise ValueError(f"usable_share must be in (0, 1], got {self.usable_share}")

    @property
    def auto(self) -> bool:
        return self.trials_per_gpu is None

    def trial_bytes(self, peak_bytes: int) -> int:
        """What one trial of this peak is counted as taking on its card."""
        return int(peak_bytes * (1 + self.margin_share)) + self.margin_bytes

    def fitting(self, total_bytes: int, peak_bytes: int) -> int:
        """Trials of ``peak_bytes`` that fit on a card of ``total_bytes`` (1 to ``cap``)."""
        fit = int(total_bytes * self.usable_share) // max(1, self.trial_bytes(peak_bytes))
        return max(1, min(self.cap, fit))

    def describe(self) -> str:
        return (f"{self.trials_per_gpu} trial(s) per GPU" if self.trials_per_gpu else
                f"auto (as many trials per GPU as fit, at most {self.cap})")


@dataclass(frozen=True)
class CardRecord:
    """What one card has learnt: its recent trials' peaks, and its ceiling after an OOM."""

    peaks: tuple[int, ...] = ()
    ceiling: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {"peaks": list(self.peaks), "ceiling": self.ceiling}

    @classmethod
    def from_json(cls, values: Any) -> CardRecord:
        """A record as written; anything unreadable is an empty record (it only guides)."""
        if not isinstance(values, dict):
            return cls()
        peaks = tuple(p for p in values.get("peaks") or () if isinstance(p, int) and p > 0)
        ceiling = values.get("ceiling")
        return cls(peaks[-RECENT_PEAKS:],
                   ceiling if isinstance(ceiling, int) and ceiling >= 1 else None)


class CardPacking:
    """The shared record of the card named ``name`` (its UUID) in ``folder``."""

    def __init__(self, folder: Path, name: str) -> None:
        slug = re.sub(r"[^A-Za-z0-9_.-]", "_", name)
        self.folder = folder
        self.name = name
        self.path = folder / f"{slug}.packing.json"
        self._lock_path = folder / f"{slug}.packing.guard"  # not a slot: no .lock

    @contextmanager
    def _locked(self) -> Iterator[None]:
        self.folder.mkdir(parents=True, exist_ok=True)
        with open(self._lock_path, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    def read(self) -> CardRecord:
        try:
            return CardRecord.from_json(json.loads(self.path.read_text()))
        except (OSError, ValueError):
            return CardRecord()

    def _write(self, record: CardRecord) -> None:
        temporary = self.path.with_name(f"{self.path.name}.{os.getpid()}.tmp")
        temporary.write_text(json.dumps(record.to_json()))
        os.replace(temporary, self.path)

    def observe_peak(self, peak_bytes: int) -> None:
        """A trial on this card measured ``peak_bytes`` in its range test."""
        if peak_bytes <= 0:
            return
        with self._locked():
            record = self.read()
            self._write(CardRecord((*record.peaks, int(peak_bytes))[-RECENT_PEAKS:],
                                   record.ceiling))

    def out_of_memory(self, running: int) -> int:
        """A trial ran out of memory while ``running`` trials shared the card: the ceiling
        drops to one fewer (at least 1, never up). Returns the new ceiling."""
        with self._locked():
            record = self.read()
            ceiling = max(1, running - 1)
            if record.ceiling is not None:
                ceiling = min(ceiling, record.ceiling)
            self._write(CardRecord(record.peaks, ceiling))
            return ceiling

    def reset(self) -> None:
        """Forget the card's record (a new run on an idle card)."""
        with self._locked():
            self.path.unlink(missing_ok=True)

    def target(self, policy: PackingPolicy, total_bytes: int) -> int:
        """How many trials the card should run now under ``policy``."""
        record = self.read()
        if policy.trials_per_gpu is not None:
            wanted = policy.trials_per_gpu
        elif not record.peaks:
            wanted = 1  # measure one trial before packing others beside it
        else:
            wanted = policy.fitting(total_bytes, max(record.peaks))
        return wanted if record.ceiling is None else min(wanted, record.ceiling)

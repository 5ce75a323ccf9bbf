"""Where a process computes: the device from a flag, a card of its own among the visible GPUs,
and how many CPU threads it may use.

``--device auto`` on a machine with several GPUs spreads the processes over the cards: each
process holds a lock file for a slot of the card it took (``<placement dir>/<card>.<k>.lock``,
``fcntl.flock``, released by the kernel when the process dies, however it dies) and a new
process takes the card whose slots are least held, then the one with most free memory. The
placement folder is ``$CNNSEARCH_PLACEMENT_DIR`` (compose points it at the shared volume, so
replicas of one host see each other) or a folder in the system's temp directory. Cards are
named by their UUID, so two machines sharing the folder never count each other's cards.
Pinning stays possible: ``--device cuda:1`` (or ``CUDA_VISIBLE_DEVICES``) takes that card,
several processes on one card on purpose included.

Several trials on one card (``--trials-per-gpu``): each runs in a process that holds one
slot of the card (``take_slot`` with a limit); how many slots a card offers is the packing
of ``search.service.packing``, and the slot a trial ran in is recorded with it. The cards
come from a ``DeviceInventory``: the visible CUDA cards, or a list a test makes up.

Where the device is chosen, the process's kernels are set once (``use_fast_kernels``): on
CUDA, cuDNN benchmarks its convolution algorithms (a trial's shapes are fixed) and fp32
matmuls may use TF32.
"""

from __future__ import annotations

import fcntl
import os
import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Protocol

import torch

from search.errors import UserError
from search.service.packing import CardPacking

PLACEMENT_ENV = "CNNSEARCH_PLACEMENT_DIR"
MAX_SLOTS = 64
"""Processes per card the placement counts; more still run, they just count as full."""


@dataclass(frozen=True)
class Card:
    """A visible GPU as placement sees it."""

    index: int
    uuid: str
    free_bytes: int
    total_bytes: int = 0
    name: str = ""
    """The card's model name (``NVIDIA H100 80GB HBM3``)."""
    device: str = ""
    """The torch device a process computes on there; "" is ``cuda:<index>`` (an inventory
    a test makes up may put its cards on ``cpu``)."""

    @property
    def torch_device(self) -> torch.device:
        return torch.device(self.device) if self.device else torch.device("cuda", self.index)


class DeviceInventory(Protocol):
    """Where the cards a process may use come from."""

    def cards(self) -> list[Card]: ...


class CudaInventory:
    """The visible CUDA cards (``CUDA_VISIBLE_DEVICES`` applies); ``only`` keeps one."""

    def __init__(self, only: int | None = None) -> None:
        self.only = only

    def cards(self) -> list[Card]:
        cards = visible_cards()
        return [c for c in cards if c.index == self.only] if self.only is not None else cards


def placement_dir() -> Path:
    folder = os.environ.get(PLACEMENT_ENV) or str(Path(tempfile.gettempdir())
                                                  / "cnnsearch-placement")
    return Path(folder)


class Placement:
    """The slot this process holds (for its lifetime) on the card or CPU it runs on:
    ``name`` is the card's UUID (or ``cpu``), ``slot`` its number (None past
    ``MAX_SLOTS``, where processes share an overflow lock)."""

    def __init__(self, handle: IO[str], name: str, slot: int | None = None,
                 folder: Path | None = None) -> None:
        self._handle = handle
        self.name = name
        self.slot = slot
        self.folder = folder

    @property
    def on_card(self) -> bool:
        return self.name != "cpu"

    @property
    def packing(self) -> CardPacking | None:
        """The shared record of the card this slot is on."""
        if self.folder is None or not self.on_card:
            return None
        return CardPacking(self.folder, self.name)

    def observe_peak(self, peak_bytes: int) -> None:
        """A trial in this slot measured ``peak_bytes``: ``auto`` packing sizes from it."""
        if self.packing is not None:
            self.packing.observe_peak(peak_bytes)

    def out_of_memory(self) -> int | None:
        """A trial in this slot ran out of memory: lower the card's ceiling below the
        trials it holds now. Returns the new ceiling (None off a card)."""
        if self.packing is None or self.folder is None:
            return None
        return self.packing.out_of_memory(held_slots(self.folder, self.name))

    def over_ceiling(self) -> bool:
        """Whether this slot is above its card's ceiling (an OOM lowered it): its worker
        should leave after the trial it runs."""
        packing = self.packing
        if packing is None or self.slot is None:
            return False
        ceiling = packing.read().ceiling
        return ceiling is not None and self.slot >= ceiling

    def release(self) -> None:
        self._handle.close()  # closing drops the flock


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", text)


def _try_lock(path: Path) -> IO[str] | None:
    handle = open(path, "a")  # noqa: SIM115 - held for the process's lifetime
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        return None
    return handle


def held_slots(folder: Path, name: str) -> int:
    """How many live processes hold a slot of ``name`` (a card's UUID, or ``cpu``)."""
    count = 0
    for path in folder.glob(f"{_slug(name)}.*.lock"):
        handle = _try_lock(path)
        if handle is None:
            count += 1
        else:
            handle.close()
    return count


def take_slot(folder: Path, name: str) -> Placement:
    """Hold the first free slot of ``name``; past ``MAX_SLOTS`` held, share the last one."""
    placement = take_slot_within(folder, name, MAX_SLOTS)
    if placement is not None:
        return placement
    return Placement(open(folder / f"{_slug(name)}.overflow.lock", "a"), name,  # noqa: SIM115
                     folder=folder)


def take_slot_within(folder: Path, name: str, limit: int) -> Placement | None:
    """Hold the first free slot among the first ``limit`` of ``name``; None when they are
    all held (a card packed full). A process that dies frees its slot: the kernel drops
    its lock."""
    folder.mkdir(parents=True, exist_ok=True)
    for k in range(min(limit, MAX_SLOTS)):
        handle = _try_lock(folder / f"{_slug(name)}.{k}.lock")
        if handle is not None:
            return Placement(handle, name, k, folder)
    return None


def choose_card(cards: Sequence[Card], folder: Path) -> tuple[Card, Placement]:
    """The card with the fewest cnnsearch processes on it, then the most free memory, then
    the lowest index; its slot is held before returning, so processes starting together
    spread (the choice and the lock are made under one folder-wide lock)."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "choose.lock", "a") as guard:
        fcntl.flock(guard, fcntl.LOCK_EX)
        card = min(cards, key=lambda c: (held_slots(folder, c.uuid), -c.free_bytes, c.index))
        return card, take_slot(folder, card.uuid)


def visible_cards() -> list[Card]:
    cards = []
    for index in range(torch.cuda.device_count()):
        properties = torch.cuda.get_device_properties(index)
        uuid = str(getattr(properties, "uuid", "") or f"{properties.name}-{index}")
        free, total = torch.cuda.mem_get_info(index)
        cards.append(Card(index, uuid, int(free), int(total), str(properties.name)))
    return cards


def use_fast_kernels(device: torch.device) -> None:
    """Set the process's kernels for ``device``, once, where the device is chosen: on CUDA
    cuDNN picks the fastest convolution algorithm for each shape (a trial's shapes are
    fixed, so it benchmarks once) and fp32 matmuls use TF32 (bf16 and fp16 autocast do
    not need it). Nothing changes on the CPU."""
    if torch.device(device).type != "cuda":
        return
    torch.backends.cudnn.benchmark = True
    torch.set_float32_matmul_precision("high")


_PLACEMENTS: list[Placement] = []
"""Slots this process holds: kept referenced so their locks live as long as the process."""


def resolve_device(name: str | None) -> torch.device:
    """``auto``: a card of its own among the visible GPUs (see the module docstring), else the
    CPU; ``cpu``, ``cuda`` (card 0) or ``cuda:N`` as given. A missing GPU is a user error.
    The process's kernels are set for it (``use_fast_kernels``)."""
    device, _placement = place_process(name)
    return device


def place_process(name: str | None) -> tuple[torch.device, Placement | None]:
    """``resolve_device``, and the card slot the process now holds (``auto`` on a GPU
    machine; None otherwise): its trials record it."""
    device, placement = _placed(name)
    use_fast_kernels(device)
    return device, placement


def _placed(name: str | None) -> tuple[torch.device, Placement | None]:
    if name in (None, "", "auto"):
        if not torch.cuda.is_available():
            return torch.device("cpu"), None
        card, placement = choose_card(visible_cards(), placement_dir())
        _PLACEMENTS.append(placement)
        return torch.device("cuda", card.index), placement
    return checked_device(name), None


def checked_device(name: str) -> torch.device:
    """``cpu``, ``cuda`` or ``cuda:N``; a missing GPU or another name is a user error."""
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


def default_threads(cores: int | None = None, folder: Path | None = None) -> int:
    """CPU threads for a new process: the cores shared by the cnnsearch processes already
    computing on this machine's CPU and this one (measured here: 2 threads beside another
    torch process ran 3.5x slower than 1)."""
    cores = cores or os.cpu_count() or 1
    others = held_slots(folder or placement_dir(), "cpu")
    return max(1, cores // (others + 1))


def use_threads(threads: int | None, device: torch.device) -> int:
    """Set torch's intra-op threads: ``threads`` if given, else ``default_threads()``; a CPU
    process holds a ``cpu`` slot so the processes started after it share the cores."""
    if device.type == "cpu":
        folder = placement_dir()
        chosen = threads or default_threads(folder=folder)
        _PLACEMENTS.append(take_slot(folder, "cpu"))
    else:
        chosen = threads or 1  # the GPU computes; one thread feeds it
    torch.set_num_threads(chosen)
    return chosen

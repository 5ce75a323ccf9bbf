"""How much memory one process may ask for, so an impossible dataset or design is refused
with a message before the allocation instead of ending in a MemoryError or the OOM killer.

The budget is half of this machine's memory (or of its container's cgroup limit, when that
is lower), and never more than what the process' own ``RLIMIT_DATA``/``RLIMIT_AS`` still
leave. Estimates compared with it are rough upper bounds; the point is to catch a 4096-pixel
``image_size`` or a million-unit layer, not to pack memory tightly.
"""

from __future__ import annotations

import os
import resource
from pathlib import Path

from data.dataset import DatasetError

MEMORY_FRACTION = 0.5
"""Share of the machine's (or container's) memory one process may plan to use."""

_CGROUP_LIMITS = (Path("/sys/fs/cgroup/memory.max"),
                  Path("/sys/fs/cgroup/memory/memory.limit_in_bytes"))


def _physical_bytes() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, OSError, ValueError):
        return None


def _cgroup_bytes() -> int | None:
    for path in _CGROUP_LIMITS:
        try:
            text = path.read_text().strip()
        except OSError:
            continue
        if text.isdigit() and int(text) < 2**60:  # "max" or a huge number: no limit
            return int(text)
    return None


def _status_bytes(field: str) -> int:
    """A ``VmData``/``VmSize`` line of ``/proc/self/status`` in bytes (0 when unknown)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def _budget() -> tuple[int, str]:
    """The budget in bytes, and where it comes from (for the message)."""
    physical, cgroup = _physical_bytes(), _cgroup_bytes()
    limit, source = 2**62, "no limit found"
    if physical:
        limit, source = int(physical * MEMORY_FRACTION), "half of this machine's memory"
    if cgroup and cgroup * MEMORY_FRACTION < limit:
        limit, source = int(cgroup * MEMORY_FRACTION), "half of this container's memory limit"
    for kind, name, used_field in ((resource.RLIMIT_DATA, "RLIMIT_DATA", "VmData"),
                                   (resource.RLIMIT_AS, "RLIMIT_AS", "VmSize")):
        soft, _ = resource.getrlimit(kind)
        if soft != resource.RLIM_INFINITY and soft - _status_bytes(used_field) < limit:
            limit, source = soft - _status_bytes(used_field), f"what {name} (ulimit) leaves"
    return max(limit, 0), source


def memory_limit_bytes() -> int:
    """The most one process should plan to allocate (see the module docstring)."""
    return _budget()[0]


def format_bytes(size: float) -> str:
    """``1536`` -> ``'1.5 KiB'``; for messages."""
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if size < 1024 or unit == "PiB":
            return f"{size:.0f} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def check_memory(what: str, needed: int, hint: str) -> None:
    """``DatasetError`` when ``needed`` bytes exceed the budget: ``what`` would need X, at most
    Y is available; ``hint`` says what to change."""
    limit, source = _budget()
    if needed > limit:
        raise DatasetError(
            f"{what} would need about {format_bytes(needed)} of memory, more than the "
            f"{format_bytes(limit)} this process may use ({source}); {hint}"
        )

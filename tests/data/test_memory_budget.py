"""The memory budget that loaders and the config's estimates are checked against."""

from __future__ import annotations

import os
import resource

import pytest

import data.memory_budget
from data.dataset import DatasetError
from data.memory_budget import check_memory, format_bytes, memory_limit_bytes


def test_the_budget_is_at_most_half_of_physical_memory() -> None:
    physical = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    assert 0 < memory_limit_bytes() <= physical // 2


def test_a_ulimit_lowers_the_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    real = resource.getrlimit

    def limited(kind: int) -> tuple[int, int]:
        return (3 * 2**30, resource.RLIM_INFINITY) if kind == resource.RLIMIT_DATA else real(kind)

    monkeypatch.setattr(resource, "getrlimit", limited)
    assert memory_limit_bytes() <= 3 * 2**30
    with pytest.raises(DatasetError, match="RLIMIT_DATA"):
        check_memory("this", 4 * 2**30, "ask for less")


def test_a_cgroup_limit_lowers_the_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(data.memory_budget, "_cgroup_bytes", lambda: 2**30)
    assert memory_limit_bytes() <= 2**29


def test_the_message_says_what_how_much_and_what_to_change(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(data.memory_budget, "_budget", lambda: (2**30, "a test budget"))
    check_memory("fine", 2**30, "nothing")
    with pytest.raises(DatasetError) as info:
        check_memory("the images", 3 * 2**40, "use fewer")
    assert str(info.value) == ("the images would need about 3.0 TiB of memory, more than the "
                               "1.0 GiB this process may use (a test budget); use fewer")


def test_format_bytes() -> None:
    assert [format_bytes(n) for n in (0, 1023, 1024, 1536 * 2**20)] == [
        "0 bytes", "1023 bytes", "1.0 KiB", "1.5 GiB"]

"""Placement: processes spread over the visible GPUs; CPU processes share the cores."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from search.errors import UserError
from search.service.devices import (
    Card,
    choose_card,
    default_threads,
    held_slots,
    resolve_device,
    take_slot,
    use_threads,
)

GiB = 2**30


def cards(count: int, free: list[int] | None = None) -> list[Card]:
    free = free or [40 * GiB] * count
    return [Card(i, f"GPU-{i:04d}-uuid", free[i]) for i in range(count)]


def test_n_workers_land_on_distinct_cards_then_double_up(tmp_path: Path) -> None:
    visible = cards(4)
    placed = [choose_card(visible, tmp_path) for _ in range(8)]
    first = [card.index for card, _ in placed[:4]]
    assert sorted(first) == [0, 1, 2, 3]  # four workers, four cards
    second = [card.index for card, _ in placed[4:]]
    assert sorted(second) == [0, 1, 2, 3]  # then two a card, on purpose
    assert all(held_slots(tmp_path, c.uuid) == 2 for c in visible)


def test_a_dead_workers_card_is_free_again(tmp_path: Path) -> None:
    visible = cards(2)
    (card_a, slot_a), (card_b, _slot_b) = (choose_card(visible, tmp_path),
                                            choose_card(visible, tmp_path))
    assert {card_a.index, card_b.index} == {0, 1}
    slot_a.release()  # the kernel drops a dead process's lock the same way
    card_c, _ = choose_card(visible, tmp_path)
    assert card_c.index == card_a.index


def test_ties_go_to_the_card_with_most_free_memory(tmp_path: Path) -> None:
    visible = cards(3, free=[10 * GiB, 70 * GiB, 30 * GiB])
    card, _ = choose_card(visible, tmp_path)
    assert card.index == 1


def test_cards_are_counted_by_uuid_not_index(tmp_path: Path) -> None:
    """Two machines sharing the folder each have a card 0; they are different cards."""
    here = [Card(0, "GPU-aaaa", GiB)]
    there = [Card(0, "GPU-bbbb", GiB)]
    kept = [choose_card(here, tmp_path)]  # a slot lives as long as its Placement
    assert held_slots(tmp_path, "GPU-bbbb") == 0
    kept.append(choose_card(there, tmp_path))
    assert held_slots(tmp_path, "GPU-aaaa") == 1 and held_slots(tmp_path, "GPU-bbbb") == 1


def test_cpu_processes_share_the_cores(tmp_path: Path) -> None:
    assert default_threads(cores=16, folder=tmp_path) == 16
    slots = [take_slot(tmp_path, "cpu") for _ in range(3)]
    assert default_threads(cores=16, folder=tmp_path) == 4  # three others and this one
    assert default_threads(cores=2, folder=tmp_path) == 1
    for slot in slots:
        slot.release()
    assert default_threads(cores=16, folder=tmp_path) == 16


def test_use_threads_sets_torch_and_holds_a_cpu_slot(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CNNSEARCH_PLACEMENT_DIR", str(tmp_path))
    before = torch.get_num_threads()
    try:
        assert use_threads(1, torch.device("cpu")) == 1
        assert torch.get_num_threads() == 1
        assert held_slots(tmp_path, "cpu") == 1
    finally:
        torch.set_num_threads(before)


def test_explicit_devices_and_errors() -> None:
    assert resolve_device("cpu") == torch.device("cpu")
    if not torch.cuda.is_available():
        assert resolve_device("auto") == torch.device("cpu")
        with pytest.raises(UserError, match="no CUDA GPU"):
            resolve_device("cuda:1")
    with pytest.raises(UserError, match="unknown device"):
        resolve_device("tpu:0")


def test_fast_kernels_change_nothing_on_the_cpu() -> None:
    from search.service.devices import use_fast_kernels

    benchmark, matmul = torch.backends.cudnn.benchmark, torch.get_float32_matmul_precision()
    use_fast_kernels(torch.device("cpu"))
    assert torch.backends.cudnn.benchmark == benchmark
    assert torch.get_float32_matmul_precision() == matmul


@pytest.mark.gpu
def test_visible_cards_carry_their_memory_and_name_and_get_fast_kernels() -> None:
    from search.service.devices import CudaInventory, use_fast_kernels

    cards = CudaInventory().cards()
    assert cards and all(c.total_bytes >= c.free_bytes > 0 and c.name for c in cards)
    assert [c.index for c in CudaInventory(only=0).cards()] == [0]
    assert cards[0].torch_device == torch.device("cuda", 0)
    use_fast_kernels(cards[0].torch_device)
    assert torch.backends.cudnn.benchmark
    assert torch.get_float32_matmul_precision() == "high"

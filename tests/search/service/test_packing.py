"""Several trials per card (``search.service.packing``), on a made-up inventory of cards with
made-up memory figures: how many trials a card takes, that N trials are placed and no more,
that an out-of-memory error lowers the packing of its card (and of no other), and that a
dead process frees its slot. The worker processes themselves are in test_packed_workers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from optuna.trial import TrialState

import search.service.objective as objective_module
from search.method.prepared_data import DataOnDevice
from search.record import OOM, TrialRecord
from search.service.devices import Card, held_slots, take_slot_within
from search.service.packing import (
    CardPacking,
    CardRecord,
    GiB,
    PackingPolicy,
)
from tests.conftest import ROOT
from tests.search.service.test_objective import config, run, tiny_dataset


class FakeInventory:
    """Cards as a test wants them: a ``DeviceInventory`` without torch.cuda."""

    def __init__(self, *totals_gib: int) -> None:
        self._cards = [Card(i, f"GPU-fake-{i}", total * GiB, total * GiB, f"Fake {total}GB",
                            device="cpu") for i, total in enumerate(totals_gib)]

    def cards(self) -> list[Card]:
        return list(self._cards)


def place_all(folder: Path, card: Card, policy: PackingPolicy) -> list:
    """Take slots of ``card`` until its packing is full; the slots held."""
    target = CardPacking(folder, card.uuid).target(policy, card.total_bytes)
    held = []
    while (slot := take_slot_within(folder, card.uuid, target)) is not None:
        held.append(slot)
    return held


def test_a_packing_cap_below_one_is_refused() -> None:
    """--trials-per-gpu itself is read by the config checker (tests/search/config)."""
    with pytest.raises(ValueError, match="cap"):
        PackingPolicy(cap=0)


@pytest.mark.parametrize(("total_gib", "peak_gib", "fits"), [
    (80, 6, 8),     # 72 GiB usable / 8.5 GiB a trial = 8, the cap
    (80, 12, 4),    # 12 * 1.25 + 1 = 16 GiB a trial: 4 fit in 72
    (24, 6, 2),     # 21.6 / 8.5
    (24, 40, 1),    # never fewer than one: its OOM says the rest
    (141, 0.5, 8),  # tiny designs on a big card: the cap, not 100 processes
])
def test_auto_fits_trials_by_their_peak_plus_a_margin(total_gib: int, peak_gib: float,
                                                      fits: int) -> None:
    policy = PackingPolicy()
    assert policy.fitting(int(total_gib * GiB), int(peak_gib * GiB)) == fits
    assert PackingPolicy(cap=2).fitting(80 * GiB, GiB) == 2


def test_n_trials_are_placed_on_each_card_and_no_more(tmp_path: Path) -> None:
    inventory = FakeInventory(80, 24)
    for per_gpu in (1, 3):
        folder = tmp_path / f"fixed-{per_gpu}"
        placed = {c.uuid: place_all(folder, c, PackingPolicy(per_gpu))
                  for c in inventory.cards()}
        assert {uuid: len(slots) for uuid, slots in placed.items()} == {
            "GPU-fake-0": per_gpu, "GPU-fake-1": per_gpu}
        assert [s.slot for s in placed["GPU-fake-0"]] == list(range(per_gpu))


def test_auto_places_one_trial_until_a_peak_is_measured_then_as_many_as_fit(
        tmp_path: Path) -> None:
    big, small = FakeInventory(80, 24).cards()
    policy = PackingPolicy()
    assert [len(place_all(tmp_path / "first", c, policy)) for c in (big, small)] == [1, 1]
    for card in (big, small):
        CardPacking(tmp_path, card.uuid).observe_peak(4 * GiB)
        CardPacking(tmp_path, card.uuid).observe_peak(6 * GiB)  # the largest recent one counts
    held = {c.uuid: place_all(tmp_path, c, policy) for c in (big, small)}
    assert len(held[big.uuid]) == 8 and len(held[small.uuid]) == 2
    assert held_slots(tmp_path, big.uuid) == 8 and held_slots(tmp_path, small.uuid) == 2


def test_an_oom_lowers_the_packing_of_its_card_only(tmp_path: Path) -> None:
    big, small = FakeInventory(80, 24).cards()
    policy = PackingPolicy(trials_per_gpu=4)
    held = {c.uuid: place_all(tmp_path, c, policy) for c in (big, small)}
    assert [len(held[c.uuid]) for c in (big, small)] == [4, 4]
    ceiling = held[small.uuid][3].out_of_memory()  # slot 3 ran out while 4 shared the card
    assert ceiling == 3
    packing = CardPacking(tmp_path, small.uuid)
    assert packing.target(policy, small.total_bytes) == 3
    assert CardPacking(tmp_path, big.uuid).target(policy, big.total_bytes) == 4
    assert [slot.over_ceiling() for slot in held[small.uuid]] == [False, False, False, True]
    assert not any(slot.over_ceiling() for slot in held[big.uuid])
    held[small.uuid].pop().release()  # its worker leaves after the trial
    assert held[small.uuid][0].out_of_memory() == 2  # another OOM, three running: down again
    held[small.uuid][1].out_of_memory()
    held[small.uuid][2].out_of_memory()
    assert packing.target(policy, small.total_bytes) == 2  # never up again, at least 1
    for slot in held[small.uuid]:
        slot.release()
    lone = take_slot_within(tmp_path, small.uuid, 1)
    assert lone is not None and lone.out_of_memory() == 1  # alone and still too big: 1
    auto = PackingPolicy()
    packing.observe_peak(GiB)
    assert packing.target(auto, small.total_bytes) == 1  # the ceiling bounds auto too


def test_a_card_record_survives_garbage_and_keeps_recent_peaks(tmp_path: Path) -> None:
    packing = CardPacking(tmp_path, "GPU-x")
    assert packing.read() == CardRecord()
    packing.path.write_text("{not json")
    assert packing.read() == CardRecord()
    for k in range(1, 30):
        packing.observe_peak(k)
    assert packing.read().peaks == tuple(range(14, 30))
    packing.observe_peak(0)  # not a measurement
    assert packing.read().peaks[-1] == 29
    packing.reset()
    assert packing.read() == CardRecord() and not packing.path.exists()


def test_a_dead_process_frees_its_slot(tmp_path: Path) -> None:
    """A worker killed with SIGKILL (no clean-up of its own): the kernel drops its lock, and
    the next process takes its slot."""
    code = ("import sys, time; from pathlib import Path; "
            "from search.service.devices import take_slot_within; "
            f"slot = take_slot_within(Path({str(tmp_path)!r}), 'GPU-fake-0', 2); "
            "print(slot.slot, flush=True); time.sleep(600)")
    first = take_slot_within(tmp_path, "GPU-fake-0", 2)
    assert first is not None and first.slot == 0
    child = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE,
                             text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "1"
        assert held_slots(tmp_path, "GPU-fake-0") == 2
        assert take_slot_within(tmp_path, "GPU-fake-0", 2) is None  # the card is full
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert held_slots(tmp_path, "GPU-fake-0") == 1
    again = take_slot_within(tmp_path, "GPU-fake-0", 2)
    assert again is not None and again.slot == 1


def test_a_trial_that_runs_out_of_memory_fails_alone_and_lowers_its_card(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """In the objective: the trial is FAIL (oom) with its card and slot recorded, the card's
    ceiling drops below the trials it held, and the next trial of the worker runs."""
    card = FakeInventory(24).cards()[0]
    slots = [take_slot_within(tmp_path, card.uuid, 8) for _ in range(3)]
    tiny = DataOnDevice(tiny_dataset(), torch.device("cpu"), eval_batch_size=64)
    study, objective = run(config(), tiny, placement=slots[2])
    real_run_lrrt = objective_module.run_lrrt
    calls = []

    def first_runs_out(*args: object, **kwargs: object):
        calls.append(1)
        if len(calls) == 1:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 1 GiB")
        return real_run_lrrt(*args, **kwargs)

    monkeypatch.setattr(objective_module, "run_lrrt", first_runs_out)
    study.optimize(objective, n_trials=2, catch=(Exception,))
    failed, completed = (TrialRecord.from_frozen(t) for t in study.trials)
    assert failed.state == TrialState.FAIL and failed.reason == OOM
    assert completed.state == TrialState.COMPLETE  # the worker goes on with the next one
    for record in (failed, completed):
        assert (record.card, record.slot, record.precision) == (card.uuid, 2, "fp32")
    assert CardPacking(tmp_path, card.uuid).read().ceiling == 2
    assert slots[2].over_ceiling() and not slots[1].over_ceiling()
    assert len(CardPacking(tmp_path, card.uuid).read().peaks) == 1  # the second trial's


@pytest.mark.gpu
def test_a_trial_on_a_card_records_its_cuda_peak_for_packing(tmp_path: Path) -> None:
    from search.service.devices import CudaInventory

    card = CudaInventory(only=0).cards()[0]
    slot = take_slot_within(tmp_path, card.uuid, 8)
    data = DataOnDevice(tiny_dataset(), torch.device("cuda"), eval_batch_size=64)
    study, objective = run(config(), data, placement=slot)
    study.optimize(objective, n_trials=1)
    record = TrialRecord.from_frozen(study.trials[0])
    assert record.state == TrialState.COMPLETE
    assert (record.card, record.slot, record.device) == (card.uuid, 0, "cuda")
    assert record.precision in ("bf16", "fp16")
    assert record.lrrt.memory_kind == "cuda_peak_allocated"
    assert CardPacking(tmp_path, card.uuid).read().peaks == (record.lrrt.peak_memory_bytes,)

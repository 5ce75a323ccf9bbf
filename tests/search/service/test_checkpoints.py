"""Checkpoints: atomic replace, bound to their owner, weights-only loading, and every file
that cannot be used discarded with one warning instead of raised."""

from __future__ import annotations

import logging
import os
import pickle
import signal
from pathlib import Path

import pytest
import torch

from search.service.checkpoints import (
    CheckpointOwner,
    CheckpointStore,
    config_hash,
    new_checkpoint_key,
)
from search.service.stop_flag import StopFlag

CPU = torch.device("cpu")
OWNER = CheckpointOwner("study", "study-7-abc", config_hash({"blocks": 2}))


class WritesAMarker:
    """A pickle that, if it were ever unpickled with full pickle, would write a file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.write_text, (self.marker, "code ran"))


def test_save_load_delete_round_trip(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path / "ckpt")
    payload = {"model": {"w": torch.arange(4.0)}, "training": {"epochs_done": 3, "history": []}}
    path = store.save(OWNER, payload)
    assert path == store.path(OWNER.key) and path.exists()
    assert list(path.parent.iterdir()) == [path]  # no temp file left behind
    loaded = store.load(OWNER, CPU)
    assert torch.equal(loaded["model"]["w"], torch.arange(4.0))
    assert loaded["training"]["epochs_done"] == 3
    assert loaded["owner"] == OWNER.to_dict()
    store.delete(OWNER.key)
    assert store.load(OWNER, CPU) is None
    store.delete(OWNER.key)  # deleting twice is fine


def test_keys_are_unique_and_made_safe_file_names(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path)
    assert store.path("../../etc/passwd x").parent == tmp_path
    keys = {new_checkpoint_key("study", 3) for _ in range(50)}
    assert len(keys) == 50 and all(k.startswith("study-3-") for k in keys)


def test_a_new_save_replaces_the_old_one_whole(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path)
    store.save(OWNER, {"epoch": torch.tensor(1)})
    store.save(OWNER, {"epoch": torch.tensor(2)})
    assert int(store.load(OWNER, CPU)["epoch"]) == 2


def test_a_failed_write_keeps_the_previous_checkpoint_and_no_temp_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    store = CheckpointStore(tmp_path)
    store.save(OWNER, {"epoch": torch.tensor(1)})

    def disk_full(*_args, **_kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", disk_full)
    with pytest.raises(OSError, match="No space left"):
        store.save(OWNER, {"epoch": torch.tensor(2)})
    monkeypatch.undo()
    assert [p.name for p in tmp_path.iterdir()] == [store.path(OWNER.key).name]
    assert int(store.load(OWNER, CPU)["epoch"]) == 1


def test_the_hostile_pickle_does_run_code_when_unpickled(tmp_path: Path) -> None:
    """So that the tests below, where the marker never appears, prove something."""
    pickle.loads(pickle.dumps(WritesAMarker(tmp_path / "marker")))
    assert (tmp_path / "marker").read_text() == "code ran"


def hostile_files(store: CheckpointStore, marker: Path) -> dict[str, bytes]:
    """What a checkpoint folder may hold that no trial of ours wrote."""
    store.save(OWNER, {"model": {"w": torch.arange(64.0)}})
    whole = store.path(OWNER.key).read_bytes()
    return {
        "truncated": whole[: len(whole) // 2],
        "random": os.urandom(4096),
        "pickle": pickle.dumps({"model": WritesAMarker(marker)}),
        "empty": b"",
    }


def test_unreadable_and_hostile_files_are_discarded_without_running_code(
    tmp_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    store = CheckpointStore(tmp_path / "ckpt")
    marker = tmp_path / "marker"
    for name, content in hostile_files(store, marker).items():
        store.path(OWNER.key).write_bytes(content)
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="cnnsearch.checkpoints"):
            assert store.load(OWNER, CPU) is None, name
        assert not store.path(OWNER.key).exists(), name
        [warning] = caplog.records
        assert "discarded checkpoint" in warning.getMessage()
        assert "\n" not in warning.getMessage() and warning.exc_info is None
    assert not marker.exists()


def test_someone_elses_checkpoint_is_not_loaded(tmp_path: Path,
                                                caplog: pytest.LogCaptureFixture) -> None:
    store = CheckpointStore(tmp_path)
    other_design = CheckpointOwner(OWNER.study, OWNER.key, config_hash({"blocks": 3}))
    other_study = CheckpointOwner("another", OWNER.key, OWNER.config_hash)
    for owner in (other_design, other_study):
        store.save(owner, {"model": {"w": torch.zeros(2)}})
        with caplog.at_level(logging.WARNING, logger="cnnsearch.checkpoints"):
            assert store.load(OWNER, CPU) is None
        assert "belongs to another trial or design" in caplog.records[-1].getMessage()
    torch.save({"model": {"w": torch.zeros(2)}}, store.path(OWNER.key))  # no owner at all
    assert store.load(OWNER, CPU) is None
    assert "names no owner" in caplog.records[-1].getMessage()


def test_stop_flag_turns_sigterm_into_a_flag() -> None:
    previous = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    try:
        flag = StopFlag().install()
        assert not flag.is_set()
        os.kill(os.getpid(), signal.SIGTERM)
        assert flag.wait(5) and flag.signal_name == "SIGTERM"
    finally:
        signal.signal(signal.SIGTERM, previous[0])
        signal.signal(signal.SIGINT, previous[1])


def test_installed_stop_flag_gives_the_handlers_back() -> None:
    before = signal.getsignal(signal.SIGINT)
    flag = StopFlag()
    with flag.installed():
        os.kill(os.getpid(), signal.SIGINT)
        assert flag.wait(5) and flag.signal_name == "SIGINT"
    assert signal.getsignal(signal.SIGINT) is before


def test_a_study_name_of_the_longest_allowed_length_still_checkpoints(tmp_path: Path) -> None:
    """A 256-character study name (the limit) made a key too long for a file name (OSError
    36); the file name is cut and ends with a hash of the key, and the key still owns it."""
    from search.config.checkers import STUDY_NAME

    name = STUDY_NAME("study", "é" * 256)
    store = CheckpointStore(tmp_path)
    keys = [new_checkpoint_key(name, number) for number in (7, 8)]
    for key in keys:
        owner = CheckpointOwner(name, key, "hash")
        path = store.save(owner, {"weights": torch.ones(2)})
        assert len(path.name.encode()) <= 200 and path.exists()
        assert store.load(owner, torch.device("cpu"))["weights"].tolist() == [1.0, 1.0]
    assert store.path(keys[0]) != store.path(keys[1])
    short = new_checkpoint_key("short", 1)
    assert store.path(short).name == f"{short}.pt"  # the names older versions wrote

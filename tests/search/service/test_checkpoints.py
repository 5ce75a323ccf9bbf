"""Checkpoints: atomic replace, weights-only loading, a full training resume round trip."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
import torch

from search.service.checkpoints import CheckpointStore
from search.service.stop_flag import StopFlag


def test_save_load_delete_round_trip(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path / "ckpt")
    payload = {"model": {"w": torch.arange(4.0)}, "training": {"epochs_done": 3, "history": []}}
    path = store.save("study-7", payload)
    assert path == store.path("study-7") and path.exists()
    assert list(path.parent.iterdir()) == [path]  # no temp file left behind
    loaded = store.load("study-7", torch.device("cpu"))
    assert torch.equal(loaded["model"]["w"], torch.arange(4.0))
    assert loaded["training"]["epochs_done"] == 3
    store.delete("study-7")
    assert store.load("study-7", torch.device("cpu")) is None
    store.delete("study-7")  # deleting twice is fine


def test_keys_are_made_safe_file_names(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path)
    assert store.path("../../etc/passwd x").parent == tmp_path


def test_a_new_save_replaces_the_old_one_whole(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path)
    store.save("k", {"epoch": torch.tensor(1)})
    store.save("k", {"epoch": torch.tensor(2)})
    assert int(store.load("k", torch.device("cpu"))["epoch"]) == 2


def test_checkpoints_are_loaded_weights_only(tmp_path: Path) -> None:
    """A checkpoint holding arbitrary objects is refused instead of being executed."""
    store = CheckpointStore(tmp_path)
    torch.save({"evil": Path("/")}, store.path("bad"))
    with pytest.raises(Exception, match="[Ww]eights only"):
        store.load("bad", torch.device("cpu"))


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

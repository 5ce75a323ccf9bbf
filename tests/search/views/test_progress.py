"""Progress display: a line rewritten in place on a terminal, plain lines elsewhere; ETAs."""

from __future__ import annotations

import io
import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest

from search.views.progress import (
    SearchProgress,
    StatusLine,
    TrainProgress,
    format_duration,
    format_eta,
)
from tests.conftest import ROOT, needs_fashion_mnist, tiny_config, write_config


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_durations() -> None:
    assert [format_duration(s) for s in (0, 9.6, 75, 3725)] == ["0s", "10s", "1m15s", "1h02m"]
    assert format_eta(None) == "ETA ?" and format_eta(61) == "ETA 1m01s"


def test_plain_output_gets_one_line_per_epoch_and_nothing_rewritten() -> None:
    out, clock = io.StringIO(), FakeClock()
    progress = SearchProgress(out, total_trials=2, clock=clock)
    progress.trial_started(0, "B2FL4Adam", epochs=2)
    clock.now += 10
    progress.epoch(1, 2, 0.0123, 0.61)
    assert "\r" not in out.getvalue() and "\x1b" not in out.getvalue()
    assert out.getvalue() == ("trial 1/2 (#0 B2FL4Adam)  epoch 1/2  lr 0.0123  val acc 0.6100  "
                              "ETA 30s\n")  # this epoch, the next, and one more such trial


def test_terminal_output_is_rewritten_in_place_and_cleared_for_other_lines() -> None:
    out, clock = Terminal(), FakeClock()
    progress = SearchProgress(out, total_trials=3, clock=clock, width=200)
    assert progress.live
    progress.trial_started(4, "B1FL2SGD", epochs=5)
    assert out.getvalue() == "\rtrial 1/3 (#4 B1FL2SGD)  LR range test ...  ETA ?\x1b[K"
    clock.now += 2
    progress.epoch(1, 5, 0.001, 0.5)
    assert out.getvalue().endswith(
        "\rtrial 1/3 (#4 B1FL2SGD)  epoch 1/5  lr 0.001  val acc 0.5000  ETA 28s\x1b[K")
    assert "\n" not in out.getvalue()
    print("[1/3] trial 4 ...", file=progress.stream)  # the per-trial line: clears first
    assert out.getvalue().endswith("\r\x1b[K[1/3] trial 4 ...\n")


def test_terminal_line_is_cut_to_the_width() -> None:
    out = Terminal()
    status = StatusLine(out, width=20)
    status.show("x" * 100)
    assert out.getvalue() == "\r" + "x" * 19 + "\x1b[K"
    status.log("kept")
    assert out.getvalue().endswith("\r\x1b[Kkept\n")


def test_search_eta_uses_the_trial_throughput_and_the_timeout() -> None:
    clock = FakeClock()
    progress = SearchProgress(io.StringIO(), total_trials=4, clock=clock)
    study = optuna.create_study()
    progress.trial_started(0, "A", epochs=2)
    assert progress.eta() is None
    clock.now += 30
    progress(study, None)  # one trial took 30 s; three left
    progress.trial_started(1, "B", epochs=2)
    clock.now += 10
    assert progress.eta() == pytest.approx(3 * 30 - 10)  # three trials of 30 s, 10 s done
    timed = SearchProgress(io.StringIO(), total_trials=None, timeout=60, clock=clock)
    clock.now += 15
    assert timed.eta() == pytest.approx(45)


def test_current_trial_epoch_pace_bounds_the_eta_from_below() -> None:
    clock = FakeClock()
    progress = SearchProgress(io.StringIO(), total_trials=2, clock=clock)
    study = optuna.create_study()
    progress.trial_started(0, "A", epochs=1)
    clock.now += 1
    progress(study, None)  # a quick pruned trial: 1 s
    progress.trial_started(1, "B", epochs=10)
    clock.now += 5
    progress.epoch(1, 10, 0.01, 0.3)  # 5 s per epoch, 9 epochs left
    assert progress.eta() == pytest.approx(45)


def test_shared_progress_counts_every_workers_trials() -> None:
    study = optuna.create_study()
    for _ in range(3):
        study.optimize(lambda trial: 1.0, n_trials=1)
    progress = SearchProgress(io.StringIO(), total_trials=10, shared=True, finished_before=1)
    progress(study, study.trials[-1])  # two finished since we started (one elsewhere)
    assert progress.finished == 2
    assert progress._prefix() == "trial 4/10"


def test_train_progress_lines_and_eta() -> None:
    out = io.StringIO()
    progress = TrainProgress(out, runs=2, epochs=3)
    progress.epoch(1, 1, 0.001, 0.9, 0.7, 2.0)
    progress.run_finished(1, 0.75, 0.7, 6.4)
    lines = out.getvalue().splitlines()
    assert lines == ["[run 1/2] epoch 1/3  lr 0.001  loss 0.9000  val acc 0.7000  2.0s  ETA 10s",
                     "[run 1/2] done: best val acc 0.7500, final 0.7000, 6s"]


@needs_fashion_mnist
def test_search_in_a_terminal_shows_a_live_line(tmp_path: Path) -> None:
    """The real CLI under a pseudo-terminal: carriage returns and clear-to-end-of-line."""
    config = write_config(tmp_path / "tiny.yaml", tiny_config(n_trials=2))
    leader, follower = pty.openpty()
    env = {**os.environ, "CNNSEARCH_STORAGE": "", "COLUMNS": "160"}
    process = subprocess.Popen(
        [sys.executable, "-m", "search", "search", "--config", str(config), "--storage",
         f"sqlite:///{tmp_path / 'study.db'}", "--artifact-dir", ""],
        cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=follower,
        stderr=subprocess.DEVNULL,
    )
    os.close(follower)
    output = b""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        ready, _, _ = select.select([leader], [], [], 1.0)
        if ready:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            output += chunk
        elif process.poll() is not None:
            break
    os.close(leader)
    assert process.wait(timeout=60) == 0
    text = output.decode()
    assert "\rtrial 1/2 (#0 " in text and "LR range test ..." in text and "\x1b[K" in text
    assert "[2/2] trial 1" in text
    assert "\n" + "trial 1/2" not in text  # never a plain line on a terminal

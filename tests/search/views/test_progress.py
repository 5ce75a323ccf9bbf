"""Progress display: a line rewritten in place on a terminal, plain lines elsewhere; ETAs."""

from __future__ import annotations

import io
import os
import pty
import re
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import optuna
import pytest
import torch

from search.views.progress import (
    Output,
    ProgressLine,
    RangeTestProgress,
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


# --- the LR range test's progress -----------------------------------------------------------


def test_lrrt_progress_on_a_terminal_rewrites_the_status_line() -> None:
    out, clock = Terminal(), FakeClock()
    progress = SearchProgress(out, total_trials=3, clock=clock, width=200)
    progress.trial_started(4, "B1FL2SGD", epochs=5)
    clock.now += 4
    progress.lrrt_step(16, 160, 0.00109, 2.10344)
    assert out.getvalue().endswith(
        "\rtrial 1/3 (#4 B1FL2SGD)  LR range test 10% (16/160)  lr 0.00109  loss 2.1034  "
        "test ETA 36s\x1b[K")  # 4 s for 16 steps, 144 to go
    assert "\n" not in out.getvalue()


def test_lrrt_progress_through_a_pipe_is_a_line_each_tenth_of_the_ramp() -> None:
    out, clock = io.StringIO(), FakeClock()
    progress = SearchProgress(out, total_trials=2, clock=clock)
    progress.trial_started(0, "B2FL4Adam", epochs=2)
    for step in range(4, 161, 4):  # reported more often than every tenth
        clock.now += 1
        progress.lrrt_step(step, 160, 1e-3, 1.5)
    lines = out.getvalue().splitlines()
    assert len(lines) == 10 and "\r" not in out.getvalue()
    assert [re.search(r"\((\d+)/160\)", line)[1] for line in lines] == [
        str(16 * k) for k in range(1, 11)]
    assert lines[0].startswith("trial 1/2 (#0 B2FL4Adam)  LR range test 10% (16/160)  lr 0.001")
    progress.trial_started(1, "B1FL2SGD", epochs=2)  # a short test: one sync, one line
    progress.lrrt_step(8, 8, 0.01, 2.0)
    assert out.getvalue().splitlines()[-1].startswith(
        "trial 1/2 (#1 B1FL2SGD)  LR range test 100% (8/8)")


def test_the_per_trial_line_shows_the_flags_of_the_table() -> None:
    from optuna.trial import TrialState

    from tests.search.views.test_results import trial

    study = optuna.create_study(direction="maximize")
    study.add_trial(trial(TrialState.COMPLETE, value=0.1, epochs=2, lr_bounds=[0.025, 0.1],
                          val_curve=[0.1, 0.1], summary={"limit_found": False}))
    study.add_trial(trial(TrialState.COMPLETE, value=0.6, epochs=1, val_curve=[0.6]))
    out = io.StringIO()
    line = ProgressLine(2, out)
    for frozen in study.trials:
        line(study, frozen)
    flagged, plain = out.getvalue().splitlines()
    assert re.search(r"s  flags: trained_to_chance range_too_narrow  \| best ", flagged), flagged
    assert "flags" not in plain and re.search(r" -s  \| best 0\.6000", plain), plain
    degraded = trial(TrialState.COMPLETE, value=0.6, epochs=1, val_curve=[0.6],
                     degraded=["checkpoint: No space left on device"])
    study.add_trial(degraded)
    line(study, study.trials[-1])
    assert re.search(r"s  flags: degraded  \| best ", out.getvalue().splitlines()[-1])


def test_a_single_range_test_on_a_terminal_rewrites_one_line_and_clears_it() -> None:
    out, clock = Terminal(), FakeClock()
    progress = RangeTestProgress(out, clock=clock, width=200)
    progress.start("B2FL4Adam")
    assert out.getvalue() == "\rB2FL4Adam  LR range test ...\x1b[K"
    clock.now += 4
    progress(16, 160, 0.00109, 2.10344)
    assert out.getvalue().endswith(
        "\rB2FL4Adam  LR range test 10% (16/160)  lr 0.00109  loss 2.1034  test ETA 36s\x1b[K")
    progress.close()
    assert out.getvalue().endswith("\r\x1b[K") and "\n" not in out.getvalue()


def test_a_single_range_test_through_a_pipe_is_a_line_each_tenth_and_quiet_is_silent() -> None:
    out, clock = io.StringIO(), FakeClock()
    progress = RangeTestProgress(out, clock=clock)
    progress.start("B1FL2SGD")
    for step in range(4, 161, 4):
        clock.now += 1
        progress(step, 160, 1e-3, 1.5)
    progress.close()
    lines = out.getvalue().splitlines()
    assert len(lines) == 10 and "\r" not in out.getvalue()
    assert lines[0] == "B1FL2SGD  LR range test 10% (16/160)  lr 0.001  loss 1.5000  test ETA 36s"
    assert lines[-1].startswith("B1FL2SGD  LR range test 100% (160/160)")
    for stream in (Terminal(), io.StringIO()):
        progress = RangeTestProgress(stream, output=Output("quiet"))
        progress.start("B1FL2SGD")
        progress(160, 160, 1e-3, 1.5)
        progress.close()
        assert stream.getvalue() == ""


def test_first_epoch_time_does_not_include_the_range_test() -> None:
    clock = FakeClock()
    progress = SearchProgress(io.StringIO(), total_trials=1, clock=clock)
    progress.trial_started(0, "A", epochs=4)
    clock.now += 100
    progress.lrrt_step(10, 10, 0.01, 1.0)
    clock.now += 5
    progress.epoch(1, 4, 0.01, 0.5)
    assert progress.epoch_seconds == [5] and progress.eta() == pytest.approx(15)


def test_range_test_reports_progress_at_its_host_syncs_only(tiny_data, tiny_model) -> None:
    from search.method.lrrt.run import CHECK_EVERY, run_range_test
    from search.method.optimizers import make_optimizer

    train, val = tiny_data(n_train=96, batch_size=8)  # 12 batches an epoch, 36 steps
    model = tiny_model(seed=1)
    calls: list[tuple[int, int, float, float]] = []
    curve, _ = run_range_test(model, make_optimizer(model, "sgd", 1e-3), train, val,
                              lr_range=(1e-3, 1e-1), epochs=3, sma_periods=5,
                              divergence_factor=4.0, progress=lambda *a: calls.append(a))
    assert CHECK_EVERY == 16
    # the chunk syncs (16, 32, the last step) and the epoch ends (12, 24): no others
    assert [c[0] for c in calls] == [12, 16, 24, 32, 36]
    for step, total, lr, loss in calls:
        assert total == 36 and lr == curve.lrs[step - 1]
        assert loss == pytest.approx(np.mean(curve.losses[step - 5:step]))


def test_run_lrrt_passes_the_progress_through() -> None:
    from data import ImageDataset
    from search.config import parse_config
    from search.method.lrrt.run import run_lrrt
    from search.method.prepared_data import DataOnDevice
    from search.method.suggest import sample_trial_config
    from tests.search.conftest import TINY_CLASSES, quadrant_images

    config = parse_config({
        "study": "progress", "dataset": {"name": "fashion-mnist"},
        "space": {"blocks": [1], "filters": [2], "optimizer": ["adam"],
                  "lr_range": [[1.0e-3, 3.0e-2]], "batch_size": [16], "fc_units": [8]},
        "lrrt": {"epochs": 2, "sma_periods": 4, "bound_rule": "smith_quarter",
                 "compare_rule": None},
    })
    images, labels = quadrant_images(128, seed=0)
    val_images, val_labels = quadrant_images(32, seed=1)
    data = DataOnDevice(ImageDataset("tiny", images, labels, val_images, val_labels,
                                     tuple(str(k) for k in range(TINY_CLASSES))),
                        torch.device("cpu"), eval_batch_size=64)
    out = io.StringIO()
    progress = SearchProgress(out, total_trials=1)
    progress.trial_started(0, "B1FL2Adam", epochs=1)
    run_lrrt(sample_trial_config(optuna.trial.FixedTrial({}), config), data,
             progress=progress.lrrt_step)
    assert [line.split("  ")[1] for line in out.getvalue().splitlines()] == [
        "LR range test 50% (8/16)", "LR range test 100% (16/16)"]


def _under_script(command: list[str], tmp_path: Path) -> str:
    """What a terminal would show: the command run by util-linux `script` on a pseudo-terminal
    (stdout and stderr on it, as in `make demo`), its bytes captured."""
    tool = shutil.which("script")
    if tool is None:
        pytest.skip("util-linux `script` not installed")
    line = " ".join(f"'{part}'" for part in command)
    env = {**os.environ, "CNNSEARCH_STORAGE": "", "COLUMNS": "200"}
    result = subprocess.run([tool, "-q", "-e", "-c", line, "/dev/null"], cwd=tmp_path, env=env,
                            stdin=subprocess.DEVNULL, capture_output=True, timeout=300,
                            check=False)
    text = result.stdout.decode()
    assert result.returncode == 0, text[-2000:]
    return text


def _status_lines_glued(text: str) -> list[str]:
    """Status texts (written as carriage return, text, clear-to-end) that something other
    than the next carriage return followed: a log line glued to the status line."""
    return re.findall(r"\r([^\r\n\x1b]+)\x1b\[K(?!\r|$)", text)


@needs_fashion_mnist
def test_search_on_a_terminal_shows_lrrt_progress_and_no_interleaved_log_lines(
        tmp_path: Path) -> None:
    """`make demo` on a terminal, captured with `script`: one status line, nothing glued to
    it, no second report of each trial by Optuna, and the range test's progress."""
    config = tiny_config(n_trials=2, lrrt={**tiny_config()["lrrt"], "epochs": 4},
                         train={**tiny_config()["train"], "epochs": 1})
    write_config(tmp_path / "tiny.yaml", config)
    text = _under_script([sys.executable, "-m", "search", "search", "--config", "tiny.yaml",
                          "--storage", "sqlite:///study.db", "--artifact-dir", ""], tmp_path)
    assert "[2/2] trial 1" in text and "\x1b[K" in text
    assert "[I " not in text and "Trial 0 finished" not in text
    assert _status_lines_glued(text) == []
    assert re.search(r"\rtrial 1/2 \(#0 \w+\)  LR range test 50% \(16/32\)  lr [\d.e-]+  "
                     r"loss \d+\.\d{4}  ", text), text[:2000]


@needs_fashion_mnist
def test_verbose_search_on_a_terminal_prints_optuna_lines_on_their_own(tmp_path: Path) -> None:
    write_config(tmp_path / "tiny.yaml", tiny_config(n_trials=1))
    text = _under_script([sys.executable, "-m", "search", "-v", "search", "--config",
                          "tiny.yaml", "--storage", "sqlite:///study.db", "--artifact-dir", ""],
                         tmp_path)
    assert re.search(r"\] Trial 0 (finished|pruned)", text), text[-3000:]
    for match in re.finditer(r"\[I \d{4}-", text):  # each starts a line, after a clear
        before = text[:match.start()]
        assert before == "" or before.endswith("\n") or before.endswith("\r\x1b[K"), before[-200:]
    assert _status_lines_glued(text) == []

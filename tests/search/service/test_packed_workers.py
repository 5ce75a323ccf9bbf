"""Worker processes packed on cards (``search.service.packed_workers``), on a real PostgreSQL
and a made-up inventory whose cards compute on the CPU: N workers a card share the study's
budget exactly and record their card and slot; ``auto`` starts one worker a card until a
range test has measured a peak, then as many as fit (here: the cap); a search with
``--trials-per-gpu`` runs its trials so and prints its table."""

from __future__ import annotations

import io
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from search.cli.commands import packed_worker_main
from search.config import parse_config
from search.record import TrialRecord
from search.service.packed_workers import PackedRun, run_packed_workers
from search.service.packing import PackingPolicy
from search.service.stop_flag import StopFlag
from search.service.worker import WorkerOptions
from tests.conftest import worker_config, write_brightness_folder
from tests.search.service.test_packing import FakeInventory

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_brightness_folder(tmp_path_factory.mktemp("images"))


def packed(url: str, images: Path, folder: Path, study: str, policy: PackingPolicy,
           max_trials: int, epochs: int = 2) -> PackedRun:
    config = parse_config(worker_config(images, study, epochs=epochs))
    options = WorkerOptions(study_name=study, max_trials=max_trials, artifact_dir=None,
                            checkpoint_dir=str(folder / "ckpt"), poll_seconds=0.2)
    return PackedRun(config, url, options, policy, folder / "placement", verbosity="quiet")


def records(url: str, study: str) -> list[TrialRecord]:
    loaded = optuna.load_study(study_name=study, storage=url)
    return [TrialRecord.from_frozen(t) for t in loaded.get_trials(deepcopy=False)]


def test_two_workers_a_card_share_the_budget_and_record_card_and_slot(
        postgres_server, images: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    url = postgres_server.new_database()
    inventory = FakeInventory(24, 24)
    cards = inventory.cards()
    run = packed(url, images, tmp_path, "packed", PackingPolicy(trials_per_gpu=2), 8)
    out = io.StringIO()
    outcome = run_packed_workers(run, inventory, stop=StopFlag(), out=out, poll_seconds=0.2,
                                 worker_main=packed_worker_main)  # as the CLI starts them
    assert outcome.started == 4 and outcome.exit_codes == [0, 0, 0, 0], out.getvalue()
    assert "packing 2 trial(s) per GPU on 2 card(s)" in out.getvalue()
    trials = records(url, "packed")
    assert sum(r.state in (TrialState.COMPLETE, TrialState.PRUNED) for r in trials) == 8
    assert all(r.state != TrialState.RUNNING for r in trials)
    assert {r.card for r in trials} <= {c.uuid for c in cards}
    assert {r.slot for r in trials} <= {0, 1}
    assert all(r.precision == "fp32" and r.device == "cpu" for r in trials)
    assert len({(r.card, r.slot) for r in trials}) >= 2  # the work was shared


def test_auto_grows_from_one_worker_once_a_peak_is_measured(
        postgres_server, images: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    url = postgres_server.new_database()
    one_card = FakeInventory(24)
    run = packed(url, images, tmp_path, "auto", PackingPolicy(cap=2), 4)
    outcome = run_packed_workers(run, one_card, stop=StopFlag(), out=io.StringIO(),
                                 poll_seconds=0.2)
    assert outcome.started == 2 and outcome.exit_codes == [0, 0]
    trials = sorted(records(url, "auto"), key=lambda r: r.number)
    assert trials[0].slot == 0  # alone on its card until its range test measured a peak
    assert trials[0].lrrt is not None and trials[0].lrrt.peak_memory_bytes > 0
    assert sum(r.state in (TrialState.COMPLETE, TrialState.PRUNED) for r in trials) == 4


def test_a_packed_search_runs_its_trials_in_workers_and_prints_the_table(
        images: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``cnnsearch search --trials-per-gpu 2`` on SQLite, as the demo stores its study: the
    budget is n_trials more finished trials, the table is printed as for a plain search."""
    from search.service.local_search import run_packed_search
    from search.service.storage import open_storage

    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    url = f"sqlite:///{tmp_path / 'study.db'}"
    run = packed(url, images, tmp_path, "unused", PackingPolicy(trials_per_gpu=2), 0)
    out = io.StringIO()
    study = run_packed_search(run.config, study_name="packed-search", storage=open_storage(url),
                              url=url, n_trials=4, timeout=None, run=run,
                              inventory=FakeInventory(24), stop=StopFlag(), out=out)
    finished = [t for t in study.get_trials(deepcopy=False)
                if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    assert len(finished) == 4
    assert "packing 2 trial(s) per GPU on 1 card(s)" in out.getvalue()
    assert out.getvalue().splitlines()[-1].startswith("4 trials: ")  # the summary line
    assert {r.slot for r in records(url, "packed-search")} <= {0, 1}

"""Creating a study is one atomic step with the check of its config: two processes creating
the same new study with different configs at the same moment (released together by a
barrier) never both go on; the second gets the one-line "created with a different
configuration" error, on SQLite and on PostgreSQL. And a study cnnsearch did not make is
neither searched nor written into."""

from __future__ import annotations

import contextlib
import io
import multiprocessing
from pathlib import Path

import optuna
import pytest

from search.config import parse_config
from search.errors import UserError
from search.record import STUDY_FINGERPRINT
from search.service.study import open_search_study
from tests.conftest import run_cli, tiny_config, write_config
from tests.search.test_cli import snapshot

ROUNDS = 4
HOLD = 3.0
"""Seconds a process waits for the other after its check (see ``_create``)."""


def _create(config: str, url: str, names: list[str], barriers: list, results) -> None:
    """One process: for each study name, ``cnnsearch create-study`` (the CLI's own ``main``,
    in this process); put (name, exit code, stderr) on ``results``.

    The race is made certain, not left to the scheduler: each round starts at a barrier,
    and each process waits (at most ``HOLD`` seconds) at a second one right after checking
    the study's config, so that without a lock around check-and-create both pass the check
    before either creates the study. With the lock, the second cannot check until the
    first has stored its config: the first waits out ``HOLD`` alone, and goes on."""
    import threading

    from search.cli import main
    from search.service import study

    check = study.check_compatible
    held: list = []

    def check_then_hold(*args: object, **kwargs: object) -> None:
        check(*args, **kwargs)
        with contextlib.suppress(threading.BrokenBarrierError):
            held[0].wait(timeout=HOLD)

    study.check_compatible = check_then_hold
    for index, name in enumerate(names):
        start, hold = barriers[2 * index], barriers[2 * index + 1]
        held[:] = [hold]
        start.wait(timeout=300)
        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            code = main(["create-study", "--study", name, "--config", config,
                         "--storage", url, "--artifact-dir", ""])
        results.put((name, code, err.getvalue()))


def race(tmp_path: Path, url: str) -> list[tuple[str, list[tuple[int, str]]]]:
    """Two processes, two configs that differ in one key, ``ROUNDS`` new studies."""
    configs = [str(write_config(tmp_path / f"c{i}.yaml",
                                tiny_config(train={"epochs": 2 + i, "step_size_epochs": 1})))
               for i in range(2)]
    names = [f"race{i}" for i in range(ROUNDS)]
    context = multiprocessing.get_context("spawn")
    barriers = [context.Barrier(2) for _ in range(2 * ROUNDS)]
    results = context.Queue()
    processes = [context.Process(target=_create, args=(config, url, names, barriers, results))
                 for config in configs]
    for process in processes:
        process.start()
    outcomes: dict[str, list[tuple[int, str]]] = {name: [] for name in names}
    for _ in range(2 * ROUNDS):
        name, code, err = results.get(timeout=600)
        outcomes[name].append((code, err))
    for process in processes:
        process.join(timeout=60)
    return sorted(outcomes.items())


def assert_one_wins_each_time(outcomes: list[tuple[str, list[tuple[int, str]]]],
                              url: str) -> None:
    for name, pair in outcomes:
        codes = sorted(code for code, _ in pair)
        assert codes == [0, 2], (name, pair)
        refused = next(err for code, err in pair if code == 2)
        assert refused.count("\n") == 1 and "created with a different configuration" in refused
        assert "train.epochs: 2 stored, 3 new" in refused or "train.epochs: 3 stored, 2 new" \
            in refused, refused
        study = optuna.load_study(study_name=name, storage=url)
        assert study.user_attrs[STUDY_FINGERPRINT]


def test_two_processes_creating_one_study_with_different_configs_sqlite(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'study.db'}"
    optuna.storages.RDBStorage(url)  # the tables exist: the race is the study's alone
    assert_one_wins_each_time(race(tmp_path, url), url)


@pytest.mark.postgres
def test_two_processes_creating_one_study_with_different_configs_postgres(
    postgres_server, tmp_path: Path
) -> None:
    url = postgres_server.new_database()
    optuna.storages.RDBStorage(url)
    assert_one_wins_each_time(race(tmp_path, url), url)


# --------------------------------------------------------------------------- not ours
@pytest.mark.parametrize("directions", [["maximize"], ["minimize"], ["maximize", "minimize"]])
def test_a_study_cnnsearch_did_not_make_is_neither_searched_nor_written(
    tmp_path: Path, directions: list[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'study.db'}"
    plain = optuna.create_study(study_name="plain", storage=url, directions=directions)
    plain.add_trial(optuna.trial.create_trial(values=[0.5] * len(directions)))
    before = snapshot(url)
    config = write_config(tmp_path / "c.yaml", tiny_config(study="plain"))
    for command in (["search", "--config", str(config), "--checkpoint-dir", ""],
                    ["create-study", "--study", "plain", "--config", str(config)]):
        result = run_cli(*command, "--storage", url, "--artifact-dir", "", cwd=tmp_path)
        assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
        assert "'plain' was not created by cnnsearch" in result.stderr
    assert snapshot(url) == before


def test_a_multi_objective_study_says_what_its_objectives_are(tmp_path: Path) -> None:
    """Made by cnnsearch with two objectives, opened with a config of one whose fingerprint
    it stored (the directions check is the last word): no "it minimises"."""
    url = f"sqlite:///{tmp_path / 'study.db'}"
    two = parse_config(tiny_config(objectives=["val_accuracy", "n_params"]))
    study = open_search_study("two", url, two)
    one = parse_config(tiny_config())
    study.set_user_attr(STUDY_FINGERPRINT, one.fingerprint())
    with pytest.raises(UserError) as refused:
        open_search_study("two", url, one)
    message = str(refused.value)
    assert "has 2 objectives: it maximises then minimises" in message
    assert "(val_accuracy) ask to maximise" in message and "minimises)" not in message

"""Storage URLs, password files, error messages, transient-error detection and the slot lock."""

from __future__ import annotations

import fcntl
import time
from pathlib import Path

import optuna
import pytest
import sqlalchemy.exc
from sqlalchemy.engine import make_url

from search.errors import UserError
from search.service.resilient_storage import (
    ResilientRDBStorage,
    backoff_delays,
    is_permanent,
    is_transient,
)
from search.service.stop_flag import StopFlag
from search.service.storage import (
    DEFAULT_STORAGE,
    load_study,
    open_storage,
    redact,
    resolve_storage_url,
    retry_window,
    with_password,
)
from search.service.trial_slots import TrialSlotLock
from tests.conftest import run_cli, worker_config, write_brightness_folder, write_config
from tests.postgres import PASSWORD


def test_storage_url_precedence(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CNNSEARCH_STORAGE", raising=False)
    monkeypatch.delenv("CNNSEARCH_STORAGE_PASSWORD_FILE", raising=False)
    assert resolve_storage_url(None) == DEFAULT_STORAGE == "sqlite:///cnnsearch.db"
    monkeypatch.setenv("CNNSEARCH_STORAGE", "sqlite:///env.db")
    assert resolve_storage_url(None) == "sqlite:///env.db"
    assert resolve_storage_url("sqlite:///flag.db") == "sqlite:///flag.db"


def test_password_file_is_encoded_into_the_url(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    secret = tmp_path / "password"
    secret.write_text(PASSWORD + "\n")
    monkeypatch.setenv("CNNSEARCH_STORAGE", "postgresql://cnnsearch@db:5432/cnnsearch")
    monkeypatch.setenv("CNNSEARCH_STORAGE_PASSWORD_FILE", str(secret))
    url = resolve_storage_url(None)
    parsed = make_url(url)
    assert parsed.password == PASSWORD
    assert (parsed.username, parsed.host, parsed.port, parsed.database) == (
        "cnnsearch", "db", 5432, "cnnsearch")
    assert PASSWORD not in redact(url) and "***" in redact(url)


def test_password_file_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CNNSEARCH_STORAGE_PASSWORD_FILE", str(tmp_path / "missing"))
    with pytest.raises(UserError, match="cannot read the storage password file"):
        resolve_storage_url("postgresql://u@h/db")
    with pytest.raises(UserError, match="no user@host"):
        with_password("sqlite:///x.db", "secret")


def test_open_storage_errors(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="does not exist"):
        open_storage(f"sqlite:///{tmp_path / 'missing.db'}", must_exist=True)
    assert not (tmp_path / "missing.db").exists()
    with pytest.raises(UserError, match="folder .* does not exist"):
        open_storage(f"sqlite:///{tmp_path / 'no' / 'x.db'}")
    with pytest.raises(UserError, match="invalid storage URL"):
        open_storage("not a url")
    with pytest.raises(UserError, match="cannot open storage"):
        open_storage("nosuchdb://x/y")


def test_open_storage_is_resilient_and_lists_studies(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    storage = open_storage(url)
    assert isinstance(storage, ResilientRDBStorage)
    optuna.create_study(study_name="a", storage=storage)
    with pytest.raises(UserError, match=r"no study named 'b' .*studies: a"):
        load_study("b", storage, url)
    assert load_study("a", storage, url).study_name == "a"


def test_transient_errors_are_found_through_the_cause_chain() -> None:
    lost = sqlalchemy.exc.OperationalError("SELECT 1", {}, Exception("server closed"))
    wrapped = optuna.exceptions.StorageInternalError("commit failed")
    wrapped.__cause__ = lost
    assert is_transient(lost) and is_transient(wrapped)
    assert not is_transient(ValueError("bad value"))
    integrity = sqlalchemy.exc.IntegrityError("INSERT", {}, Exception("duplicate"))
    assert not is_transient(integrity)


def _raised_while_handling(error: Exception, context: BaseException) -> Exception:
    """``error`` as Python chains it when raised in an ``except`` block for ``context``."""
    try:
        try:
            raise context
        except BaseException:
            raise error  # noqa: B904 - the implicit __context__ is the point
    except Exception as raised:
        return raised


def test_a_finished_trial_error_is_never_transient_whatever_it_was_raised_during() -> None:
    """The exact chain a worker met after an outage: Optuna refuses to update a trial a
    reaper failed meanwhile, while the old OperationalError is still its __context__."""
    lost = sqlalchemy.exc.OperationalError("UPDATE trials", {}, Exception("server closed"))
    finished = _raised_while_handling(
        optuna.exceptions.UpdateFinishedTrialError("Trial#3 has already finished"), lost)
    assert finished.__context__ is lost
    assert not is_transient(finished)
    told = _raised_while_handling(ValueError("Cannot tell a FAIL trial."), lost)
    assert not is_transient(told)
    # An Optuna error other than StorageInternalError stops the walk too.
    assert not is_transient(_raised_while_handling(optuna.exceptions.TrialPruned(), lost))
    # ... while an unrelated error raised during an outage still counts as the outage.
    assert is_transient(_raised_while_handling(AssertionError("Should not reach."), lost))


class _PsycopgLike(Exception):
    def __init__(self, message: str, pgcode: str | None = None) -> None:
        super().__init__(message)
        self.pgcode = pgcode


@pytest.mark.parametrize("message, pgcode", [
    ('connection to server at "db" (10.0.0.2), port 5432 failed: FATAL:  password '
     'authentication failed for user "cnnsearch"', None),
    ('connection to server at "db", port 5432 failed: FATAL:  role "nobody" does not exist',
     None),
    ('connection to server at "db", port 5432 failed: FATAL:  database "typo" does not exist',
     None),
    ('connection to server at "db", port 5432 failed: FATAL:  no pg_hba.conf entry for host '
     '"10.0.0.3", user "cnnsearch", database "cnnsearch", no encryption', None),
    ("FATAL: something new", "28P01"),
    ("FATAL: something new", "28000"),
    ("FATAL: something new", "3D000"),
])
def test_authentication_and_missing_database_errors_are_permanent(message: str,
                                                                  pgcode: str | None) -> None:
    error = sqlalchemy.exc.OperationalError("connect", {}, _PsycopgLike(message, pgcode))
    wrapped = optuna.exceptions.StorageInternalError("commit failed")
    wrapped.__cause__ = error
    assert is_permanent(error) and is_permanent(wrapped)
    assert not is_transient(error) and not is_transient(wrapped)


@pytest.mark.parametrize("message", [
    'connection to server at "db", port 5432 failed: Connection refused',
    "server closed the connection unexpectedly",
    "FATAL:  the database system is starting up",
    "FATAL:  terminating connection due to administrator command",
])
def test_outages_stay_transient(message: str) -> None:
    error = sqlalchemy.exc.OperationalError("SELECT 1", {}, _PsycopgLike(message))
    assert is_transient(error) and not is_permanent(error)


def test_the_retry_window_covers_the_grace_period(tmp_path: Path) -> None:
    assert retry_window(None) == ResilientRDBStorage.retry_seconds == 180
    assert retry_window(60) >= 180
    assert retry_window(300) > 300 and retry_window(1800) > 1800
    storage = open_storage(f"sqlite:///{tmp_path / 's.db'}", heartbeat_interval=10,
                           grace_period=300)
    assert isinstance(storage, ResilientRDBStorage) and storage.retry_seconds > 300


def test_a_stopping_process_stops_retrying_soon(monkeypatch: pytest.MonkeyPatch,
                                                tmp_path: Path) -> None:
    storage = open_storage(f"sqlite:///{tmp_path / 's.db'}")
    storage.stop = stop = StopFlag()
    monkeypatch.setattr(ResilientRDBStorage, "STOPPING_SECONDS", 1.0)
    calls = []

    def away() -> None:
        calls.append(time.monotonic())
        if len(calls) == 2:
            stop.set("SIGTERM")
        raise sqlalchemy.exc.OperationalError("SELECT 1", {}, Exception("server closed"))

    started = time.monotonic()
    with pytest.raises(sqlalchemy.exc.OperationalError):
        storage._with_retry("get_trial", away)
    assert time.monotonic() - started < 10 and len(calls) >= 2


def test_backoff_doubles_up_to_a_cap() -> None:
    delays = backoff_delays(first=0.25, cap=4.0)
    assert [next(delays) for _ in range(7)] == [0.25, 0.5, 1.0, 2.0, 4.0, 4.0, 4.0]


def test_sqlite_slot_lock_is_exclusive_and_idempotent(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    lock = TrialSlotLock(url, "study")
    lock.acquire()
    lock.acquire()  # idempotent while held
    with open(f"{tmp_path / 's.db'}.slots.lock", "a") as other:
        with pytest.raises(BlockingIOError):
            fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
        lock.release()
        lock.release()
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)  # free now
        fcntl.flock(other, fcntl.LOCK_UN)
    lock.close()


@pytest.mark.postgres
def test_postgres_slot_lock_is_exclusive(postgres_server) -> None:
    url = postgres_server.new_database()
    first, second = TrialSlotLock(url, "study"), TrialSlotLock(url, "study")
    other_study = TrialSlotLock(url, "another")
    first.acquire()
    other_study.acquire()  # a different study's lock is independent
    engine = sqlalchemy.create_engine(url)
    key = first._key
    with engine.connect() as connection:
        taken = connection.execute(sqlalchemy.text("SELECT pg_try_advisory_lock(:k)"),
                                   {"k": key}).scalar()
        assert taken is False
        first.release()
        taken = connection.execute(sqlalchemy.text("SELECT pg_try_advisory_lock(:k)"),
                                   {"k": key}).scalar()
        assert taken is True
        connection.execute(sqlalchemy.text("SELECT pg_advisory_unlock(:k)"), {"k": key})
    second.acquire()
    second.release()
    for lock in (first, second, other_study):
        lock.close()
    engine.dispose()


@pytest.mark.postgres
def test_a_wrong_password_or_database_fails_at_once_in_one_line(postgres_server,
                                                                tmp_path: Path) -> None:
    """Not an outage: no minute of retries before saying so (create-study and worker)."""
    database = postgres_server.new_database().rsplit("/", 1)[1]
    config = write_config(tmp_path / "c.yaml", worker_config(
        write_brightness_folder(tmp_path / "images", images_per_class=4), "auth"))
    cases = [
        (postgres_server.url(database, password="wrong"), "password authentication failed"),
        (postgres_server.url("no_such_database"), 'database "no_such_database" does not exist'),
    ]
    for url, expected in cases:
        for command in (["create-study"], ["worker", "--device", "cpu", "--max-trials", "1",
                                           "--artifact-dir", "", "--checkpoint-dir", ""]):
            started = time.monotonic()
            result = run_cli(*command, "--study", "auth", "--config", str(config),
                             "--storage", url, cwd=tmp_path, timeout=120)
            took = time.monotonic() - started
            assert result.returncode == 2, result.stderr
            assert took < 10, f"{command[0]} took {took:.0f} s to give up"
            lines = result.stderr.strip().splitlines()
            assert len(lines) == 1 and lines[0].startswith("cnnsearch: error: cannot open "
                                                           "storage"), result.stderr
            assert expected in lines[0] and PASSWORD not in lines[0]


@pytest.mark.parametrize(("url", "expected"), [
    ("postgresql://u:p@h/db", "postgresql+psycopg2://u:p@h/db"),
    ("postgres://u@h/db", "postgresql+psycopg2://u@h/db"),
    ("postgresql+psycopg2://u@h/db", "postgresql+psycopg2://u@h/db"),
    ("sqlite:///cnnsearch.db", "sqlite:///cnnsearch.db"),
])
def test_a_driverless_postgresql_url_uses_the_installed_driver(url: str, expected: str) -> None:
    from search.service.storage import with_installed_driver

    assert with_installed_driver(url) == expected  # psycopg 3 is not installed here


@pytest.mark.postgres
def test_the_postgresql_url_our_hint_suggests_opens(postgres_server, tmp_path: Path) -> None:
    url = postgres_server.new_database().replace("postgresql+psycopg2://", "postgresql://")
    config = write_config(tmp_path / "c.yaml", worker_config(tmp_path, "plain-url"))
    result = run_cli("create-study", "--study", "plain-url", "--config", str(config),
                     "--storage", url)
    assert result.returncode == 0, result.stderr
    assert "plain-url" in [s.study_name for s in optuna.get_all_study_summaries(
        open_storage(url))]


BAD_URLS = {
    "sqlite://": "in memory",
    "sqlite:///": "in memory",
    "sqlite:///:memory:": "in memory",
    "sqlite:///file::memory:?cache=shared": "in memory",
    "postgresql://user:secret@[::1/db": "an IPv6 host in brackets",
    "postgresql://user:secret@::1/db": "an IPv6 host in brackets",
    "postgresql://user:secret@host:abc/db": "invalid storage URL",
    "postgresql://user:secret@host:99999/db": "port 99999 is not in 1-65535",
    "postgresql://user:secret@host:0/db": "port 0 is not in 1-65535",
}


@pytest.mark.parametrize("url", sorted(BAD_URLS))
def test_a_storage_url_that_cannot_hold_studies_is_one_line(url: str) -> None:
    with pytest.raises(UserError) as refused:
        open_storage(url)
    message = str(refused.value)
    assert BAD_URLS[url] in message and "secret" not in message
    assert "secret" not in redact(url)


@pytest.mark.parametrize(("command", "url"), [
    ("trials", "sqlite://"), ("report", "sqlite:///:memory:"),
    ("export", "postgresql://user:secret@[::1/db"), ("reap", "postgresql://u@host:abc/db"),
    ("create-study", "sqlite:///:memory:"), ("search", "sqlite://"),
])
def test_bad_storage_urls_through_the_cli_are_one_line_exit_2(tmp_path: Path, command: str,
                                                               url: str) -> None:
    config = write_config(tmp_path / "c.yaml", worker_config(tmp_path, "s"))
    extra = {"create-study": ["--config", str(config)],
             "search": ["--config", str(config), "--artifact-dir", "", "--checkpoint-dir", ""]}
    result = run_cli(command, *(["--study", "s"] if command != "search" else []),
                     *extra.get(command, []), "--storage", url, cwd=tmp_path, timeout=120)
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("cnnsearch: error: ")
    assert "Traceback" not in result.stderr and "secret" not in result.stderr


def test_an_unreachable_postgresql_host_fails_within_the_connect_timeout() -> None:
    """The schema lock's connection has the storage's connect timeout too (it had none, and
    a host that drops packets hung the command for ever)."""
    lock = TrialSlotLock("postgresql+psycopg2://u:p@[::1]:1/db", "s")
    started = time.monotonic()
    with pytest.raises(sqlalchemy.exc.OperationalError):
        lock.acquire()
    lock.close()
    assert time.monotonic() - started < 15

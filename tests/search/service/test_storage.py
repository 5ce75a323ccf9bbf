"""Storage URLs, password files, error messages, transient-error detection and the slot lock."""

from __future__ import annotations

import fcntl
from pathlib import Path

import optuna
import pytest
import sqlalchemy.exc
from sqlalchemy.engine import make_url

from search.errors import UserError
from search.service.resilient_storage import ResilientRDBStorage, backoff_delays, is_transient
from search.service.storage import (
    DEFAULT_STORAGE,
    load_study,
    open_storage,
    redact,
    resolve_storage_url,
    with_password,
)
from search.service.trial_slots import TrialSlotLock
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

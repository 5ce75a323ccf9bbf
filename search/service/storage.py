"""Storage URLs: where they come from, how they are opened, and errors a user can act on.

SQLite is the embedded default; PostgreSQL serves many workers. Pool sizes stay small and
connections are pinged before use so a restarted server costs a retry, not a crash.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import optuna
import sqlalchemy.exc
from sqlalchemy.engine import URL, make_url

from search.errors import UserError
from search.service.proxy_address import is_proxy_url
from search.service.resilient_storage import (
    DEFAULT_RETRY_SECONDS,
    ResilientRDBStorage,
    is_transient,
)
from search.service.trial_slots import TrialSlotLock

DEFAULT_STORAGE = "sqlite:///cnnsearch.db"
STORAGE_ENV = "CNNSEARCH_STORAGE"
PASSWORD_FILE_ENV = "CNNSEARCH_STORAGE_PASSWORD_FILE"
POOL_SIZE = 2
"""Connections a worker keeps: one for the trial, one for Optuna's heartbeat thread."""
POOL_OVERFLOW = 1
RETRY_MARGIN_SECONDS = 60.0
"""How much longer than the grace period a storage call keeps retrying."""


def retry_window(grace_period: int | None) -> float:
    """How long a storage call retries through an outage: at least the grace period (plus a
    margin), so an outage the heartbeats survive does not fail a write either."""
    if grace_period is None:
        return DEFAULT_RETRY_SECONDS
    return max(DEFAULT_RETRY_SECONDS, grace_period + RETRY_MARGIN_SECONDS)


def resolve_storage_url(flag: str | None) -> str:
    """``--storage``, else ``$CNNSEARCH_STORAGE``, else the embedded SQLite file.

    With ``$CNNSEARCH_STORAGE_PASSWORD_FILE`` (a Docker secret), the file's content becomes
    the URL's password, percent-encoded, so it never appears in an environment or a command
    line and may hold any character. A storage proxy URL (``grpc://HOST:PORT``) takes no
    password: the proxy holds the database's.
    """
    url = flag or os.environ.get(STORAGE_ENV) or DEFAULT_STORAGE
    password_file = os.environ.get(PASSWORD_FILE_ENV)
    if password_file and not is_proxy_url(url):  # behind a proxy: the proxy's password
        url = with_password(url, read_password(password_file))
    return with_installed_driver(url)


def with_installed_driver(url: str) -> str:
    """``postgresql://...`` names no driver, and SQLAlchemy 2 then wants psycopg 3; use
    psycopg2 (what cnnsearch installs) when psycopg 3 is not there. Any URL that names its
    driver, or another database, is left as it is."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme not in ("postgresql", "postgres"):
        return url
    if importlib.util.find_spec("psycopg") is not None:
        return f"postgresql://{rest}"
    return f"postgresql+psycopg2://{rest}"


def read_password(path: str) -> str:
    try:
        return Path(path).read_text().rstrip("\r\n")
    except OSError as error:
        raise UserError(f"cannot read the storage password file {path}: "
                        f"{error.strerror or error}") from None


def with_password(url: str, password: str) -> str:
    """``postgresql://user@host/db`` + password -> ``postgresql://user:<encoded>@host/db``."""
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        raise UserError(f"storage URL '{redact(url)}' has no user@host part to add the "
                        "password file's password to")
    userinfo, _, location = rest.rpartition("@")
    user = userinfo.split(":", 1)[0]
    return f"{scheme}://{user}:{quote(password, safe='')}@{location}"


def redact(url: str) -> str:
    """The URL without its password, for messages and logs (a URL that does not parse is
    shown as given, its ``user:password@`` part hidden all the same)."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except (sqlalchemy.exc.ArgumentError, ValueError):
        scheme, sep, rest = url.partition("://")
        userinfo, at, location = rest.rpartition("@")
        if sep and at and ":" in userinfo:
            return f"{scheme}://{userinfo.split(':', 1)[0]}:***@{location}"
        return url


_IN_MEMORY = (":memory:", "file::memory:")


def parse_storage_url(url: str) -> URL:
    """The parsed URL of a storage cnnsearch can keep studies in; ``UserError`` (one line)
    for one that does not parse (a malformed IPv6 host, a port that is no number), names a
    port outside 1-65535, or is an SQLite database in memory, which every command would
    lose when it ends (``sqlite://``, ``sqlite:///:memory:``)."""
    try:
        parsed = make_url(url)
        port = parsed.port
    except (sqlalchemy.exc.ArgumentError, ValueError):
        raise UserError(f"invalid storage URL '{redact(url)}': expected e.g. {DEFAULT_STORAGE} "
                        "or postgresql://user:password@host:5432/db (an IPv6 host in "
                        "brackets: postgresql://user@[::1]:5432/db)") from None
    if port is not None and not 1 <= port <= 65535:
        raise UserError(f"invalid storage URL '{redact(url)}': port {port} is not in "
                        "1-65535")
    if parsed.get_backend_name() == "sqlite" and (
            not parsed.database or parsed.database in _IN_MEMORY
            or parsed.query.get("mode") == "memory"):
        raise UserError(f"storage '{url}' is an SQLite database in memory, lost when the "
                        f"command ends: give a file, e.g. {DEFAULT_STORAGE}")
    return parsed


def _sqlite_path(parsed: URL) -> Path | None:
    """The database file of an SQLite URL; None for any other database."""
    if parsed.get_backend_name() != "sqlite" or not parsed.database:
        return None
    return None if parsed.database in _IN_MEMORY else Path(parsed.database)


def sqlite_write_problem(url: str) -> str | None:
    """Why an SQLite storage cannot be written (its file or its folder, where SQLite puts its
    journal, is read-only), or None: it can, or it is no SQLite file. Proven by opening the
    file for writing and creating a file beside it, the only test that holds for read-only
    mounts, ACLs and root alike."""
    path = _sqlite_path(parse_storage_url(with_installed_driver(url)))
    if path is None or not path.parent.is_dir():
        return None
    try:
        if path.exists():
            with open(path, "r+b"):
                pass
        handle, probe = tempfile.mkstemp(prefix=".cnnsearch-write-test-", dir=path.parent)
        os.close(handle)
        os.unlink(probe)
    except OSError as error:
        return error.strerror or str(error)
    return None


def _read_only_url(path: Path) -> str:
    """An SQLite URL that opens ``path`` for reading only: SQLite itself refuses any write,
    and creates no journal beside it."""
    return f"sqlite:///file:{quote(str(path.resolve()))}?mode=ro&uri=true"


def open_storage(
    url: str,
    *,
    must_exist: bool = False,
    read_only: bool = False,
    heartbeat_interval: int | None = None,
    grace_period: int | None = None,
    retry_stale: bool = False,
    wait_seconds: float = 0.0,
    pool_size: int = POOL_SIZE,
    pool_overflow: int = POOL_OVERFLOW,
) -> optuna.storages.BaseStorage:
    """Open an Optuna RDB storage; every failure becomes a one-line ``UserError``.

    ``must_exist`` refuses to create a new SQLite file (read-only commands use it so a typo
    in a path does not leave an empty database behind). ``read_only`` (``trials``,
    ``report``, ``export``): an SQLite file is opened so that nothing can be written to it
    or beside it, so these commands work on a database in a read-only folder and change
    nothing; any other command must be able to write it, or says in one line why it
    cannot. ``wait_seconds`` keeps trying a database that refuses connections (a worker
    starting while the server restarts); a wrong password or a missing role or database
    fails at once. Storage calls retry through an outage for ``retry_window(grace_period)``.
    ``grpc://HOST:PORT`` opens the storage through ``cnnsearch proxy``
    (``search.service.proxy_client``). ``pool_size`` and ``pool_overflow`` are a database's
    connections (the proxy serves many workers on more).
    """
    callback = (
        optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=1) if retry_stale else None
    )
    if is_proxy_url(url):
        return _open_proxy(url, heartbeat_interval, grace_period, callback, wait_seconds)
    url = with_installed_driver(url)
    parsed = parse_storage_url(url)
    sqlite_path = _sqlite_path(parsed)
    engine_url = url
    if sqlite_path is not None:
        if (must_exist or read_only) and not sqlite_path.exists():
            raise UserError(f"storage file {sqlite_path} does not exist")
        if not sqlite_path.parent.exists():
            raise UserError(f"cannot open storage '{url}': folder {sqlite_path.parent} "
                            "does not exist")
        if read_only:
            engine_url = _read_only_url(sqlite_path)
        else:
            problem = sqlite_write_problem(url)
            if problem is not None:
                raise UserError(f"storage {sqlite_path} cannot be written ({problem}): this "
                                "command records to it; trials, report, export and "
                                "dashboard can still read it")
        engine_kwargs: dict = {"connect_args": {"timeout": 60}}
    else:
        engine_kwargs = {
            "pool_size": pool_size,
            "max_overflow": pool_overflow,
            "pool_pre_ping": True,
            "pool_recycle": 300,
        }
        if parsed.get_backend_name() == "postgresql":
            engine_kwargs["connect_args"] = {"connect_timeout": 10}
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            with _schema_lock(url) if not read_only else contextlib.nullcontext():
                storage = ResilientRDBStorage(
                    engine_url,
                    engine_kwargs=engine_kwargs,
                    heartbeat_interval=heartbeat_interval,
                    grace_period=grace_period,
                    heartbeat_stale_trial_callback=callback,
                )
            storage.retry_seconds = retry_window(grace_period)
            return storage
        except (sqlalchemy.exc.SQLAlchemyError, optuna.exceptions.StorageInternalError,
                ImportError, ValueError, RuntimeError, TypeError) as error:
            if is_transient(error) and time.monotonic() < deadline:
                time.sleep(1.0)
                continue
            cause = getattr(error, "orig", None) or error.__cause__ or error
            detail = str(cause).strip().splitlines()[0] if str(cause).strip() else repr(cause)
            raise UserError(f"cannot open storage '{redact(url)}': {detail}") from None


def _open_proxy(url: str, heartbeat_interval: int | None, grace_period: int | None,
                callback: object, wait_seconds: float) -> optuna.storages.BaseStorage:
    from search.service.proxy_client import ProxyStorage  # grpc only where it is used

    storage = ProxyStorage(url, heartbeat_interval=heartbeat_interval,
                           grace_period=grace_period,
                           heartbeat_stale_trial_callback=callback)  # type: ignore[arg-type]
    storage.check(wait_seconds)
    storage.retry_seconds = retry_window(grace_period)
    return storage


@contextlib.contextmanager
def _schema_lock(url: str) -> Iterator[None]:
    """Serialise Optuna's table creation: workers starting at the same moment on an empty
    database otherwise race on CREATE TABLE and all but one fail."""
    lock = TrialSlotLock(url, "__schema__")
    try:
        lock.acquire()
        yield
    finally:
        lock.close()


def load_study(
    name: str, storage: optuna.storages.BaseStorage, url: str
) -> optuna.study.Study:
    """An existing study, or a ``UserError`` listing the studies that do exist."""
    try:
        return optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        names = [s.study_name for s in optuna.get_all_study_summaries(storage)]
        known = ", ".join(names) if names else "none"
        raise UserError(f"no study named '{name}' in {redact(url)} (studies: {known})") from None

"""A study-wide lock around "count the trials, then ask for one", so that N workers sharing
a ``--max-trials`` budget never start more trials than it allows.

PostgreSQL: a session advisory lock (released by the server if the worker dies).
SQLite: an ``flock`` on a file beside the database.
The storage proxy (``grpc://``): the proxy holds the lock for the worker while the worker's
stream to it is open, so it is released when the worker dies, like a session's
(``search.service.proxy``). Other backends: no lock (best effort).
"""

from __future__ import annotations

import fcntl
import hashlib
from pathlib import Path
from typing import Any

import sqlalchemy
from sqlalchemy.engine import make_url

from search.service.proxy_address import is_proxy_url


def lock_key(name: str) -> int:
    """The advisory-lock key of a lock name (a study name, or ``study#processes``)."""
    digest = hashlib.sha256(f"cnnsearch:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class TrialSlotLock:
    """``acquire()`` before counting; ``release()`` once the new trial exists (idempotent).

    ``keep_connection`` keeps the PostgreSQL connection open between holds (the proxy holds
    locks for many workers, so it does not reconnect for every trial); by default each hold
    opens its own and closes it on release."""

    def __init__(self, url: str, study_name: str, *, keep_connection: bool = False) -> None:
        self._name = study_name
        self._held = False
        self._engine: sqlalchemy.Engine | None = None
        self._connection: Any = None
        self._file: Any = None
        self._proxy: Any = None
        self._keep = keep_connection
        self._key = lock_key(study_name)
        if is_proxy_url(url):
            from search.service.proxy_client import ProxyLock  # grpc only where it is used

            self._backend = "proxy"
            self._proxy = ProxyLock(url, study_name)
            return
        parsed = make_url(url)
        self._backend = parsed.get_backend_name()
        if self._backend == "postgresql":
            # As the storage's own engine: an unreachable host fails in seconds, not never.
            self._engine = sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool,
                                                    connect_args={"connect_timeout": 10})
        elif self._backend == "sqlite" and parsed.database not in (None, "", ":memory:"):
            self._lock_path = Path(f"{parsed.database}.slots.lock")
        else:
            self._backend = "none"

    def acquire(self) -> None:
        """Block until held; a lost connection raises (the caller retries) and leaves the
        lock not held."""
        if self._held:
            return
        if self._backend == "proxy":
            self._proxy.acquire()
        elif self._backend == "postgresql":
            assert self._engine is not None
            if self._connection is None:
                self._connection = self._engine.connect()
            try:
                self._connection.execute(sqlalchemy.text("SELECT pg_advisory_lock(:k)"),
                                         {"k": self._key})
                if self._keep:
                    self._connection.commit()  # no transaction left open between holds
            except Exception:
                self._drop_connection()
                raise
        elif self._backend == "sqlite":
            self._file = open(self._lock_path, "a")  # noqa: SIM115 - held across calls
            fcntl.flock(self._file, fcntl.LOCK_EX)
        self._held = True

    def release(self) -> None:
        if not self._held:
            return
        self._held = False
        if self._proxy is not None:
            self._proxy.release()
        if self._connection is not None:
            try:
                self._connection.execute(sqlalchemy.text("SELECT pg_advisory_unlock(:k)"),
                                         {"k": self._key})
                if self._keep:
                    self._connection.commit()
                    return
            except sqlalchemy.exc.SQLAlchemyError:
                pass  # the server dropped the session, and the lock with it
            self._drop_connection()
        if self._file is not None:
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None

    def _drop_connection(self) -> None:
        if self._connection is None:
            return
        try:
            self._connection.close()
        except sqlalchemy.exc.SQLAlchemyError:
            pass
        self._connection = None

    def close(self) -> None:
        self.release()
        self._drop_connection()
        if self._proxy is not None:
            self._proxy.close()
        if self._engine is not None:
            self._engine.dispose()

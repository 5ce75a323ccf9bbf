"""A study-wide lock around "count the trials, then ask for one", so that N workers sharing
a ``--max-trials`` budget never start more trials than it allows.

PostgreSQL: a session advisory lock (released by the server if the worker dies).
SQLite: an ``flock`` on a file beside the database. Other backends: no lock (best effort).
"""

from __future__ import annotations

import fcntl
import hashlib
from pathlib import Path
from typing import Any

import sqlalchemy
from sqlalchemy.engine import make_url


def _lock_key(study_name: str) -> int:
    digest = hashlib.sha256(f"cnnsearch:{study_name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class TrialSlotLock:
    """``acquire()`` before counting; ``release()`` once the new trial exists (idempotent)."""

    def __init__(self, url: str, study_name: str) -> None:
        parsed = make_url(url)
        self._backend = parsed.get_backend_name()
        self._key = _lock_key(study_name)
        self._held = False
        self._engine: sqlalchemy.Engine | None = None
        self._connection: Any = None
        self._file: Any = None
        if self._backend == "postgresql":
            # As the storage's own engine: an unreachable host fails in seconds, not never.
            self._engine = sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool,
                                                    connect_args={"connect_timeout": 10})
        elif self._backend == "sqlite" and parsed.database not in (None, "", ":memory:"):
            self._lock_path = Path(f"{parsed.database}.slots.lock")
        else:
            self._backend = "none"

    def acquire(self) -> None:
        if self._held:
            return
        if self._backend == "postgresql":
            assert self._engine is not None
            self._connection = self._engine.connect()
            self._connection.execute(sqlalchemy.text("SELECT pg_advisory_lock(:k)"),
                                     {"k": self._key})
        elif self._backend == "sqlite":
            self._file = open(self._lock_path, "a")  # noqa: SIM115 - held across calls
            fcntl.flock(self._file, fcntl.LOCK_EX)
        self._held = True

    def release(self) -> None:
        if not self._held:
            return
        self._held = False
        if self._connection is not None:
            try:
                self._connection.execute(sqlalchemy.text("SELECT pg_advisory_unlock(:k)"),
                                         {"k": self._key})
            except sqlalchemy.exc.SQLAlchemyError:
                pass  # the server dropped the session, and the lock with it
            finally:
                try:
                    self._connection.close()
                except sqlalchemy.exc.SQLAlchemyError:
                    pass
                self._connection = None
        if self._file is not None:
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None

    def close(self) -> None:
        self.release()
        if self._engine is not None:
            self._engine.dispose()

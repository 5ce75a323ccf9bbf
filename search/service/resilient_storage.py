"""An ``RDBStorage`` that rides out a database restart instead of failing trials.

``pool_pre_ping`` only protects the moment a connection is checked out; a query that meets a
restarting server still raises, and Optuna would mark the trial FAIL or crash the worker.
Here every storage call Optuna makes is retried with backoff while the error is a lost
connection, and a missed heartbeat is skipped rather than killing Optuna's heartbeat thread
(which does not retry by itself).

Not every ``OperationalError`` is an outage: a wrong password, a missing role or database
will not heal by waiting, and a finished-trial error (a reaper got there first) is never
retried, whatever it was raised while handling.
"""

from __future__ import annotations

import functools
import logging
import re
import time
from collections.abc import Callable, Iterator
from typing import Any, Protocol, TypeVar

import optuna
import sqlalchemy
import sqlalchemy.exc
from optuna.storages import RDBStorage
from optuna.trial import TrialState

LOGGER = logging.getLogger("cnnsearch.storage")
T = TypeVar("T")

DEFAULT_RETRY_SECONDS = 180.0

_TRANSIENT = (
    sqlalchemy.exc.OperationalError,
    sqlalchemy.exc.InterfaceError,
    sqlalchemy.exc.DisconnectionError,
    sqlalchemy.exc.TimeoutError,
)

# What Optuna's _CachedStorage and heartbeat code call on the backend.
_RETRIED = (
    "create_new_study", "delete_study", "set_study_user_attr", "set_study_system_attr",
    "get_study_id_from_name", "get_study_name_from_id", "get_study_directions",
    "get_study_user_attrs", "get_study_system_attrs", "get_all_studies",
    "_create_new_trial", "_set_trial_param", "get_trial_id_from_study_id_trial_number",
    "_get_best_trial_id", "set_trial_intermediate_value", "set_trial_user_attr",
    "set_trial_system_attr", "get_trial", "_get_trials", "get_all_trials", "get_n_trials",
    "_get_stale_trial_ids",
)

_PERMANENT_SQLSTATES = frozenset({"28P01", "28000", "3D000"})
"""invalid_password, invalid_authorization_specification, invalid_catalog_name."""
_PERMANENT_MESSAGE = re.compile(
    r"authentication failed|no pg_hba\.conf entry|role \".*\" does not exist"
    r"|database \".*\" does not exist|no password supplied|password is required",
    re.IGNORECASE,
)


class StorageUnreachable(Exception):
    """The storage could not be reached through something other than SQLAlchemy (the
    storage proxy, ``search.service.proxy_client``): an outage like a lost connection."""


def is_finished_trial_error(error: BaseException) -> bool:
    """Writing to, or telling, a trial that is already finished (e.g. reaped meanwhile)."""
    return isinstance(error, optuna.exceptions.UpdateFinishedTrialError) or (
        isinstance(error, ValueError) and str(error).startswith("Cannot tell a "))


def is_taken_over(error: BaseException) -> bool:
    """A finished-trial error anywhere in the chain: another process finished the trial."""
    return any(is_finished_trial_error(seen) for seen in _chain(error))


def _chain(error: BaseException) -> Iterator[BaseException]:
    seen: BaseException | None = error
    while seen is not None:
        yield seen
        seen = seen.__cause__ or seen.__context__


def is_permanent(error: BaseException) -> bool:
    """A connection refused for a reason waiting cannot fix: wrong password, unknown role or
    database, no ``pg_hba.conf`` entry (psycopg2 gives a SQLSTATE only for some of them)."""
    for seen in _chain(error):
        if isinstance(seen, sqlalchemy.exc.DBAPIError):
            cause = seen.orig
            if (getattr(cause, "pgcode", None) in _PERMANENT_SQLSTATES
                    or _PERMANENT_MESSAGE.search(str(cause))):
                return True
    return False


def is_transient(error: BaseException) -> bool:
    """Whether the error (or what caused it) is a lost or refused database connection.

    The walk stops at an Optuna error other than ``StorageInternalError`` (which wraps the
    SQLAlchemy error that caused it) and at a finished-trial error: those mean the database
    answered, whatever older connection error they were raised while handling."""
    if is_permanent(error):
        return False
    for seen in _chain(error):
        if is_finished_trial_error(seen):
            return False
        if isinstance(seen, _TRANSIENT + (StorageUnreachable,)):
            return True
        if isinstance(seen, sqlalchemy.exc.DBAPIError) and seen.connection_invalidated:
            return True
        if isinstance(seen, optuna.exceptions.OptunaError) and not isinstance(
                seen, optuna.exceptions.StorageInternalError):
            return False
    return False


def is_storage_error(error: BaseException) -> bool:
    """Whether the error came from the database (a lost connection, a trial another process
    finished, any SQLAlchemy or Optuna storage error), as opposed to a file write: a trial
    that cannot save a checkpoint or an artifact goes on degraded, one that cannot reach its
    database is paused or given up (``search.service.objective``)."""
    if is_transient(error) or is_taken_over(error):
        return True
    database = (sqlalchemy.exc.SQLAlchemyError, optuna.exceptions.StorageInternalError)
    return any(isinstance(seen, database) for seen in _chain(error))


class Stopping(Protocol):
    """What the storage asks before another retry (``search.service.stop_flag.StopFlag``)."""

    def is_set(self) -> bool: ...


def backoff_delays(first: float = 0.25, cap: float = 4.0):
    """0.25, 0.5, 1, 2, 4, 4, ... seconds."""
    delay = first
    while True:
        yield delay
        delay = min(cap, delay * 2)


class RetryingStorage:
    """Storage calls that retry through an outage (``is_transient``) for ``retry_seconds``.

    A worker sets ``retry_seconds`` to cover its grace period (``open_storage``), so an
    outage its heartbeats survive does not fail a write either; once ``stop`` is set (a
    SIGTERM), retries give up after ``STOPPING_SECONDS`` so the process can exit."""

    retry_seconds: float = DEFAULT_RETRY_SECONDS
    stop: Stopping | None = None
    STOPPING_SECONDS = 10.0
    _beats_missed = 0

    def _with_retry(self, name: str, call: Callable[[], T]) -> T:
        deadline = time.monotonic() + self.retry_seconds
        for attempt, delay in enumerate(backoff_delays()):
            try:
                return call()
            except Exception as error:
                if self.stop is not None and self.stop.is_set():
                    deadline = min(deadline, time.monotonic() + self.STOPPING_SECONDS)
                if not is_transient(error) or time.monotonic() + delay > deadline:
                    raise
                if attempt == 0:
                    LOGGER.warning("storage unreachable in %s (%s); retrying for up to %.0f s",
                                   name, type(error).__name__, self.retry_seconds)
                time.sleep(delay)
        raise AssertionError("unreachable")

    def _set_state_retried(self, trial_id: int, state: TrialState, write: Callable[[], bool],
                           read_state: Callable[[], TrialState]) -> bool:
        """A state write, retried like the rest; a retry that finds the state already written
        (the first attempt committed before the connection dropped) counts as success."""
        attempts = 0

        def call() -> bool:
            nonlocal attempts
            attempts += 1
            try:
                return write()
            except optuna.exceptions.UpdateFinishedTrialError:
                if attempts > 1 and read_state() == state:
                    return True
                raise

        return self._with_retry("set_trial_state_values", call)

    def _skip_missed_beat(self, trial_id: int, beat: Callable[[], None]) -> None:
        """Record one heartbeat, or skip it while the storage is away (the next one catches
        up); Optuna's heartbeat thread does not retry and would die on the error."""
        try:
            beat()
        except Exception as error:
            if not is_transient(error):
                raise
            if not self._beats_missed:  # once per outage, not every interval
                LOGGER.warning("heartbeat for trial id %d skipped: storage unreachable",
                               trial_id)
            self._beats_missed += 1
        else:
            self._beats_missed = 0


class ResilientRDBStorage(RetryingStorage, RDBStorage):
    """``RDBStorage`` whose calls retry through connection loss (``RetryingStorage``)."""

    def reachable(self) -> bool:
        """One round trip to the database, no retry: False while it is away."""
        try:
            with self.engine.connect() as connection:
                connection.execute(sqlalchemy.text("SELECT 1"))
            return True
        except Exception as error:
            if is_transient(error):
                return False
            raise

    def beat(self, trial_id: int) -> bool:
        """Record one heartbeat, no retry; False when the database is away."""
        try:
            RDBStorage.record_heartbeat(self, trial_id)
            return True
        except Exception as error:
            if is_transient(error):
                return False
            raise

    def set_trial_state_values(
        self, trial_id: int, state: TrialState, values: Any = None
    ) -> bool:
        return self._set_state_retried(
            trial_id, state,
            lambda: RDBStorage.set_trial_state_values(self, trial_id, state, values),
            lambda: RDBStorage.get_trial(self, trial_id).state)

    def record_heartbeat(self, trial_id: int) -> None:
        """Skip a beat while the database is away; the next one catches up. The grace period
        must exceed the longest outage to ride out, or live trials are reaped as stale."""
        self._skip_missed_beat(trial_id, lambda: RDBStorage.record_heartbeat(self, trial_id))


def add_retries(cls: type, base: type, names: tuple[str, ...]) -> None:
    """Make each of ``base``'s methods ``names`` on ``cls`` retry through outages."""
    for name in names:
        original = getattr(base, name)

        def method(self: RetryingStorage, *args: Any, _original: Any = original,
                   _name: str = name, **kwargs: Any) -> Any:
            return self._with_retry(_name, lambda: _original(self, *args, **kwargs))

        setattr(cls, name, functools.wraps(original)(method))


add_retries(ResilientRDBStorage, RDBStorage, _RETRIED)

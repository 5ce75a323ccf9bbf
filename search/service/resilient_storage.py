"""An ``RDBStorage`` that rides out a database restart instead of failing trials.

``pool_pre_ping`` only protects the moment a connection is checked out; a query that meets a
restarting server still raises, and Optuna would mark the trial FAIL or crash the worker.
Here every storage call Optuna makes is retried with backoff while the error is a lost
connection, and a missed heartbeat is skipped rather than killing Optuna's heartbeat thread
(which does not retry by itself).
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

import optuna
import sqlalchemy.exc
from optuna.storages import RDBStorage
from optuna.trial import TrialState

LOGGER = logging.getLogger("cnnsearch.storage")
T = TypeVar("T")

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


def is_transient(error: BaseException) -> bool:
    """Whether the error (or what caused it) is a lost or refused database connection."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, _TRANSIENT):
            return True
        if isinstance(seen, sqlalchemy.exc.DBAPIError) and seen.connection_invalidated:
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def backoff_delays(first: float = 0.25, cap: float = 4.0):
    """0.25, 0.5, 1, 2, 4, 4, ... seconds."""
    delay = first
    while True:
        yield delay
        delay = min(cap, delay * 2)


class ResilientRDBStorage(RDBStorage):
    """``RDBStorage`` whose calls retry through connection loss for ``retry_seconds``."""

    retry_seconds: float = 180.0

    def _with_retry(self, name: str, call: Callable[[], T]) -> T:
        deadline = time.monotonic() + self.retry_seconds
        for attempt, delay in enumerate(backoff_delays()):
            try:
                return call()
            except Exception as error:
                if not is_transient(error) or time.monotonic() + delay > deadline:
                    raise
                if attempt == 0:
                    LOGGER.warning("storage unreachable in %s (%s); retrying for up to %.0f s",
                               name, type(error).__name__, self.retry_seconds)
                time.sleep(delay)
        raise AssertionError("unreachable")

    def set_trial_state_values(
        self, trial_id: int, state: TrialState, values: Any = None
    ) -> bool:
        """Retried like the rest; a retry that finds the state already written (the first
        attempt committed before the connection dropped) counts as success."""
        attempts = 0

        def call() -> bool:
            nonlocal attempts
            attempts += 1
            try:
                return RDBStorage.set_trial_state_values(self, trial_id, state, values)
            except optuna.exceptions.UpdateFinishedTrialError:
                if attempts > 1 and RDBStorage.get_trial(self, trial_id).state == state:
                    return True
                raise

        return self._with_retry("set_trial_state_values", call)

    def record_heartbeat(self, trial_id: int) -> None:
        """Skip a beat while the database is away; the next one catches up. The grace period
        must exceed the longest outage to ride out, or live trials are reaped as stale."""
        try:
            RDBStorage.record_heartbeat(self, trial_id)
        except Exception as error:
            if not is_transient(error):
                raise
            LOGGER.warning("heartbeat for trial id %d skipped: storage unreachable", trial_id)


def _retrying(name: str) -> Callable[..., Any]:
    original = getattr(RDBStorage, name)

    @functools.wraps(original)
    def method(self: ResilientRDBStorage, *args: Any, **kwargs: Any) -> Any:
        return self._with_retry(name, lambda: original(self, *args, **kwargs))

    return method


for _name in _RETRIED:
    setattr(ResilientRDBStorage, _name, _retrying(_name))

"""A worker's side of ``cnnsearch proxy``: Optuna's ``GrpcStorageProxy`` with what it lacks
for cnnsearch workers, so a worker behind the proxy keeps every guarantee it has on a direct
database connection.

``GrpcStorageProxy`` (Optuna 4.2+, experimental) carries the storage calls and caches
finished trials, but it is no ``BaseHeartbeat`` (Optuna runs no heartbeat thread and reaps
nothing through it), it does not retry (a restarting proxy is an ``RpcError`` that fails
the trial) and it has no lock. ``ProxyStorage`` adds heartbeats and stale-trial queries
(served by the proxy's own ``cnnsearch.Coordination`` service), the same retries as
``ResilientRDBStorage`` (a proxy or database away is ``StorageUnreachable``), and
``ProxyLock`` holds the trial-slot lock on the proxy for as long as a stream stays open.
"""

from __future__ import annotations

import json
import queue
import threading
from collections.abc import Callable, Iterator
from typing import Any

import grpc
import optuna
from optuna.storages import GrpcStorageProxy
from optuna.storages._heartbeat import BaseHeartbeat
from optuna.trial import FrozenTrial, TrialState

from search.errors import UserError
from search.service.proxy_address import proxy_address
from search.service.resilient_storage import RetryingStorage, StorageUnreachable, add_retries

SERVICE = "cnnsearch.Coordination"
"""The proxy's second gRPC service, beside Optuna's ``optuna.StorageService``."""
UNREACHABLE_CODES = (grpc.StatusCode.UNAVAILABLE,)
"""The proxy is down or restarting, or the database behind it is away (the proxy answers
UNAVAILABLE once its own retries give up)."""
CHANNEL_OPTIONS = [("grpc.max_receive_message_length", -1)]


def encode(message: dict[str, Any]) -> bytes:
    return json.dumps(message).encode()


def decode(data: bytes) -> dict[str, Any]:
    return json.loads(data) if data else {}


def unreachable(error: grpc.RpcError, where: str) -> StorageUnreachable | None:
    """The outage an RPC error means, or None for any other error."""
    if isinstance(error, grpc.RpcError) and error.code() in UNREACHABLE_CODES:
        return StorageUnreachable(f"storage proxy at {where}: {error.details()}")
    return None


_PROXIED = (
    "create_new_study", "delete_study", "set_study_user_attr", "set_study_system_attr",
    "get_study_id_from_name", "get_study_name_from_id", "get_study_directions",
    "get_study_user_attrs", "get_study_system_attrs", "get_all_studies", "create_new_trial",
    "set_trial_param", "set_trial_intermediate_value", "set_trial_user_attr",
    "set_trial_system_attr", "get_trial_id_from_study_id_trial_number", "get_trial",
    "get_all_trials",
)


class _OutagesRaised(GrpcStorageProxy):
    """``GrpcStorageProxy`` whose outage errors are ``StorageUnreachable``, which the
    retries (and every ``is_transient`` check of the worker) recognise."""

    where = "?"


def _raising_outages(name: str) -> Callable[..., Any]:
    original = getattr(GrpcStorageProxy, name)

    def method(self: _OutagesRaised, *args: Any, **kwargs: Any) -> Any:
        try:
            return original(self, *args, **kwargs)
        except grpc.RpcError as error:
            outage = unreachable(error, self.where)
            if outage is not None:
                raise outage from error
            raise

    method.__name__ = name
    method.__doc__ = original.__doc__
    return method


for _name in (*_PROXIED, "set_trial_state_values"):
    setattr(_OutagesRaised, _name, _raising_outages(_name))


class ProxyStorage(RetryingStorage, _OutagesRaised, BaseHeartbeat):
    """The storage a worker opens for a ``grpc://HOST:PORT`` URL (``open_storage``)."""

    def __init__(self, url: str, *, heartbeat_interval: int | None = None,
                 grace_period: int | None = None,
                 heartbeat_stale_trial_callback: Callable[[optuna.Study, FrozenTrial], None]
                 | None = None) -> None:
        host, port = proxy_address(url)
        self.url = url
        self.where = f"{host}:{port}"
        self.heartbeat_interval = heartbeat_interval
        self.grace_period = grace_period
        self.heartbeat_stale_trial_callback = heartbeat_stale_trial_callback
        super().__init__(host=host, port=port)

    def _coordination(self, method: str, message: dict[str, Any]) -> dict[str, Any]:
        call = self._channel.unary_unary(f"/{SERVICE}/{method}", request_serializer=encode,
                                         response_deserializer=decode)
        try:
            return call(message)
        except grpc.RpcError as error:
            outage = unreachable(error, self.where)
            if outage is not None:
                raise outage from error
            raise

    def check(self, wait_seconds: float) -> None:
        """Wait up to ``wait_seconds`` for the proxy; ``UserError`` if it does not answer
        or is not a cnnsearch proxy (Optuna's own has no heartbeats or locks)."""
        try:
            self.wait_server_ready(timeout=max(wait_seconds, 5.0))
            self._coordination("Ping", {})
        except ConnectionError:
            raise UserError(f"cannot reach the storage proxy at {self.where} (is `cnnsearch "
                            "proxy` running there?)") from None
        except grpc.RpcError as error:
            if error.code() == grpc.StatusCode.UNIMPLEMENTED:
                raise UserError(f"the gRPC server at {self.where} is not a cnnsearch proxy "
                                "(start it with `cnnsearch proxy`)") from None
            raise UserError(f"storage proxy at {self.where}: {error.details()}") from None

    def reachable(self) -> bool:
        """One round trip to the database through the proxy, no retry."""
        try:
            return bool(self._coordination("Ping", {}).get("reachable"))
        except StorageUnreachable:
            return False

    def beat(self, trial_id: int) -> bool:
        """Record one heartbeat, no retry; False when the proxy or database is away."""
        try:
            return bool(self._coordination("Beat", {"trial_id": trial_id}).get("recorded"))
        except StorageUnreachable:
            return False

    def record_heartbeat(self, trial_id: int) -> None:
        def beat() -> None:
            if not self._coordination("Beat", {"trial_id": trial_id}).get("recorded"):
                raise StorageUnreachable("the database behind the proxy is away")

        self._skip_missed_beat(trial_id, beat)

    def _get_stale_trial_ids(self, study_id: int) -> list[int]:
        grace = self.grace_period or 2 * (self.heartbeat_interval or 1)
        return self._with_retry("_get_stale_trial_ids", lambda: list(self._coordination(
            "StaleTrials", {"study_id": study_id, "grace_period": grace})["trial_ids"]))

    def get_heartbeat_interval(self) -> int | None:
        return self.heartbeat_interval

    def get_heartbeat_stale_trial_callback(
        self,
    ) -> Callable[[optuna.Study, FrozenTrial], None] | None:
        return self.heartbeat_stale_trial_callback

    def set_trial_state_values(self, trial_id: int, state: TrialState,
                               values: Any = None) -> bool:
        return self._set_state_retried(
            trial_id, state,
            lambda: _OutagesRaised.set_trial_state_values(self, trial_id, state, values),
            lambda: _OutagesRaised.get_trial(self, trial_id).state)


add_retries(ProxyStorage, _OutagesRaised, _PROXIED)


class ProxyLock:
    """A named lock the proxy holds for this process while a ``Hold`` stream is open: the
    proxy takes it (first among its own clients, then the database's advisory lock, so
    other proxies and direct workers are excluded too) and answers once; ending the stream
    releases it. A process that dies closes its connection, and the proxy releases the
    lock at once, as PostgreSQL does with a dead session's advisory lock."""

    def __init__(self, url: str, name: str) -> None:
        host, port = proxy_address(url)
        self._where = f"{host}:{port}"
        self._name = name
        self._channel = grpc.insecure_channel(self._where, options=CHANNEL_OPTIONS)
        self._hold = self._channel.stream_stream(f"/{SERVICE}/Hold", request_serializer=encode,
                                                 response_deserializer=decode)
        self._requests: queue.SimpleQueue[dict[str, Any] | None] | None = None
        self._call: Any = None
        self._guard = threading.Lock()

    def acquire(self) -> None:
        with self._guard:
            requests: queue.SimpleQueue[dict[str, Any] | None] = queue.SimpleQueue()
            requests.put({"name": self._name})

            def stream() -> Iterator[dict[str, Any]]:
                while (message := requests.get()) is not None:
                    yield message

            call = self._hold(stream())
            try:
                next(call)  # the proxy answers once the lock is held
            except (grpc.RpcError, StopIteration) as error:
                requests.put(None)
                call.cancel()
                outage = unreachable(error, self._where) if isinstance(
                    error, grpc.RpcError) else None
                if outage is not None:
                    raise outage from error
                raise
            self._requests, self._call = requests, call

    def release(self) -> None:
        with self._guard:
            requests, call = self._requests, self._call
            self._requests = self._call = None
        if requests is None:
            return
        requests.put(None)  # end of stream: the proxy releases, then ends the call
        try:
            for _ in call:
                pass
        except grpc.RpcError:
            pass  # the proxy went away, and the lock with it

    def close(self) -> None:
        self.release()
        self._channel.close()

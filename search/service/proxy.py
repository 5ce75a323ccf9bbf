"""``cnnsearch proxy``: one process between many workers and the database, so the database
serves a fixed number of connections however many workers there are.

It is Optuna's gRPC storage proxy (``optuna.storages.run_grpc_proxy_server``'s servicer,
over the same resilient, cached storage a worker opens) plus a second service,
``cnnsearch.Coordination``, for what Optuna's proxy does not carry and cnnsearch workers
rely on (``search.service.proxy_client``):

- heartbeats and stale-trial queries, so Optuna's heartbeat thread and reaping work behind
  the proxy (the grace period travels with each query: each worker keeps its own);
- the trial-slot lock (``Hold``), held for a worker while its stream is open: first among
  the proxy's own clients (an asyncio lock, fair and costing no thread while waiting), then
  as the database's advisory lock on one connection per lock name, so other proxies, direct
  workers and ``cnnsearch reap`` are excluded too. A dead worker's connection closes and its
  lock is released at once;
- a database outage: storage calls retry inside the proxy as they would in a worker, and
  the proxy answers UNAVAILABLE (which workers retry) only once those retries give up.

Connections it opens: ``threads`` (+ ``POOL_OVERFLOW``) for storage calls, and one per lock
name held at a moment (a study's slot lock; its ``#processes`` lock while a worker starts).
It has no authentication, like the dashboard: keep it on a private network.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
import optuna
from optuna.storages._grpc.auto_generated import api_pb2_grpc
from optuna.storages._grpc.servicer import OptunaStorageProxyService

from search.errors import first_line
from search.service.proxy_client import SERVICE, decode, encode
from search.service.resilient_storage import ResilientRDBStorage, is_transient
from search.service.trial_slots import TrialSlotLock

DEFAULT_THREADS = 8
"""Storage calls served at once, each on its own database connection."""
POOL_OVERFLOW = 2
LOCK_CONNECTIONS = 8
"""Lock names whose database connection is kept between holds (a study's slot lock, its
``#processes`` lock while workers start); past it, the names nobody uses are closed."""
SERVER_OPTIONS = [
    ("grpc.max_receive_message_length", -1),
    ("grpc.max_send_message_length", -1),
    ("grpc.so_reuseport", 0),  # a second proxy on a port in use fails instead of sharing it
    # A worker that vanished without closing its connection (a lost node) is found by
    # keepalive pings: its locks are released within about 30 s.
    ("grpc.keepalive_time_ms", 20_000),
    ("grpc.keepalive_timeout_ms", 10_000),
]


def _outage_to_unavailable(method: Callable[..., Any]) -> Callable[..., Any]:
    def handler(self: Any, request: Any, context: grpc.ServicerContext) -> Any:
        try:
            return method(self, request, context)
        except Exception as error:
            if is_transient(error):
                context.abort(grpc.StatusCode.UNAVAILABLE,
                              f"storage unreachable: {first_line(error, 200)}")
            raise

    handler.__name__ = method.__name__
    return handler


class StorageService(OptunaStorageProxyService):
    """Optuna's servicer; a database outage its retries did not outlast is UNAVAILABLE, not
    an UNKNOWN error a worker would take for a bug."""


for _name, _method in list(vars(api_pb2_grpc.StorageServiceServicer).items()):
    if _name[:1].isupper() and callable(_method):
        setattr(StorageService, _name,
                _outage_to_unavailable(getattr(OptunaStorageProxyService, _name)))


class _NamedLock:
    """One lock name: an asyncio lock for this proxy's clients, and the database lock. The
    database calls of one name run on one thread, in the order they were asked for, so a
    release always precedes the next acquire."""

    def __init__(self, url: str, name: str) -> None:
        self.users = 0
        """Streams holding or waiting for it: a name nobody uses may be closed."""
        self.local = asyncio.Lock()
        self.database = TrialSlotLock(url, name, keep_connection=True)
        self.thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cnnsearch-lock")

    async def run(self, call: Callable[[], None]) -> None:
        await asyncio.get_running_loop().run_in_executor(self.thread, call)


class Coordination:
    """The ``cnnsearch.Coordination`` service: heartbeats, stale trials, locks, a ping."""

    def __init__(self, storage: ResilientRDBStorage, url: str) -> None:
        self._storage = storage
        self._url = url
        self._locks: dict[str, _NamedLock] = {}
        self._graces: dict[int, ResilientRDBStorage] = {}
        self._graces_lock = threading.Lock()

    def ping(self, _request: dict[str, Any], _context: Any) -> dict[str, Any]:
        return {"service": "cnnsearch", "reachable": self._storage.reachable()}

    def beat(self, request: dict[str, Any], _context: Any) -> dict[str, Any]:
        return {"recorded": self._storage.beat(int(request["trial_id"]))}

    def stale_trials(self, request: dict[str, Any], context: Any) -> dict[str, Any]:
        try:
            ids = self._with_grace(int(request["grace_period"]))._get_stale_trial_ids(
                int(request["study_id"]))
        except Exception as error:
            if is_transient(error):
                context.abort(grpc.StatusCode.UNAVAILABLE,
                              f"storage unreachable: {first_line(error, 200)}")
            raise
        return {"trial_ids": ids}

    def _with_grace(self, grace_period: int) -> ResilientRDBStorage:
        """The storage with another grace period, sharing its engine and sessions, so
        Optuna's own stale-trial query serves each worker's grace period. (Not
        ``copy.copy``: RDBStorage's ``__setstate__`` would open a second engine.)"""
        with self._graces_lock:
            view = self._graces.get(grace_period)
            if view is None:
                view = object.__new__(type(self._storage))
                view.__dict__.update(self._storage.__dict__)
                view.grace_period = grace_period
                view.heartbeat_interval = view.heartbeat_interval or grace_period
                self._graces[grace_period] = view
            return view

    async def hold(self, requests: AsyncIterator[dict[str, Any]],
                   context: grpc.aio.ServicerContext) -> AsyncIterator[dict[str, Any]]:
        first = await anext(aiter(requests), None)
        if not first or not isinstance(first.get("name"), str):
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "expected {\"name\": ...}")
            return
        lock = self._named(first["name"])
        lock.users += 1
        try:
            async for reply in self._held(lock, requests, context):
                yield reply
        finally:
            lock.users -= 1

    def _named(self, name: str) -> _NamedLock:
        """The name's lock; past ``LOCK_CONNECTIONS`` names, those nobody uses are closed
        (their connection with them) so a proxy serving many studies stays bounded."""
        lock = self._locks.get(name)
        if lock is None:
            for idle in [n for n, known in self._locks.items() if not known.users]:
                if len(self._locks) < LOCK_CONNECTIONS:
                    break
                closing = self._locks.pop(idle)
                closing.thread.submit(closing.database.close)
                closing.thread.shutdown(wait=False)
            lock = self._locks[name] = _NamedLock(self._url, name)
        return lock

    async def _held(self, lock: _NamedLock, requests: AsyncIterator[dict[str, Any]],
                    context: grpc.aio.ServicerContext) -> AsyncIterator[dict[str, Any]]:
        async with lock.local:
            try:
                await asyncio.shield(lock.run(lock.database.acquire))
            except asyncio.CancelledError:
                await asyncio.shield(lock.run(lock.database.release))  # queued after it
                raise
            except Exception as error:
                if is_transient(error):
                    await context.abort(grpc.StatusCode.UNAVAILABLE,
                                        f"storage unreachable: {first_line(error, 200)}")
                raise
            try:
                yield {"held": True}
                async for _message in requests:  # the stream's end (or a cancel) releases
                    pass
            finally:
                await asyncio.shield(lock.run(lock.database.release))


def _handlers(coordination: Coordination) -> grpc.GenericRpcHandler:
    def unary(behaviour: Callable[..., Any]) -> grpc.RpcMethodHandler:
        return grpc.unary_unary_rpc_method_handler(behaviour, request_deserializer=decode,
                                                   response_serializer=encode)

    return grpc.method_handlers_generic_handler(SERVICE, {
        "Ping": unary(coordination.ping),
        "Beat": unary(coordination.beat),
        "StaleTrials": unary(coordination.stale_trials),
        "Hold": grpc.stream_stream_rpc_method_handler(
            coordination.hold, request_deserializer=decode, response_serializer=encode),
    })


def check_port_free(host: str, port: int) -> None:
    """``OSError`` naming the address when it cannot be listened on (in use, not this
    machine's), before gRPC tries and logs its own multi-line complaint."""
    if port == 0:
        return
    try:
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host, port))
    except OSError as error:
        raise OSError(f"cannot listen on {host}:{port}: {error.strerror or error}") from None


async def serve(storage: ResilientRDBStorage, url: str, host: str, port: int, *,
                threads: int = DEFAULT_THREADS, ready: Callable[[int], None] | None = None,
                stopping: asyncio.Event | None = None) -> None:
    """Serve until ``stopping`` is set (or forever). ``ready`` gets the bound port."""
    pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="cnnsearch-storage")
    server = grpc.aio.server(migration_thread_pool=pool, options=SERVER_OPTIONS)
    # Optuna's servicer over its cache: finished trials are read from the database once.
    api_pb2_grpc.add_StorageServiceServicer_to_server(
        StorageService(optuna.storages.get_storage(storage)), server)
    server.add_generic_rpc_handlers((_handlers(Coordination(storage, url)),))
    check_port_free(host, port)
    try:
        bound = server.add_insecure_port(f"{host}:{port}")
    except RuntimeError:
        bound = 0
    if not bound:
        raise OSError(f"cannot listen on {host}:{port}")
    await server.start()
    if ready is not None:
        ready(bound)
    try:
        if stopping is None:
            await server.wait_for_termination()
        else:
            await stopping.wait()
    finally:
        await server.stop(grace=5)
        pool.shutdown(wait=False, cancel_futures=True)

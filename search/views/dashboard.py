"""``cnnsearch dashboard``: optuna-dashboard on a cnnsearch storage, with the artifact
folder the search wrote to, so each trial's page previews its LRRT plot (an SVG artifact).

The dashboard has no authentication: anyone who can reach the port can read and edit the
studies. It listens on 127.0.0.1 unless told otherwise, and answers only requests whose
``Host`` header names it (``HostCheck``): a web page cannot reach it through DNS rebinding.
"""

from __future__ import annotations

import ipaddress
import socket
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from socketserver import ThreadingMixIn
from typing import Any, TextIO
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import optuna

from search.errors import UserError
from search.record import StudyRecord
from search.record.study import artifact_folder

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080


def resolve_artifact_dir(flag: str | None, storage: optuna.storages.BaseStorage) -> str | None:
    """``--artifact-dir``; else the folder the studies were searched with (when they agree);
    else ``$CNNSEARCH_ARTIFACT_DIR``; else ``cnnsearch-artifacts``. ``''`` means none."""
    stored = {StudyRecord.of(study).artifact_dir for study in storage.get_all_studies()}
    stored.discard(None)
    return artifact_folder(flag, stored.pop() if len(stored) == 1 else None)


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    """The browser loads the bundle and polls the API in parallel: one thread a request."""

    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib name
        pass


def host_name(header: str | None) -> str | None:
    """The name (or address) of a ``Host`` header, lower case, without its port or a
    trailing dot; None for a header that names nothing."""
    if not header:
        return None
    text = header.strip().lower()
    if text.startswith("["):  # [::1]:8080
        name, bracket, _ = text[1:].partition("]")
        return name or None if bracket else None
    name = text.rpartition(":")[0] if text.count(":") == 1 else text
    return name.rstrip(".") or None


def _is_address(name: str) -> bool:
    try:
        ipaddress.ip_address(name.split("%", 1)[0])
    except ValueError:
        return False
    return True


def _is_wildcard(host: str) -> bool:
    """``0.0.0.0``, ``::`` (or ''): listening on every interface."""
    name = host.strip("[]")
    return not name or (_is_address(name) and ipaddress.ip_address(name).is_unspecified)


def allowed_host_names(host: str, extra: Sequence[str] = ()) -> frozenset[str]:
    """The names a dashboard listening on ``host`` answers to, besides IP addresses:
    ``localhost``, ``host`` itself, this machine's names when it listens on every interface,
    and ``extra`` (``--allowed-host``: a name a proxy or DNS gives it)."""
    names = {"localhost", host.lower().strip("[]")}
    if _is_wildcard(host):
        names |= {socket.gethostname().lower(), socket.getfqdn().lower()}
    names |= {name.lower().rstrip(".") for name in extra}
    return frozenset(name for name in names if name and not _is_address(name))


class HostCheck:
    """WSGI middleware: a request whose ``Host`` header names neither an IP address nor one
    of ``names`` gets 403, before optuna-dashboard sees it.

    DNS rebinding is a page on ``evil.example`` whose name the attacker points at
    127.0.0.1: the victim's browser then sends it requests with ``Host: evil.example``, and
    an application that answers any ``Host`` lets the page read, create, delete and tell
    trials. A name the dashboard was started for, or an address (no DNS involved), cannot be
    rebound. Each refused name is reported once on ``err``."""

    MAX_REPORTED = 100

    def __init__(self, app: Callable[..., Iterable[bytes]], names: frozenset[str],
                 err: TextIO = sys.stderr) -> None:
        self.app = app
        self.names = names
        self.err = err
        self._reported: set[str] = set()

    def allows(self, header: str | None) -> bool:
        name = host_name(header)
        return name is not None and (name in self.names or _is_address(name))

    def __call__(self, environ: dict[str, Any],
                 start_response: Callable[..., Any]) -> Iterable[bytes]:
        header = environ.get("HTTP_HOST")
        if self.allows(header):
            return self.app(environ, start_response)
        shown = repr(header)[:80] if header is not None else "no Host header"
        if shown not in self._reported and len(self._reported) < self.MAX_REPORTED:
            self._reported.add(shown)
            print(f"dashboard: refused a request for host {shown}: not a name it was started "
                  "for (--allowed-host NAME adds one)", file=self.err, flush=True)
        body = (f"403 Forbidden: host {shown} is not one this dashboard answers to; start it "
                "with --allowed-host NAME to allow a name\n").encode()
        start_response("403 Forbidden", [("Content-Type", "text/plain; charset=utf-8"),
                                          ("Content-Length", str(len(body)))])
        return [body]


def make_dashboard_server(
    storage: optuna.storages.BaseStorage, artifact_dir: str | None, host: str, port: int,
    allowed_hosts: Sequence[str] = (), err: TextIO = sys.stderr,
) -> tuple[_ThreadingServer, str | None]:
    """Build optuna-dashboard's WSGI app on ``storage`` behind the ``Host`` check and bind
    the port; returns the server and the artifact folder it serves."""
    from optuna_dashboard import wsgi

    artifact_dir = resolve_artifact_dir(artifact_dir, storage)
    store = None
    if artifact_dir is not None:
        store = optuna.artifacts.FileSystemArtifactStore(artifact_dir)
    app = HostCheck(wsgi(storage, artifact_store=store),
                    allowed_host_names(host, allowed_hosts), err)
    try:
        server = make_server(host, port, app, server_class=_ThreadingServer,
                             handler_class=_QuietHandler)
    except (OSError, OverflowError) as error:
        detail = getattr(error, "strerror", None) or str(error)
        raise UserError(f"cannot listen on {host}:{port}: {detail}") from None
    return server, artifact_dir


def serve(storage: optuna.storages.BaseStorage, shown_url: str, artifact_dir: str | None,
          host: str = DEFAULT_HOST, port: int = DEFAULT_PORT,
          allowed_hosts: Sequence[str] = (), out: TextIO = sys.stdout,
          err: TextIO = sys.stderr) -> None:
    """Serve until interrupted; ``shown_url``: the storage URL as messages show it (no
    password)."""
    server, artifact_dir = make_dashboard_server(storage, artifact_dir, host, port,
                                                 allowed_hosts, err)
    shown_host = f"[{host}]" if ":" in host else host
    print(f"optuna-dashboard on http://{shown_host}:{server.server_port}/ "
          f"(storage {shown_url}, artifacts "
          f"{artifact_dir if artifact_dir else 'none'})", file=out, flush=True)
    if artifact_dir is not None and not Path(artifact_dir).is_dir():
        print(f"note: artifact folder {artifact_dir} does not exist here; LRRT plots will "
              "not show (pass --artifact-dir)", file=out, flush=True)
    if host not in ("127.0.0.1", "localhost", "::1"):
        print("warning: the dashboard has no authentication; anyone who can reach "
              f"{host}:{server.server_port} can read and change the studies",
              file=err, flush=True)
    print("Ctrl-C stops it.", file=out, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("dashboard stopped", file=out, flush=True)
    finally:
        server.server_close()

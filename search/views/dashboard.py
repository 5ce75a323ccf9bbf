"""``cnnsearch dashboard``: optuna-dashboard on a cnnsearch storage, with the artifact
folder the search wrote to, so each trial's page previews its LRRT plot (an SVG artifact).

The dashboard has no authentication: anyone who can reach the port can read and edit the
studies. It listens on 127.0.0.1 unless told otherwise.
"""

from __future__ import annotations

import sys
from pathlib import Path
from socketserver import ThreadingMixIn
from typing import TextIO
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


def make_dashboard_server(
    storage: optuna.storages.BaseStorage, artifact_dir: str | None, host: str, port: int
) -> tuple[_ThreadingServer, str | None]:
    """Build optuna-dashboard's WSGI app on ``storage`` and bind the port; returns the
    server and the artifact folder it serves."""
    from optuna_dashboard import wsgi

    artifact_dir = resolve_artifact_dir(artifact_dir, storage)
    store = None
    if artifact_dir is not None:
        store = optuna.artifacts.FileSystemArtifactStore(artifact_dir)
    app = wsgi(storage, artifact_store=store)
    try:
        server = make_server(host, port, app, server_class=_ThreadingServer,
                             handler_class=_QuietHandler)
    except (OSError, OverflowError) as error:
        detail = getattr(error, "strerror", None) or str(error)
        raise UserError(f"cannot listen on {host}:{port}: {detail}") from None
    return server, artifact_dir


def serve(storage: optuna.storages.BaseStorage, shown_url: str, artifact_dir: str | None,
          host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, out: TextIO = sys.stdout) -> None:
    """Serve until interrupted; ``shown_url``: the storage URL as messages show it (no
    password)."""
    server, artifact_dir = make_dashboard_server(storage, artifact_dir, host, port)
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
              file=out, flush=True)
    print("Ctrl-C stops it.", file=out, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("dashboard stopped", file=out, flush=True)
    finally:
        server.server_close()

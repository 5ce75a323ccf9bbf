"""The storage proxy's URL: ``grpc://HOST:PORT`` in ``--storage`` or ``$CNNSEARCH_STORAGE``
makes a process use ``cnnsearch proxy`` instead of a database (no grpc import here, so
code that never meets such a URL never loads grpc)."""

from __future__ import annotations

from urllib.parse import urlsplit

from search.errors import UserError

PROXY_SCHEME = "grpc"
DEFAULT_PROXY_PORT = 13000
"""Optuna's ``run_grpc_proxy_server`` default."""


def is_proxy_url(url: str | None) -> bool:
    return bool(url) and url.partition("://")[0].lower() == PROXY_SCHEME


def proxy_address(url: str) -> tuple[str, int]:
    """``grpc://host:port`` -> ``(host, port)``; the port defaults to 13000."""
    try:
        parts = urlsplit(url)
        port = parts.port or DEFAULT_PROXY_PORT
    except ValueError:
        parts, port = None, 0
    if (parts is None or not parts.hostname or parts.path not in ("", "/") or parts.query
            or parts.username or not 0 < port < 65536):
        raise UserError(f"invalid storage proxy URL '{url}': expected "
                        f"{PROXY_SCHEME}://HOST:PORT, e.g. {PROXY_SCHEME}://proxy:13000")
    return parts.hostname, port

"""A real PostgreSQL server for tests: a throwaway cluster started as the ``postgres`` user
(the server refuses to run as root), on a free port, with password authentication."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest

PG_BIN = Path(os.environ.get("CNNSEARCH_PG_BIN", "/usr/lib/postgresql/15/bin"))
PSQL = str(PG_BIN / "psql") if (PG_BIN / "psql").exists() else "psql"
PASSWORD = "p@ss:w/rd%?#&= x"
"""Every URL-special character, to prove the password is encoded wherever it is used."""


def _as_postgres(command: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class PostgresServer:
    folder: Path
    port: int

    @property
    def data(self) -> Path:
        return self.folder / "data"

    def _ctl(self, *args: str) -> None:
        subprocess.run(_as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(self.data), *args]),
                       check=True, capture_output=True, timeout=120)

    def start(self) -> None:
        self._ctl("-l", str(self.folder / "server.log"), "-w", "-o",
                  f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 "
                  "-c max_connections=300 -c fsync=off", "start")

    def stop(self) -> None:
        self._ctl("-m", "fast", "-w", "stop")

    def psql(self, sql: str, database: str = "postgres") -> str:
        result = subprocess.run(
            _as_postgres([PSQL, "-h", str(self.folder), "-p", str(self.port),
                          "-U", "postgres", "-d", database, "-At", "-c", sql]),
            check=True, capture_output=True, text=True, timeout=60,
        )
        return result.stdout.strip()

    def new_database(self) -> str:
        """A fresh database owned by the password-protected role; returns its URL."""
        name = f"t_{uuid.uuid4().hex[:12]}"
        self.psql(f"CREATE DATABASE {name} OWNER cnnsearch")
        return self.url(name)

    def url(self, database: str, password: str = PASSWORD) -> str:
        return (f"postgresql+psycopg2://cnnsearch:{quote(password, safe='')}"
                f"@127.0.0.1:{self.port}/{database}")

    def connection_count(self, database: str | None = None) -> int:
        where = f" WHERE datname = '{database}'" if database else " WHERE datname IS NOT NULL"
        return int(self.psql(f"SELECT count(*) FROM pg_stat_activity{where}"))


def start_server() -> PostgresServer:
    if not (PG_BIN / "initdb").exists():
        pytest.skip(f"PostgreSQL server binaries not found in {PG_BIN}")
    folder = Path(tempfile.mkdtemp(prefix="cnnsearch-pg-"))
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres", "postgres")
    folder.chmod(0o755)
    password_file = folder / "superuser-password"
    password_file.write_text("postgres\n")
    if os.geteuid() == 0:
        shutil.chown(password_file, "postgres", "postgres")
    subprocess.run(_as_postgres([
        str(PG_BIN / "initdb"), "-D", str(folder / "data"), "-U", "postgres",
        "--auth-local=trust", "--auth-host=scram-sha-256", f"--pwfile={password_file}",
    ]), check=True, capture_output=True, timeout=120)
    server = PostgresServer(folder, _free_port())
    server.start()
    escaped = PASSWORD.replace("'", "''")
    server.psql(f"CREATE ROLE cnnsearch LOGIN PASSWORD '{escaped}'")
    return server


def wait_until(predicate, timeout: float, interval: float = 0.2, message: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s: {message}")
        time.sleep(interval)

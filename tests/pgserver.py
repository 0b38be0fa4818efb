"""A private PostgreSQL cluster for the tests: initdb into a temporary directory, started on a free loopback port.

`pg_server` (session) starts it once; `pg_url` gives each test a fresh, empty database of it
(dropped afterwards, with any connection the test left open). Skipped when PostgreSQL is not
installed, unless ``LIAOWANG_REQUIRE_PG=1`` (CI) turns the skip into a failure.

PostgreSQL refuses to run as root: when the tests run as root the server runs as the ``postgres``
user (``runuser``), in a directory that user owns.
"""

from __future__ import annotations

import itertools
import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import pytest

_BIN_DIRS = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)  # newest major first
_DATABASES = itertools.count(1)


def _binary(name: str) -> str | None:
    for directory in _BIN_DIRS:
        if (directory / name).exists():
            return str(directory / name)
    return shutil.which(name)


def _as_server_user(argv: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv


@dataclass
class PgServer:
    """A running test cluster: ``url(dbname)`` connects to one of its databases as its superuser."""

    host: str
    port: int
    user: str
    data_dir: Path
    pg_ctl: str

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql://{self.user}@{self.host}:{self.port}/{dbname}"

    def admin(self, sql: str) -> None:
        """Run one statement on the maintenance database (CREATE/DROP DATABASE need autocommit)."""
        import psycopg

        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(sql)

    def create_database(self) -> str:
        """A fresh empty database; its URL."""
        name = f"t{os.getpid()}_{next(_DATABASES)}"
        self.admin(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def drop_database(self, url: str) -> None:
        self.admin(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')

    def stop(self) -> None:
        subprocess.run(_as_server_user([self.pg_ctl, "-D", str(self.data_dir), "-m", "immediate", "-w", "stop"]),
                       capture_output=True, timeout=60)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_pg_server() -> PgServer | None:
    """Start a private cluster, or None when PostgreSQL is not installed here."""
    initdb, pg_ctl = _binary("initdb"), _binary("pg_ctl")
    if initdb is None or pg_ctl is None:
        return None
    root = Path(tempfile.mkdtemp(prefix="liaowang-pg-"))
    data = root / "data"
    user = "postgres" if os.geteuid() == 0 else os.environ.get("USER", "postgres")
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    root.chmod(0o700)
    subprocess.run(_as_server_user([initdb, "-D", str(data), "-U", user, "--auth=trust", "-E", "UTF8",
                                    "--locale=C.UTF-8", "--no-sync"]), check=True, capture_output=True, timeout=120)
    port = _free_port()
    # fsync off: the tests crash clients, never the machine; a server crash test would turn it back on
    options = (f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={root} "
               f"-c fsync=off -c full_page_writes=off -c max_connections=300 -c shared_buffers=32MB")
    subprocess.run(_as_server_user([pg_ctl, "-D", str(data), "-o", options, "-l", str(root / "server.log"),
                                    "-w", "-t", "60", "start"]), check=True, capture_output=True, timeout=90)
    server = PgServer("127.0.0.1", port, user, data, pg_ctl)
    deadline = time.monotonic() + 30
    while True:  # pg_ctl -w waited for the socket; this waits until it takes logins on TCP
        try:
            server.admin("SELECT 1")
            return server
        except Exception:
            if time.monotonic() > deadline:
                server.stop()
                raise
            time.sleep(0.1)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """A private PostgreSQL cluster for the whole session (skipped when PostgreSQL is absent, unless required)."""
    server = start_pg_server()
    if server is None:
        if os.environ.get("LIAOWANG_REQUIRE_PG") == "1":
            pytest.fail("PostgreSQL is required (LIAOWANG_REQUIRE_PG=1) but initdb/pg_ctl are not installed")
        pytest.skip("PostgreSQL is not installed (set LIAOWANG_REQUIRE_PG=1 to make this a failure)")
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(server.data_dir.parent, ignore_errors=True)


@pytest.fixture
def pg_url(pg_server: PgServer) -> Iterator[str]:
    """The URL of a fresh, empty database, dropped after the test."""
    url = pg_server.create_database()
    try:
        yield url
    finally:
        pg_server.drop_database(url)


def schema_url(url: str, schema: str) -> str:
    """``url`` with its connections working in ``schema`` (created when absent): a cheap fresh store."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
    return f"{url}?options=-csearch_path%3D{schema}"


@pytest.fixture(params=["sqlite", "postgresql"])
def alerts_db_factory(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[str], "str | Path"]:
    """Makes stores for a test, once per backend: ``new("a.db")`` is a SQLite file in the test's directory,
    or a fresh schema of the test's own PostgreSQL database; the same name gives the same store again.

    Anything that takes an `AlertDB` target (`AlertStore(target)`, `AlertDB(target)`) opens either."""
    if request.param == "sqlite":
        return lambda name: tmp_path / name
    url = request.getfixturevalue("pg_url")
    return lambda name: schema_url(url, "s_" + "".join(c if c.isalnum() else "_" for c in name))


@pytest.fixture
def alerts_db_target(alerts_db_factory: Callable[[str], "str | Path"]) -> "str | Path":
    """Where a test's ``alerts.db`` lives, once per backend: a SQLite file, then a fresh PostgreSQL database."""
    return alerts_db_factory("alerts.db")


@pytest.fixture(scope="module")
def postgres(pg_server: PgServer) -> Iterator[str]:
    """The URL of a fresh database shared by one test module (the api-role and event-log tests)."""
    url = pg_server.create_database()
    try:
        yield url
    finally:
        pg_server.drop_database(url)

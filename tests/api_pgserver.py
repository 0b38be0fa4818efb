"""A real PostgreSQL 15 on a loopback port for the event-log tests (h-api; h-pg's tests/pgserver.py may replace it).

postgres refuses to run as root: the cluster lives in a directory the ``postgres`` user owns and is
started with ``runuser -u postgres``; tests connect over TCP as that user (trust on loopback).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Iterator

import pytest

from tests.conftest import free_port

PG_BIN = Path("/usr/lib/postgresql/15/bin")


def running_postgres() -> Iterator[str]:
    """initdb + postgres on a free port; yields its URL; stops and removes the cluster after."""
    if not (PG_BIN / "postgres").exists() or shutil.which("runuser") is None:
        pytest.skip("PostgreSQL 15 is not installed")
    root = Path(tempfile.mkdtemp(prefix="lw-pg-"))
    data = root / "data"
    shutil.chown(root, "postgres", "postgres")
    as_pg = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    subprocess.run([*as_pg, str(PG_BIN / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync"],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    port = free_port()
    proc = subprocess.Popen([*as_pg, str(PG_BIN / "postgres"), "-D", str(data), "-p", str(port), "-h", "127.0.0.1",
                             "-k", str(root), "-c", "fsync=off"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    conninfo = f"postgresql://postgres@127.0.0.1:{port}/postgres"  # a URL: psycopg and h-pg's AlertDB take it
    try:
        import psycopg
        deadline = time.monotonic() + 30
        while True:
            try:
                psycopg.connect(conninfo, connect_timeout=2).close()
                break
            except psycopg.OperationalError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("PostgreSQL did not start") from None
                time.sleep(0.1)
        yield conninfo
    finally:  # pg_ctl, not a signal to runuser: the postgres processes must not outlive the test
        subprocess.run([*as_pg, str(PG_BIN / "pg_ctl"), "-D", str(data), "stop", "-m", "immediate"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def postgres() -> Iterator[str]:
    yield from running_postgres()

"""A real single nats-server on a loopback port for tests (h-api; the cluster fixtures are h-nats')."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Iterator

import pytest

from tests.conftest import free_port


def nats_server_binary() -> str:
    """The nats-server to run, or skip the test when it is not installed."""
    binary = shutil.which("nats-server") or "/usr/sbin/nats-server"
    if not Path(binary).exists():
        pytest.skip("nats-server is not installed")
    return binary


def running_nats() -> Iterator[str]:
    """Start nats-server on a free port, yield its URL, kill it after."""
    port = free_port()
    proc = subprocess.Popen([nats_server_binary(), "-a", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError(f"nats-server did not listen on {port}") from None
                time.sleep(0.05)
        yield f"nats://127.0.0.1:{port}"
    finally:
        proc.kill()
        proc.wait()


@pytest.fixture
def nats_url() -> Iterator[str]:
    yield from running_nats()

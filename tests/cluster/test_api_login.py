"""`liaowang api` signs in to an authenticated NATS cluster as the ``api`` user of credentials.json,
and never writes that password (or any other) to its log."""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
from pathlib import Path

import orjson

from liaowang.pipeline import Pipeline
from tests.conftest import free_port, wait_until

ROOT = Path(__file__).resolve().parents[2]


def _health(port: int) -> dict | None:
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        conn.request("GET", "/healthz")
        return orjson.loads(conn.getresponse().read())
    except OSError:
        return None


def _api(data_dir: Path, *args: str) -> tuple[int, subprocess.Popen]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "liaowang.cli", "api", "--config", str(ROOT / "config"),
                             "--data-dir", str(data_dir), "--http-port", str(port), *args],
                            cwd=data_dir.parent, env={**os.environ, "PYTHONPATH": str(ROOT)},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    return port, proc


def _stop(proc: subprocess.Popen) -> str:
    if proc.poll() is None:
        proc.terminate()
    out, _ = proc.communicate(timeout=20)
    return out.decode(errors="replace")


def test_the_api_signs_in_with_the_credentials_file_and_logs_no_password(nats_cluster, demo_config, tmp_path):
    data_dir = tmp_path / "data"
    Pipeline(demo_config, data_dir).stop()  # the store an api serves
    credentials = nats_cluster.root / "nats" / "credentials.json"
    secrets = json.loads(credentials.read_text())["passwords"].values()
    port, proc = _api(data_dir, "--credentials", str(credentials))
    try:
        wait_until(lambda: (_health(port) or {}).get("checks", {}).get("commands") is True, timeout=30)
    finally:
        log = _stop(proc)
    assert "liaowang_api_ready" in log
    assert not [s for s in secrets if s in log]


def test_a_wrong_password_is_refused_saying_so_without_the_password(nats_cluster, demo_config, tmp_path):
    data_dir = tmp_path / "data"
    Pipeline(demo_config, data_dir).stop()
    servers = ",".join(f"nats://api:not-the-password@{url.split('//', 1)[1]}" for url in nats_cluster.servers)
    port, proc = _api(data_dir, "--nats", servers, "--partitions", str(nats_cluster.partitions))
    assert proc.wait(timeout=60) != 0
    log = _stop(proc)
    assert "nats_unreachable" in log and "not-the-password" not in log

"""`liaowang run` as a user runs it: one process brings up broker, pipeline, simulators, API and map."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import urllib.request

import pytest

from liaowang.broker import port_free

from .conftest import CONFIG_DIR, free_port, wait_until


def get_json(url: str):
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


def healthy(url: str) -> bool:
    try:
        return get_json(url)["ok"]
    except OSError:
        return False


@pytest.fixture
def liaowang_run(liaowang_process):
    run = liaowang_process
    wait_until(lambda: run.process.poll() is not None or healthy(run.base + "/healthz"), timeout=60)
    assert run.process.poll() is None, run.process.stdout.read()
    yield run.process, run.base, run.mqtt_port


def test_run_serves_the_map_and_alerts_of_all_three_families_then_stops_cleanly(liaowang_run):
    process, base, mqtt_port = liaowang_run
    counties = get_json(base + "/static/data/liaocheng.geojson")
    assert len(counties["features"]) == 8
    assert len(get_json(base + "/api/v1/map")["features"]) >= 12
    with urllib.request.urlopen(base + "/", timeout=5) as page:
        assert "应急管理一张图" in page.read().decode()
    health = get_json(base + "/healthz")  # says what a crash of this deployment would lose
    assert health["broker_kind"] in ("mosquitto", "amqtt") and "crash" in health["delivery_guarantee"]
    assert health["stages"]["ingest-store"]["state"] == "running" and health["disks"]
    # The demo incidents are scheduled to show all three families within 90 s of start.
    families = wait_until(lambda: {a["family"] for a in get_json(base + "/api/v1/alerts")} >= {"gas", "hazard", "forest"},
                          timeout=90, interval=1.0)
    assert families
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=30) == 0
    output = process.stdout.read()
    assert "liaowang_stopped" in output
    assert port_free("127.0.0.1", mqtt_port), "the broker was left running"


def test_run_refuses_a_busy_http_port(tmp_path):
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "liaowang.cli", "run", "--config", str(CONFIG_DIR), "--data-dir", str(tmp_path),
             "--http-port", str(port), "--mqtt-port", str(free_port()), "--no-simulators"],
            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "http_port_in_use" in result.stderr


def test_sigterm_and_kill_never_leave_the_broker_behind(tmp_path):
    import os

    for how in (signal.SIGTERM, signal.SIGKILL):
        http_port, mqtt_port = free_port(), free_port()
        process = subprocess.Popen(
            [sys.executable, "-m", "liaowang.cli", "run", "--config", str(CONFIG_DIR), "--data-dir",
             str(tmp_path / how.name), "--http-port", str(http_port), "--mqtt-port", str(mqtt_port), "--no-simulators"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_until(lambda: healthy(f"http://127.0.0.1:{http_port}/healthz"), timeout=60)
            os.kill(process.pid, how)
            process.wait(timeout=30)
            if how == signal.SIGTERM:
                assert process.returncode == 0
            assert wait_until(lambda: port_free("127.0.0.1", mqtt_port), timeout=15)
        finally:
            if process.poll() is None:
                process.kill()

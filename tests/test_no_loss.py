"""Nothing lost: kill -9 of ingest, and a broker restart, while 20,000 QoS 1 readings stream in."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import orjson
import pytest

from liaowang.broker import MosquittoBroker
from foundation.mqttclient import BoundedPublisher
from liaowang.pipeline import Pipeline

from .conftest import CONFIG_DIR, config_for, credentials_for, free_port, mqtt_client, register_credentials, wait_until
from .test_cli_run import healthy

TOTAL = 20_000
SENSORS = [f"LC-LUXI-GD-0{i}" for i in range(1, 5)] + ["LC-LUXI-T101-LT", "LC-LUXI-T101-TT", "LC-LUXI-T101-PT",
                                                        "LC-LUXI-T102-LT", "LC-LUXI-T102-TT", "LC-LUXI-FT-01"]


def stored(db: Path) -> int:
    if not db.exists():
        return 0
    with sqlite3.connect(db, timeout=30) as conn:
        try:
            return conn.execute("SELECT count(*) FROM readings").fetchone()[0]
        except sqlite3.OperationalError:
            return 0


def stream(port: int, done: threading.Event, total: int = TOTAL) -> None:
    """Publish ``total`` distinct readings at QoS 1 from a persistent session, riding out outages."""
    client = mqtt_client(port, f"no-loss-pub-{port}", clean_session=False)
    client.reconnect_delay_set(0.2, 2)
    client.max_queued_messages_set(0)
    client.connect("127.0.0.1", port)
    client.loop_start()
    out = BoundedPublisher(client, max_outstanding=500)
    t0 = time.time() - total  # all in the past, one second apart per reading
    for i in range(total):
        sensor = SENSORS[i % len(SENSORS)]
        out.publish(f"liaowang/v1/readings/LC-LUXI/{sensor}",
                    orjson.dumps({"sensor_id": sensor, "ts": t0 + i, "value": 5.0}), qos=1)
    assert out.flush(timeout=180)
    client.disconnect()
    client.loop_stop()
    done.set()


def start_ingest(port: int, data_dir: Path) -> subprocess.Popen:
    """`liaowang run` without simulators against the test broker; returns once it is subscribed."""
    http_port = free_port()
    credentials = credentials_for(port)
    env = {**os.environ, "LIAOWANG_MQTT__EMBEDDED_BROKER": "none", "LIAOWANG_MQTT__PORT": str(port),
           "LIAOWANG_MQTT__CLIENT_ID": f"no-loss-ingest-{port}", "LIAOWANG_MQTT__USERNAME": credentials.username,
           "LIAOWANG_MQTT__PASSWORD": credentials.password.get_secret_value()}
    process = subprocess.Popen([sys.executable, "-m", "liaowang.cli", "run", "--config", str(CONFIG_DIR), "--data-dir",
                             str(data_dir), "--http-port", str(http_port), "--no-simulators"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_until(lambda: process.poll() is not None or healthy(f"http://127.0.0.1:{http_port}/healthz"), timeout=60)
    assert process.poll() is None, "ingest did not start"
    return process


def test_kill_9_of_ingest_mid_stream_loses_and_duplicates_nothing(broker, tmp_path):
    _, port = broker
    data_dir = tmp_path / "data"
    db = data_dir / "readings.db"
    first = start_ingest(port, data_dir)
    done = threading.Event()
    try:
        publisher = threading.Thread(target=stream, args=(port, done))
        publisher.start()
        wait_until(lambda: stored(db) >= 3000, timeout=120)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
        at_kill = stored(db)
        assert at_kill < TOTAL
        publisher.join(timeout=240)
        assert done.is_set(), "the publisher finished while ingest was down"
        second = start_ingest(port, data_dir)
        try:
            wait_until(lambda: stored(db) >= TOTAL, timeout=180, interval=0.5)
            time.sleep(1)  # a duplicate would show as an error, never as an extra row; check nothing more arrives
            assert stored(db) == TOTAL
        finally:
            second.terminate()
            second.wait(timeout=30)
    finally:
        if first.poll() is None:
            first.kill()


@pytest.mark.skipif(not (shutil.which("mosquitto") or Path("/usr/sbin/mosquitto").exists()),
                    reason="needs mosquitto's persistence (the embedded amqtt broker keeps none)")
def test_a_broker_restart_mid_stream_loses_nothing(tmp_path, demo_config):
    port = free_port()
    broker_dir = tmp_path / "broker"
    broker = MosquittoBroker("127.0.0.1", port, broker_dir, shutil.which("mosquitto") or "/usr/sbin/mosquitto")
    register_credentials(port, broker.credentials)  # made once under broker_dir: the same after the restart
    pipeline = Pipeline(config_for(demo_config, port), tmp_path / "data")
    pipeline.start()
    done = threading.Event()
    try:
        assert pipeline.ingest.wait_connected(10)
        publisher = threading.Thread(target=stream, args=(port, done))
        publisher.start()
        wait_until(lambda: pipeline.readings.count() >= 3000, timeout=120)
        broker.stop()  # SIGTERM: mosquitto saves its persistence file
        broker = MosquittoBroker("127.0.0.1", port, broker_dir, shutil.which("mosquitto") or "/usr/sbin/mosquitto")
        publisher.join(timeout=240)
        assert done.is_set()
        wait_until(lambda: pipeline.readings.count() >= TOTAL, timeout=180, interval=0.5)
        assert pipeline.readings.count() == TOTAL
    finally:
        pipeline.stop()
        broker.stop()

"""Shared fixtures: the demo configuration, free ports and a real MQTT broker over TCP.

The broker is mosquitto when its binary is installed (CI installs it), else the embedded amqtt
broker, the same choice `liaowang run` makes.
"""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path
from typing import Callable, Iterator

import orjson
import paho.mqtt.client as mqtt
import pytest

from liaowang.broker import start_broker
from liaowang.config import Config, load_config

ROOT = Path(__file__).resolve().parent.parent
CONFIG_DIR = ROOT / "config"


@pytest.fixture(scope="session")
def demo_config() -> Config:
    return load_config(CONFIG_DIR)


@pytest.fixture(scope="session")
def fleet(demo_config: Config):
    return demo_config.fleet


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[tuple[str, int]]:
    """A real broker on a free loopback port (mosquitto if installed, else amqtt)."""
    port = free_port()
    running = start_broker("auto", "127.0.0.1", port, tmp_path / "broker")
    yield "127.0.0.1", port
    running.stop()


def config_for(config: Config, port: int, **settings_updates) -> Config:
    """The demo configuration pointed at a test broker port."""
    mqtt_settings = config.settings.mqtt.model_copy(update={"port": port, "client_id": f"test-ingest-{port}"})
    settings = config.settings.model_copy(update={"mqtt": mqtt_settings, **settings_updates})
    return config.model_copy(update={"settings": settings})


class Subscriber:
    """A paho subscriber that records (topic, payload) for assertions."""

    def __init__(self, host: str, port: int, topic: str) -> None:
        self.messages: list[tuple[str, bytes]] = []
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"test-sub-{time.monotonic_ns()}")
        self.client.on_connect = lambda c, *_: c.subscribe(topic, qos=1)
        self.client.on_subscribe = lambda *_: self._ready.set()
        self.client.on_message = self._on_message
        self.client.connect(host, port)
        self.client.loop_start()
        assert self._ready.wait(10), "subscription not confirmed"

    def _on_message(self, client, userdata, msg) -> None:
        with self._lock:
            self.messages.append((msg.topic, msg.payload))

    def json(self) -> list[dict]:
        with self._lock:
            return [orjson.loads(p) for _, p in self.messages]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def publisher(host: str, port: int) -> mqtt.Client:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"test-pub-{time.monotonic_ns()}")
    client.connect(host, port)
    client.loop_start()
    return client


def wait_until(condition: Callable[[], object], timeout: float = 10.0, interval: float = 0.05) -> object:
    """Poll ``condition`` until it is truthy; fail the test after ``timeout`` seconds.

    Used to wait for asynchronous delivery, never to measure time.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout} s")


INFLUXD_CONF = """\
reporting-enabled = false
bind-address = "127.0.0.1:{rpc}"
[meta]
  dir = "{root}/meta"
[data]
  dir = "{root}/data"
  wal-dir = "{root}/wal"
  query-log-enabled = false
[http]
  enabled = true
  bind-address = "127.0.0.1:{http}"
  log-enabled = false
[monitor]
  store-enabled = false
[ifql]
  enabled = false
"""


@pytest.fixture
def influxdb_v1(tmp_path: Path) -> Iterator[str]:
    """A real InfluxDB 1.x server (Debian's influxdb) on a free loopback port; yields its base URL."""
    import shutil
    import subprocess
    import urllib.request

    binary = shutil.which("influxd") or ("/usr/bin/influxd" if Path("/usr/bin/influxd").exists() else None)
    if binary is None:
        pytest.skip("influxd is not installed (.ci/run installs Debian's influxdb)")
    http, rpc = free_port(), free_port()
    root = tmp_path / "influxdb"
    root.mkdir()
    conf = root / "influxdb.conf"
    conf.write_text(INFLUXD_CONF.format(root=root, http=http, rpc=rpc))
    log = open(root / "influxd.log", "wb")
    process = subprocess.Popen([binary, "-config", str(conf)], stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{http}"

    def ping() -> bool:
        try:
            with urllib.request.urlopen(url + "/ping", timeout=1) as response:
                return response.status == 204
        except OSError:
            return False

    try:
        wait_until(ping, timeout=30)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=20)
        log.close()

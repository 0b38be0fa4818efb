"""Shared fixtures: the demo configuration, free ports and a real MQTT broker over TCP.

The broker is mosquitto when its binary is installed (CI installs it), else the embedded amqtt
broker, the same choice `liaowang run` makes. Like `liaowang run`'s, it lets nobody in anonymously:
`config_for`, `publisher` and `Subscriber` log in as Liaowang's own user of the test broker on
their port (or with the credentials given).
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

from liaowang.broker import Broker, Credentials, start_broker
from foundation.config import Config, load_config
from tests.pgserver import alerts_db_factory, alerts_db_target, pg_server, pg_url  # noqa: F401 - fixtures: a private PostgreSQL

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


class BrokerUnderTest(tuple):
    """A running test broker: unpacks as ``(host, port)``; ``credentials`` are Liaowang's own user on it."""

    host: str
    port: int
    credentials: Credentials
    running: Broker

    def __new__(cls, host: str, port: int, running: Broker) -> "BrokerUnderTest":
        self = super().__new__(cls, (host, port))
        self.host, self.port, self.running, self.credentials = host, port, running, running.credentials
        return self

    @property
    def kind(self) -> str:
        return self.running.kind


_OWN_CREDENTIALS: dict[int, Credentials] = {}
"""Liaowang's own user on the test broker listening on each port (tests run one broker per port)."""


def register_credentials(port: int, credentials: Credentials | None) -> None:
    """Let `config_for`, `publisher` and `Subscriber` log in to the broker on ``port`` as ``credentials``."""
    if credentials is not None:
        _OWN_CREDENTIALS[port] = credentials


def credentials_for(port: int) -> Credentials | None:
    """Liaowang's own user on the test broker on ``port``, if one was started through this module."""
    return _OWN_CREDENTIALS.get(port)


def start_test_broker(choice: str, data_dir: Path, port: int | None = None, **options) -> BrokerUnderTest:
    """Start a broker as `liaowang run` would (``choice``: auto, mosquitto or amqtt) on loopback."""
    port = port or free_port()
    running = start_broker(choice, "127.0.0.1", port, data_dir, **options)
    register_credentials(port, running.credentials)
    return BrokerUnderTest("127.0.0.1", port, running)


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[BrokerUnderTest]:
    """A real broker on a free loopback port (mosquitto if installed, else amqtt), no anonymous access."""
    running = start_test_broker("auto", tmp_path / "broker")
    yield running
    running.running.stop()


def config_for(config: Config, port: int, **settings_updates) -> Config:
    """The demo configuration pointed at a test broker port, logging in as Liaowang's own user there."""
    update: dict = {"port": port, "client_id": f"test-ingest-{port}"}
    credentials = credentials_for(port)
    if credentials is not None:
        update |= {"username": credentials.username, "password": credentials.password}
    mqtt_settings = config.settings.mqtt.model_copy(update=update)
    settings = config.settings.model_copy(update={"mqtt": mqtt_settings, **settings_updates})
    return config.model_copy(update={"settings": settings})


def mqtt_client(port: int, client_id: str, credentials: Credentials | None = None, **options) -> mqtt.Client:
    """A paho client (not yet connected) that logs in as ``credentials`` or as Liaowang on ``port``'s test broker."""
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, **options)
    credentials = credentials or credentials_for(port)
    if credentials is not None:
        client.username_pw_set(credentials.username, credentials.password.get_secret_value())
    return client


class Subscriber:
    """A paho subscriber that records (topic, payload) for assertions."""

    def __init__(self, host: str, port: int, topic: str, credentials: Credentials | None = None) -> None:
        self.messages: list[tuple[str, bytes]] = []
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self.client = mqtt_client(port, f"test-sub-{time.monotonic_ns()}", credentials)
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


def publisher(host: str, port: int, credentials: Credentials | None = None) -> mqtt.Client:
    """A connected paho publisher (Liaowang's own user on the test broker unless ``credentials``)."""
    client = mqtt_client(port, f"test-pub-{time.monotonic_ns()}", credentials)
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


class LiaowangRun:
    """`liaowang run` in a subprocess on free ports (the demo configuration), answering /healthz."""

    def __init__(self, data_dir: Path) -> None:
        import subprocess
        import sys

        self.http_port, self.mqtt_port = free_port(), free_port()
        self.base = f"http://127.0.0.1:{self.http_port}"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "liaowang.cli", "run", "--config", str(CONFIG_DIR), "--data-dir", str(data_dir),
             "--http-port", str(self.http_port), "--mqtt-port", str(self.mqtt_port)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    def answering(self) -> bool:
        """Whether /healthz answers at all (200 ready, 503 not yet)."""
        import urllib.error
        import urllib.request

        try:
            with urllib.request.urlopen(self.base + "/healthz", timeout=2):
                return True
        except urllib.error.HTTPError as err:
            return err.code == 503
        except OSError:
            return False

    def wait_up(self, timeout: float = 60) -> None:
        wait_until(lambda: self.process.poll() is not None or self.answering(), timeout=timeout, interval=0.2)
        assert self.process.poll() is None, self.process.stdout.read()

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def liaowang_process(tmp_path: Path) -> Iterator[LiaowangRun]:
    """A started `liaowang run` (its HTTP side answering); killed at the end if still running."""
    run = LiaowangRun(tmp_path / "run-data")
    try:
        run.wait_up()
        yield run
    finally:
        run.kill()

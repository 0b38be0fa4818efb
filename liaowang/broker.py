"""The embedded MQTT broker of `liaowang run`: mosquitto if it is on PATH, else amqtt in-process.

Production uses an external mosquitto or EMQX (docker-compose.yml); this exists so that one
command brings up everything on one machine with nothing else to install.
"""

from __future__ import annotations

import asyncio
import ctypes
import getpass
import signal
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Protocol

import structlog

log = structlog.get_logger("broker")

MOSQUITTO_CONF = """\
# Written by liaowang run; see docs/production.md for a production broker.
listener {port} {host}
allow_anonymous true
# Stay as the user who started us: dropping privileges would clear the parent-death signal.
user {user}
persistence true
persistence_location {store}/
autosave_interval 10
# Keep QoS 1 backlogs for a restarting ingest client (the default 1000 would drop readings).
max_queued_messages 1000000
max_queued_bytes 0
max_inflight_messages 1000
log_dest stderr
log_type error
log_type warning
"""


def _die_with_parent() -> None:
    """In the child before exec: ask Linux to send SIGTERM when the parent process dies."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG = 1
    except OSError:  # not Linux/glibc: the orderly stop in `stop()` still applies
        pass


class Broker(Protocol):
    """A running broker that can be stopped."""

    kind: str

    def stop(self) -> None:
        """Stop the broker and wait for it to exit."""
        ...


def wait_for_port(host: str, port: int, timeout: float) -> bool:
    """Whether something accepts TCP connections on host:port within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


class MosquittoBroker:
    """A mosquitto child process with persistence under ``data_dir/mosquitto``."""

    kind = "mosquitto"

    def __init__(self, host: str, port: int, data_dir: Path, binary: str = "mosquitto") -> None:
        store = data_dir / "mosquitto"
        store.mkdir(parents=True, exist_ok=True)
        conf = store / "mosquitto.conf"
        conf.write_text(MOSQUITTO_CONF.format(host=host, port=port, store=store.resolve(), user=getpass.getuser()),
                        encoding="utf-8")
        self._log = open(store / "mosquitto.log", "ab")
        # Own session: Ctrl-C reaches us and we stop mosquitto after ingest drains. The death signal
        # makes sure it never outlives us, even after kill -9.
        self.process = subprocess.Popen([binary, "-c", str(conf)], stdout=self._log, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL, start_new_session=True, preexec_fn=_die_with_parent)
        if not wait_for_port(host, port, 10) or self.process.poll() is not None:
            self.stop()
            raise RuntimeError(f"mosquitto did not start on {host}:{port}; see {store / 'mosquitto.log'}")
        log.info("broker_started", kind="mosquitto", host=host, port=port, pid=self.process.pid)

    def stop(self) -> None:
        """Terminate mosquitto (it saves its persistence file on SIGTERM)."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()


class AmqttBroker:
    """amqtt running on its own event loop in a daemon thread (no persistence; demo only)."""

    kind = "amqtt"

    def __init__(self, host: str, port: int) -> None:
        from amqtt.broker import Broker as _Amqtt

        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._error: BaseException | None = None
        config = {
            "listeners": {"default": {"type": "tcp", "bind": f"{host}:{port}", "max_connections": 1000}},
            "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
        }

        async def boot() -> None:
            self._broker = _Amqtt(config, loop=self._loop)
            await self._broker.start()

        def run() -> None:
            asyncio.set_event_loop(self._loop)
            try:
                self._loop.run_until_complete(boot())
            except BaseException as err:  # reported to the starting thread
                self._error = err
                self._ready.set()
                return
            self._ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, name="amqtt-broker", daemon=True)
        self._thread.start()
        self._ready.wait(15)
        if self._error is not None or not wait_for_port(host, port, 10):
            raise RuntimeError(f"embedded amqtt broker did not start on {host}:{port}: {self._error}")
        log.info("broker_started", kind="amqtt", host=host, port=port)

    def stop(self) -> None:
        """Shut amqtt down and end its loop."""
        async def down() -> None:
            await self._broker.shutdown()

        try:
            asyncio.run_coroutine_threadsafe(down(), self._loop).result(timeout=10)
        except Exception as err:
            log.warning("broker_stop_failed", kind="amqtt", error=str(err))
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)


def port_free(host: str, port: int) -> bool:
    """Whether nothing listens on host:port yet (so a server of ours can bind it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def start_broker(choice: str, host: str, port: int, data_dir: Path) -> Broker | None:
    """Start the broker ``choice`` names (auto: mosquitto if on PATH, else amqtt; none: nothing)."""
    if choice == "none":
        return None
    if not port_free(host, port):
        raise RuntimeError(f"MQTT port {host}:{port} is already in use (another broker or Liaowang running?); "
                           "choose --mqtt-port, or set mqtt.embedded_broker: none to use that broker")
    binary = shutil.which("mosquitto") or next(
        (p for p in ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto") if Path(p).exists()), None)
    if choice == "mosquitto" or (choice == "auto" and binary):
        if not binary:
            raise RuntimeError("embedded_broker is 'mosquitto' but no mosquitto binary was found")
        return MosquittoBroker(host, port, data_dir, binary)
    return AmqttBroker(host, port)

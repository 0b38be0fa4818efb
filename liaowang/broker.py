"""The embedded MQTT broker of `liaowang run`: mosquitto if it is on PATH, else amqtt in-process.

Production uses an external mosquitto or EMQX (docker-compose.yml); this exists so that one
command brings up everything on one machine with nothing else to install. It is never open:
only Liaowang's own clients and the configured gateways get in (liaowang.broker_auth), and
without a configured gateway it listens on loopback only (docs/broker.md).
"""

from __future__ import annotations

import asyncio
import ctypes
import getpass
import glob
import ipaddress
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Protocol

import structlog
from pydantic import SecretStr

from liaowang.broker_auth import (OWN_USERNAME, Credentials, UserTable, broker_dir, own_credentials, stored_credentials,
                                  with_credentials)
from foundation.config import MqttGateway, MqttSettings

__all__ = ["AmqttBroker", "Broker", "BrokerRefused", "Credentials", "Durability", "MosquittoBroker", "exposure_problem",
           "is_loopback", "port_free", "start_broker", "stored_credentials", "with_credentials"]

log = structlog.get_logger("broker")


@dataclass(frozen=True, slots=True)
class Durability:
    """How often mosquitto writes its in-memory queue to ``mosquitto.db``.

    ``interval`` is seconds, or with ``on_changes`` a count of changes (messages in and out,
    subscriptions). Every save rewrites the whole queue, so a save costs in proportion to the
    backlog (docs/broker.md has the measurements behind the default).
    """

    interval: int
    on_changes: bool = False

    def conf(self) -> str:
        return f"autosave_interval {self.interval}\nautosave_on_changes {str(self.on_changes).lower()}\n"

    def guarantee(self) -> str:
        # mosquitto saves once ``last save + interval < now`` in whole seconds: every interval to interval + 1 s
        every = (f"after every {self.interval} changes" if self.on_changes
                 else f"every {self.interval}–{self.interval + 1} s")
        return (f"mosquitto saves its queue to disk {every} and on a clean stop: a crash of liaowang together with "
                f"its broker (kill -9, OOM) loses readings the broker acknowledged since the last save that ingest "
                f"had not stored")


DURABILITY = Durability(interval=1)
"""The default of `liaowang run`: loses at most the last 1–2 s the broker acknowledged (10 s lost up
to 11 s), at no measurable cost below ~300,000 queued messages; saving on changes rewrites the whole
queue that often and cut intake by half or more (docs/broker.md, bench/broker_durability.py)."""

AMQTT_GUARANTEE = ("queued readings are kept in memory only: a crash of liaowang loses what the broker "
                   "acknowledged but ingest had not stored")

MOSQUITTO_CONF = """\
# Written by liaowang run at every start; see docs/broker.md. Edit liaowang.yaml, not this file.
listener {port} {host}
# Nobody anonymous: Liaowang's own clients and the configured gateways only, each gateway bound
# to one client id and to its sites' topics (dynamic-security.json, written beside this file).
allow_anonymous false
plugin {dynsec}
plugin_opt_config_file {auth}
# Stay as the user who started us: dropping privileges would clear the parent-death signal.
user {user}
persistence true
persistence_location {store}/
{durability}\
# Keep QoS 1 backlogs for a restarting ingest client (the default 1000 would drop readings).
max_queued_messages 1000000
max_queued_bytes 0
max_inflight_messages 1000
log_dest stderr
log_type error
log_type warning
# notice: connections, and refused ones ("not authorised")
log_type notice
"""

DYNSEC_PLUGIN_PATHS = ("/usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so", "/usr/lib/*/mosquitto_dynamic_security.so",
                       "/usr/lib/mosquitto_dynamic_security.so", "/usr/local/lib/mosquitto_dynamic_security.so",
                       "/usr/local/lib/*/mosquitto_dynamic_security.so", "/opt/homebrew/lib/mosquitto_dynamic_security.so")


class BrokerRefused(RuntimeError):
    """The broker would be reachable by clients it cannot tell apart: it is not started."""


class Broker(Protocol):
    """A running embedded broker."""

    kind: str
    """"mosquitto" or "amqtt"."""
    guarantee: str
    """One line: what a crash loses (for the start-up log and /healthz)."""
    credentials: Credentials
    """Liaowang's own user on this broker (MqttSettings.username/password of every own client)."""

    def stop(self) -> None:
        """Stop the broker and wait for it to exit."""
        ...


def is_loopback(host: str) -> bool:
    """Whether ``host`` is a loopback name or address."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def exposure_problem(mqtt: MqttSettings) -> tuple[str, str] | None:
    """Why `liaowang run` must not start with these MQTT settings, as (event, hint); None if fine.

    The embedded broker listens off loopback only for configured gateways, never with the demo
    gateway (its password is in the README); an external broker off loopback needs a user.
    """
    if is_loopback(mqtt.host):
        return None
    if mqtt.embedded_broker == "none":
        if not mqtt.username:
            return ("mqtt_anonymous_off_loopback",
                    "set mqtt.username/password: an anonymous broker on the network lets anyone take ingest's session")
        return None
    if mqtt.holds_demo_gateway():
        return ("demo_gateway_off_loopback",
                "remove the demo gateway from mqtt.gateways before listening on another address")
    if not mqtt.gateways:
        return ("broker_off_loopback_without_gateways",
                "configure mqtt.gateways (user, password, sites) for whoever must connect from the network, "
                "or keep mqtt.host on 127.0.0.1")
    return None


def _refuse_exposure(host: str, gateways: Iterable[MqttGateway]) -> None:
    problem = exposure_problem(MqttSettings(host=host, gateways=list(gateways)))
    if problem is not None:
        raise BrokerRefused(f"{problem[0]}: {problem[1]}")


def _die_with_parent() -> None:
    """In the child before exec: ask Linux to send SIGTERM when the parent process dies."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG = 1
    except OSError:  # not Linux/glibc: the orderly stop in `stop()` still applies
        pass


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


def find_dynsec_plugin() -> str | None:
    """mosquitto's dynamic-security plugin (Debian: package mosquitto), if installed."""
    for pattern in DYNSEC_PLUGIN_PATHS:
        found = sorted(glob.glob(pattern))
        if found:
            return found[0]
    return None


def _write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` readable by this user only (replacing it atomically)."""
    temporary = path.with_name(path.name + ".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)
    os.replace(temporary, path)


def _ephemeral_credentials() -> Credentials:
    return Credentials(OWN_USERNAME, SecretStr(secrets.token_urlsafe(24)))


class MosquittoBroker:
    """A mosquitto child process: persistence under ``data_dir/mosquitto``, users under ``data_dir/broker``."""

    kind = "mosquitto"

    def __init__(self, host: str, port: int, data_dir: Path, binary: str = "mosquitto", *,
                 gateways: Iterable[MqttGateway] = (), credentials: Credentials | None = None,
                 durability: Durability = DURABILITY, dynsec_plugin: str | None = None) -> None:
        gateways = list(gateways)
        _refuse_exposure(host, gateways)
        plugin = dynsec_plugin or find_dynsec_plugin()
        if plugin is None:
            raise RuntimeError("mosquitto's dynamic-security plugin (mosquitto_dynamic_security.so) was not found; "
                               "without it the embedded mosquitto cannot bind gateways to their client ids. "
                               "Set mqtt.embedded_broker: amqtt")
        self.credentials = credentials or own_credentials(data_dir)
        self.guarantee = durability.guarantee()
        private = broker_dir(data_dir)
        auth = private / "dynamic-security.json"
        _write_private(auth, json.dumps(UserTable(self.credentials, gateways).dynamic_security(), indent=1))
        store = data_dir / "mosquitto"
        store.mkdir(parents=True, exist_ok=True)
        conf = private / "mosquitto.conf"
        _write_private(conf, MOSQUITTO_CONF.format(host=host, port=port, store=store.resolve(), user=getpass.getuser(),
                                                   dynsec=plugin, auth=auth.resolve(), durability=durability.conf()))
        self.log_path = store / "mosquitto.log"
        self._log = open(self.log_path, "ab")
        # Own session: Ctrl-C reaches us and we stop mosquitto after ingest drains. The death signal
        # makes sure it never outlives us, even after kill -9.
        self.process = subprocess.Popen([binary, "-c", str(conf)], stdout=self._log, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL, start_new_session=True, preexec_fn=_die_with_parent)
        if not wait_for_port(host, port, 10) or self.process.poll() is not None:
            self.stop()
            raise RuntimeError(f"mosquitto did not start on {host}:{port}; see {self.log_path}")
        log.info("broker_started", kind="mosquitto", host=host, port=port, pid=self.process.pid,
                 gateways=len(gateways), guarantee=self.guarantee)

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
    """amqtt on its own event loop in a daemon thread (no persistence; demo only), hardened by
    liaowang.broker_amqtt: users and ACLs, a CONNECT deadline, rate-limited logs."""

    kind = "amqtt"
    guarantee = AMQTT_GUARANTEE

    def __init__(self, host: str, port: int, data_dir: Path | None = None, *, gateways: Iterable[MqttGateway] = (),
                 credentials: Credentials | None = None, connect_timeout_s: float = 10.0,
                 max_connections: int = 1000) -> None:
        from liaowang.broker_amqtt import THROTTLE, GuardedAmqtt, amqtt_config, quiet_amqtt_logs

        gateways = list(gateways)
        _refuse_exposure(host, gateways)
        self.credentials = credentials or (own_credentials(data_dir) if data_dir else _ephemeral_credentials())
        users = UserTable(self.credentials, gateways)
        quiet_amqtt_logs()
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._error: BaseException | None = None

        async def boot() -> None:
            self._broker = GuardedAmqtt(amqtt_config(host, port, users, max_connections), users=users,
                                        connect_timeout_s=connect_timeout_s, loop=self._loop)
            await self._broker.start()

        def report_held_logs() -> None:
            THROTTLE.flush()
            self._loop.call_later(10, report_held_logs)

        def run() -> None:
            asyncio.set_event_loop(self._loop)
            try:
                self._loop.run_until_complete(boot())
            except BaseException as err:  # reported to the starting thread
                self._error = err
                self._ready.set()
                return
            self._ready.set()
            self._loop.call_later(10, report_held_logs)
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, name="amqtt-broker", daemon=True)
        self._thread.start()
        self._ready.wait(15)
        if self._error is not None or not wait_for_port(host, port, 10):
            raise RuntimeError(f"embedded amqtt broker did not start on {host}:{port}: {self._error}")
        log.info("broker_started", kind="amqtt", host=host, port=port, gateways=len(gateways),
                 connect_timeout_s=connect_timeout_s, guarantee=self.guarantee)

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


def find_mosquitto() -> str | None:
    """The mosquitto binary on PATH or in Debian's /usr/sbin."""
    return shutil.which("mosquitto") or next(
        (p for p in ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto") if Path(p).exists()), None)


def start_broker(choice: str, host: str, port: int, data_dir: Path, *, gateways: Iterable[MqttGateway] = (),
                 credentials: Credentials | None = None, connect_timeout_s: float = 10.0) -> Broker | None:
    """Start the broker ``choice`` names (auto: mosquitto if on PATH, else amqtt; none: nothing).

    Raises BrokerRefused if it would listen off loopback without gateways or with the demo one,
    RuntimeError if it cannot start. Own clients connect with the returned broker's ``credentials``.

    >>> broker = start_broker("amqtt", "127.0.0.1", 18830, Path("/tmp/lw-doc"))  # doctest: +SKIP
    >>> mqtt = with_credentials(settings.mqtt, broker.credentials)  # doctest: +SKIP
    """
    if choice == "none":
        return None
    gateways = list(gateways)
    _refuse_exposure(host, gateways)
    if not port_free(host, port):
        raise RuntimeError(f"MQTT port {host}:{port} is already in use (another broker or Liaowang running?); "
                           "choose --mqtt-port, or set mqtt.embedded_broker: none to use that broker")
    credentials = credentials or own_credentials(data_dir)
    binary = find_mosquitto()
    if choice == "mosquitto" or (choice == "auto" and binary):
        if not binary:
            raise RuntimeError("embedded_broker is 'mosquitto' but no mosquitto binary was found")
        if choice == "auto" and find_dynsec_plugin() is None:
            log.warning("broker_mosquitto_without_dynsec", binary=binary,
                        hint="mosquitto's dynamic-security plugin is missing; using the embedded amqtt broker")
        else:
            return MosquittoBroker(host, port, data_dir, binary, gateways=gateways, credentials=credentials)
    return AmqttBroker(host, port, data_dir, gateways=gateways, credentials=credentials,
                       connect_timeout_s=connect_timeout_s)

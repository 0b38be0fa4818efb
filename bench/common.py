"""Helpers shared by the benchmarks: a broker, preloading a persistent session, results files."""

from __future__ import annotations

import multiprocessing
import os
import platform
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import paho.mqtt.client as mqtt
from pydantic import SecretStr

from liaowang.broker import AmqttBroker, MosquittoBroker
from foundation.mqttclient import BoundedPublisher

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_broker() -> tuple[object, int]:
    """mosquitto with Liaowang's embedded configuration (amqtt if mosquitto is missing).

    Like `liaowang run`'s, it admits nobody anonymous: the benchmark's clients log in as Liaowang's
    own user, which is also put in the environment (LIAOWANG_MQTT__USERNAME/PASSWORD) so that
    child processes and configurations loaded from now on have it.
    """
    port = free_port()
    data_dir = Path(tempfile.mkdtemp(prefix="lw-bench-"))
    binary = shutil.which("mosquitto") or ("/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None)
    broker = (MosquittoBroker("127.0.0.1", port, data_dir, binary) if binary
              else AmqttBroker("127.0.0.1", port, data_dir))
    os.environ["LIAOWANG_MQTT__USERNAME"] = broker.credentials.username
    os.environ["LIAOWANG_MQTT__PASSWORD"] = broker.credentials.password.get_secret_value()
    return broker, port


def login() -> dict:
    """MqttSettings fields for the benchmark broker's own user (after `start_broker`)."""
    return {"username": os.environ["LIAOWANG_MQTT__USERNAME"], "password": SecretStr(os.environ["LIAOWANG_MQTT__PASSWORD"])}


def client(client_id: str, **options) -> mqtt.Client:
    """A paho client (not connected) logged in as the benchmark broker's own user."""
    made = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, **options)
    made.username_pw_set(os.environ["LIAOWANG_MQTT__USERNAME"], os.environ["LIAOWANG_MQTT__PASSWORD"])
    return made


def create_session(port: int, client_id: str, topic: str = "liaowang/v1/readings/#") -> None:
    """Make the broker hold a persistent QoS 1 session for ``client_id`` (then leave)."""
    client_ = client(client_id, clean_session=False)
    done = threading.Event()
    client_.on_subscribe = lambda *_: done.set()
    client_.connect("127.0.0.1", port)
    client_.subscribe(topic, qos=1)
    client_.loop_start()
    done.wait(10)
    client_.disconnect()
    client_.loop_stop()


def _publish_slice(port: int, messages: list[tuple[str, bytes]], index: int) -> None:
    pub = client(f"bench-pub-{index}-{time.time_ns()}")
    pub.max_queued_messages_set(0)
    pub.connect("127.0.0.1", port)
    pub.loop_start()
    out = BoundedPublisher(pub, max_outstanding=2000)
    for topic, payload in messages:
        out.publish(topic, payload, qos=1)
    out.flush(600)
    pub.disconnect()
    pub.loop_stop()


def preload(port: int, messages: list[tuple[str, bytes]], processes: int = 4) -> float:
    """Publish ``messages`` at QoS 1 from several processes; return the seconds it took."""
    t0 = time.perf_counter()
    chunks = [messages[i::processes] for i in range(processes)]
    workers = [multiprocessing.Process(target=_publish_slice, args=(port, chunk, i)) for i, chunk in enumerate(chunks)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return time.perf_counter() - t0


def rss_mb() -> float:
    """This process's resident set size in MB (from /proc)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mosq = subprocess.run(["sh", "-c", "mosquitto -h 2>&1 | head -1"], capture_output=True, text=True).stdout.strip()
    return f"{os.cpu_count()} cores, {cpu}; Python {platform.python_version()}; {mosq or 'amqtt broker'}"


def now_utc() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def write_section(path: Path, marker: str, text: str) -> None:
    """Replace the section between ``<!-- marker -->`` and ``<!-- /marker -->`` in ``path``."""
    start, end = f"<!-- {marker} -->", f"<!-- /{marker} -->"
    body = path.read_text(encoding="utf-8") if path.exists() else "# Benchmarks\n"
    block = f"{start}\n{text.rstrip()}\n{end}"
    if start in body and end in body:
        body = body[: body.index(start)] + block + body[body.index(end) + len(end):]
    else:
        body = body.rstrip() + "\n\n" + block + "\n"
    path.write_text(body, encoding="utf-8")


def drop_session(port: int, client_id: str) -> None:
    """End ``client_id``'s persistent session, so later preloads do not queue messages for it."""
    ender = client(client_id, clean_session=True)
    ender.connect("127.0.0.1", port)
    ender.loop_start()
    time.sleep(0.2)
    ender.disconnect()
    ender.loop_stop()

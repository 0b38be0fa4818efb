"""Record any MQTT feed to compressed JSON Lines, and replay it at any speed.

A recording is gzip'd JSON Lines, one message a line: ``{"topic", "payload", "received_at"}``
(payload as UTF-8 text, or ``payload_b64`` when it is not UTF-8; ``received_at`` epoch seconds).
Replay republishes at QoS 1 with flow control, keeping the recorded gaps divided by ``speed``
(0: as fast as the broker takes it), with event times as recorded or shifted so the first
reading is now. Scenario feeds can be written as recordings too (`write_scenario_recording`),
byte-identical for the same seed (gzip header time fixed at 0).
"""

from __future__ import annotations

import base64
import gzip
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import orjson
import paho.mqtt.client as mqtt

from foundation.config import Fleet, MqttSettings
from foundation.domain import parse_time
from foundation.mqttclient import BoundedPublisher, make_client


def _line(topic: str, payload: bytes, received_at: float) -> bytes:
    record: dict[str, Any] = {"topic": topic, "received_at": round(received_at, 6)}
    try:
        record["payload"] = payload.decode("utf-8")
    except UnicodeDecodeError:
        record["payload_b64"] = base64.b64encode(payload).decode()
    return orjson.dumps(record) + b"\n"


def read_recording(path: Path) -> Iterator[tuple[str, bytes, float]]:
    """``(topic, payload, received_at)`` of every line; raise ValueError naming a bad line."""
    with gzip.open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                record = orjson.loads(raw)
                payload = (record["payload"].encode() if "payload" in record
                           else base64.b64decode(record["payload_b64"]))
                yield record["topic"], payload, float(record["received_at"])
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as err:
                raise ValueError(f"{path}: line {number}: not a recording line ({err})") from None


class Progress:
    """A one-line progress report on stderr, at most once a second."""

    def __init__(self, total: int | None, label: str, stream: Any = sys.stderr) -> None:
        """``stream`` None prints nothing."""
        self.total, self.label, self.stream = total, label, stream
        self.done, self._last, self._start = 0, 0.0, time.monotonic()

    def step(self, n: int = 1) -> None:
        self.done += n
        now = time.monotonic()
        if now - self._last >= 1.0:
            self._last = now
            self._print(now)

    def finish(self) -> None:
        self._print(time.monotonic(), end="\n")

    def _print(self, now: float, end: str = "\r") -> None:
        if self.stream is None:
            return
        rate = self.done / max(now - self._start, 1e-9)
        if self.total:
            share = self.done / self.total
            bar = "#" * int(share * 30)
            text = f"{self.label} [{bar:<30}] {self.done:,}/{self.total:,} ({share:.0%}), {rate:,.0f} msg/s"
        else:
            text = f"{self.label} {self.done:,} messages, {rate:,.0f} msg/s"
        print(text, end=end, file=self.stream, flush=True)


class MessageRecorder:
    """Subscribes to a topic filter and appends every message to a recording; ``count`` so far."""

    def __init__(self, path: Path, settings: MqttSettings, topic: str = "liaowang/v1/#",
                 clock: Callable[[], float] = time.time, show_progress: bool = True) -> None:
        self.path, self.settings, self.topic, self.clock = path, settings, topic, clock
        self.count = 0
        self.subscribed = threading.Event()
        self._lock = threading.Lock()
        self._handle = gzip.open(path, "wb")
        self._progress = Progress(None, "recording", sys.stderr if show_progress else None)
        self._client = make_client(settings, f"liaowang-record-{int(clock() * 1000) % 10_000_000}")
        self._client.on_message = self._on_message
        self._client.on_connect = lambda client, *a: client.subscribe(topic, qos=1)
        self._client.on_subscribe = lambda *a: self.subscribed.set()

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        with self._lock:
            self._handle.write(_line(msg.topic, msg.payload, self.clock()))
            self.count += 1
        self._progress.step()

    def start(self) -> None:
        """Connect and subscribe (in paho's thread)."""
        self._client.connect(self.settings.host, self.settings.port, self.settings.keepalive_s)
        self._client.loop_start()

    def stop(self) -> int:
        """Disconnect and close the file; return the number of messages recorded."""
        self._client.disconnect()
        self._client.loop_stop()
        with self._lock:
            self._handle.close()
        self._progress.finish()
        return self.count


def record(path: Path, settings: MqttSettings, topic: str = "liaowang/v1/#", duration_s: float | None = None,
           stop: threading.Event | None = None) -> int:
    """Record until ``stop`` is set or ``duration_s`` has passed; return the count."""
    stop = stop or threading.Event()
    recorder = MessageRecorder(path, settings, topic)
    recorder.start()
    deadline = None if duration_s is None else time.monotonic() + duration_s
    while not stop.wait(0.1):
        if deadline is not None and time.monotonic() >= deadline:
            break
    return recorder.stop()


def _shift(payload: bytes, delta: float) -> bytes:
    """Move every reading's ``ts`` by ``delta`` seconds (RFC 3339 or epoch in; epoch out)."""
    try:
        body = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return payload
    items = body.get("readings") if isinstance(body, dict) and isinstance(body.get("readings"), list) else [body]
    for item in items:
        if isinstance(item, dict) and "ts" in item:
            ts = item["ts"]
            try:
                base = float(ts) if isinstance(ts, (int, float)) else parse_time(str(ts))
            except ValueError:
                continue  # left as it was: ingest will dead-letter it, as it did the first time
            item["ts"] = round(base + delta, 6)
    return orjson.dumps(body)


def _first_event_time(path: Path) -> float | None:
    for _, payload, _ in read_recording(path):
        try:
            body = orjson.loads(payload)
            item = body["readings"][0] if isinstance(body, dict) and "readings" in body else body
            ts = item["ts"]
            return float(ts) if isinstance(ts, (int, float)) else parse_time(str(ts))
        except (orjson.JSONDecodeError, KeyError, IndexError, TypeError, ValueError):
            continue
    return None


def replay(path: Path, settings: MqttSettings, speed: float = 1.0, shift_to_now: bool = False,
           stop: threading.Event | None = None, show_progress: bool = True) -> int:
    """Republish a recording; return the number of messages published (all acknowledged by the broker)."""
    stop = stop or threading.Event()
    total = sum(1 for _ in read_recording(path))
    delta = 0.0
    if shift_to_now:
        first = _first_event_time(path)
        delta = 0.0 if first is None else time.time() - first
    client = make_client(settings, f"liaowang-replay-{int(time.time() * 1000) % 10_000_000}")
    client.max_queued_messages_set(0)
    client.connect(settings.host, settings.port, settings.keepalive_s)
    client.loop_start()
    out = BoundedPublisher(client, max_outstanding=1000)
    progress = Progress(total, "replay", sys.stderr if show_progress else None)
    started, first_received, sent = time.monotonic(), None, 0
    for topic, payload, received_at in read_recording(path):
        if stop.is_set():
            break
        if first_received is None:
            first_received = received_at
        if speed > 0:
            wait = (received_at - first_received) / speed - (time.monotonic() - started)
            if wait > 0 and stop.wait(wait):
                break
        out.publish(topic, _shift(payload, delta) if delta else payload)
        sent += 1
        progress.step()
    out.flush(120)
    client.disconnect()
    client.loop_stop()
    progress.finish()
    return sent


def write_scenario_recording(scenario: Any, fleet: Fleet, path: Path) -> int:
    """Write a scenario's feed as a recording (one batch message per site per step, received at event time)."""
    from simulators.scenario import ScenarioFeed

    count = 0
    with open(path, "wb") as raw, gzip.GzipFile(filename="", fileobj=raw, mode="wb", mtime=0) as handle:  # no name, no time: same bytes
        for step_end, readings, gateways in ScenarioFeed(scenario, fleet).steps():
            for site, online in gateways:
                handle.write(_line(f"liaowang/v1/status/{site}", orjson.dumps({"state": "online" if online else "offline"}),
                                   step_end))
                count += 1
            by_site: dict[str, list[dict[str, Any]]] = {}
            for r in readings:
                sensor = fleet.sensors[r.sensor_id]
                item = {"sensor_id": r.sensor_id, "ts": r.ts, "value": r.value, "unit": sensor.unit}
                if r.quality != "good":
                    item["quality"] = r.quality
                by_site.setdefault(sensor.site_id, []).append(item)
            for site, items in sorted(by_site.items()):
                handle.write(_line(f"liaowang/v1/readings/{site}", orjson.dumps({"site_id": site, "readings": items}),
                                   step_end))
                count += 1
    return count

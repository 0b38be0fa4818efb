"""What mosquitto's autosave settings cost and what they keep (issue 11): the default of `liaowang run`.

Run:  .venv/bin/python bench/broker_durability.py [--messages 60000] [--kills 2]

For each setting, against the embedded mosquitto on loopback (persistence on, Liaowang's
configuration otherwise), with one paho publisher (QoS 1, flow control: at most 1,000
unacknowledged, single-reading messages of about 110 bytes):

1. live: an ingest-like persistent subscriber is connected and acknowledges; publish rate.
2. backlog: the subscriber is away (its session queues everything); publish rate while the
   queue grows to ``--messages`` (every save rewrites the whole queue).
3. kill: the subscriber is away; the publisher publishes for 4 s, then mosquitto gets SIGKILL;
   after a restart on the same store the subscriber drains. Lost = acknowledged to the
   publisher, never delivered. Repeated ``--kills`` times.

``--curve N`` instead publishes N messages into the away subscriber's queue and prints the rate per
fifth, for time-based saves: every save rewrites the whole queue (about 2 s for 1,000,000 queued
readings here), so a short interval costs most when the queue is long.

The machine is shared (2 cores): treat the rates as ± 15 %.
"""

from __future__ import annotations

import argparse
import shutil
import signal
import statistics
import sys
import tempfile
import threading
import time
from collections import deque
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import free_port, machine, now_utc  # noqa: E402
from liaowang.broker import Durability, MosquittoBroker, find_mosquitto  # noqa: E402
from foundation.config import MqttSettings  # noqa: E402
from foundation.mqttclient import BoundedPublisher, _acknowledged, make_client  # noqa: E402

SETTINGS = [Durability(10), Durability(1), Durability(1000, on_changes=True), Durability(100, on_changes=True)]
INGEST = "durability-ingest"
TOPIC = "liaowang/v1/readings/LC-LUXI/LC-LUXI-GD-01"


def payload(seq: int) -> bytes:
    return orjson.dumps({"sensor_id": "LC-LUXI-GD-01", "ts": 1_795_000_000 + seq, "value": 5.0, "unit": "%LEL",
                         "seq": seq})


class Broker:
    """A MosquittoBroker with a given durability on a fixed store, restartable."""

    def __init__(self, durability: Durability) -> None:
        self.durability = durability
        self.data_dir = Path(tempfile.mkdtemp(prefix="lw-durability-"))
        self.port = free_port()
        self.running: MosquittoBroker | None = None
        self.start()
        self.mqtt = MqttSettings(port=self.port, username=self.running.credentials.username,
                                 password=self.running.credentials.password)

    def start(self) -> None:
        self.running = MosquittoBroker("127.0.0.1", self.port, self.data_dir, find_mosquitto(), durability=self.durability)

    def kill(self) -> None:
        self.running.process.send_signal(signal.SIGKILL)
        self.running.process.wait()
        self.running._log.close()  # noqa: SLF001

    def close(self) -> None:
        self.running.stop()
        shutil.rmtree(self.data_dir, ignore_errors=True)


class Ingest:
    """A persistent QoS 1 subscriber that records the sequence numbers it receives."""

    def __init__(self, mqtt: MqttSettings) -> None:
        self.seen: set[int] = set()
        self.count = 0
        self._lock = threading.Lock()
        subscribed = threading.Event()
        self.client = make_client(mqtt, INGEST, persistent=True)
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *_: subscribed.set()
        self.client.on_connect = lambda c, *_: c.subscribe("liaowang/v1/readings/#", qos=1)
        self.client.connect(mqtt.host, mqtt.port)
        self.client.loop_start()
        assert subscribed.wait(10)

    def _on_message(self, client, userdata, msg) -> None:
        with self._lock:
            self.seen.add(orjson.loads(msg.payload)["seq"])
            self.count += 1

    def wait_quiet(self, quiet_s: float = 2.0, timeout: float = 300.0) -> None:
        """Wait until nothing has arrived for ``quiet_s``."""
        deadline = time.monotonic() + timeout
        last, since = -1, time.monotonic()
        while time.monotonic() < deadline:
            if self.count != last:
                last, since = self.count, time.monotonic()
            elif time.monotonic() - since >= quiet_s:
                return
            time.sleep(0.1)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def publish(mqtt: MqttSettings, count: int, first: int = 0) -> float:
    """Publish ``count`` messages with flow control; return the seconds until all were acknowledged."""
    client = make_client(mqtt, f"durability-pub-{time.monotonic_ns()}")
    client.max_queued_messages_set(0)
    client.connect(mqtt.host, mqtt.port)
    client.loop_start()
    out = BoundedPublisher(client, max_outstanding=1000)
    started = time.perf_counter()
    for seq in range(first, first + count):
        out.publish(TOPIC, payload(seq))
    assert out.flush(300)
    elapsed = time.perf_counter() - started
    client.disconnect()
    client.loop_stop()
    return elapsed


def publish_until(mqtt: MqttSettings, stop: threading.Event, sent: list) -> None:
    """Publish with flow control until ``stop``; ``sent`` gets (seq, MQTTMessageInfo) of each message."""
    client = make_client(mqtt, f"durability-pub-{time.monotonic_ns()}")
    client.max_queued_messages_set(0)
    client.connect(mqtt.host, mqtt.port)
    client.loop_start()
    window: deque = deque()
    seq = 0
    while not stop.is_set():
        if len(window) >= 1000:
            try:
                window[0].wait_for_publish(0.2)
            except RuntimeError:  # the broker is gone
                time.sleep(0.02)
            while window and _acknowledged(window[0]):
                window.popleft()
            continue
        info = client.publish(TOPIC, payload(seq), qos=1)
        sent.append((seq, info))
        window.append(info)
        seq += 1
    client.loop_stop()  # no reconnect: what was not acknowledged before the kill stays unsent


def measure(durability: Durability, messages: int, kills: int) -> dict:
    result: dict = {"setting": durability.conf().strip().replace("\n", ", ")}
    broker = Broker(durability)
    try:
        ingest = Ingest(broker.mqtt)
        result["live"] = messages // 2 / publish(broker.mqtt, messages // 2)
        ingest.wait_quiet()
        ingest.close()  # away: its session queues from here on
        result["backlog"] = messages / publish(broker.mqtt, messages, first=10_000_000)
        drain = Ingest(broker.mqtt)
        drain.wait_quiet()
        result["backlog_delivered"] = drain.count == messages
        drain.close()
    finally:
        broker.close()
    losses = []
    for _ in range(kills):
        broker = Broker(durability)
        try:
            Ingest(broker.mqtt).close()  # the session exists, the subscriber is away
            sent: list = []
            stop = threading.Event()
            publisher = threading.Thread(target=publish_until, args=(broker.mqtt, stop, sent), daemon=True)
            publisher.start()
            time.sleep(4.0)
            broker.kill()
            stop.set()
            publisher.join(30)
            acked = {seq for seq, info in sent if _acknowledged(info)}
            broker.start()
            drain = Ingest(broker.mqtt)
            drain.wait_quiet(quiet_s=3.0)
            lost = len(acked - drain.seen)
            losses.append((lost, len(acked)))
            drain.close()
        finally:
            broker.close()
    result["kills"] = losses
    return result


def backlog_curve(durability: Durability, total: int, chunks: int = 5) -> list[float]:
    """Publish rates (msg/s) over successive chunks while the away subscriber's queue grows to ``total``."""
    broker = Broker(durability)
    try:
        Ingest(broker.mqtt).close()
        chunk = total // chunks
        return [chunk / publish(broker.mqtt, chunk, first=i * chunk) for i in range(chunks)]
    finally:
        broker.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=60_000)
    parser.add_argument("--kills", type=int, default=2)
    parser.add_argument("--curve", type=int, metavar="N",
                        help="instead: publish rate per fifth while the queue grows to N (time-based saves only)")
    args = parser.parse_args()
    if find_mosquitto() is None:
        raise SystemExit("mosquitto is not installed")
    from foundation.logs import configure_logging
    configure_logging("warning")
    if args.curve:
        print(f"{now_utc()} · {machine()} · --curve {args.curve}")
        print("| mosquitto setting | " + " | ".join(f"to {args.curve * (i + 1) // 5:,}" for i in range(5)) + " |")
        print("| --- |" + " --- |" * 5)
        for durability in (Durability(10), Durability(5), Durability(1)):
            rates = backlog_curve(durability, args.curve)
            print(f"| `{durability.conf().strip().splitlines()[0]}` | " + " | ".join(f"{r:,.0f}" for r in rates) + " |",
                  flush=True)
        return
    print(f"{now_utc()} · {machine()} · --messages {args.messages} --kills {args.kills}")
    print("| mosquitto setting | publish, ingest connected | publish, ingest away (backlog to "
          f"{args.messages:,}) | lost of acknowledged at kill -9 |")
    print("| --- | --- | --- | --- |")
    for durability in SETTINGS:
        r = measure(durability, args.messages, args.kills)
        kills = " · ".join(f"{lost:,} of {acked:,}" for lost, acked in r["kills"])
        median_lost = statistics.median(lost for lost, _ in r["kills"]) if r["kills"] else float("nan")
        print(f"| `{r['setting']}` | {r['live']:,.0f} msg/s | {r['backlog']:,.0f} msg/s"
              f"{'' if r['backlog_delivered'] else ' (NOT all delivered)'} | {kills} (median {median_lost:,.0f}) |",
              flush=True)


if __name__ == "__main__":
    main()

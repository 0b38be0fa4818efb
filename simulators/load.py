"""Load generation: a large synthetic fleet at a fixed rate from one process, in batch payloads.

``run_load`` publishes ``sensors`` readings every ``1 / rate_hz`` seconds as site batches of
``batch`` readings (CONTRACT §1 batch form) on ``liaowang/v1/readings/{site}``, with QoS 1 and
flow control, and reports the rate it actually achieved. The sensors (``LOAD-S{site}-{n}``) are
not in the demo registry: point it at the broker alone, or at a Liaowang whose configuration
registers them (bench/hotpath.py builds such a fleet).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import numpy as np
import orjson

from foundation.config import MqttSettings
from foundation.mqttclient import BoundedPublisher, connect_and_wait, make_client


@dataclass(frozen=True, slots=True)
class LoadResult:
    """What was published and how fast (readings per second of wall time)."""

    readings: int
    messages: int
    seconds: float

    @property
    def readings_per_s(self) -> float:
        return self.readings / self.seconds if self.seconds else 0.0


def run_load(settings: MqttSettings, sensors: int = 100_000, rate_hz: float = 1.0, batch: int = 100,
             duration_s: float = 10.0, stop: threading.Event | None = None, seed: int = 1) -> LoadResult:
    """Publish the synthetic fleet for ``duration_s``; every message is acknowledged before returning."""
    stop = stop or threading.Event()
    rng = np.random.default_rng(seed)
    sites = [f"LOAD-{i:05d}" for i in range((sensors + batch - 1) // batch)]
    ids = [[f"{site}-S{n:03d}" for n in range(min(batch, sensors - i * batch))] for i, site in enumerate(sites)]
    topics = [f"liaowang/v1/readings/{site}" for site in sites]
    client = make_client(settings, f"liaowang-load-{int(time.time() * 1000) % 10_000_000}")
    client.max_queued_messages_set(0)
    connect_and_wait(client, settings)  # a refused login is an error here, not a load of 0 readings/s
    out = BoundedPublisher(client, max_outstanding=2000)
    period = 1.0 / rate_hz
    started = time.monotonic()
    readings = messages = 0
    tick = 0
    while not stop.is_set() and time.monotonic() - started < duration_s:
        ts = round(time.time(), 3)
        values = np.round(rng.normal(1.0, 0.3, sensors), 3).tolist()
        k = 0
        for site, topic, members in zip(sites, topics, ids):
            items = [{"sensor_id": s, "ts": ts, "value": values[k + j]} for j, s in enumerate(members)]
            k += len(members)
            out.publish(topic, orjson.dumps({"site_id": site, "readings": items}))
            messages += 1
        readings += sensors
        tick += 1
        wait = started + tick * period - time.monotonic()
        if wait > 0:
            stop.wait(wait)
    acknowledged = out.flush(120)
    seconds = time.monotonic() - started
    client.disconnect()
    client.loop_stop()
    if not acknowledged:
        raise RuntimeError(f"the broker did not acknowledge every one of {messages:,} messages within 120 s")
    return LoadResult(readings, messages, seconds)

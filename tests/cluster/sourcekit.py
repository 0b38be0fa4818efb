"""Test kit for `ingest.jetstream.JetStreamSource`: a memory sink, a recording downstream, a publisher."""

from __future__ import annotations

import threading
import time
from typing import Callable

import orjson
from prometheus_client import CollectorRegistry

from foundation.config import Config
from foundation.domain import ReadingBatch
from ingest.jetstream import JetStreamMetrics, JetStreamSource
from ingest.live import LiveValues
from ingest.metrics import IngestMetrics

from .natscluster import NatsCluster

LUXI = ["LC-LUXI-T101-LT", "LC-LUXI-T101-TT", "LC-LUXI-T101-PT", "LC-LUXI-T102-LT", "LC-LUXI-T102-TT"]
"""Sensors of LC-LUXI (partition 3 of 4)."""


class MemorySink:
    """Keeps every (sensor, ts) written; ``fail`` makes writes raise until cleared."""

    name = "memory"

    def __init__(self) -> None:
        self.rows: list[tuple[str, float]] = []
        self.fail: str | None = None
        self.lock = threading.Lock()

    def write(self, batch: ReadingBatch) -> None:
        if self.fail:
            raise OSError(self.fail)
        with self.lock:
            self.rows.extend((r.sensor_id, r.ts) for r in batch.readings())

    def close(self) -> None:
        pass


class Downstream:
    """Records the batches handed down; ``raise_next`` raises that exception instead, ``times`` times."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, float]] = []
        self.calls = 0
        self.failure: Callable[[], Exception] | None = None
        self.times = 0

    def __call__(self, batch: ReadingBatch) -> None:
        self.calls += 1
        if self.failure is not None and self.times != 0:
            self.times -= 1
            raise self.failure()
        self.seen.extend((r.sensor_id, r.ts) for r in batch.readings())


def make_source(cluster: NatsCluster, config: Config, partition: int, sink: MemorySink, downstream: Downstream,
                **options) -> JetStreamSource:
    registry = CollectorRegistry()
    fleet = config.fleet
    return JetStreamSource(cluster.endpoint("worker"), partition, cluster.partitions, config.settings, fleet, [sink],
                           IngestMetrics(registry), LiveValues(tuple(fleet.sensors)), downstream,
                           jetstream_metrics=JetStreamMetrics(registry), **options)


def reading(sensor: str, ts: float, value: float = 1.0) -> bytes:
    return orjson.dumps({"sensor_id": sensor, "ts": ts, "value": value})


def publish(cluster: NatsCluster, messages: list[tuple[str, bytes]]) -> list[int]:
    """JetStream-publish ``(subject, payload)`` pairs as admin (the account's mapping applies); the stream seqs."""
    async def work(nc, js):
        return [(await js.publish(subject, payload)).seq for subject, payload in messages]
    return cluster.run(work)


def dead_letters(cluster: NatsCluster) -> list[dict]:
    """Every letter in LW_DEADLETTER."""
    async def work(nc, js):
        info = await js.stream_info("LW_DEADLETTER")
        if not info.state.messages:
            return []
        return [orjson.loads((await js.get_msg("LW_DEADLETTER", seq)).data)
                for seq in range(max(1, info.state.first_seq), info.state.last_seq + 1)]
    return cluster.run(work)


def ack_floor(cluster: NatsCluster, partition: int) -> tuple[int, int]:
    """(stream seq of the consumer's ack floor, messages pending ack) of ``lw-worker`` on a partition."""
    async def work(nc, js):
        info = await js.consumer_info(f"LW_P{partition}", "lw-worker")
        return info.ack_floor.stream_seq, info.num_ack_pending
    return cluster.run(work)


def wait_for(condition: Callable[[], object], timeout: float = 20.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)

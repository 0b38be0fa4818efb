"""The worker's share of partitions: ceil(P / live workers) to claim, and handing one back when a live worker
runs fewer than floor(P / N) (4 partitions on 3 workers must not end 2 + 2 + 0)."""

from __future__ import annotations

import time
from pathlib import Path

from ingest.jetstream import NatsEndpoint
from liaowang.worker import Worker, WorkerOptions


def worker(demo_config, name: str, partitions: int, runs: int, others: dict[str, int]) -> Worker:
    w = Worker(demo_config, WorkerOptions(NatsEndpoint(("nats://127.0.0.1:1",)), "unused.db", partitions,
                                          Path("/nonexistent"), owner=name))
    now = time.monotonic()
    for other, count in others.items():
        w._roster.observe(f"worker.{other}", 1, now, count)
    w.runners = {p: object() for p in range(runs)}  # type: ignore[misc]
    return w


def test_the_busiest_worker_shares_with_one_that_has_nothing(demo_config) -> None:
    assert worker(demo_config, "w2", 4, 2, {"w1": 2, "w0": 0})._should_share()       # w2 > w1 by name
    assert not worker(demo_config, "w1", 4, 2, {"w2": 2, "w0": 0})._should_share()


def test_nobody_shares_when_everyone_has_floor_or_ceil(demo_config) -> None:
    assert not worker(demo_config, "w2", 4, 2, {"w1": 1, "w0": 1})._should_share()
    assert not worker(demo_config, "w0", 8, 3, {"w1": 3, "w2": 2})._should_share()


def test_a_worker_at_floor_never_gives_away(demo_config) -> None:
    assert not worker(demo_config, "w9", 4, 1, {"w1": 1, "w0": 0, "w2": 1, "w3": 0})._should_share()

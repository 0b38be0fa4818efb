"""The scaled-out proof on one machine: 3 NATS nodes, PostgreSQL and `liaowang worker` processes on loopback.

Each test brings up its own cluster and database (they kill things). The feed is deterministic
(`workerkit.gas_feed`); alarms are compared on (rule_id, subject, raised_at, tier, state), leaving
out the rules the wall clock drives (silence: stale sensors, sites not reporting).
"""

from __future__ import annotations

import signal
import time
from collections import Counter
from pathlib import Path

import pytest

from foundation.partition import partition_of

from .workerkit import (WorkerProcess, alarms, gas_feed, holders, outbox_keys, publish_mqtt, reference_alarms,
                        stored_readings, wait_for)

pytestmark = pytest.mark.slow

TTL = 3.0


def _all_owned(cluster, workers, balanced: bool = True) -> dict[int, str] | None:
    """partition → owner once every partition is held by a running worker (and, if ``balanced``, no worker
    holds more than ceil(P / workers) and every worker holds one)."""
    held = holders(cluster)
    names = {w.name for w in workers if w.proc is not None and w.proc.poll() is None}
    if not all(held.get(p) in names for p in range(cluster.partitions)):
        return None
    if balanced:
        counts = Counter(held.values())
        if set(counts) != names or max(counts.values()) > -(-cluster.partitions // len(names)):
            return None
    return held


def _settled(database_url: str, expected_count: int):
    def check():
        got = alarms(database_url)
        return got if len(got) >= expected_count else None
    return check


def test_a_recorded_feed_gives_the_single_process_alarms(fresh_nats_cluster, pg_url: str, tmp_path: Path,
                                                         demo_config) -> None:
    cluster = fresh_nats_cluster()
    workers = [WorkerProcess(f"w{i}", tmp_path, cluster, pg_url, TTL).start() for i in range(3)]
    try:
        wait_for(lambda: _all_owned(cluster, workers), 40, what="every partition owned, balanced")
        feed = gas_feed(demo_config, time.time() - 600)
        publish_mqtt(cluster, 1, feed.messages())
        expected = reference_alarms(demo_config, feed, tmp_path / "reference")
        assert expected, "the feed must raise alarms"
        wait_for(lambda: len(stored_readings(tmp_path)) >= len(feed.readings), 60, what="every reading stored")
        got = wait_for(_settled(pg_url, len(expected)), 60, what="the alarms")
        time.sleep(1.0)
        assert alarms(pg_url) == expected
        assert stored_readings(tmp_path) == {(r.sensor_id, round(r.ts, 3)) for r in feed.readings}
    finally:
        for w in workers:
            w.stop()

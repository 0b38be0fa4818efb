"""The SQLite sink: WAL, idempotent on (sensor_id, ts), retention, queries."""

from __future__ import annotations

import sqlite3

import numpy as np

from foundation.domain import Quality, Reading, ReadingBatch
from ingest.sqlite_sink import SQLiteSink


def test_writes_are_idempotent_and_survive_reopening(tmp_path):
    path = tmp_path / "readings.db"
    sink = SQLiteSink(path)
    batch = [Reading("S1", "A", 100.0 + i, float(i)) for i in range(50)]
    sink.write_readings(batch)
    sink.write_readings(batch[10:20])  # a redelivered message
    sink.close()
    reopened = SQLiteSink(path)
    assert reopened.count() == 50
    assert sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_recent_returns_newest_first_within_bounds(tmp_path):
    sink = SQLiteSink(tmp_path / "r.db")
    sink.write_readings([Reading("S1", "A", float(t), t * 2.0, Quality.BAD if t == 5 else Quality.GOOD) for t in range(10)])
    rows = sink.recent("S1", since=3, until=7, limit=10)
    assert [r.ts for r in rows] == [7, 6, 5, 4, 3]
    assert rows[2].quality is Quality.BAD


def test_retention_deletes_only_older_readings(tmp_path):
    sink = SQLiteSink(tmp_path / "r.db")
    sink.write_readings([Reading("S1", "A", 946_684_800.0 + t, 0.0) for t in range(12_000)])
    assert sink.delete_older_than(946_684_800 + 11_000, chunk=1000) == 11_000
    assert sink.count() == 1000


def test_sensor_numbers_survive_a_new_fleet_order_and_unknown_sensors_read_empty(tmp_path):
    """Stored numbers never change: a later fleet in another order, with new sensors, reads and replays the same history."""
    path = tmp_path / "r.db"
    sink = SQLiteSink(path)
    sink.write_readings([Reading(s, "A", 1_795_564_800.0 + t, float(t)) for t in range(3) for s in ("S1", "S2")])
    sink.close()
    sink = SQLiteSink(path)
    assert sink.recent("nobody") == []
    fleet = ("S3", "S2", "S1")  # S3 is new; S1 and S2 swap places
    sink.write(ReadingBatch(np.array([0, 2], dtype=np.int32), np.array([1_795_564_810.0] * 2), np.array([7.0, 8.0]),
                            np.zeros(2, dtype=np.int8), fleet, ("B", "A", "A")))
    assert [r.value for r in sink.recent("S1", limit=2)] == [8.0, 2.0]
    assert [r.value for r in sink.recent("S3")] == [7.0]
    assert [r.value for r in sink.recent("S2")] == [2.0, 1.0, 0.0]
    replayed = [(fleet[i], v) for b in sink.batches_since(0, fleet, ("B", "A", "A")) for i, v in zip(b.sensor, b.value)]
    assert sorted(replayed) == sorted([("S1", 0.0), ("S2", 0.0), ("S1", 1.0), ("S2", 1.0), ("S1", 2.0), ("S2", 2.0),
                                       ("S3", 7.0), ("S1", 8.0)])
    only_s2 = [(b.sensor_ids[i], v) for b in sink.batches_since(0, ("S2",), ("A",)) for i, v in zip(b.sensor, b.value)]
    assert only_s2 == [("S2", 0.0), ("S2", 1.0), ("S2", 2.0)]


def test_any_id_string_is_numbered_and_read_back_across_lookup_chunks(tmp_path):
    odd = ["a\x00b", "雷达-01", 'q"uote\\', "null", "123", "e\u2028x"]
    ids = odd + [f"S{i:04d}" for i in range(1_234)]  # more than one lookup query's worth of ids
    sink = SQLiteSink(tmp_path / "r.db")
    sink.write_readings([Reading(s, "A", 1_795_564_800.0, float(i)) for i, s in enumerate(ids)])
    sink.write_readings([Reading(s, "A", 1_795_564_801.0, -float(i)) for i, s in enumerate(reversed(ids))])
    for i, s in enumerate(ids):
        assert [r.value for r in sink.recent(s)] == [-float(len(ids) - 1 - i), float(i)], s
    assert sink.count() == 2 * len(ids)

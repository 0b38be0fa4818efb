"""The SQLite sink: WAL, idempotent on (sensor_id, ts), retention, queries."""

from __future__ import annotations

import sqlite3

from ingest.sqlite_sink import SQLiteSink
from foundation.domain import Quality, Reading


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

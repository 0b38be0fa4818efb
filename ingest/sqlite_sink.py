"""The embedded store: readings in one SQLite file (WAL), idempotent on (sensor_id, ts)."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Sequence

from liaowang.domain import Quality, Reading

_QUALITY_CODE = {Quality.GOOD: 0, Quality.UNCERTAIN: 1, Quality.BAD: 2}
_CODE_QUALITY = {v: k for k, v in _QUALITY_CODE.items()}

_SCHEMA = """
CREATE TABLE IF NOT EXISTS readings (
    sensor_id TEXT NOT NULL,
    ts REAL NOT NULL,
    value REAL NOT NULL,
    quality INTEGER NOT NULL,
    PRIMARY KEY (sensor_id, ts)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS readings_ts ON readings (ts);
"""


def connect(path: Path | str) -> sqlite3.Connection:
    """Open a SQLite file in WAL mode with the pragmas every Liaowang store uses."""
    conn = sqlite3.connect(str(path), timeout=30.0, check_same_thread=False, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: durable across process crashes
    conn.execute("PRAGMA busy_timeout=30000")
    return conn


class SQLiteSink:
    """Stores readings in ``readings.db``; a redelivered reading is ignored, never duplicated.

    >>> sink = SQLiteSink(":memory:")
    >>> sink.write([Reading("S1", "SITE", 1795564800.0, 1.5)]); sink.write([Reading("S1", "SITE", 1795564800.0, 1.5)])
    >>> sink.count()
    1
    """

    name = "sqlite"

    def __init__(self, path: Path | str) -> None:
        self._path = str(path)
        self._conn = connect(path)
        self._conn.executescript(_SCHEMA)
        self._lock = threading.Lock()

    def write(self, readings: Sequence[Reading]) -> None:
        """Insert ``readings`` in one transaction; duplicates of (sensor_id, ts) are ignored."""
        rows = [(r.sensor_id, r.ts, r.value, _QUALITY_CODE[r.quality]) for r in readings]
        with self._lock:
            self._conn.execute("BEGIN")
            try:
                self._conn.executemany("INSERT OR IGNORE INTO readings VALUES (?, ?, ?, ?)", rows)
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def delete_older_than(self, cutoff_ts: float, chunk: int = 5000) -> int:
        """Delete readings older than ``cutoff_ts`` in small transactions (retention); return the count."""
        total = 0
        while True:
            with self._lock:
                cur = self._conn.execute(
                    "DELETE FROM readings WHERE (sensor_id, ts) IN "
                    "(SELECT sensor_id, ts FROM readings WHERE ts < ? LIMIT ?)", (cutoff_ts, chunk))
            total += cur.rowcount
            if cur.rowcount < chunk:
                return total

    def recent(self, sensor_id: str, since: float | None = None, until: float | None = None,
               limit: int = 1000) -> list[Reading]:
        """Readings of one sensor in ``[since, until]``, newest first."""
        sql = "SELECT ts, value, quality FROM readings WHERE sensor_id = ?"
        args: list[object] = [sensor_id]
        if since is not None:
            sql += " AND ts >= ?"
            args.append(since)
        if until is not None:
            sql += " AND ts <= ?"
            args.append(until)
        sql += " ORDER BY ts DESC LIMIT ?"
        args.append(limit)
        with self._lock:
            rows = self._conn.execute(sql, args).fetchall()
        return [Reading(sensor_id, "", ts, value, _CODE_QUALITY[q]) for ts, value, q in rows]

    def count(self) -> int:
        """How many readings the store holds."""
        with self._lock:
            return self._conn.execute("SELECT count(*) FROM readings").fetchone()[0]

    def ping(self) -> bool:
        """Whether the store answers a query (for /healthz)."""
        try:
            with self._lock:
                self._conn.execute("SELECT 1").fetchone()
            return True
        except sqlite3.Error:
            return False

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._conn.close()

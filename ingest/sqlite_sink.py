"""The embedded store: readings in one SQLite file (WAL), idempotent on (sensor_id, ts).

Rows are keyed by (time in microseconds, sensor number): new readings append at the end of the
B-tree, which keeps inserts several times faster than a sensor-first key (bench/), and the
primary key makes a redelivered reading a no-op. Sensor ids map to small integers in a
``sensors`` table that never renumbers, so configuration changes keep history readable.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from foundation.domain import QUALITY_OF_CODE, Reading, ReadingBatch
from foundation.sqlite import connect

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sensors (
    id INTEGER PRIMARY KEY,
    sensor_id TEXT NOT NULL UNIQUE
);
CREATE TABLE IF NOT EXISTS readings (
    ts_us INTEGER NOT NULL,
    sensor INTEGER NOT NULL,
    value REAL NOT NULL,
    quality INTEGER NOT NULL,
    PRIMARY KEY (ts_us, sensor)
) WITHOUT ROWID;
"""


_IDS_PER_QUERY = 500  # host parameters a lookup query binds (SQLite allows 32,766 since 3.32)


class SQLiteSink:
    """Stores readings in ``readings.db``; a redelivered reading is ignored, never duplicated.

    >>> sink = SQLiteSink(":memory:")
    >>> sink.write_readings([Reading("S1", "A", 1795564800.0, 1.5)] * 2)
    >>> sink.count()
    1
    """

    name = "sqlite"

    def __init__(self, path: Path | str) -> None:
        self._conn = connect(path)
        self._conn.executescript(_SCHEMA)
        self._lock = threading.Lock()
        # Only the fleet's sensor index → stored number array is kept (0.8 MB at 100,000 sensors): a
        # resident id → number dict with its int objects cost 8–16 MB there (docs/BENCHMARKS.md, memory).
        self._map_for: tuple[Sequence[str], np.ndarray] | None = None

    def _numbers(self, sensor_ids: Sequence[str]) -> dict[str, int]:
        """Stored number of each of ``sensor_ids`` that has one (callers hold the lock).

        Chunked ``IN`` lists rather than one ``json_each`` query: JSON escapes some characters
        (NUL) into strings SQLite's JSON functions do not give back equal to the stored id.
        """
        numbers: dict[str, int] = {}
        ids = list(sensor_ids)
        for start in range(0, len(ids), _IDS_PER_QUERY):
            chunk = ids[start:start + _IDS_PER_QUERY]
            numbers.update(self._conn.execute(
                f"SELECT sensor_id, id FROM sensors WHERE sensor_id IN ({','.join('?' * len(chunk))})", chunk))
        return numbers

    def _db_ids(self, sensor_ids: Sequence[str]) -> np.ndarray:
        """Array mapping a batch's sensor index to the stored sensor number (numbering new sensors).

        Cached for the last ``sensor_ids`` tuple by identity: ingest always passes its fleet's; a
        `write_readings` call (tools, tests) brings a new tuple and so one lookup query.
        """
        if self._map_for is not None and self._map_for[0] is sensor_ids:
            return self._map_for[1]
        numbers = self._numbers(sensor_ids)
        missing = [s for s in sensor_ids if s not in numbers]
        if missing:
            self._conn.execute("BEGIN")  # one transaction, not a commit per new sensor (100,000 new: 3.2 → 0.5 s)
            try:
                self._conn.executemany("INSERT OR IGNORE INTO sensors (sensor_id) VALUES (?)", [(s,) for s in missing])
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")
            numbers = self._numbers(sensor_ids)
        mapping = np.array([numbers[s] for s in sensor_ids], dtype=np.int64)
        self._map_for = (sensor_ids, mapping)
        return mapping

    def write(self, batch: ReadingBatch) -> None:
        """Insert a batch in one transaction; duplicates of (sensor, ts) are ignored."""
        with self._lock:
            ids = self._db_ids(batch.sensor_ids)[batch.sensor]
            ts_us = np.rint(batch.ts * 1e6).astype(np.int64)
            rows = zip(ts_us.tolist(), ids.tolist(), batch.value.tolist(), batch.quality.tolist())
            self._conn.execute("BEGIN")
            try:
                self._conn.executemany("INSERT OR IGNORE INTO readings VALUES (?, ?, ?, ?)", rows)
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def write_readings(self, readings: Sequence[Reading]) -> None:
        """Insert `Reading` tuples (tools and tests; ingest writes batches)."""
        ids = tuple(dict.fromkeys(r.sensor_id for r in readings))
        index = {s: i for i, s in enumerate(ids)}
        self.write(ReadingBatch.from_readings(readings, ids, index, tuple("" for _ in ids)))

    def delete_older_than(self, cutoff_ts: float, chunk: int = 20_000) -> int:
        """Delete readings older than ``cutoff_ts`` in small transactions (retention); return the count."""
        cutoff = int(cutoff_ts * 1e6)
        total = 0
        while True:
            with self._lock:
                cur = self._conn.execute(
                    "DELETE FROM readings WHERE ts_us IN (SELECT ts_us FROM readings WHERE ts_us < ? LIMIT ?)",
                    (cutoff, chunk))
            total += cur.rowcount
            if cur.rowcount == 0:
                return total

    def recent(self, sensor_id: str, since: float | None = None, until: float | None = None,
               limit: int = 1000) -> list[Reading]:
        """Readings of one sensor in ``[since, until]``, newest first (scans the time range backwards)."""
        sql = "SELECT ts_us, value, quality FROM readings WHERE sensor = ?"
        args: list[object] = []
        if since is not None:
            sql += " AND ts_us >= ?"
            args.append(int(since * 1e6))
        if until is not None:
            sql += " AND ts_us <= ?"
            args.append(int(until * 1e6))
        sql += " ORDER BY ts_us DESC LIMIT ?"
        args.append(limit)
        with self._lock:
            number = self._numbers((sensor_id,)).get(sensor_id)
            if number is None:  # never stored: no scan of the readings (no index starts with the sensor)
                return []
            rows = self._conn.execute(sql, [number, *args]).fetchall()
        return [Reading(sensor_id, "", ts / 1e6, value, QUALITY_OF_CODE[q]) for ts, value, q in rows]

    def batches_since(self, since: float, sensor_ids: Sequence[str], site_ids: Sequence[str],
                      size: int = 50_000) -> Iterator[ReadingBatch]:
        """Stored readings of ``sensor_ids`` with time ≥ ``since``, oldest first, as batches (rule recovery)."""
        with self._lock:
            numbers = self._numbers(sensor_ids)
        index = {numbers[s]: i for i, s in enumerate(sensor_ids) if s in numbers}
        lookup = np.full(max(index, default=0) + 1, -1, dtype=np.int64)
        for number, i in index.items():
            lookup[number] = i
        cursor = (int(np.ceil(since * 1e6)), -1)
        while True:
            with self._lock:  # keyset paging on the primary key (ts_us, sensor)
                rows = self._conn.execute("SELECT ts_us, sensor, value, quality FROM readings WHERE (ts_us, sensor) > (?, ?) "
                                          "ORDER BY ts_us, sensor LIMIT ?", (*cursor, size)).fetchall()
            if not rows:
                return
            data = np.array(rows, dtype=np.float64)
            number = data[:, 1].astype(np.int64)
            known = number < len(lookup)
            known[known] = lookup[number[known]] >= 0
            data = data[known]
            if len(data):
                yield ReadingBatch(lookup[data[:, 1].astype(np.int64)].astype(np.int32), data[:, 0] / 1e6, data[:, 2],
                                   data[:, 3].astype(np.int8), sensor_ids, site_ids)
            if len(rows) < size:
                return
            cursor = (rows[-1][0], rows[-1][1])

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

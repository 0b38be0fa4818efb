"""Alerts kept in ``alerts.db`` (SQLite or PostgreSQL), with an index of open episodes for the lifecycle."""

from __future__ import annotations

import sqlite3
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import orjson

from alerting.model import OPEN_STATES, Alert
from alerting.db import AlertDB
from foundation.database import PgConnection

_SCHEMA = """
CREATE TABLE IF NOT EXISTS alerts (
    id TEXT PRIMARY KEY,
    rule_id TEXT NOT NULL,
    subject TEXT NOT NULL,
    site_id TEXT NOT NULL,
    county TEXT NOT NULL,
    tier BIGINT NOT NULL,
    state TEXT NOT NULL,
    raised_at DOUBLE PRECISION NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL,
    record {blob} NOT NULL
);
CREATE INDEX IF NOT EXISTS alerts_state ON alerts (state);
CREATE INDEX IF NOT EXISTS alerts_site ON alerts (site_id);
CREATE INDEX IF NOT EXISTS alerts_updated ON alerts (updated_at);
CREATE INDEX IF NOT EXISTS alerts_raised ON alerts (raised_at);
CREATE TABLE IF NOT EXISTS signal_horizon (
    rule_id TEXT NOT NULL,
    subject TEXT NOT NULL,
    ts DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (rule_id, subject)
){without_rowid};
"""


class AlertStore:
    """Durable alert storage; every write commits before the change is announced."""

    def __init__(self, db: AlertDB | Path | str) -> None:
        self.db = AlertDB.of(db)
        self._conn = self.db.conn
        self._lock = self.db.lock
        with self._lock:
            self._conn.executescript(self.db.dialect.schema(_SCHEMA))
        # the SQLite file behind the connection ('' in memory, on PostgreSQL): long reads open their own to it
        self._path = self.db.path
        self._reader: PgConnection | None = None
        self._reader_lock = threading.Lock()

    def save(self, alert: Alert) -> None:
        """Insert or replace one alert."""
        with self._lock:
            self._conn.execute(
                "INSERT INTO alerts VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET "
                "rule_id = excluded.rule_id, subject = excluded.subject, site_id = excluded.site_id, "
                "county = excluded.county, tier = excluded.tier, state = excluded.state, raised_at = excluded.raised_at, "
                "updated_at = excluded.updated_at, record = excluded.record",
                (alert.id, alert.rule_id, alert.subject, alert.site_id, alert.county, int(alert.tier), alert.state,
                 alert.raised_at, alert.updated_at, orjson.dumps(alert.to_record())))

    def horizons(self) -> dict[tuple[str, str], float]:
        """(rule, subject) → event time of the last rule signal applied (recovery skips older ones)."""
        with self._lock:
            rows = self._conn.execute("SELECT rule_id, subject, ts FROM signal_horizon").fetchall()
        return {(r, s): ts for r, s, ts in rows}

    def set_horizon(self, rule_id: str, subject: str, ts: float) -> None:
        """Record that signals of (rule, subject) up to ``ts`` have been applied."""
        with self._lock:
            self._conn.execute("INSERT INTO signal_horizon VALUES (?, ?, ?) ON CONFLICT (rule_id, subject) "
                               "DO UPDATE SET ts = excluded.ts", (rule_id, subject, ts))

    def get(self, alert_id: str) -> Alert | None:
        """One alert by id, or None."""
        with self._lock:
            row = self._conn.execute("SELECT record FROM alerts WHERE id = ?", (alert_id,)).fetchone()
        return Alert.from_record(orjson.loads(row[0])) if row else None

    def open_alerts(self) -> list[Alert]:
        """Every alert whose episode is still open (active, acknowledged, shelved)."""
        marks = ",".join("?" * len(OPEN_STATES))
        with self._lock:
            rows = self._conn.execute(f"SELECT record FROM alerts WHERE state IN ({marks})", OPEN_STATES).fetchall()
        return [Alert.from_record(orjson.loads(r[0])) for r in rows]

    def query(self, *, states: list[str] | None = None, tiers: list[int] | None = None, site_id: str | None = None,
              county: str | None = None, since: float | None = None, limit: int = 200) -> list[Alert]:
        """Alerts matching every given filter, newest first (by last update)."""
        sql, args = "SELECT record FROM alerts WHERE 1=1", []
        if states:
            sql += f" AND state IN ({','.join('?' * len(states))})"
            args += states
        if tiers:
            sql += f" AND tier IN ({','.join('?' * len(tiers))})"
            args += tiers
        if site_id:
            sql += " AND site_id = ?"
            args.append(site_id)
        if county:
            sql += " AND county = ?"
            args.append(county)
        if since is not None:
            sql += " AND updated_at >= ?"
            args.append(since)
        sql += " ORDER BY updated_at DESC, id LIMIT ?"
        args.append(limit)
        with self._lock:
            rows = self._conn.execute(sql, args).fetchall()
        return [Alert.from_record(orjson.loads(r[0])) for r in rows]

    @contextmanager
    def reading(self) -> Iterator[sqlite3.Connection]:
        """A connection for long reads (history, exports, statistics) that never holds up the alarm writer.

        On a database file it is a fresh read-only connection (WAL lets it read beside the writer); on
        PostgreSQL the store's own reader connection; on an in-memory database, the shared connection under the lock.
        """
        if self.db.url:
            with self._reader_lock:  # one reader connection, beside the writer's (PostgreSQL: READ COMMITTED)
                if self._reader is None:
                    self._reader = PgConnection(self.db.url)
                yield self._reader
            return
        if not self._path:
            with self._lock:
                yield self._conn
            return
        conn = sqlite3.connect(f"{Path(self._path).as_uri()}?mode=ro", uri=True, timeout=30.0, check_same_thread=False)
        try:
            yield conn
        finally:
            conn.close()

    def raised_between(self, start: float | None, end: float | None, sites: Iterable[str] | None = None) -> list[Alert]:
        """Every alert raised in ``[start, end]`` (an open bound when None) of ``sites`` (every site when None),
        newest raised first: the statistics read this."""
        where, args = ["1=1"], []
        if start is not None:
            where.append("raised_at >= ?")
            args.append(start)
        if end is not None:
            where.append("raised_at <= ?")
            args.append(end)
        if sites is not None:  # an empty scope matches nothing
            names = sorted(sites)
            where.append(f"site_id IN ({','.join('?' * len(names))})" if names else self.db.dialect.false)
            args += names
        return self.select(" AND ".join(where), args)

    def select(self, where: str, args: Sequence[object], limit: int | None = None, offset: int = 0) -> list[Alert]:
        """The alerts matching an SQL condition over the ``alerts`` table (alias ``a``; ``dialect.text_of('a.record')``
        is the stored JSON), newest raised first, ``limit`` of them from ``offset``: for `alerting.search`."""
        sql = f"SELECT record FROM alerts a WHERE {where} ORDER BY raised_at DESC, id"
        if limit is not None:
            sql += " LIMIT ? OFFSET ?"
            args = [*args, limit, offset]
        elif offset:
            sql += f" LIMIT {self.db.dialect.no_limit} OFFSET ?"
            args = [*args, offset]
        with self.reading() as conn:
            rows = conn.execute(sql, args).fetchall()
        return [Alert.from_record(orjson.loads(r[0])) for r in rows]

    def select_columns(self, columns: str, where: str, args: Sequence[object]) -> list[tuple]:
        """``columns`` (SQL expressions) of the alerts matching ``where``, newest raised first."""
        with self.reading() as conn:
            return conn.execute(f"SELECT {columns} FROM alerts a WHERE {where} ORDER BY raised_at DESC, id",
                                args).fetchall()

    def count(self, where: str, args: Sequence[object]) -> int:
        """How many alerts match ``where`` (no ORDER BY: PostgreSQL refuses one beside an aggregate)."""
        with self.reading() as conn:
            return conn.execute(f"SELECT count(*) FROM alerts a WHERE {where}", args).fetchone()[0]

    def by_ids(self, ids: Sequence[str]) -> list[Alert]:
        """The alerts with these ids, in the order given (ids not stored are left out)."""
        found: dict[str, Alert] = {}
        with self.reading() as conn:
            for chunk in range(0, len(ids), 500):
                part = ids[chunk:chunk + 500]
                rows = conn.execute(f"SELECT id, record FROM alerts WHERE id IN ({','.join('?' * len(part))})",
                                    part).fetchall()
                found.update((i, Alert.from_record(orjson.loads(r))) for i, r in rows)
        return [found[i] for i in ids if i in found]

    def ping(self) -> bool:
        """Whether the store answers (for /healthz)."""
        try:
            with self._lock:
                self._conn.execute("SELECT 1").fetchone()
            return True
        except Exception:
            return False

    def close(self) -> None:
        """Close the connection (and the reader's, on PostgreSQL)."""
        with self._lock:
            self._conn.close()
        with self._reader_lock:
            if self._reader is not None:
                self._reader.close()

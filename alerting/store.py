"""Alerts kept in SQLite (``alerts.db``), with an index of open episodes for the lifecycle."""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

import orjson

from alerting.model import OPEN_STATES, Alert
from alerting.db import AlertDB

_SCHEMA = """
CREATE TABLE IF NOT EXISTS alerts (
    id TEXT PRIMARY KEY,
    rule_id TEXT NOT NULL,
    subject TEXT NOT NULL,
    site_id TEXT NOT NULL,
    county TEXT NOT NULL,
    tier INTEGER NOT NULL,
    state TEXT NOT NULL,
    raised_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    record BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS alerts_state ON alerts (state);
CREATE INDEX IF NOT EXISTS alerts_site ON alerts (site_id);
CREATE INDEX IF NOT EXISTS alerts_updated ON alerts (updated_at);
CREATE INDEX IF NOT EXISTS alerts_raised ON alerts (raised_at);
CREATE TABLE IF NOT EXISTS signal_horizon (
    rule_id TEXT NOT NULL,
    subject TEXT NOT NULL,
    ts REAL NOT NULL,
    PRIMARY KEY (rule_id, subject)
) WITHOUT ROWID;
"""


class AlertStore:
    """Durable alert storage; every write commits before the change is announced."""

    def __init__(self, db: AlertDB | Path | str) -> None:
        self.db = AlertDB.of(db)
        self._conn = self.db.conn
        self._lock = self.db.lock
        with self._lock:
            self._conn.executescript(_SCHEMA)

    def save(self, alert: Alert) -> None:
        """Insert or replace one alert."""
        with self._lock:
            self._conn.execute(
                "INSERT OR REPLACE INTO alerts VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
            self._conn.execute("INSERT OR REPLACE INTO signal_horizon VALUES (?, ?, ?)", (rule_id, subject, ts))

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

    def raised_between(self, start: float | None, end: float | None, sites: Iterable[str] | None = None, *,
                       states: list[str] | None = None, tiers: list[int] | None = None,
                       counties: list[str] | None = None) -> list[Alert]:
        """Every alert raised in ``[start, end]`` (an open bound when None) of ``sites`` (every site when None)
        matching the other filters, newest raised first: the history search and the statistics read this."""
        sql, args = "SELECT record FROM alerts WHERE 1=1", []
        if start is not None:
            sql += " AND raised_at >= ?"
            args.append(start)
        if end is not None:
            sql += " AND raised_at <= ?"
            args.append(end)
        for column, values in (("site_id", None if sites is None else sorted(sites)), ("state", states),
                               ("tier", tiers), ("county", counties)):
            if values is not None:  # an empty list matches nothing, as an empty scope must
                sql += f" AND {column} IN ({','.join('?' * len(values))})" if values else " AND 0"
                args += values
        sql += " ORDER BY raised_at DESC, id"
        with self._lock:
            rows = self._conn.execute(sql, args).fetchall()
        return [Alert.from_record(orjson.loads(r[0])) for r in rows]

    def ping(self) -> bool:
        """Whether the store answers (for /healthz)."""
        try:
            with self._lock:
                self._conn.execute("SELECT 1").fetchone()
            return True
        except Exception:
            return False

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._conn.close()

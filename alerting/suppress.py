"""Suppression by design: maintenance windows per site or sensor, from configuration or the API.

An alert raised inside a window is recorded and shown with ``suppressed`` set to the window's
reason, and is not notified — never dropped silently. A window over a whole site does not cover
its gas detectors unless it says ``include_gas`` (a leak during maintenance is still a leak). Windows set through the API are stored in
``alerts.db`` and survive restarts; configured ones come from ``alerting.yaml``.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alerting.db import AlertDB
from foundation.alertspec import MaintenanceWindow
from foundation.database import table_columns
from foundation.domain import iso, parse_time

_SCHEMA = """
CREATE TABLE IF NOT EXISTS suppressions (
    id TEXT PRIMARY KEY,
    site_id TEXT,
    sensor_id TEXT,
    start DOUBLE PRECISION NOT NULL,
    "end" DOUBLE PRECISION NOT NULL,
    reason TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    cancelled_at DOUBLE PRECISION,
    include_gas BIGINT NOT NULL DEFAULT 0
);
"""


@dataclass(frozen=True, slots=True)
class Suppression:
    """One window: a site or a sensor, [start, end), with its reason and author."""

    id: str
    site_id: str | None
    sensor_id: str | None
    start: float
    end: float
    reason: str
    created_by: str
    include_gas: bool = False

    def covers(self, site_id: str, subject: str, at: float, family: str | None = None) -> bool:
        """Whether an alert of ``subject`` (of ``family``) at ``site_id`` raised at ``at`` falls in this window."""
        if self.site_id:
            target = self.site_id == site_id and (family != "gas" or self.include_gas)
        else:
            target = self.sensor_id == subject
        return target and self.start <= at < self.end

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "site_id": self.site_id, "sensor_id": self.sensor_id, "start": iso(self.start),
                "end": iso(self.end), "reason": self.reason, "created_by": self.created_by,
                "include_gas": self.include_gas}


class Suppressions:
    """Configured and stored maintenance windows."""

    def __init__(self, db: AlertDB | Path | str, configured: list[MaintenanceWindow]) -> None:
        self.db = AlertDB.of(db)
        self._conn = self.db.conn
        self._lock = self.db.lock
        with self._lock:
            self._conn.executescript(self.db.dialect.schema(_SCHEMA))
            if "include_gas" not in table_columns(self._conn, "suppressions"):
                # a store from before gas detectors were kept out of site windows
                self._conn.execute("ALTER TABLE suppressions ADD COLUMN include_gas BIGINT NOT NULL DEFAULT 0")
        self._configured = [Suppression(f"config-{i}", w.site_id, w.sensor_id, parse_time(w.start), parse_time(w.end),
                                        w.reason, "configuration", w.include_gas) for i, w in enumerate(configured)]
        self._stored = self._load()

    def _load(self) -> list[Suppression]:
        with self._lock:
            rows = self._conn.execute('SELECT id, site_id, sensor_id, start, "end", reason, created_by, include_gas '
                                      "FROM suppressions WHERE cancelled_at IS NULL").fetchall()
        return [Suppression(*row[:7], bool(row[7])) for row in rows]

    def add(self, site_id: str | None, sensor_id: str | None, start: float, end: float, reason: str, by: str,
            now: float, include_gas: bool = False) -> Suppression:
        """Store a new window."""
        window = Suppression(uuid.uuid4().hex[:16], site_id, sensor_id, start, end, reason, by, include_gas)
        with self._lock:
            self._conn.execute('INSERT INTO suppressions (id, site_id, sensor_id, start, "end", reason, created_by, '
                               "created_at, cancelled_at, include_gas) VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL, ?)",
                               (window.id, site_id, sensor_id, start, end, reason, by, now, int(include_gas)))
        self._stored = self._load()
        return window

    def cancel(self, window_id: str, now: float) -> bool:
        """End a stored window early; False when no such (stored, active) window exists."""
        with self._lock:
            cur = self._conn.execute("UPDATE suppressions SET cancelled_at = ? WHERE id = ? AND cancelled_at IS NULL",
                                     (now, window_id))
        self._stored = self._load()
        return cur.rowcount == 1

    def all(self) -> list[Suppression]:
        """Every window, configured first."""
        return self._configured + self._stored

    def reason_for(self, site_id: str, subject: str, at: float, family: str | None = None) -> str | None:
        """The reason of a window covering (site, subject of ``family``) at ``at``, or None."""
        for window in self.all():
            if window.covers(site_id, subject, at, family):
                return window.reason
        return None

    def reload(self) -> None:
        """Re-read the stored windows (after a rolled-back transaction)."""
        self._stored = self._load()

    def close(self) -> None:
        """Close the connection."""
        self._conn.close()

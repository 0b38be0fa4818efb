"""Why an alarm is not announced: shelves (by a person, for a time) and sensors out of service.

Both are registries in ``alerts.db`` written through the one `AlertDB`, so setting them is part
of the same transaction as the alert change it causes, and both survive restarts. (Maintenance
windows, the third mute, live in `alerting.suppress`.)

* A shelf is on an alarm — a (rule, subject) — not on one episode: while it runs, a new episode
  of that alarm opens shelved (stored, not announced), as ISA-18.2 shelves alarm points.
* Out of service is on a sensor, from configuration (no end) or the API (with who, why, until).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alerting.db import AlertDB
from foundation.domain import iso

_SCHEMA = """
CREATE TABLE IF NOT EXISTS shelves (
    rule_id TEXT NOT NULL,
    subject TEXT NOT NULL,
    until DOUBLE PRECISION NOT NULL,
    "by" TEXT NOT NULL,
    reason TEXT NOT NULL,
    PRIMARY KEY (rule_id, subject)
){without_rowid};
CREATE TABLE IF NOT EXISTS out_of_service (
    sensor_id TEXT PRIMARY KEY,
    "by" TEXT NOT NULL,
    reason TEXT NOT NULL,
    since DOUBLE PRECISION NOT NULL,
    until DOUBLE PRECISION
){without_rowid};
"""


@dataclass(frozen=True, slots=True)
class Shelf:
    """A running shelf of one alarm."""

    rule_id: str
    subject: str
    until: float
    by: str
    reason: str


class Shelves:
    """The shelves in force, kept in memory and in ``alerts.db``."""

    def __init__(self, db: AlertDB | Path | str) -> None:
        self.db = AlertDB.of(db)
        with self.db.lock:
            self.db.conn.executescript(self.db.dialect.schema(_SCHEMA))
        self._shelves = self._load()

    def _load(self) -> dict[tuple[str, str], Shelf]:
        with self.db.lock:
            rows = self.db.conn.execute('SELECT rule_id, subject, until, "by", reason FROM shelves').fetchall()
        return {(r[0], r[1]): Shelf(*r) for r in rows}

    def reload(self) -> None:
        """Re-read from the store (after a rolled-back transaction)."""
        self._shelves = self._load()

    def put(self, shelf: Shelf) -> None:
        """Shelve an alarm (replacing a running shelf of it)."""
        with self.db.lock:
            self.db.conn.execute('INSERT INTO shelves VALUES (?, ?, ?, ?, ?) ON CONFLICT (rule_id, subject) DO UPDATE '
                                 'SET until = excluded.until, "by" = excluded."by", reason = excluded.reason',
                                 (shelf.rule_id, shelf.subject, shelf.until, shelf.by, shelf.reason))
        self._shelves[(shelf.rule_id, shelf.subject)] = shelf

    def drop(self, rule_id: str, subject: str) -> None:
        """End an alarm's shelf."""
        with self.db.lock:
            self.db.conn.execute("DELETE FROM shelves WHERE rule_id = ? AND subject = ?", (rule_id, subject))
        self._shelves.pop((rule_id, subject), None)

    def running(self, rule_id: str, subject: str, at: float) -> Shelf | None:
        """The shelf of an alarm still running at ``at``, or None."""
        shelf = self._shelves.get((rule_id, subject))
        return shelf if shelf is not None and at < shelf.until else None

    def due(self, now: float) -> list[Shelf]:
        """Shelves whose time is up at ``now``."""
        return [s for s in self._shelves.values() if s.until <= now]


@dataclass(frozen=True, slots=True)
class OutOfServiceEntry:
    """A sensor taken out of service: by whom, why, since when and until when (None: until returned)."""

    sensor_id: str
    by: str
    reason: str
    since: float
    until: float | None

    def to_json(self) -> dict[str, Any]:
        return {"sensor_id": self.sensor_id, "by": self.by, "reason": self.reason, "since": iso(self.since),
                "until": iso(self.until)}


class OutOfService:
    """Sensors out of service: ``configured`` ids (no end) plus those set through the API."""

    def __init__(self, db: AlertDB | Path | str, configured: list[str] | tuple[str, ...] = ()) -> None:
        self.db = AlertDB.of(db)
        with self.db.lock:
            self.db.conn.executescript(self.db.dialect.schema(_SCHEMA))
        self._configured = {s: OutOfServiceEntry(s, "configuration", "alerting.yaml out_of_service", 0.0, None)
                            for s in configured}
        self._entries = self._load()

    def _load(self) -> dict[str, OutOfServiceEntry]:
        with self.db.lock:
            rows = self.db.conn.execute('SELECT sensor_id, "by", reason, since, until FROM out_of_service').fetchall()
        return {r[0]: OutOfServiceEntry(*r) for r in rows}

    def reload(self) -> None:
        """Re-read from the store (after a rolled-back transaction)."""
        self._entries = self._load()

    def take_out(self, entry: OutOfServiceEntry) -> None:
        """Take a sensor out of service (replacing an earlier entry of it)."""
        with self.db.lock:
            self.db.conn.execute('INSERT INTO out_of_service VALUES (?, ?, ?, ?, ?) ON CONFLICT (sensor_id) DO UPDATE '
                                 'SET "by" = excluded."by", reason = excluded.reason, since = excluded.since, '
                                 'until = excluded.until',
                                 (entry.sensor_id, entry.by, entry.reason, entry.since, entry.until))
        self._entries[entry.sensor_id] = entry

    def put_back(self, sensor_id: str) -> bool:
        """Return a sensor set out of service through the API; False when it was not."""
        with self.db.lock:
            cur = self.db.conn.execute("DELETE FROM out_of_service WHERE sensor_id = ?", (sensor_id,))
        self._entries.pop(sensor_id, None)
        return cur.rowcount == 1

    def entry(self, sensor_id: str, at: float) -> OutOfServiceEntry | None:
        """Why ``sensor_id`` is out of service at ``at``, or None."""
        found = self._configured.get(sensor_id) or self._entries.get(sensor_id)
        if found is None or (found.until is not None and at >= found.until):
            return None
        return found

    def all(self) -> list[OutOfServiceEntry]:
        """Every entry, configured first."""
        return list(self._configured.values()) + list(self._entries.values())

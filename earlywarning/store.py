"""Warnings and their published documents, kept in ``alerts.db`` beside alerts, audit and outbox.

Two tables on the shared `AlertDB` connection, so a warning's step, its audit record, its
published document and its notifications commit together (`WarningDesk`). A partial unique
index holds the rule "at most one open warning per (subject, category)" in the store itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

import orjson

from alerting.db import AlertDB
from earlywarning.model import EarlyWarning, WarningState
from foundation.warningspec import WarningLevel

__all__ = ["Publication", "WarningStore"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS warnings (
    id TEXT PRIMARY KEY,
    subject_key TEXT NOT NULL,
    subject_id TEXT NOT NULL,
    category TEXT NOT NULL,
    site_id TEXT,
    state TEXT NOT NULL,
    level TEXT NOT NULL,
    open BIGINT NOT NULL,
    proposed_at DOUBLE PRECISION NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL,
    record {blob} NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS warnings_one_open ON warnings (subject_key, category) WHERE open = 1;
CREATE INDEX IF NOT EXISTS warnings_state ON warnings (state);
CREATE INDEX IF NOT EXISTS warnings_site ON warnings (site_id);
CREATE INDEX IF NOT EXISTS warnings_updated ON warnings (updated_at);
CREATE TABLE IF NOT EXISTS warning_publications (
    identifier TEXT PRIMARY KEY,
    warning_id TEXT NOT NULL,
    version BIGINT NOT NULL,
    msg_type TEXT NOT NULL,
    sent DOUBLE PRECISION NOT NULL,
    document {blob} NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS warning_publications_version ON warning_publications (warning_id, version);
"""


@dataclass(frozen=True, slots=True)
class Publication:
    """One published document: its CAP identifier, version (1 for the first), msgType, time sent and body."""

    identifier: str
    warning_id: str
    version: int
    msg_type: str
    sent: float
    document: dict[str, Any]


class WarningStore:
    """Reads and writes the warning tables; `WarningDesk` is its only writer."""

    def __init__(self, db: AlertDB) -> None:
        self.db = db
        self._conn = db.conn
        self._lock = db.lock
        with self._lock:
            self._conn.executescript(self.db.dialect.schema(_SCHEMA))

    def save(self, warning: EarlyWarning) -> None:
        """Insert or replace one warning (inside the caller's transaction)."""
        with self._lock:
            self._conn.execute(
                "INSERT INTO warnings VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET "
                "subject_key = excluded.subject_key, subject_id = excluded.subject_id, category = excluded.category, "
                "site_id = excluded.site_id, state = excluded.state, level = excluded.level, open = excluded.open, "
                "proposed_at = excluded.proposed_at, updated_at = excluded.updated_at, record = excluded.record",
                (warning.id, warning.subject.key, warning.subject.id, warning.category, warning.site_id,
                 warning.state.value, warning.level.value, int(warning.is_open), warning.proposed_at,
                 warning.updated_at, orjson.dumps(warning.to_record())))

    def get(self, warning_id: str) -> EarlyWarning | None:
        with self._lock:
            row = self._conn.execute("SELECT record FROM warnings WHERE id = ?", (warning_id,)).fetchone()
        return EarlyWarning.from_record(orjson.loads(row[0])) if row else None

    def open_for(self, subject_key: str, category: str) -> EarlyWarning | None:
        """The open warning of (subject, category), if any."""
        with self._lock:
            row = self._conn.execute("SELECT record FROM warnings WHERE subject_key = ? AND category = ? AND open = 1",
                                     (subject_key, category)).fetchone()
        return EarlyWarning.from_record(orjson.loads(row[0])) if row else None

    def count_for(self, subject_key: str, category: str) -> int:
        """How many warnings (any state) (subject, category) has had: part of a new warning's id."""
        with self._lock:
            return self._conn.execute("SELECT count(*) FROM warnings WHERE subject_key = ? AND category = ?",
                                      (subject_key, category)).fetchone()[0]

    def query(self, states: Iterable[WarningState] | None = None, levels: Iterable[WarningLevel] | None = None,
              subject: str | None = None, category: str | None = None, sites: Iterable[str] | None = None,
              limit: int = 500) -> list[EarlyWarning]:
        """Warnings newest first. ``subject`` is a subject id or ``kind:id``; ``sites`` keeps only those sites'."""
        sql, args = "SELECT record FROM warnings WHERE 1=1", []
        for column, values in (("state", states), ("level", levels)):
            if values is not None:
                values = [v.value for v in values]
                sql += f" AND {column} IN ({','.join('?' * len(values))})"
                args += values
        if subject is not None:
            sql += " AND (subject_id = ? OR subject_key = ?)"
            args += [subject, subject]
        if category is not None:
            sql += " AND (category = ? OR category LIKE ? ESCAPE '\\')"
            escaped = category.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            args += [category, escaped + "/%"]
        if sites is not None:
            sites = list(sites)
            sql += f" AND site_id IN ({','.join('?' * len(sites))})"
            args += sites
        sql += " ORDER BY updated_at DESC, id LIMIT ?"
        args.append(limit)
        with self._lock:
            rows = self._conn.execute(sql, args).fetchall()
        return [EarlyWarning.from_record(orjson.loads(r[0])) for r in rows]

    def open_warnings(self) -> list[EarlyWarning]:
        """Every open warning, oldest proposal first."""
        with self._lock:
            rows = self._conn.execute("SELECT record FROM warnings WHERE open = 1 ORDER BY proposed_at, id").fetchall()
        return [EarlyWarning.from_record(orjson.loads(r[0])) for r in rows]

    def in_state(self, *states: WarningState) -> list[EarlyWarning]:
        """Warnings in any of ``states``, oldest proposal first."""
        values = [s.value for s in states]
        with self._lock:
            rows = self._conn.execute(f"SELECT record FROM warnings WHERE state IN ({','.join('?' * len(values))}) "
                                      "ORDER BY proposed_at, id", values).fetchall()
        return [EarlyWarning.from_record(orjson.loads(r[0])) for r in rows]

    def add_publication(self, publication: Publication) -> None:
        """Store a published document (inside the caller's transaction)."""
        with self._lock:
            self._conn.execute("INSERT INTO warning_publications VALUES (?, ?, ?, ?, ?, ?)",
                               (publication.identifier, publication.warning_id, publication.version,
                                publication.msg_type, publication.sent, orjson.dumps(publication.document)))

    def publications(self, warning_id: str) -> list[Publication]:
        """The documents published for a warning, first to last."""
        with self._lock:
            rows = self._conn.execute("SELECT identifier, warning_id, version, msg_type, sent, document FROM "
                                      "warning_publications WHERE warning_id = ? ORDER BY version",
                                      (warning_id,)).fetchall()
        return [Publication(r[0], r[1], r[2], r[3], r[4], orjson.loads(r[5])) for r in rows]

    def identifiers_like(self, prefix: str) -> int:
        """How many published identifiers start with ``prefix`` (the sequence number of the GB/T form)."""
        escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        with self._lock:
            return self._conn.execute("SELECT count(*) FROM warning_publications WHERE identifier LIKE ? ESCAPE '\\'",
                                      (escaped + "%",)).fetchone()[0]


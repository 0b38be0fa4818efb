"""The audit trail: an append-only record of every human action and every automatic transition.

Rows live in ``alerts.db`` table ``audit``; SQLite triggers refuse UPDATE and DELETE, so the
record cannot be edited through Liaowang. `AuditLog.export` gives a period as CSV or JSON for
the regulator (times in +08:00).
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import orjson

from alerting.db import AlertDB
from foundation.domain import iso

_SCHEMA = """
CREATE TABLE IF NOT EXISTS audit (
    seq {serial},
    at DOUBLE PRECISION NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    alert_id TEXT,
    subject TEXT,
    detail {blob} NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_at ON audit (at);
"""
_APPEND_ONLY = {
    "sqlite": """
CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END;
""",
    "postgresql": """
CREATE OR REPLACE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'the audit trail is append-only'; END $$;
CREATE OR REPLACE TRIGGER audit_no_change BEFORE UPDATE OR DELETE ON audit
FOR EACH ROW EXECUTE FUNCTION audit_append_only();
CREATE OR REPLACE TRIGGER audit_no_truncate BEFORE TRUNCATE ON audit
FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();
""",
}

FIELDS = ("seq", "at", "actor", "action", "alert_id", "subject", "detail")


def document(rows: list[dict[str, Any]], fmt: str) -> str:
    """Audit records (as `AuditLog.records` gives them) as ``json`` (a list) or ``csv`` (detail as a JSON column)."""
    if fmt == "json":
        return orjson.dumps(rows).decode()
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(FIELDS)
    for row in rows:
        writer.writerow([row["seq"], row["at"], row["actor"], row["action"], row["alert_id"] or "",
                         row["subject"] or "", orjson.dumps(row["detail"]).decode()])
    return out.getvalue()


class AuditLog:
    """Appends and exports audit records. ``actor`` is ``system`` for automatic transitions."""

    def __init__(self, db: AlertDB | Path | str) -> None:
        self.db = AlertDB.of(db)
        self._conn = self.db.conn
        self._lock = self.db.lock
        with self._lock:
            self._conn.executescript(self.db.dialect.schema(_SCHEMA) + _APPEND_ONLY[self.db.dialect.name])

    def append(self, at: float, actor: str, action: str, alert_id: str | None = None, subject: str | None = None,
               **detail: Any) -> None:
        """Record one action."""
        with self._lock:
            self._conn.execute("INSERT INTO audit (at, actor, action, alert_id, subject, detail) VALUES (?, ?, ?, ?, ?, ?)",
                               (at, actor, action, alert_id, subject, orjson.dumps(detail)))

    def records(self, since: float | None = None, until: float | None = None, limit: int = 100_000) -> list[dict[str, Any]]:
        """Records in [since, until], oldest first."""
        sql, args = "SELECT seq, at, actor, action, alert_id, subject, detail FROM audit WHERE 1=1", []
        if since is not None:
            sql += " AND at >= ?"
            args.append(since)
        if until is not None:
            sql += " AND at <= ?"
            args.append(until)
        sql += " ORDER BY seq LIMIT ?"
        args.append(limit)
        with self._lock:
            rows = self._conn.execute(sql, args).fetchall()
        return [{"seq": r[0], "at": iso(r[1]), "actor": r[2], "action": r[3], "alert_id": r[4], "subject": r[5],
                 "detail": orjson.loads(r[6])} for r in rows]

    def export(self, fmt: str, since: float | None = None, until: float | None = None) -> str:
        """The records of a period as ``json`` (a list) or ``csv`` (detail as a JSON column)."""
        return document(self.records(since, until), fmt)

    def close(self) -> None:
        """Close the connection."""
        self._conn.close()

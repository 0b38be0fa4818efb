"""Applied command requests: a person's action applied once, however often its request is retried.

A requester that timed out does not know whether the owner applied its command (the reply may have
been lost, or the owner slow); it retries with the same ``request_id``. The owner records each
applied request's reply in table ``applied_requests`` of the shared alarm store, in the same
transaction as the action (so a takeover's new owner sees it too), and answers a repeat with the
recorded reply instead of applying it again. Rows older than `KEEP_S` are pruned: a retry comes
within seconds, not days.
"""

from __future__ import annotations

from typing import Any

import orjson

from alerting.db import AlertDB

__all__ = ["AppliedRequests", "KEEP_S"]

KEEP_S = 86_400.0
"""How long an applied request's reply is kept (one day)."""
PRUNE_EVERY_S = 3_600.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS applied_requests (
    request_id TEXT PRIMARY KEY,
    applied_at DOUBLE PRECISION NOT NULL,
    reply {blob} NOT NULL
);
CREATE INDEX IF NOT EXISTS applied_requests_at ON applied_requests (applied_at);
"""


class AppliedRequests:
    """The replies of applied requests, by ``request_id``, in the alarm store (SQLite or PostgreSQL)."""

    def __init__(self, db: AlertDB) -> None:
        self.db = db
        with db.lock:
            db.conn.executescript(db.dialect.schema(_SCHEMA))
        self._pruned_at = float("-inf")

    def reply(self, request_id: str) -> dict[str, Any] | None:
        """The recorded reply of ``request_id``, or None when it was not applied (or was pruned)."""
        with self.db.lock:
            row = self.db.conn.execute("SELECT reply FROM applied_requests WHERE request_id = ?",
                                       (request_id,)).fetchone()
        return None if row is None else orjson.loads(bytes(row[0]))

    def record(self, request_id: str, reply: dict[str, Any], now: float) -> bool:
        """Record ``reply`` as ``request_id``'s, inside the caller's transaction (the action's).

        False when the request was recorded already (a concurrent repeat won): the caller then rolls its
        action back and answers with `reply`. Prunes rows older than `KEEP_S` at most once an hour."""
        with self.db.transaction() as conn:
            cur = conn.execute("INSERT INTO applied_requests (request_id, applied_at, reply) VALUES (?, ?, ?) "
                               "ON CONFLICT (request_id) DO NOTHING", (request_id, now, orjson.dumps(reply)))
            if now - self._pruned_at >= PRUNE_EVERY_S:
                conn.execute("DELETE FROM applied_requests WHERE applied_at < ?", (now - KEEP_S,))
                self._pruned_at = now
            return bool(cur.rowcount)

    def count(self) -> int:
        """How many replies are kept (tests, health)."""
        with self.db.lock:
            return int(self.db.conn.execute("SELECT count(*) FROM applied_requests").fetchone()[0])

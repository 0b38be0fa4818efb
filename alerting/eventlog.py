"""The live-event log: every alarm change (and site/warning event) in order, for SSE resume.

Each alarm change is appended, inside the transaction that stores it, to the ``events`` table with a
strictly increasing ``seq``. The SSE streams send ``id: <seq>``; a client that reconnects with
``Last-Event-ID`` is sent every event after it from here, then the live ones — no gap, no duplicate.
Any number of API processes read the same log (a second process on the SQLite file, or PostgreSQL),
so a stateless ``liaowang api`` fans out what a worker committed.

The log is bounded (`EventLog.prune`: the newest ``keep_rows`` rows and at most ``keep_s`` seconds);
what was pruned is remembered (``events_pruned.through``), so a client asking for an event that is no
longer kept is told so (`EventsExpired`) and reloads, rather than silently skipping a gap.

Why appends must commit in ``seq`` order: a reader that has seen seq 11 never looks below it again.
On SQLite the single write lock (``BEGIN IMMEDIATE``) gives that. On PostgreSQL sequence values are
handed out before commit, so two transactions can commit 11 before 10; `append` therefore first
takes a transaction-scoped advisory lock (`PG_APPEND_LOCK`), held until commit, and sends
``NOTIFY liaowang_events`` (delivered at commit) to wake API processes.

>>> from alerting.db import AlertDB
>>> log = EventLog(AlertDB(":memory:"))
>>> log.append("site", "LC-LUXI", {"site_id": "LC-LUXI", "status": "red"}, at=1.0)
1
>>> log.append("site", "LC-XFHG", {"site_id": "LC-XFHG", "status": "normal"}, at=2.0)
2
>>> [(e.seq, e.site_id) for e in log.since(0, sites={"LC-XFHG"})]
[(2, 'LC-XFHG')]
>>> log.head()
2
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Collection, Sequence

import orjson
import structlog

from alerting.db import AlertDB

__all__ = ["EVENTS_CHANNEL", "EventLog", "EventsExpired", "LoggedEvent", "PG_APPEND_LOCK"]

log = structlog.get_logger("alerting")

EVENTS_CHANNEL = "liaowang_events"
"""PostgreSQL LISTEN/NOTIFY channel an append notifies (API processes listen on it; they poll otherwise)."""
PG_APPEND_LOCK = 0x4C57_4556  # "LWEV": the advisory lock that makes appends commit in seq order on PostgreSQL

_DDL = {
    "sqlite": """
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,  -- AUTOINCREMENT: a pruned seq is never handed out again
    at REAL NOT NULL,
    site_id TEXT,
    kind TEXT NOT NULL,
    payload BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS events_at ON events (at);
CREATE INDEX IF NOT EXISTS events_kind_site ON events (kind, site_id, seq);
CREATE TABLE IF NOT EXISTS events_pruned (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    through INTEGER NOT NULL
);
""",
    "postgresql": """
CREATE TABLE IF NOT EXISTS events (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at DOUBLE PRECISION NOT NULL,
    site_id TEXT,
    kind TEXT NOT NULL,
    payload BYTEA NOT NULL
);
CREATE INDEX IF NOT EXISTS events_at ON events (at);
CREATE INDEX IF NOT EXISTS events_kind_site ON events (kind, site_id, seq);
CREATE TABLE IF NOT EXISTS events_pruned (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    through BIGINT NOT NULL
);
""",
}


class EventsExpired(LookupError):
    """The events after ``after`` are no longer all kept (pruned, or the log is not the one the client saw):
    the client must reload its state and continue from ``head``."""

    def __init__(self, after: int, oldest_kept: int, head: int) -> None:
        super().__init__(f"events after {after} are not all kept (kept: after {oldest_kept}, head {head})")
        self.after, self.oldest_kept, self.head = after, oldest_kept, head


@dataclass(frozen=True, slots=True)
class LoggedEvent:
    """One logged event: its position, time, site (None: no site, for unscoped clients only), SSE event
    name (``alert``, ``site``, ``warning``) and JSON payload as stored."""

    seq: int
    at: float
    site_id: str | None
    kind: str
    payload: bytes

    def frame(self) -> bytes:
        """The SSE frame: ``id:``, ``event:`` and ``data:`` lines."""
        return b"id: %d\nevent: %s\ndata: %s\n\n" % (self.seq, self.kind.encode(), self.payload)


class EventLog:
    """Append-only, bounded log of live events on the alert store's database (`AlertDB`).

    ``keep_rows`` and ``keep_s`` bound what `prune` keeps: a reconnecting client can resume within
    that window, and is told to reload (`EventsExpired`) beyond it.
    """

    def __init__(self, db: AlertDB, keep_rows: int = 200_000, keep_s: float = 86_400.0) -> None:
        self.db = db
        self.keep_rows = keep_rows
        self.keep_s = keep_s
        dialect = getattr(db, "dialect", "sqlite")  # h-pg's backend names itself "postgresql"
        self.dialect = getattr(dialect, "name", dialect)  # h-pg's AlertDB gives a Dialect (merge of h-api and h-pg)
        self._translate = not hasattr(dialect, "name")  # h-pg's PostgreSQL connection translates ``?`` itself
        with db.transaction() as conn:
            for statement in _DDL[self.dialect].split(";"):
                if statement.strip():
                    conn.execute(statement)

    def _sql(self, sql: str) -> str:
        return sql.replace("?", "%s") if self.dialect == "postgresql" and self._translate else sql

    def append(self, kind: str, site_id: str | None, payload: dict[str, Any] | bytes, at: float) -> int:
        """Append one event inside the caller's transaction (or its own) and return its ``seq``.

        ``payload`` is the event's JSON, as a dict or already serialised (an alert change's bytes).
        """
        body = payload if isinstance(payload, bytes) else orjson.dumps(payload)
        with self.db.transaction() as conn:
            if self.dialect == "postgresql":
                conn.execute(self._sql("SELECT pg_advisory_xact_lock(?)"), (PG_APPEND_LOCK,))
                row = conn.execute(self._sql("INSERT INTO events (at, site_id, kind, payload) VALUES (?, ?, ?, ?) "
                                             "RETURNING seq"), (at, site_id, kind, body)).fetchone()
                conn.execute(f"NOTIFY {EVENTS_CHANNEL}")
                return int(row[0])
            cursor = conn.execute("INSERT INTO events (at, site_id, kind, payload) VALUES (?, ?, ?, ?)",
                                  (at, site_id, kind, body))
            return int(cursor.lastrowid)

    def append_changes(self, changes: Sequence[Any], at: float) -> list[int]:
        """Append one ``alert`` event per `AlertChange` (the alert's JSON plus ``event``), as the SSE hub
        sends them; inside the transaction that stores the changes."""
        return [self.append("alert", change.alert.site_id, change.payload(), at)  # serialised once: MQTT sends these bytes
                for change in changes]

    def head(self) -> int:
        """The newest ``seq`` ever appended (0 for a new log); a client starting now resumes after it."""
        with self.db.lock:
            row = self.db.conn.execute(
                "SELECT COALESCE((SELECT MAX(seq) FROM events), (SELECT through FROM events_pruned WHERE id = 1), 0)"
            ).fetchone()
        return int(row[0])

    def pruned_through(self) -> int:
        """The highest ``seq`` pruned (0: none); events after it are all kept."""
        with self.db.lock:
            row = self.db.conn.execute("SELECT through FROM events_pruned WHERE id = 1").fetchone()
        return int(row[0]) if row else 0

    def since(self, after: int, sites: Collection[str] | None = None, limit: int = 1000) -> list[LoggedEvent]:
        """The events with ``seq > after`` of ``sites`` (None: every event, also those of no site), oldest
        first, at most ``limit``. Raises `EventsExpired` when some of them were pruned, or ``after`` is
        beyond the head (an id from another log: the data dir was replaced)."""
        with self.db.lock:
            pruned = self.pruned_through()
            if after < pruned:
                raise EventsExpired(after, pruned, self.head())
            if sites is None:
                rows = self.db.conn.execute(self._sql(
                    "SELECT seq, at, site_id, kind, payload FROM events WHERE seq > ? ORDER BY seq LIMIT ?"),
                    (after, limit)).fetchall()
            else:
                chosen = sorted(sites)
                if not chosen:
                    rows = []
                else:
                    marks = ", ".join("?" * len(chosen))
                    rows = self.db.conn.execute(self._sql(
                        f"SELECT seq, at, site_id, kind, payload FROM events WHERE seq > ? AND site_id IN ({marks}) "
                        "ORDER BY seq LIMIT ?"), (after, *chosen, limit)).fetchall()
            if not rows and after > (head := self.head()):
                raise EventsExpired(after, pruned, head)
        return [LoggedEvent(int(r[0]), float(r[1]), r[2], r[3], bytes(r[4])) for r in rows]

    def latest(self, kind: str) -> dict[str, dict[str, Any]]:
        """The newest kept event of ``kind`` per site, as its JSON payload (a stateless API's site statuses)."""
        with self.db.lock:
            rows = self.db.conn.execute(self._sql(
                "SELECT site_id, payload FROM events WHERE seq IN (SELECT MAX(seq) FROM events WHERE kind = ? "
                "AND site_id IS NOT NULL GROUP BY site_id)"), (kind,)).fetchall()
        return {r[0]: orjson.loads(bytes(r[1])) for r in rows}

    def prune(self, now: float) -> int:
        """Drop events older than ``keep_s`` and beyond the newest ``keep_rows``; remember the highest
        dropped ``seq`` so resuming before it answers `EventsExpired`. Returns how many were dropped."""
        with self.db.transaction() as conn:
            row = conn.execute(self._sql(
                "SELECT MAX(seq) FROM (SELECT seq FROM events WHERE at < ? "
                "UNION ALL SELECT seq FROM (SELECT seq FROM events ORDER BY seq DESC LIMIT -1 OFFSET ?) o) d")
                if self.dialect == "sqlite" else self._sql(
                "SELECT MAX(seq) FROM (SELECT seq FROM events WHERE at < ? "
                "UNION ALL SELECT seq FROM (SELECT seq FROM events ORDER BY seq DESC OFFSET ?) o) d"),
                (now - self.keep_s, self.keep_rows)).fetchone()
            through = row[0]
            if through is None:
                return 0
            deleted = conn.execute(self._sql("DELETE FROM events WHERE seq <= ?"), (through,)).rowcount
            conn.execute(self._sql("INSERT INTO events_pruned (id, through) VALUES (1, ?) "
                                   "ON CONFLICT (id) DO UPDATE SET through = excluded.through"), (through,))
        log.info("event_log_pruned", deleted=deleted, through=through)
        return deleted

"""The one connection to ``alerts.db``: every alerting table is written through it.

Alerts, their history, the audit trail, maintenance windows and the notification outbox live in
one database: a SQLite file (the embedded default) or, for a scaled-out deployment, PostgreSQL
(``storage.database_url``). They are written through one connection guarded by one re-entrant
lock, so a change that spans tables — an alert row, its audit row and its outbox rows — is one
transaction: after a crash or a failed write (a full disk, a lost server) either all of it is
stored or none of it is, and the caller can retry the whole change.

A worker that owns partitions writes through a *fenced* view (`AlertDB.fence`): each of its
transactions first locks the partition's row of ``partition_fence`` and is refused (`Fenced`)
when a worker with a higher lease epoch has written there, so a worker that lost its lease can
never write again.
"""

from __future__ import annotations

import sqlite3
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Mapping

import structlog

from foundation.database import (POSTGRES, SQLITE, Dialect, Fenced, PgConnection, StoreError, is_database_url,
                                 sqlite_path)
from foundation.sqlite import connect

__all__ = ["AlertDB", "Fenced", "StoreError"]

log = structlog.get_logger(__name__)

_FENCE_SCHEMA = """
CREATE TABLE IF NOT EXISTS partition_fence (
    "partition" BIGINT PRIMARY KEY,
    epoch BIGINT NOT NULL
)
"""


class _Shared:
    """What every view of one database shares: the connection, its lock and the open-transaction depth."""

    def __init__(self, conn: Any, dialect: Dialect, path: str, url: str = "") -> None:
        self.conn, self.dialect, self.path, self.url = conn, dialect, path, url
        self.lock = threading.RLock()
        self.depth = 0


class AlertDB:
    """One connection (SQLite or PostgreSQL) with a re-entrant lock and nestable transactions.

    >>> db = AlertDB(":memory:")
    >>> _ = db.conn.execute("CREATE TABLE t (x)")
    >>> with db.transaction():
    ...     _ = db.conn.execute("INSERT INTO t VALUES (1)")
    ...     with db.transaction():   # nested: part of the outer one
    ...         _ = db.conn.execute("INSERT INTO t VALUES (2)")
    >>> db.conn.execute("SELECT count(*) FROM t").fetchone()[0]
    2

    ``AlertDB("postgresql://user:pw@host/db")`` opens PostgreSQL instead; the stores cannot tell.
    """

    def __init__(self, target: Path | str, *, _shared: _Shared | None = None,
                 _fences: Mapping[int, int] | None = None) -> None:
        if _shared is None:
            if is_database_url(target):
                _shared = _Shared(PgConnection(str(target)), POSTGRES, "", str(target))
            else:
                conn = connect(target)
                _shared = _Shared(conn, SQLITE, sqlite_path(conn))
        self._shared = _shared
        self._fences = dict(_fences) if _fences is not None else None  # None: an unfenced database
        self.conn = _shared.conn if self._fences is None else _FencedConnection(self)
        self.lock = _shared.lock

    @staticmethod
    def of(target: "AlertDB | Path | str") -> "AlertDB":
        """``target`` itself when it is an `AlertDB`, else a new one on that path or URL (tools and tests)."""
        return target if isinstance(target, AlertDB) else AlertDB(target)

    @property
    def dialect(self) -> Dialect:
        """The SQL spelling of the backend (`foundation.database.SQLITE` or `POSTGRES`)."""
        return self._shared.dialect

    @property
    def path(self) -> str:
        """The SQLite file behind the connection ('' in memory and on PostgreSQL): long reads open their own to it."""
        return self._shared.path

    @property
    def url(self) -> str:
        """The PostgreSQL URL ('' on SQLite): long reads open their own connection to it."""
        return self._shared.url

    @property
    def fences(self) -> dict[int, int]:
        """partition → epoch this view's transactions are fenced with (empty: not fenced)."""
        return dict(self._fences or {})

    def fenced(self, fences: Mapping[int, int] | None = None) -> "AlertDB":
        """A fenced view of this database (see `fence`) for ``fences`` (partition → epoch; none yet is fine).

        A worker builds its stores on one such view and changes its fences with `set_fences` as it gains
        and loses partitions; every store sees the change at its next transaction."""
        fences = dict(fences or {})
        if any(p < 0 or e < 0 for p, e in fences.items()):
            raise ValueError("partition and epoch are non-negative")
        with self.lock:
            if self.dialect is SQLITE:  # one statement: sqlite3's executescript would commit an open transaction
                self._shared.conn.execute(_FENCE_SCHEMA)
            else:  # advisory-locked: two workers creating it at once would collide in PostgreSQL's catalog
                self._shared.conn.executescript(_FENCE_SCHEMA)
        return AlertDB("", _shared=self._shared, _fences=fences)

    def set_fences(self, fences: Mapping[int, int]) -> None:
        """Replace this fenced view's fences (waits for an open transaction to end)."""
        if self._fences is None:
            raise ValueError("not a fenced view: make one with fenced() or fence()")
        with self.lock:
            self._fences = dict(fences)

    def fence(self, partition: int, epoch: int) -> "AlertDB":
        """A view of this database whose every transaction is fenced for ``partition`` at ``epoch`` too.

        The view shares the connection, the lock and open transactions with this one. Its transactions
        (and its statements outside one, which it runs as one) first lock ``partition_fence``'s row of the
        partition — creating it when absent — and raise `Fenced` when a higher epoch is recorded there;
        a lower recorded epoch is replaced by ours. Chain calls to fence several partitions.

        >>> db = AlertDB(":memory:")
        >>> new, old = db.fence(3, epoch=8), db.fence(3, epoch=5)
        >>> with new.transaction():
        ...     pass
        >>> with old.transaction():
        ...     pass
        Traceback (most recent call last):
        ...
        foundation.database.Fenced: partition 3: epoch 5 is fenced off by epoch 8
        """
        return self.fenced({**self.fences, partition: epoch})

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        """Everything written inside commits together or not at all; nested calls join the outer one.

        Holds the lock for the whole transaction, so no other thread's write can interleave.
        On any exception the transaction is rolled back and the exception propagates. A fenced view
        checks its fences first (a nested transaction of a fenced view inside an unfenced one checks
        them where it joins).
        """
        shared = self._shared
        with shared.lock:
            if shared.depth:
                shared.depth += 1
                try:
                    self._check_fences()
                    yield self.conn
                finally:
                    shared.depth -= 1
                return
            shared.conn.execute(shared.dialect.begin)
            shared.depth = 1
            try:
                self._check_fences()
                yield self.conn
                shared.conn.execute("COMMIT")
            except BaseException:
                self._rollback()
                raise
            finally:
                shared.depth = 0

    def _check_fences(self) -> None:
        conn = self._shared.conn
        greatest = "max" if self.dialect is SQLITE else "GREATEST"
        for partition, epoch in sorted((self._fences or {}).items()):  # one order everywhere: no lock cycles
            # One round trip: the upsert creates the row or locks it (until commit) and keeps the higher epoch.
            recorded = conn.execute(
                f'INSERT INTO partition_fence ("partition", epoch) VALUES (?, ?) ON CONFLICT ("partition") '
                f"DO UPDATE SET epoch = {greatest}(partition_fence.epoch, excluded.epoch) RETURNING epoch",
                (partition, epoch)).fetchone()[0]
            if recorded > epoch:
                log.warning("transaction_fenced", partition=partition, epoch=epoch, recorded_epoch=recorded)
                raise Fenced(partition, epoch, recorded)

    @property
    def depth(self) -> int:
        """How many `transaction` blocks are open (0: none; only meaningful to the thread holding the lock)."""
        return self._shared.depth

    def _rollback(self) -> None:
        # SQLite may already have rolled back by itself (SQLITE_FULL, SQLITE_IOERR), PostgreSQL's connection
        # may be gone: nothing left to undo then.
        conn = self._shared.conn
        if conn.in_transaction:
            try:
                conn.execute("ROLLBACK")
            except sqlite3.Error:
                pass

    def close(self) -> None:
        """Close the connection (every object sharing it stops working)."""
        with self.lock:
            self._shared.conn.close()


_READS = ("SELECT", "PRAGMA", "WITH", "EXPLAIN")


class _FencedConnection:
    """The connection of a fenced view: a write outside a transaction runs as a (fenced) transaction of its own."""

    def __init__(self, db: AlertDB) -> None:
        self._db = db
        self._conn = db._shared.conn
        self.dialect = db.dialect

    def _fenced(self, sql: str) -> bool:
        return self._db.depth == 0 and not sql.lstrip().upper().startswith(_READS)

    def execute(self, sql: str, params: Any = ()) -> Any:
        if not self._fenced(sql):
            return self._conn.execute(sql, params)
        with self._db.transaction():
            return self._conn.execute(sql, params)

    def executemany(self, sql: str, seq_of_params: Any) -> Any:
        if not self._fenced(sql):
            return self._conn.executemany(sql, seq_of_params)
        with self._db.transaction():
            return self._conn.executemany(sql, seq_of_params)

    def executescript(self, script: str) -> Any:
        return self._conn.executescript(script)  # schemas: the same for every epoch

    @property
    def in_transaction(self) -> bool:
        return self._conn.in_transaction

    def close(self) -> None:
        self._conn.close()

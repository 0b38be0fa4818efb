"""The one connection to ``alerts.db``: every alerting table is written through it.

Alerts, their history, the audit trail, maintenance windows and the notification outbox live in
one SQLite file. They are written through one connection guarded by one re-entrant lock, so a
change that spans tables — an alert row, its audit row and its outbox rows — is one transaction:
after a crash or a failed write (a full disk) either all of it is stored or none of it is, and
the caller can retry the whole change.
"""

from __future__ import annotations

import sqlite3
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from foundation.sqlite import connect


class AlertDB:
    """One SQLite connection with a re-entrant lock and nestable transactions.

    >>> db = AlertDB(":memory:")
    >>> _ = db.conn.execute("CREATE TABLE t (x)")
    >>> with db.transaction():
    ...     _ = db.conn.execute("INSERT INTO t VALUES (1)")
    ...     with db.transaction():   # nested: part of the outer one
    ...         _ = db.conn.execute("INSERT INTO t VALUES (2)")
    >>> db.conn.execute("SELECT count(*) FROM t").fetchone()[0]
    2
    """

    def __init__(self, path: Path | str) -> None:
        self.conn = connect(path)
        self.lock = threading.RLock()
        self._depth = 0

    @staticmethod
    def of(target: "AlertDB | Path | str") -> "AlertDB":
        """``target`` itself when it is an `AlertDB`, else a new one on that path (tools and tests)."""
        return target if isinstance(target, AlertDB) else AlertDB(target)

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """Everything written inside commits together or not at all; nested calls join the outer one.

        Holds the lock for the whole transaction, so no other thread's write can interleave.
        On any exception the transaction is rolled back and the exception propagates.
        """
        with self.lock:
            if self._depth:
                self._depth += 1
                try:
                    yield self.conn
                finally:
                    self._depth -= 1
                return
            self.conn.execute("BEGIN IMMEDIATE")
            self._depth = 1
            try:
                yield self.conn
                self.conn.execute("COMMIT")
            except BaseException:
                self._rollback()
                raise
            finally:
                self._depth = 0

    @property
    def depth(self) -> int:
        """How many `transaction` blocks are open (0: none; only meaningful to the thread holding the lock)."""
        return self._depth

    def _rollback(self) -> None:
        # SQLite may already have rolled back by itself (SQLITE_FULL, SQLITE_IOERR): nothing left to undo.
        if self.conn.in_transaction:
            try:
                self.conn.execute("ROLLBACK")
            except sqlite3.Error:
                pass

    def close(self) -> None:
        """Close the connection (every object sharing it stops working)."""
        with self.lock:
            self.conn.close()

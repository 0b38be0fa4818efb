"""Rule state snapshots (SQLite, or PostgreSQL per partition), so a restart neither re-raises nor forgets an alert.

Each rule's state is a set of numpy arrays whose first axis runs over the rule's subjects
(sensors, stations). A snapshot stores, per rule, the arrays (``numpy.savez``, no pickle), the
subject ids and a fingerprint of the rule's specification. Restoring maps rows by subject id, so
adding or removing sensors keeps everybody else's state; a rule whose specification changed
starts fresh (its old state would be wrong) and says so in the log.
"""

from __future__ import annotations

import io
import sqlite3
from pathlib import Path
from typing import Callable, Protocol

from foundation.database import Transactional

import numpy as np
import orjson

_SCHEMA = """
CREATE TABLE IF NOT EXISTS rule_state (
    rule_id TEXT PRIMARY KEY,
    fingerprint TEXT NOT NULL,
    subjects BLOB NOT NULL,
    arrays BLOB NOT NULL,
    saved_at REAL NOT NULL
)
"""


class Stateful(Protocol):
    """A rule (or engine part) whose state can be snapshotted."""

    def subjects(self) -> list[str]: ...
    def state(self) -> dict[str, np.ndarray]: ...
    def restore(self, arrays: dict[str, np.ndarray], rows: np.ndarray, into: np.ndarray) -> None: ...


class SnapshotStore:
    """The ``rule_state`` table of one SQLite file."""

    def __init__(self, path: Path | str) -> None:
        self._conn = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute(_SCHEMA)

    def save(self, parts: dict[str, tuple[str, Stateful]], saved_at: float) -> int:
        """Write every part's state in one transaction; return the bytes written."""
        rows, size = _pack(parts, saved_at)
        with self._conn:
            self._conn.execute("BEGIN")
            self._conn.executemany("INSERT OR REPLACE INTO rule_state VALUES (?, ?, ?, ?, ?)", rows)
        return size

    def load(self, parts: dict[str, tuple[str, Stateful]]) -> dict[str, str]:
        """Restore each part whose stored fingerprint matches; return rule id → outcome."""
        return _unpack(parts, lambda rule_id: self._conn.execute(
            "SELECT fingerprint, subjects, arrays FROM rule_state WHERE rule_id = ?", (rule_id,)).fetchone())

    def saved_at(self) -> float | None:
        """When the last snapshot was taken, or None."""
        row = self._conn.execute("SELECT max(saved_at) FROM rule_state").fetchone()
        return row[0] if row else None

    def close(self) -> None:
        """Close the connection."""
        self._conn.close()


def _pack(parts: dict[str, tuple[str, Stateful]], saved_at: float) -> tuple[list[tuple], int]:
    """(rule_id, fingerprint, subjects JSON, arrays .npz, saved_at) per part, and the bytes of the arrays."""
    rows, size = [], 0
    for rule_id, (fingerprint, part) in parts.items():
        buffer = io.BytesIO()
        np.savez(buffer, **part.state())
        blob = buffer.getvalue()
        size += len(blob)
        rows.append((rule_id, fingerprint, orjson.dumps(part.subjects()), blob, saved_at))
    return rows, size


def _unpack(parts: dict[str, tuple[str, Stateful]], stored_row: Callable[[str], tuple | None]) -> dict[str, str]:
    """Restore each part from ``stored_row(rule_id)`` → (fingerprint, subjects, arrays) when its fingerprint
    matches; rule id → outcome (``none``, ``specification_changed``, ``restored N``)."""
    outcome = {}
    for rule_id, (fingerprint, part) in parts.items():
        row = stored_row(rule_id)
        if row is None:
            outcome[rule_id] = "none"
            continue
        if row[0] != fingerprint:
            outcome[rule_id] = "specification_changed"
            continue
        stored = {s: i for i, s in enumerate(orjson.loads(row[1]))}
        with np.load(io.BytesIO(bytes(row[2])), allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
        into, rows = [], []
        for i, subject in enumerate(part.subjects()):
            if subject in stored:
                into.append(i)
                rows.append(stored[subject])
        part.restore(arrays, np.array(rows, dtype=np.int64), np.array(into, dtype=np.int64))
        outcome[rule_id] = f"restored {len(into)}"
    return outcome


_PARTITION_SCHEMA = """
CREATE TABLE IF NOT EXISTS rule_state (
    "partition" BIGINT NOT NULL,
    rule_id TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    subjects {blob} NOT NULL,
    arrays {blob} NOT NULL,
    saved_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY ("partition", rule_id)
);
CREATE TABLE IF NOT EXISTS stream_position (
    "partition" BIGINT PRIMARY KEY,
    stream_seq BIGINT NOT NULL,
    saved_at DOUBLE PRECISION NOT NULL
);
"""


class PartitionSnapshotStore:
    """The rule state of one partition, kept in the shared database (PostgreSQL) beside its stream position.

    Same ``save``/``load`` as `SnapshotStore`, so `RuleEngine.snapshot`/`restore` work unchanged. ``db`` is the
    worker's `AlertDB` view (fenced for the partition: a worker that lost the lease cannot overwrite the new
    owner's snapshot); ``save(..., stream_seq=n)`` records in the same transaction that the snapshot covers the
    partition's stream up to sequence ``n``, so a new owner resumes from exactly there.

    """

    def __init__(self, db: Transactional, partition: int) -> None:
        self.db, self.partition = db, partition
        with db.lock:
            db.conn.executescript(db.dialect.schema(_PARTITION_SCHEMA))

    def save(self, parts: dict[str, tuple[str, Stateful]], saved_at: float, stream_seq: int | None = None) -> int:
        """Write every part's state (and the stream position, when given) in one transaction; the bytes written."""
        rows, size = _pack(parts, saved_at)
        with self.db.transaction() as conn:
            conn.executemany(
                'INSERT INTO rule_state ("partition", rule_id, fingerprint, subjects, arrays, saved_at) '
                'VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT ("partition", rule_id) DO UPDATE SET '
                "fingerprint = excluded.fingerprint, subjects = excluded.subjects, arrays = excluded.arrays, "
                "saved_at = excluded.saved_at", [(self.partition, *row) for row in rows])
            if stream_seq is not None:
                conn.execute('INSERT INTO stream_position ("partition", stream_seq, saved_at) VALUES (?, ?, ?) '
                             'ON CONFLICT ("partition") DO UPDATE SET stream_seq = excluded.stream_seq, '
                             "saved_at = excluded.saved_at", (self.partition, stream_seq, saved_at))
        return size

    def load(self, parts: dict[str, tuple[str, Stateful]]) -> dict[str, str]:
        """Restore each part whose stored fingerprint matches; return rule id → outcome."""
        with self.db.lock:
            return _unpack(parts, lambda rule_id: self.db.conn.execute(
                'SELECT fingerprint, subjects, arrays FROM rule_state WHERE "partition" = ? AND rule_id = ?',
                (self.partition, rule_id)).fetchone())

    def stream_seq(self) -> int | None:
        """The stream sequence the last snapshot covers (resume after it), or None."""
        with self.db.lock:
            row = self.db.conn.execute('SELECT stream_seq FROM stream_position WHERE "partition" = ?',
                                       (self.partition,)).fetchone()
        return row[0] if row else None

    def saved_at(self) -> float | None:
        """When the partition's last snapshot was taken, or None."""
        with self.db.lock:
            row = self.db.conn.execute('SELECT max(saved_at) FROM rule_state WHERE "partition" = ?',
                                       (self.partition,)).fetchone()
        return row[0] if row else None

    def close(self) -> None:
        """Nothing to close: the connection is the shared database's, closed by its owner."""

"""Rule state snapshots in SQLite, so a restart neither re-raises nor forgets an alert.

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
from typing import Protocol

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
        rows, size = [], 0
        for rule_id, (fingerprint, part) in parts.items():
            buffer = io.BytesIO()
            np.savez(buffer, **part.state())
            blob = buffer.getvalue()
            size += len(blob)
            rows.append((rule_id, fingerprint, orjson.dumps(part.subjects()), blob, saved_at))
        with self._conn:
            self._conn.execute("BEGIN")
            self._conn.executemany("INSERT OR REPLACE INTO rule_state VALUES (?, ?, ?, ?, ?)", rows)
        return size

    def load(self, parts: dict[str, tuple[str, Stateful]]) -> dict[str, str]:
        """Restore each part whose stored fingerprint matches; return rule id → outcome."""
        outcome = {}
        for rule_id, (fingerprint, part) in parts.items():
            row = self._conn.execute("SELECT fingerprint, subjects, arrays FROM rule_state WHERE rule_id = ?",
                                     (rule_id,)).fetchone()
            if row is None:
                outcome[rule_id] = "none"
                continue
            if row[0] != fingerprint:
                outcome[rule_id] = "specification_changed"
                continue
            stored = {s: i for i, s in enumerate(orjson.loads(row[1]))}
            with np.load(io.BytesIO(row[2]), allow_pickle=False) as data:
                arrays = {k: data[k] for k in data.files}
            into, rows = [], []
            for i, subject in enumerate(part.subjects()):
                if subject in stored:
                    into.append(i)
                    rows.append(stored[subject])
            part.restore(arrays, np.array(rows, dtype=np.int64), np.array(into, dtype=np.int64))
            outcome[rule_id] = f"restored {len(into)}"
        return outcome

    def saved_at(self) -> float | None:
        """When the last snapshot was taken, or None."""
        row = self._conn.execute("SELECT max(saved_at) FROM rule_state").fetchone()
        return row[0] if row else None

    def close(self) -> None:
        """Close the connection."""
        self._conn.close()

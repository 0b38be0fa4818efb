"""Rule-state snapshots of one partition, with its stream position, in the shared alert database.

A worker that takes a partition over must resume where the last owner's rule state ends: it
restores the partition's snapshot and consumes the stream from the position saved *with* it. So
the rule arrays and the stream sequence are written in one transaction of the fenced `AlertDB`
view (``partition_fence`` is checked first): a worker that lost the lease cannot overwrite its
successor's snapshot, and state and position never disagree.

The saved position is the last stream sequence acknowledged when the state was taken. Acks come
only after a batch is evaluated and its alarms committed, so the state may include a batch or two
past the position (re-evaluated after a takeover; the reorder buffer drops readings it has seen and
``signal_horizon`` skips alarm effects already recorded), never the other way round.

Same interface as `rules.snapshot.SnapshotStore` (``save``/``load``/``saved_at``/``close``), so
`RuleEngine.snapshot`/`restore` work unchanged.
"""

from __future__ import annotations

import io
from typing import Callable

import numpy as np
import orjson

from alerting.db import AlertDB
from rules.snapshot import Stateful

__all__ = ["PartitionSnapshots"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS partition_rule_state (
    "partition" BIGINT NOT NULL,
    rule_id TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    subjects {blob} NOT NULL,
    arrays {blob} NOT NULL,
    saved_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY ("partition", rule_id)
);
CREATE TABLE IF NOT EXISTS partition_position (
    "partition" BIGINT PRIMARY KEY,
    stream_seq BIGINT NOT NULL,
    epoch BIGINT NOT NULL,
    saved_at DOUBLE PRECISION NOT NULL
);
"""


class PartitionSnapshots:
    """Partition ``partition``'s rule state and stream position in ``db`` (pass the partition's fenced view).

    ``position`` gives the stream sequence to save with the state (the source's ``acked_through``).
    """

    def __init__(self, db: AlertDB, partition: int, position: Callable[[], int] = lambda: 0) -> None:
        self.db = db
        self.partition = partition
        self.position = position
        with db.lock:
            db._shared.conn.executescript(db.dialect.schema(_SCHEMA))  # DDL outside the fence: idempotent

    def save(self, parts: dict[str, tuple[str, Stateful]], saved_at: float) -> int:
        """Write every part's state and the stream position in one fenced transaction; return the bytes written.

        Raises `alerting.db.Fenced` when a newer owner holds the partition (nothing is written).
        """
        seq = int(self.position())
        rows, size = [], 0
        for rule_id, (fingerprint, part) in parts.items():
            buffer = io.BytesIO()
            np.savez(buffer, **part.state())
            blob = buffer.getvalue()
            size += len(blob)
            rows.append((self.partition, rule_id, fingerprint, orjson.dumps(part.subjects()), blob, saved_at))
        epoch = self.db.fences.get(self.partition, 0)
        with self.db.transaction() as conn:
            for row in rows:
                conn.execute('INSERT INTO partition_rule_state ("partition", rule_id, fingerprint, subjects, arrays, '
                             'saved_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT ("partition", rule_id) DO UPDATE SET '
                             'fingerprint = excluded.fingerprint, subjects = excluded.subjects, '
                             'arrays = excluded.arrays, saved_at = excluded.saved_at', row)
            conn.execute('INSERT INTO partition_position ("partition", stream_seq, epoch, saved_at) VALUES (?, ?, ?, ?) '
                         'ON CONFLICT ("partition") DO UPDATE SET stream_seq = excluded.stream_seq, '
                         'epoch = excluded.epoch, saved_at = excluded.saved_at',
                         (self.partition, seq, epoch, saved_at))
        return size

    def stream_seq(self) -> int | None:
        """The stream sequence saved with the partition's last snapshot (None: never snapshotted)."""
        row = self.db.conn.execute('SELECT stream_seq FROM partition_position WHERE "partition" = ?',
                                   (self.partition,)).fetchone()
        return int(row[0]) if row else None

    def load(self, parts: dict[str, tuple[str, Stateful]]) -> dict[str, str]:
        """Restore each part whose stored fingerprint matches; return rule id → outcome."""
        stored_rows = {r[0]: r[1:] for r in self.db.conn.execute(
            'SELECT rule_id, fingerprint, subjects, arrays FROM partition_rule_state WHERE "partition" = ?',
            (self.partition,)).fetchall()}
        outcome = {}
        for rule_id, (fingerprint, part) in parts.items():
            row = stored_rows.get(rule_id)
            if row is None:
                outcome[rule_id] = "none"
                continue
            if row[0] != fingerprint:
                outcome[rule_id] = "specification_changed"
                continue
            stored = {s: i for i, s in enumerate(orjson.loads(bytes(row[1])))}
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

    def saved_at(self) -> float | None:
        """When the partition's last snapshot was taken, or None."""
        row = self.db.conn.execute('SELECT saved_at FROM partition_position WHERE "partition" = ?',
                                   (self.partition,)).fetchone()
        return row[0] if row else None

    def close(self) -> None:
        """Nothing to close: the alert database's connection belongs to its owner."""

"""Event-time ordering: hold readings for a configured lateness so out-of-order ones are placed right.

Gateways reorder, duplicate and delay. Rules must see each sensor's readings in event-time order,
and must give the same verdicts whether a feed arrives in order, shuffled within the lateness, or
all at once. So readings wait here until the *frontier* — the newest event time seen, less the
lateness — passes them, and are released sorted by (time, sensor). A reading that arrives once a
later reading of its sensor has been released can no longer be placed: it is *late*, returned to
the caller to be counted and dead-lettered (it is still stored). A reading with the same sensor
and time as one already released or held is a duplicate and changes nothing.

The newest event time only counts up to the injected clock, so a gateway whose clock runs ahead
cannot drag the frontier past everybody else. When the feed goes quiet (or a clock runs ahead), a
reading is released anyway after ``max_hold_s`` on the injected clock — but never ahead of an older
reading of its own sensor that is still held: a sensor's readings leave in event-time order, so a
reading that arrived a moment after a newer one is placed before it, not lost between the two.
Every reading admitted is either released (evaluated) or returned as late; none is dropped unseen.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from foundation.domain import ReadingBatch


@dataclass(frozen=True, slots=True)
class Admission:
    """What `ReorderBuffer.add` did with a batch: late rows (to dead-letter) and the duplicate count."""

    late: ReadingBatch
    duplicates: int


class ReorderBuffer:
    """Holds readings of the fleet's sensors (``sensor_ids``, fleet order) until the event-time frontier passes them."""

    def __init__(self, sensor_ids: Sequence[str], lateness_s: float, max_hold_s: float) -> None:
        self.sensor_ids = sensor_ids
        self.lateness = float(lateness_s)
        self.max_hold = float(max_hold_s)
        self.last_released = np.full(len(sensor_ids), -np.inf)
        self.max_seen = -np.inf
        self._parts: list[tuple[ReadingBatch, np.ndarray]] = []
        self._late: list[ReadingBatch] = []
        self.held = 0
        self.duplicates = 0

    def add(self, batch: ReadingBatch, now: float) -> Admission:
        """Hold a batch's readings; return the ones too late to place."""
        late = batch.ts < self.last_released[batch.sensor]
        duplicate = batch.ts == self.last_released[batch.sensor]
        self.duplicates += int(np.count_nonzero(duplicate))
        keep = ~late & ~duplicate
        if keep.any():
            kept = batch.take(keep)
            self._parts.append((kept, np.full(len(kept), now)))
            self.held += len(kept)
            plausible = kept.ts[kept.ts <= now + self.lateness]
            if len(plausible):
                self.max_seen = max(self.max_seen, float(plausible.max()))
        return Admission(batch.take(late), int(np.count_nonzero(duplicate)))

    def release(self, now: float, everything: bool = False) -> ReadingBatch | None:
        """The held readings the frontier (or their hold time) lets go, sorted by (time, sensor), duplicates dropped."""
        if not self._parts:
            return None
        first = self._parts[0][0]
        if len(self._parts) == 1:
            pending, arrived = self._parts[0]
        else:
            pending = ReadingBatch(*(np.concatenate([getattr(p, c) for p, _ in self._parts])
                                     for c in ("sensor", "ts", "value", "quality")), first.sensor_ids, first.site_ids)
            arrived = np.concatenate([a for _, a in self._parts])
        if everything:
            go = np.ones(len(pending), dtype=bool)
        else:
            go = (pending.ts <= self.max_seen - self.lateness) | (arrived <= now - self.max_hold)
            if not go.all():
                # A sensor's readings leave in event-time order: none goes while an older one of its sensor stays.
                oldest_staying = np.full(len(self.last_released), np.inf)
                np.minimum.at(oldest_staying, pending.sensor[~go], pending.ts[~go])
                go &= pending.ts <= oldest_staying[pending.sensor]
        if not go.any():
            self._parts = [(pending, arrived)]
            return None
        stay = ~go
        self._parts = [(pending.take(stay), arrived[stay])] if stay.any() else []
        self.held = int(np.count_nonzero(stay))
        out = pending.take(go)
        order = np.lexsort((out.sensor, out.ts))  # by time, then sensor; stable: first arrival first
        out = out.take(order)
        repeat = np.zeros(len(out), dtype=bool)
        repeat[1:] = (out.ts[1:] == out.ts[:-1]) & (out.sensor[1:] == out.sensor[:-1])
        marks = self.last_released[out.sensor]
        again = out.ts == marks                # a duplicate of one released in an earlier call
        behind = out.ts < marks                # cannot happen given the order kept above; if it ever does, it is late
        self.duplicates += int(np.count_nonzero(repeat | again))
        if behind.any():
            self._late.append(out.take(behind & ~repeat))
        out = out.take(~repeat & ~again & ~behind)
        np.maximum.at(self.last_released, out.sensor, out.ts)
        return out

    def take_late(self) -> ReadingBatch | None:
        """Readings found too late at release (none while the per-sensor order holds), once."""
        if not self._late:
            return None
        late, self._late = self._late, []
        if len(late) == 1:
            return late[0]
        first = late[0]
        return ReadingBatch(*(np.concatenate([getattr(p, c) for p in late]) for c in ("sensor", "ts", "value", "quality")),
                            first.sensor_ids, first.site_ids)

    def subjects(self) -> list[str]:
        """Fleet sensor ids (the release marks are in fleet order)."""
        return list(self.sensor_ids)

    def state(self) -> dict[str, np.ndarray]:
        """Per-sensor release marks (held readings are in the readings store and re-run on recovery)."""
        return {"last_released": self.last_released, "max_seen": np.full(len(self.last_released), self.max_seen)}

    def restore(self, arrays: dict[str, np.ndarray], rows: np.ndarray, into: np.ndarray) -> None:
        """Restore release marks of sensors ``into``."""
        self.last_released[into] = arrays["last_released"][rows]
        if len(rows):
            self.max_seen = max(self.max_seen, float(arrays["max_seen"][rows].max()))

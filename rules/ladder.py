"""Tiered hysteresis ladders with on/off delays for many subjects, stepped in event time.

Every ladder-shaped rule (process thresholds, rate of change, predicted time to a setpoint,
stuck and out-of-range faults) feeds a metric per reading into a `LadderBank`. A subject's
ladder climbs as soon as the metric reaches a rung's ``set`` and steps down when it falls back to
that rung's ``reset`` (the deadband). The *shown* rung, which alerting sees, follows the climbed
rung only after it has held for the rung's on-delay (going up) or the shown rung's off-delay
(going down), measured between readings' event times.

Evaluation is vectorised: one numpy pass drops the readings that cannot move anything (metric
strictly between the first low and first high rung of an idle subject, or NaN); only the
remaining subjects' readings are walked one by one, in event time. Normally that is almost none.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from foundation.domain import Tier


@dataclass(frozen=True, slots=True)
class Rung:
    """One rung: trips at ``set`` and clears at ``reset``; ``high`` rungs trip upwards."""

    level: str
    tier: Tier
    set: float
    reset: float
    high: bool
    on_delay: float = 0.0
    off_delay: float = 0.0


@dataclass(frozen=True, slots=True)
class Ladder:
    """High rungs rising (H, HH) and low rungs falling (L, LL); shared by subjects with the same setpoints."""

    highs: tuple[Rung, ...] = ()
    lows: tuple[Rung, ...] = ()

    def rung(self, code: int) -> Rung | None:
        """The rung for a state code: +k is the k-th high rung, −k the k-th low rung, 0 none."""
        if code > 0:
            return self.highs[code - 1]
        if code < 0:
            return self.lows[-code - 1]
        return None


def climb(index: int, rungs: Sequence[Rung], value: float, high: bool) -> int:
    """The number of tripped rungs after ``value``, starting from ``index`` tripped (hysteresis).

    >>> from foundation.domain import Tier
    >>> ladder = [Rung("H", Tier.BLUE, 40, 38, True), Rung("HH", Tier.ORANGE, 50, 48, True)]
    >>> [climb(i, ladder, v, True) for i, v in [(0, 41), (1, 39), (1, 38), (2, 47)]]
    [1, 1, 0, 1]
    """
    while index < len(rungs) and (value >= rungs[index].set if high else value <= rungs[index].set):
        index += 1
    while index > 0 and (value <= rungs[index - 1].reset if high else value >= rungs[index - 1].reset):
        index -= 1
    return index


@dataclass(frozen=True, slots=True)
class Change:
    """A subject's shown rung changed at a reading (row of the batch)."""

    row: int
    subject: int
    rung: Rung | None
    previous: Rung | None


STATE_FIELDS = ("raw_high", "raw_low", "shown", "pending", "pending_since", "last_ts")
"""The per-subject arrays a bank snapshots."""


class LadderBank:
    """Ladders for ``len(ladders)`` subjects (None: the subject has no ladder), with their state."""

    def __init__(self, ladders: Sequence[Ladder | None]) -> None:
        n = len(ladders)
        self.ladders = list(ladders)
        self.has = np.array([ladder is not None for ladder in ladders], dtype=bool)
        # NaN where a ladder has no such rung: no comparison with NaN is true, so the side never trips
        self.first_high = np.array([lad.highs[0].set if lad and lad.highs else np.nan for lad in ladders])
        self.first_low = np.array([lad.lows[0].set if lad and lad.lows else np.nan for lad in ladders])
        self.raw_high = np.zeros(n, dtype=np.int8)
        self.raw_low = np.zeros(n, dtype=np.int8)
        self.shown = np.zeros(n, dtype=np.int8)
        self.pending = np.zeros(n, dtype=np.int8)
        self.pending_since = np.full(n, np.nan)
        self.last_ts = np.full(n, -np.inf)

    def step(self, subject: np.ndarray, ts: np.ndarray, metric: np.ndarray) -> list[Change]:
        """Feed one metric per row (time-ordered per subject); return the shown-rung changes in row order.

        Rows of subjects without a ladder, with a NaN metric, or not later than the subject's last
        stepped reading change nothing.
        """
        if not len(subject):
            return []
        usable = self.has[subject] & ~np.isnan(metric)
        idle = ((self.raw_high[subject] == 0) & (self.raw_low[subject] == 0)
                & (self.shown[subject] == 0) & (self.pending[subject] == 0))
        # written as "reaches no first rung" so that an infinite metric (no predicted crossing) is quiet too
        quiet = idle & ~(metric >= self.first_high[subject]) & ~(metric <= self.first_low[subject])
        moving = usable & ~quiet
        if not moving.any():
            self._advance(subject[usable], ts[usable])
            return []
        hot = np.zeros(len(self.has), dtype=bool)
        hot[subject[moving]] = True
        in_hot = hot[subject]
        calm = usable & ~in_hot
        self._advance(subject[calm], ts[calm])
        changes = []
        for row in np.flatnonzero(usable & in_hot).tolist():
            change = self._walk(row, int(subject[row]), float(ts[row]), float(metric[row]))
            if change is not None:
                changes.append(change)
        return changes

    def _advance(self, subject: np.ndarray, ts: np.ndarray) -> None:
        np.maximum.at(self.last_ts, subject, ts)

    def _walk(self, row: int, i: int, ts: float, value: float) -> Change | None:
        if ts <= self.last_ts[i]:
            return None
        self.last_ts[i] = ts
        ladder = self.ladders[i]
        self.raw_high[i] = high = climb(int(self.raw_high[i]), ladder.highs, value, True)
        self.raw_low[i] = low = climb(int(self.raw_low[i]), ladder.lows, value, False)
        target = high if high else -low
        shown = int(self.shown[i])
        if target == shown:
            self.pending[i], self.pending_since[i] = 0, np.nan
            return None
        if target != self.pending[i] or np.isnan(self.pending_since[i]):
            self.pending[i], self.pending_since[i] = target, ts
        before, after = ladder.rung(shown), ladder.rung(target)
        more_severe = after is not None and (before is None or abs(target) > abs(shown) or (target > 0) != (shown > 0))
        delay = after.on_delay if more_severe else before.off_delay  # type: ignore[union-attr]
        if ts - self.pending_since[i] < delay:
            return None
        self.shown[i] = target
        self.pending[i], self.pending_since[i] = 0, np.nan
        return Change(row, i, after, before)

    def shown_rung(self, i: int) -> Rung | None:
        """The rung subject ``i`` shows now."""
        ladder = self.ladders[i]
        return ladder.rung(int(self.shown[i])) if ladder else None

    def state(self) -> dict[str, np.ndarray]:
        """The per-subject state arrays (for snapshots)."""
        return {name: getattr(self, name) for name in STATE_FIELDS}

    def restore(self, arrays: dict[str, np.ndarray], rows: np.ndarray, into: np.ndarray) -> None:
        """Copy snapshot rows ``rows`` of ``arrays`` into subjects ``into``."""
        for name in STATE_FIELDS:
            getattr(self, name)[into] = arrays[name][rows]

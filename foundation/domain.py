"""The vocabulary every stage shares: tiers, families, quality and the one `Reading` type.

This module imports nothing of ours (only numpy), so any stage may import it without bending the flow
`simulators → ingest → rules → alerting → api`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Iterable, NamedTuple, Sequence

import numpy as np

#: China Standard Time. Liaocheng's duty room reads times in +08:00.
CST = timezone(timedelta(hours=8), "CST")


class Tier(enum.IntEnum):
    """Alarm priority, lowest to highest, named on screen by its colour (docs/alarms.md).

    Alarms (报警) carry priorities: 低 low (blue), 中 medium (yellow), 高 high (orange) and
    紧急 urgent (red). They are *not* the legal warning levels 预警 Ⅰ–Ⅳ of the Emergency Response
    Law, which the bureau issues about enterprises and zones.

    >>> Tier.parse("orange") > Tier.parse("yellow")
    True
    >>> Tier.RED.priority, Tier.RED.label_zh
    ('urgent', '紧急报警')
    >>> Tier.parse("high") is Tier.ORANGE
    True
    """

    BLUE = 1
    YELLOW = 2
    ORANGE = 3
    RED = 4

    @property
    def colour(self) -> str:
        """The contract's lower-case colour: ``blue`` … ``red``."""
        return self.name.lower()

    @property
    def priority(self) -> str:
        """The alarm priority: ``low``, ``medium``, ``high``, ``urgent``."""
        return _PRIORITY[self]

    @property
    def label_zh(self) -> str:
        """The priority's Chinese name, as a duty officer reads it (``紧急报警`` …)."""
        return _TIER_ZH[self]

    @classmethod
    def parse(cls, name: str) -> "Tier":
        """Parse a colour (``"blue"`` … ``"red"``) or a priority (``"low"`` … ``"urgent"``); raise ValueError otherwise."""
        try:
            return cls[name.upper()]
        except KeyError:
            by_priority = {v: k for k, v in _PRIORITY.items()}
            if name.lower() in by_priority:
                return by_priority[name.lower()]
            raise ValueError(f"unknown priority {name!r}: expected blue, yellow, orange, red "
                             "(or low, medium, high, urgent)") from None


_PRIORITY = {Tier.BLUE: "low", Tier.YELLOW: "medium", Tier.ORANGE: "high", Tier.RED: "urgent"}
_TIER_ZH = {Tier.BLUE: "低报警", Tier.YELLOW: "中报警", Tier.ORANGE: "高报警", Tier.RED: "紧急报警"}


class Family(str, enum.Enum):
    """The three sensor families of CONTRACT §4, plus ``system`` for alerts about Liaowang itself."""

    HAZARD = "hazard"
    GAS = "gas"
    FOREST = "forest"
    SYSTEM = "system"


class Quality(str, enum.Enum):
    """A reading's quality flag (CONTRACT §1). A ``bad`` reading is stored but never trips a threshold."""

    GOOD = "good"
    UNCERTAIN = "uncertain"
    BAD = "bad"


QUALITY_CODE = {Quality.GOOD: 0, Quality.UNCERTAIN: 1, Quality.BAD: 2}
QUALITY_OF_CODE = (Quality.GOOD, Quality.UNCERTAIN, Quality.BAD)
BAD_CODE = QUALITY_CODE[Quality.BAD]


class Reading(NamedTuple):
    """One validated sensor reading: the one type that flows from ingest to the rules.

    ``ts`` is event time in epoch seconds (the reading's own timestamp, never the arrival time).
    A tuple, so that building hundreds of thousands a second stays cheap.

    >>> r = Reading("LC-LUXI-T101-LT", "LC-LUXI", 1795564800.25, 7.42, Quality.GOOD)
    >>> r.trips_thresholds
    True
    """

    sensor_id: str
    site_id: str
    ts: float
    value: float
    quality: Quality = Quality.GOOD

    @property
    def trips_thresholds(self) -> bool:
        """Whether this reading may raise a process alarm (``bad`` quality never does)."""
        return self.quality is not Quality.BAD


@dataclass(frozen=True)
class ReadingBatch:
    """A micro-batch of readings as numpy columns, in arrival order.

    ``sensor[i]`` indexes ``sensor_ids`` (the fleet's sensor order) and ``site_ids`` (each
    sensor's site); ``quality`` holds `QUALITY_CODE` values. Rules and sinks work on the columns;
    `readings` gives the same data as `Reading` tuples where objects are wanted.
    """

    sensor: np.ndarray
    ts: np.ndarray
    value: np.ndarray
    quality: np.ndarray
    sensor_ids: Sequence[str]
    site_ids: Sequence[str]

    @classmethod
    def from_readings(cls, readings: Iterable[Reading], sensor_ids: Sequence[str],
                      index: dict[str, int], site_ids: Sequence[str]) -> "ReadingBatch":
        """Build a batch from `Reading` tuples of registered sensors."""
        rows = list(readings)
        return cls(np.array([index[r.sensor_id] for r in rows], dtype=np.int32),
                   np.array([r.ts for r in rows], dtype=np.float64),
                   np.array([r.value for r in rows], dtype=np.float64),
                   np.array([QUALITY_CODE[r.quality] for r in rows], dtype=np.int8), sensor_ids, site_ids)

    def __len__(self) -> int:
        return len(self.ts)

    def take(self, selector: np.ndarray) -> "ReadingBatch":
        """The rows a boolean mask or an index array selects, in that order."""
        return ReadingBatch(self.sensor[selector], self.ts[selector], self.value[selector], self.quality[selector],
                            self.sensor_ids, self.site_ids)

    def time_ordered(self) -> "ReadingBatch":
        """The same rows sorted by event time (stable: equal times keep arrival order)."""
        return self.take(np.argsort(self.ts, kind="stable"))

    def readings(self) -> list[Reading]:
        """The rows as `Reading` tuples."""
        ids, sites = self.sensor_ids, self.site_ids
        return [Reading(ids[s], sites[s], t, v, QUALITY_OF_CODE[q])
                for s, t, v, q in zip(self.sensor.tolist(), self.ts.tolist(), self.value.tolist(), self.quality.tolist())]


def iso(ts: float | None) -> str | None:
    """Format epoch seconds as RFC 3339 in China Standard Time (millisecond precision)."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, CST).isoformat(timespec="milliseconds")


def parse_time(text: str) -> float:
    """Parse an RFC 3339 timestamp with offset into epoch seconds; raise ValueError otherwise.

    >>> parse_time("2026-11-25T08:00:00+08:00")
    1795564800.0
    """
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError(f"timestamp {text!r} has no UTC offset")
    return moment.timestamp()

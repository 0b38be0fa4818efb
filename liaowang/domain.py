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
    """China's four-colour early-warning tiers, lowest to highest (Emergency Response Law art. 63).

    >>> Tier.parse("orange") > Tier.parse("yellow")
    True
    >>> Tier.RED.label_zh
    '红色(Ⅰ级 特别严重)'
    """

    BLUE = 1
    YELLOW = 2
    ORANGE = 3
    RED = 4

    @property
    def colour(self) -> str:
        """The contract's lower-case name: ``blue`` … ``red``."""
        return self.name.lower()

    @property
    def label_zh(self) -> str:
        """The Chinese name with its level, as a duty officer reads it."""
        return _TIER_ZH[self]

    @classmethod
    def parse(cls, name: str) -> "Tier":
        """Parse a contract colour name (``"blue"`` … ``"red"``); raise ValueError otherwise."""
        try:
            return cls[name.upper()]
        except KeyError:
            raise ValueError(f"unknown tier {name!r}: expected blue, yellow, orange or red") from None


_TIER_ZH = {
    Tier.BLUE: "蓝色(Ⅳ级 一般)",
    Tier.YELLOW: "黄色(Ⅲ级 较重)",
    Tier.ORANGE: "橙色(Ⅱ级 严重)",
    Tier.RED: "红色(Ⅰ级 特别严重)",
}


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

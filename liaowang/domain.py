"""The vocabulary every stage shares: tiers, families, quality and the one `Reading` type.

This module imports nothing of ours, so any stage may import it without bending the flow
`simulators → ingest → rules → alerting → api`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

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


@dataclass(frozen=True, slots=True)
class Reading:
    """One validated sensor reading: the one type that flows from ingest to the rules.

    ``ts`` is event time in epoch seconds (the reading's own timestamp, never the arrival time).

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

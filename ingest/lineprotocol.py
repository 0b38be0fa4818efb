"""InfluxDB line protocol for readings (shared by the v1 and v2 sinks).

One measurement, ``reading``; tags ``site``, ``sensor``, ``family``, ``quantity``, ``county``;
fields ``value`` (float) and ``quality`` (0 good, 1 uncertain, 2 bad); nanosecond timestamps.
A point is identified by measurement, tags and time, so writing the same reading twice stores
it once: a resent batch never duplicates.
"""

from __future__ import annotations

from typing import Sequence

from liaowang.config import Fleet
from liaowang.domain import Quality, Reading

MEASUREMENT = "reading"
_QUALITY = {Quality.GOOD: 0, Quality.UNCERTAIN: 1, Quality.BAD: 2}
_TAG_ESCAPES = str.maketrans({",": r"\,", "=": r"\=", " ": r"\ "})


def escape_tag(value: str) -> str:
    """Escape a tag key or value (commas, equals signs, spaces).

    >>> escape_tag("a b,c=d")
    'a\\\\ b\\\\,c\\\\=d'
    """
    return value.translate(_TAG_ESCAPES)


class LineEncoder:
    """Encodes readings as line protocol, with each sensor's tag set computed once."""

    def __init__(self, fleet: Fleet) -> None:
        self._tags: dict[str, str] = {}
        for sensor in fleet.sensors.values():
            site = fleet.sites[sensor.site_id]
            self._tags[sensor.id] = ",".join(f"{k}={escape_tag(v)}" for k, v in (
                ("county", site.county), ("family", sensor.family.value), ("quantity", sensor.quantity),
                ("sensor", sensor.id), ("site", sensor.site_id)))  # sorted by key, as InfluxDB prefers

    def encode(self, readings: Sequence[Reading]) -> bytes:
        """Line protocol for ``readings``, one line each."""
        lines = [
            f"{MEASUREMENT},{self._tags[r.sensor_id]} value={r.value!r},quality={_QUALITY[r.quality]}i "
            f"{round(r.ts * 1e9)}"
            for r in readings
        ]
        return ("\n".join(lines) + "\n").encode()

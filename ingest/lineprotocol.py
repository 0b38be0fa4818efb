"""InfluxDB line protocol for readings (shared by the v1 and v2 sinks).

One measurement, ``reading``; tags ``site``, ``sensor``, ``family``, ``quantity``, ``county``;
fields ``value`` (float) and ``quality`` (0 good, 1 uncertain, 2 bad); nanosecond timestamps.
A point is identified by measurement, tags and time, so writing the same reading twice stores
it once: a resent batch never duplicates.
"""

from __future__ import annotations

import numpy as np

from foundation.config import Fleet
from foundation.domain import ReadingBatch

MEASUREMENT = "reading"
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
        self._prefix = [f"{MEASUREMENT},{self._tags[s]} value=" for s in fleet.sensor_ids]

    def series(self, sensor_id: str) -> str:
        """The series key (measurement and tags) of one sensor's points."""
        return f"{MEASUREMENT},{self._tags[sensor_id]}"

    def encode(self, batch: ReadingBatch) -> bytes:
        """Line protocol for every row of ``batch``, one line each."""
        prefix = self._prefix
        stamps = np.rint(batch.ts * 1e9).astype(np.int64).tolist()
        lines = [f"{prefix[s]}{v!r},quality={q}i {t}"
                 for s, v, q, t in zip(batch.sensor.tolist(), batch.value.tolist(), batch.quality.tolist(), stamps)]
        return ("\n".join(lines) + "\n").encode()

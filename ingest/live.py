"""The latest value of every sensor, for the API."""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

from foundation.domain import QUALITY_OF_CODE, Quality, ReadingBatch


@dataclass(frozen=True, slots=True)
class LastValue:
    ts: float
    value: float
    quality: Quality


class LiveValues:
    """Latest reading per sensor (by event time) as arrays over the fleet's sensor order."""

    def __init__(self, sensor_ids: tuple[str, ...], index: dict[str, int] | None = None) -> None:
        self._lock = threading.Lock()
        self._index = index if index is not None else {s: i for i, s in enumerate(sensor_ids)}
        self._ts = np.full(len(sensor_ids), -np.inf)
        self._value = np.zeros(len(sensor_ids))
        self._quality = np.zeros(len(sensor_ids), dtype=np.int8)

    def update(self, batch: ReadingBatch) -> None:
        """Record a batch; an older reading never replaces a newer one."""
        if not len(batch):
            return
        order = np.lexsort((batch.ts, batch.sensor))  # by sensor, then time: the last row per sensor is newest
        sensor = batch.sensor[order]
        last = np.flatnonzero(np.append(sensor[1:] != sensor[:-1], True))
        rows = order[last]
        with self._lock:
            newer = batch.ts[rows] >= self._ts[batch.sensor[rows]]
            rows = rows[newer]
            idx = batch.sensor[rows]
            self._ts[idx] = batch.ts[rows]
            self._value[idx] = batch.value[rows]
            self._quality[idx] = batch.quality[rows]

    def get(self, sensor_id: str) -> LastValue | None:
        """The latest value of one sensor, or None if never seen."""
        i = self._index.get(sensor_id)
        if i is None or self._ts[i] == -np.inf:
            return None
        return LastValue(float(self._ts[i]), float(self._value[i]), QUALITY_OF_CODE[int(self._quality[i])])

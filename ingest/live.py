"""The latest value of every sensor and the liveness of every gateway, for the API and stale checks."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Iterable

from liaowang.domain import Quality, Reading


@dataclass(frozen=True, slots=True)
class LastValue:
    ts: float
    value: float
    quality: Quality


class LiveValues:
    """Thread-safe latest reading per sensor (by event time) and gateway state per site."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last: dict[str, LastValue] = {}
        self._gateway_offline: dict[str, float] = {}

    def update(self, readings: Iterable[Reading]) -> None:
        """Record readings; an older reading never replaces a newer one."""
        with self._lock:
            for r in readings:
                current = self._last.get(r.sensor_id)
                if current is None or r.ts >= current.ts:
                    self._last[r.sensor_id] = LastValue(r.ts, r.value, r.quality)

    def get(self, sensor_id: str) -> LastValue | None:
        """The latest value of one sensor, or None if never seen."""
        return self._last.get(sensor_id)

    def set_gateway(self, site_id: str, online: bool, at: float) -> None:
        """Record a gateway's state from its status topic (Last Will or online announcement)."""
        with self._lock:
            if online:
                self._gateway_offline.pop(site_id, None)
            else:
                self._gateway_offline[site_id] = at

    def gateway_offline(self, site_id: str) -> bool:
        """Whether the site's gateway announced (or its Last Will said) it is offline."""
        return site_id in self._gateway_offline

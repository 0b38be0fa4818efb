"""The deadman rule: a sensor that stops reporting is a fault the duty room must see.

A sensor is stale when no usable (good or uncertain) reading arrived for ``periods`` × its
expected period, counting from the engine's start for sensors never seen, or at once when its
site's gateway announces it is offline (MQTT Last Will). Only `bad` quality for that long counts
too. A stale sensor raises a ``sensor.stale`` fault signal; its first usable reading clears it.

Time is injected: `check(now)` is called with the wall clock live, or with event time in replay.
"""

from __future__ import annotations

import numpy as np

from liaowang.config import Fleet
from liaowang.domain import BAD_CODE, ReadingBatch, Tier
from rules.base import Signal

RULE_ID = "sensor.stale"


class StaleRule:
    """Tracks the last usable reading of every registered sensor and flags the silent ones."""

    kind = "stale"

    def __init__(self, fleet: Fleet, periods: float, tier: Tier, start: float) -> None:
        self._fleet = fleet
        self._tier = tier
        self._periods = periods
        self._limit = np.array([fleet.sensors[s].period_s * periods for s in fleet.sensor_ids])
        self._last_good = np.full(len(fleet.sensor_ids), float(start))
        self._stale = np.zeros(len(fleet.sensor_ids), dtype=bool)
        sites = list(fleet.sites)
        site_number = {s: i for i, s in enumerate(sites)}
        self._site_of = np.array([site_number[s] for s in fleet.sensor_sites], dtype=np.int32)
        self._site_number = site_number
        self._gateway_down = np.zeros(len(sites), dtype=bool)

    def evaluate(self, batch: ReadingBatch) -> list[Signal]:
        """Note the usable readings; a stale sensor that reports again is cleared."""
        usable = batch.quality != BAD_CODE
        np.maximum.at(self._last_good, batch.sensor[usable], batch.ts[usable])
        if not self._stale.any():
            return []
        back = np.unique(batch.sensor[usable])
        back = back[self._stale[back] & ~self._gateway_down[self._site_of[back]]]
        signals = []
        for i in back.tolist():
            self._stale[i] = False
            signals.append(self._signal(i, None, float(self._last_good[i]), "恢复上报"))
        return signals

    def gateway(self, site_id: str, online: bool) -> None:
        """Record a gateway's Last Will (offline) or return (online); `check` reports the effect."""
        number = self._site_number.get(site_id)
        if number is not None:
            self._gateway_down[number] = not online

    def gateway_offline(self, site_id: str) -> bool:
        """Whether the site's gateway said (or its Last Will said) it is offline."""
        number = self._site_number.get(site_id)
        return number is not None and bool(self._gateway_down[number])

    def is_stale(self, sensor_id: str, now: float) -> bool:
        """Whether one sensor is stale at ``now``."""
        i = self._fleet.sensor_index[sensor_id]
        return bool(now - self._last_good[i] > self._limit[i] or self._gateway_down[self._site_of[i]])

    def stale_mask(self, now: float) -> np.ndarray:
        """Which sensors are stale at ``now`` (fleet order)."""
        return (now - self._last_good > self._limit) | self._gateway_down[self._site_of]

    def check(self, now: float) -> list[Signal]:
        """Signals for sensors that went stale, or came back after their gateway did, by ``now``."""
        mask = self.stale_mask(now)
        signals = []
        for i in np.flatnonzero(mask & ~self._stale).tolist():
            self._stale[i] = True
            reason = "网关离线" if self._gateway_down[self._site_of[i]] else (
                f"超过 {self._limit[i]:g} 秒未收到有效数据")
            signals.append(self._signal(i, self._tier, now, reason))
        for i in np.flatnonzero(~mask & self._stale).tolist():
            self._stale[i] = False
            signals.append(self._signal(i, None, now, "恢复上报"))
        return signals

    def _signal(self, i: int, tier: Tier | None, ts: float, reason: str) -> Signal:
        sensor = self._fleet.sensors[self._fleet.sensor_ids[i]]
        return Signal(rule_id=RULE_ID, kind=self.kind, subject=sensor.id, site_id=sensor.site_id,
                      family=sensor.family, tier=tier, level="fault" if tier else None,
                      value=float(self._last_good[i]), threshold=float(self._limit[i]), unit="s", ts=ts,
                      message=f"{sensor.name} 传感器故障: {reason}" if tier else f"{sensor.name} {reason}")

    def subjects(self) -> list[str]:
        """Fleet sensor ids (state arrays are in fleet order)."""
        return list(self._fleet.sensor_ids)

    def state(self) -> dict[str, np.ndarray]:
        """Last usable reading time and stale flag per sensor."""
        return {"last_good": self._last_good, "stale": self._stale}

    def restore(self, arrays: dict[str, np.ndarray], rows: np.ndarray, into: np.ndarray) -> None:
        """Restore snapshot rows into sensors ``into``."""
        self._last_good[into] = np.maximum(self._last_good[into], arrays["last_good"][rows])
        self._stale[into] = arrays["stale"][rows]

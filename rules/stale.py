"""The deadman rule: a sensor that stops reporting is a fault the duty room must see — once, not fifteen times.

A sensor is stale when no usable (good or uncertain) reading arrived for ``periods`` × its
expected period. Only `bad` quality for that long counts too. Its first usable reading clears it.

Designed suppression (docs/alarms.md) keeps one cause from flooding the screen:

* **Communication loss.** A site whose gateway says it is offline (MQTT Last Will), or whose every
  sensor that has reported goes silent together (at least two of them), gives one
  ``site.comm_loss`` signal (subject ``site:{id}``) naming the sensors it hides; their own stale
  signals are not raised while it lasts (one already raised stays). When the link is back the
  site's sensors get one full stale limit to report again before they are judged one by one.
* **Not yet reporting.** Sensors never heard since the engine started give one
  ``site.not_reporting`` signal per site once their stale limit (at least ``first_report_grace_s``)
  has passed, listing them; per-sensor ``sensor.stale`` is only for sensors that reported before.

Time is injected: `check(now)` is called with the wall clock live, or with event time in replay.
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from foundation.config import Fleet
from foundation.domain import BAD_CODE, Family, ReadingBatch, Tier
from rules.base import Signal

RULE_ID = "sensor.stale"
COMM_RULE_ID = "site.comm_loss"
SILENT_RULE_ID = "site.not_reporting"
NAMES_SHOWN = 5


class StaleRule:
    """Tracks the last usable reading of every registered sensor and flags the silent ones."""

    kind = "stale"

    def __init__(self, fleet: Fleet, periods: float, tier: Tier, start: float, first_report_grace_s: float = 0.0) -> None:
        self._fleet = fleet
        self._tier = tier
        self._periods = periods
        self._start = float(start)
        self._limit = np.array([fleet.sensors[s].period_s * periods for s in fleet.sensor_ids])
        self._first_limit = np.maximum(self._limit, first_report_grace_s)
        self._last_good = np.full(len(fleet.sensor_ids), float(start))
        self._heard = np.zeros(len(fleet.sensor_ids), dtype=bool)
        self._stale = np.zeros(len(fleet.sensor_ids), dtype=bool)
        self._sites = list(fleet.sites)
        site_number = {s: i for i, s in enumerate(self._sites)}
        self._site_of = np.array([site_number[s] for s in fleet.sensor_sites], dtype=np.int32)
        self._site_number = site_number
        self._gateway_down = np.zeros(len(self._sites), dtype=bool)
        self._comm_lost = np.zeros(len(self._sites), dtype=bool)
        self._silent_site = np.zeros(len(self._sites), dtype=bool)
        self._site_family = [self._family_of(site) for site in self._sites]

    def _family_of(self, site_id: str) -> Family:
        """The family a site-level fault is routed by: forest for a forest, else its most common sensor family."""
        if self._fleet.sites[site_id].kind == "forest":
            return Family.FOREST
        families = Counter(s.family for s in self._fleet.sensors.values() if s.site_id == site_id)
        return families.most_common(1)[0][0] if families else Family.HAZARD

    def evaluate(self, batch: ReadingBatch) -> list[Signal]:
        """Note the usable readings; a stale sensor that reports again is cleared."""
        usable = batch.quality != BAD_CODE
        np.maximum.at(self._last_good, batch.sensor[usable], batch.ts[usable])
        self._heard[batch.sensor[usable]] = True
        if not self._stale.any():
            return []
        back = np.unique(batch.sensor[usable])
        back = back[self._stale[back] & ~self._gateway_down[self._site_of[back]]]
        signals = []
        for i in back.tolist():
            self._stale[i] = False
            signals.append(self._signal(i, None, float(self._last_good[i]), "恢复上报"))
        return signals

    def gateway(self, site_id: str, online: bool, at: float | None = None) -> None:
        """Record a gateway's Last Will (offline) or return (online at ``at``); `check` reports the effect."""
        number = self._site_number.get(site_id)
        if number is None:
            return
        self._gateway_down[number] = not online
        if online and at is not None:
            self._grace(number, at)

    def _grace(self, site: int, now: float) -> None:
        """The link is back: the site's sensors get one full limit to report before they are judged again."""
        rows = (self._site_of == site) & self._heard & ~self._stale
        self._last_good[rows] = np.maximum(self._last_good[rows], now)

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
        """Signals for what changed by ``now``: communication loss per site, sensors not yet reporting per
        site, and single sensors gone stale (or back)."""
        mask = self.stale_mask(now)
        sites = len(self._sites)
        heard_count = np.bincount(self._site_of[self._heard], minlength=sites)
        silent_heard = np.bincount(self._site_of[self._heard & mask], minlength=sites)
        comm = self._gateway_down | ((heard_count >= 2) & (silent_heard == heard_count))
        signals = []
        for site in np.flatnonzero(comm & ~self._comm_lost).tolist():
            self._comm_lost[site] = True
            hidden = np.flatnonzero((self._site_of == site) & self._heard & ~self._stale)
            cause = "网关离线" if self._gateway_down[site] else "全部传感器同时中断"
            signals.append(self._site_signal(COMM_RULE_ID, "comm_loss", site, self._tier, now, hidden,
                                             f"通信中断({cause}), 屏蔽 {len(hidden)} 个传感器的单点故障报警",
                                             "gateway_offline" if self._gateway_down[site] else "all_silent"))
        for site in np.flatnonzero(~comm & self._comm_lost).tolist():
            self._comm_lost[site] = False
            self._grace(site, now)
            signals.append(self._site_signal(COMM_RULE_ID, "comm_loss", site, None, now, np.array([], dtype=np.int64),
                                             "通信恢复"))
        mask = self.stale_mask(now)  # after any grace
        never = ~self._heard & (now - self._start > self._first_limit)
        never_count = np.bincount(self._site_of[never], minlength=sites)
        for site in np.flatnonzero((never_count > 0) & ~self._silent_site).tolist():
            self._silent_site[site] = True
            missing = np.flatnonzero(never & (self._site_of == site))
            signals.append(self._site_signal(SILENT_RULE_ID, "not_reporting", site, self._tier, now, missing,
                                             f"{len(missing)} 个传感器自启动以来未上报"))
        for site in np.flatnonzero((never_count == 0) & self._silent_site).tolist():
            self._silent_site[site] = False
            signals.append(self._site_signal(SILENT_RULE_ID, "not_reporting", site, None, now,
                                             np.array([], dtype=np.int64), "全部传感器已上报"))
        judged = self._heard & ~self._comm_lost[self._site_of]  # per-sensor faults only where nothing covers them
        for i in np.flatnonzero(mask & ~self._stale & judged).tolist():
            self._stale[i] = True
            signals.append(self._signal(i, self._tier, now, f"超过 {self._limit[i]:g} 秒未收到有效数据"))
        for i in np.flatnonzero(~mask & self._stale).tolist():
            self._stale[i] = False
            signals.append(self._signal(i, None, now, "恢复上报"))
        return signals

    def _signal(self, i: int, tier: Tier | None, ts: float, reason: str) -> Signal:
        sensor = self._fleet.sensors[self._fleet.sensor_ids[i]]
        return Signal(rule_id=RULE_ID, kind=self.kind, subject=sensor.id, site_id=sensor.site_id,
                      family=sensor.family, tier=tier, level="fault" if tier else None,
                      value=float(self._last_good[i]), threshold=float(self._limit[i]), unit="s", ts=ts,
                      message=f"{sensor.name} 传感器故障: {reason}" if tier else f"{sensor.name} {reason}",
                      facts={"sensor": sensor.id, "limit_s": float(self._limit[i])})

    def _site_signal(self, rule_id: str, kind: str, site: int, tier: Tier | None, ts: float, sensors: np.ndarray,
                     what: str, cause: str | None = None) -> Signal:
        site_id = self._sites[site]
        names = [self._fleet.sensors[self._fleet.sensor_ids[i]].name for i in sensors.tolist()]
        listed = "、".join(names[:NAMES_SHOWN]) + (f" 等 {len(names)} 个" if len(names) > NAMES_SHOWN else "")
        message = f"{self._fleet.sites[site_id].name} {what}" + (f": {listed}" if names else "")
        return Signal(rule_id=rule_id, kind=kind, subject=f"site:{site_id}", site_id=site_id,
                      family=self._site_family[site], tier=tier, level="fault" if tier else None,
                      value=float(len(names)), threshold=None, unit="个", ts=ts, message=message,
                      facts={"sensors": [self._fleet.sensor_ids[i] for i in sensors.tolist()], "cause": cause})

    def subjects(self) -> list[str]:
        """Fleet sensor ids (state arrays are in fleet order)."""
        return list(self._fleet.sensor_ids)

    def state(self) -> dict[str, np.ndarray]:
        """Per sensor: last usable reading, heard, stale; and its site's communication-loss and not-reporting flags."""
        return {"last_good": self._last_good, "stale": self._stale, "heard": self._heard,
                "site_comm_lost": self._comm_lost[self._site_of], "site_silent": self._silent_site[self._site_of]}

    def restore(self, arrays: dict[str, np.ndarray], rows: np.ndarray, into: np.ndarray) -> None:
        """Restore snapshot rows into sensors ``into`` (snapshots from before the site flags load too)."""
        self._last_good[into] = np.maximum(self._last_good[into], arrays["last_good"][rows])
        self._stale[into] = arrays["stale"][rows]
        self._heard[into] = arrays["heard"][rows] if "heard" in arrays else True
        for key, target in (("site_comm_lost", self._comm_lost), ("site_silent", self._silent_site)):
            if key in arrays:
                flagged = self._site_of[into][arrays[key][rows].astype(bool)]
                target[flagged] = True

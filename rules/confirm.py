"""k-of-n confirmation: detectors of one zone agreeing raise a higher tier than one alone.

A gas detector at its first level alone is a medium alarm; with the default pack's ladder, two
neighbours at the first level are a confirmed leak (high) and two at the second level urgent.
One detector alone at its second level stays at its own tier — confirmation needs agreement.
The zone is one alert that climbs the ladder; walking two detectors A and B of a zone (k=2) ::

    A, B        level1, -   level1, level1   level2, level1   level2, level2   -, level2
    zone        -           high             high             urgent           -

The rule listens to the threshold rule's signals, so it sees each detector's shown level (after
deadband and delays), in event time.

Zones are configured lists, or built from a radius: matched detectors of one site and quantity
within ``radius_m`` of each other (transitively) form a zone; a detector with no neighbour forms none.
"""

from __future__ import annotations

import math

import numpy as np

from foundation.config import Fleet
from foundation.domain import Family
from foundation.rulespec import ConfirmationSpec, Zone
from rules.base import LEVEL_ZH, Signal, members
from rules.threshold import ThresholdRule


def distance_m(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """Great-circle distance in metres (haversine, mean Earth radius).

    >>> round(distance_m(116.0, 36.0, 116.001, 36.0))
    90
    """
    p1, p2 = math.radians(lat1), math.radians(lat2)
    a = math.sin((p2 - p1) / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(math.radians(lon2 - lon1) / 2) ** 2
    return 2 * 6_371_000.0 * math.asin(math.sqrt(a))


def radius_zones(fleet: Fleet, sensors: list[str], radius_m: float) -> list[Zone]:
    """Connected groups (of one site and quantity) of detectors within ``radius_m`` of a neighbour."""
    groups: dict[tuple[str, str], list[str]] = {}
    for sensor_id in sensors:
        s = fleet.sensors[sensor_id]
        groups.setdefault((s.site_id, s.quantity), []).append(sensor_id)
    zones = []
    for (site, quantity), ids in sorted(groups.items()):
        parent = {i: i for i in ids}

        def root(i: str) -> str:
            while parent[i] != i:
                parent[i] = parent[parent[i]]
                i = parent[i]
            return i

        for a_index, a in enumerate(ids):
            for b in ids[a_index + 1:]:
                sa, sb = fleet.sensors[a], fleet.sensors[b]
                if distance_m(sa.lon, sa.lat, sb.lon, sb.lat) <= radius_m:
                    parent[root(a)] = root(b)
        clusters: dict[str, list[str]] = {}
        for i in ids:
            clusters.setdefault(root(i), []).append(i)
        for number, members_ in enumerate(sorted(c for c in clusters.values() if len(c) > 1), start=1):
            zones.append(Zone(id=f"{site}-{quantity}-Z{number}".replace("_", "-"), sensors=sorted(members_)))
    return zones


class ConfirmationRule:
    """Counts, per zone and rung, the detectors whose threshold level is at or above the rung's level."""

    kind = "confirmation"

    def __init__(self, fleet: Fleet, spec: ConfirmationSpec) -> None:
        self.id = spec.id
        self.spec = spec
        self.fleet = fleet
        self.ladder = spec.ladder
        matched = [fleet.sensor_ids[i] for i in members(fleet, spec.match).tolist()]
        self.zones = list(spec.zones) if spec.zones else radius_zones(fleet, matched, spec.radius_m or 0.0)
        self._zones_of: dict[str, list[int]] = {}
        for z, zone in enumerate(self.zones):
            for sensor_id in zone.sensors:
                self._zones_of.setdefault(sensor_id, []).append(z)
        self._qualifying: dict[str, tuple[frozenset[str], ...]] = {}  # per sensor, per rung: the levels that count
        # sensors sharing a setpoint ladder share one tuple: 100,000 sensors have a handful of distinct ones
        shared: dict[tuple[str, ...], tuple[frozenset[str], ...]] = {}
        for sensor_id in self._zones_of:
            levels = tuple(s.level for s in fleet.setpoints_for(fleet.sensors[sensor_id]) if s.direction == "high")
            if levels not in shared:
                shared[levels] = tuple(
                    frozenset(levels[levels.index(rung.level):]) if rung.level in levels else frozenset()
                    for rung in self.ladder)
            self._qualifying[sensor_id] = shared[levels]
        self.active: list[list[set[str]]] = [[set() for _ in self.ladder] for _ in self.zones]
        self.confirmed = np.zeros(len(self.zones), dtype=np.int8)  # rungs confirmed per zone (0: none)

    def on_signals(self, signals: list[Signal]) -> list[Signal]:
        """Follow the threshold signals (event-time order); return zone confirmations, their steps and ends."""
        out = []
        for signal in signals:
            if signal.kind != "threshold" or signal.subject not in self._zones_of:
                continue
            for z in self._zones_of[signal.subject]:
                for r, levels in enumerate(self._qualifying[signal.subject]):
                    (self.active[z][r].add if signal.level in levels else self.active[z][r].discard)(signal.subject)
                shown = self._shown(z)
                if shown != self.confirmed[z]:
                    self.confirmed[z] = shown
                    out.append(self._signal(z, signal))
        return out

    def _shown(self, z: int) -> int:
        """How many rungs of the ladder k detectors of zone ``z`` reach."""
        return max((r + 1 for r, members_ in enumerate(self.active[z]) if len(members_) >= self.spec.k), default=0)

    def rebuild(self, threshold: ThresholdRule) -> None:
        """Recompute zone membership from the threshold rule's state (after a restore)."""
        for z, zone in enumerate(self.zones):
            for r in range(len(self.ladder)):
                self.active[z][r] = {s for s in zone.sensors
                                     if (rung := threshold.level_of(self.fleet.sensor_index[s])) is not None
                                     and rung.level in self._qualifying[s][r]}
            self.confirmed[z] = self._shown(z)

    def _signal(self, z: int, cause: Signal) -> Signal:
        zone = self.zones[z]
        shown = int(self.confirmed[z])
        site = self.fleet.sensors[zone.sensors[0]].site_id
        # names, not ids, in the Chinese line too (alerting/messages.py renders the full texts from the facts)
        place = f"{self.fleet.sites[site].name} {zone.name or '探测区 ' + zone.id.rsplit('-', 1)[-1]}"
        if shown:
            rung = self.ladder[shown - 1]
            agreeing = self.active[z][shown - 1]
            count = len(agreeing)
            names = "、".join(self.fleet.sensors[s].name for s in sorted(agreeing))
            message = (f"{place} {count} 个探测器达到{LEVEL_ZH.get(rung.level, rung.level)} ({names}), "
                       "多点确认泄漏")
        else:
            rung, count = None, len(self.active[z][0])
            message = f"{place} 报警探测器减少至 {count} 个, 解除确认"
        return Signal(rule_id=self.id, kind=self.kind, subject=zone.id, site_id=site,
                      family=self.fleet.sensors[zone.sensors[0]].family if zone.sensors else Family.GAS,
                      tier=rung.tier if rung else None, level="confirmed" if rung else None,
                      value=float(count), threshold=float(self.spec.k), unit="个", ts=cause.ts, message=message,
                      facts={"zone": zone.id, "zone_sensors": list(zone.sensors), "zone_name": zone.name,
                             "zone_name_en": zone.name_en, "detectors": sorted(self.active[z][shown - 1]) if shown else [],
                             "rung_level": rung.level if rung else None})

    def subjects(self) -> list[str]:
        """Zone ids."""
        return [zone.id for zone in self.zones]

    def state(self) -> dict[str, np.ndarray]:
        """How many rungs each zone has confirmed (membership is rebuilt from the threshold rule on restore)."""
        return {"confirmed": self.confirmed}

    def restore(self, arrays: dict[str, np.ndarray], rows: np.ndarray, into: np.ndarray) -> None:
        """Nothing to copy: `rebuild` derives the zones from the restored threshold state."""

"""Forest fire: daily fire danger per station (FWI) and direct detection above it.

Danger is computed once a day at local noon (12:00 CST) per station, from the station's last
temperature, relative humidity and wind at or before noon (each within the past 24 h) and its
rain summed over the 24 h to noon; the codes carry from day to day (start-up FFMC 85, DMC 6,
DC 15). A station missing an input that day keeps yesterday's codes and is logged
(``fire_danger_inputs_missing``). Noon passes in event time: the first released reading after it
closes the day, so replay gives the same days as a live run. Liaocheng (36.5° N) lies in the
band where the standard 46° N day-length factors apply, so no latitude adjustment is needed.

The index is pluggable: `DANGER_INDICES` maps a spec's ``index`` to a `DangerIndex`. GB/T 36743's
text is not available to us; FWI (Van Wagner & Pickett 1985) with EFFIS-style classes is the default.

Direct detection (smoke, flame, CO, a temperature jump) is evidence of a fire, not of danger: the
station's detection alert takes the detector's tier but at least one above the station's danger tier,
up to the spec's ``unconfirmed_max_tier``; when ``confirm_k`` signals agree at the station (smoke and
flame, say, or flame and a temperature jump) the fire is confirmed and takes ``confirmed_tier``.
With the default pack, walking a fire at a station under a medium (very high) danger::

    signals     smoke            + temperature jump    + flame          all gone
    station     high             urgent (2 agree)      urgent           -
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

import numpy as np
import structlog

from liaowang.config import Fleet
from liaowang.domain import BAD_CODE, CST, Family, ReadingBatch, Tier
from liaowang.rulespec import FireDangerSpec, FireDetectionSpec
from rules.base import Signal, members, station_of
from rules.fwi import FwiState, fwi_day

log = structlog.get_logger("rules")

DAY_S = 86_400.0
NOON_UTC_S = 4 * 3600.0  # 12:00 CST is 04:00 UTC
INPUTS = ("temperature", "relative_humidity", "wind_speed", "rain")


class DangerIndex(Protocol):
    """A daily fire-danger index: carried codes in, one day's noon weather, the index and new codes out."""

    def day(self, codes: tuple[float, ...], *, month: int, temp: float, rh: float, wind: float,
            rain: float) -> tuple[float, tuple[float, ...]]:
        """Return (index value, codes to carry to tomorrow)."""
        ...


class FwiIndex:
    """The Canadian Fire Weather Index; codes are (FFMC, DMC, DC)."""

    def day(self, codes: tuple[float, ...], *, month: int, temp: float, rh: float, wind: float,
            rain: float) -> tuple[float, tuple[float, ...]]:
        """One FWI day (see `rules.fwi.fwi_day`)."""
        result = fwi_day(FwiState(*codes), month=month, temp=temp, rh=rh, wind=wind, rain=rain)
        return result.fwi, (result.ffmc, result.dmc, result.dc)


DANGER_INDICES: dict[str, DangerIndex] = {"fwi": FwiIndex()}


def noon_period(ts: np.ndarray | float) -> np.ndarray:
    """The number of the noon that closes the fire-danger day containing ``ts`` (noon itself included)."""
    return np.ceil((np.asarray(ts, dtype=float) - NOON_UTC_S) / DAY_S).astype(np.int64)


class FireDangerRule:
    """Daily danger index per station, tier by class limits; subject = station id."""

    kind = "fire_danger"

    def __init__(self, fleet: Fleet, spec: FireDangerSpec) -> None:
        self.id, self.spec, self.fleet = spec.id, spec, fleet
        self.index = DANGER_INDICES[spec.index]
        role_of_quantity = {spec.quantities[name]: r for r, name in enumerate(INPUTS)}
        self.role = np.full(len(fleet.sensor_ids), -1, dtype=np.int8)
        self.station_of_sensor = np.full(len(fleet.sensor_ids), -1, dtype=np.int64)
        stations: dict[str, int] = {}
        for i in members(fleet, spec.match, lambda s: s.quantity in role_of_quantity).tolist():
            sensor = fleet.sensors[fleet.sensor_ids[i]]
            self.role[i] = role_of_quantity[sensor.quantity]
            self.station_of_sensor[i] = stations.setdefault(station_of(sensor), len(stations))
        self.stations = list(stations)
        self.station_site = [""] * len(self.stations)
        for i in np.flatnonzero(self.station_of_sensor >= 0).tolist():
            self.station_site[self.station_of_sensor[i]] = fleet.sensor_sites[i]
        n = len(self.stations)
        self.codes = np.tile([spec.start_ffmc, spec.start_dmc, spec.start_dc], (n, 1)).astype(float)
        self.last_value = np.full((n, 3), np.nan)
        self.last_ts = np.full((n, 3), -np.inf)
        self.rain = np.zeros(n)
        self.value = np.full(n, np.nan)
        self.tier = np.zeros(n, dtype=np.int8)
        self.period = np.full(1, -1, dtype=np.int64)  # the noon being accumulated towards
        self._limits = np.array([c.min for c in spec.classes])

    def evaluate(self, batch: ReadingBatch) -> list[Signal]:
        """Accumulate the batch's weather readings; close every noon the batch passes."""
        if not len(batch.ts):
            return []
        keep = (self.role[batch.sensor] >= 0) & (batch.quality != BAD_CODE) & ~np.isnan(batch.value)
        sensor, ts, value = batch.sensor[keep], batch.ts[keep], batch.value[keep]
        if self.period[0] < 0:
            self.period[0] = int(noon_period(batch.ts.min()))
        signals: list[Signal] = []
        end = int(noon_period(batch.ts.max()))
        done = np.zeros(len(ts), dtype=bool)
        while True:
            noon = float(self.period[0] * DAY_S + NOON_UTC_S)
            part = ~done & (ts <= noon)
            self._accumulate(sensor[part], ts[part], value[part])
            done |= part
            if end <= self.period[0]:
                return signals
            signals += self._close_day(noon)
            rest = ts[~done]
            # skip empty days at once (a feed gap): the next noon is the one the next reading falls before
            nxt = int(noon_period(rest.min())) if len(rest) else end
            self.period[0] = max(self.period[0] + 1, min(nxt, end))

    def _accumulate(self, sensor: np.ndarray, ts: np.ndarray, value: np.ndarray) -> None:
        if not len(sensor):
            return
        role, station = self.role[sensor], self.station_of_sensor[sensor]
        rain = role == 3
        np.add.at(self.rain, station[rain], value[rain])
        weather = ~rain
        # the last reading per (station, input): rows are time-ordered, so take each key's last row
        key = station[weather] * 3 + role[weather]
        if len(key):
            rev_key = key[::-1]
            unique, first_from_end = np.unique(rev_key, return_index=True)
            rows = np.flatnonzero(weather)[::-1][first_from_end]
            self.last_value.reshape(-1)[unique] = value[rows]
            self.last_ts.reshape(-1)[unique] = ts[rows]

    def _close_day(self, noon: float) -> list[Signal]:
        date = datetime.fromtimestamp(noon, CST).date()
        signals = []
        fresh = self.last_ts > noon - DAY_S
        for s, station in enumerate(self.stations):
            if not fresh[s].all():
                # a station with no input at all is silent, which the stale rule reports; a partial one is logged
                if fresh[s].any():
                    missing = [INPUTS[r] for r in range(3) if not fresh[s, r]]
                    log.warning("fire_danger_inputs_missing", rule_id=self.id, station=station, date=str(date),
                                missing=missing)
                self.rain[s] = 0.0
                continue
            temp, rh, wind = self.last_value[s]
            value, codes = self.index.day(tuple(self.codes[s]), month=date.month, temp=float(temp), rh=float(rh),
                                          wind=float(wind), rain=float(self.rain[s]))
            rain, self.rain[s] = float(self.rain[s]), 0.0
            self.codes[s] = codes
            self.value[s] = value
            klass = self.spec.classes[max(int(np.searchsorted(self._limits, value, side="right")) - 1, 0)]
            tier = int(klass.tier) if klass.tier is not None else 0
            if tier == self.tier[s] and tier == 0:
                continue
            self.tier[s] = tier
            message = (f"{station} {date} 森林火险 {self.spec.index.upper()} {value:.1f} ({klass.name}); "
                       f"正午气温 {temp:g} °C, 相对湿度 {rh:g} %, 风速 {wind:g} km/h, 24 小时降水 {rain:g} mm")
            signals.append(Signal(rule_id=self.id, kind=self.kind, subject=station, site_id=self.station_site[s],
                                  family=Family.FOREST, tier=Tier(tier) if tier else None, level=klass.name,
                                  value=round(float(value), 2), threshold=klass.min, unit=self.spec.index.upper(),
                                  ts=noon, message=message))
        return signals

    def danger_tier(self, station: str) -> int:
        """The station's current danger tier (0: none)."""
        return int(self.tier[self.stations.index(station)]) if station in self.stations else 0

    def subjects(self) -> list[str]:
        """Station ids (state arrays are per station)."""
        return list(self.stations)

    def state(self) -> dict[str, np.ndarray]:
        """Carried codes, the day's accumulation and tiers, per station (``period`` is fleet-wide)."""
        return {"codes": self.codes, "last_value": self.last_value, "last_ts": self.last_ts, "rain": self.rain,
                "value": self.value, "tier": self.tier, "period": np.repeat(self.period, len(self.stations))}

    def restore(self, arrays: dict[str, np.ndarray], rows: np.ndarray, into: np.ndarray) -> None:
        """Restore snapshot rows into stations ``into``."""
        for name in ("codes", "last_value", "last_ts", "rain", "value", "tier"):
            getattr(self, name)[into] = arrays[name][rows]
        if len(rows):
            self.period[0] = int(arrays["period"][rows[0]])


class FireDetectionRule:
    """A station's detectors (threshold alarms) and temperature jumps → a detection alert above danger."""

    kind = "fire_detection"

    def __init__(self, fleet: Fleet, spec: FireDetectionSpec, danger: FireDangerRule | None) -> None:
        self.id, self.spec, self.fleet, self.danger = spec.id, spec, fleet, danger
        self.detector = np.zeros(len(fleet.sensor_ids), dtype=bool)
        self.detector[members(fleet, spec.match, lambda s: bool(fleet.setpoints_for(s)))] = True
        self.detecting = np.zeros(len(fleet.sensor_ids), dtype=np.int8)  # tier each sensor now reports, 0 none
        stations = sorted({station_of(fleet.sensors[fleet.sensor_ids[i]]) for i in np.flatnonzero(self.detector)})
        self.stations = stations
        self._station_number = {s: n for n, s in enumerate(stations)}
        rows: dict[str, list[int]] = {s: [] for s in stations}
        for i, sensor_id in enumerate(fleet.sensor_ids):
            if fleet.sensors[sensor_id].family is Family.FOREST and (st := station_of(fleet.sensors[sensor_id])) in rows:
                rows[st].append(i)
        self._rows = {s: np.array(r, dtype=np.int64) for s, r in rows.items()}
        self.shown = np.zeros(len(stations), dtype=np.int8)

    def on_signals(self, signals: list[Signal]) -> list[Signal]:
        """Follow detector, jump and danger signals in event-time order; return station changes."""
        out = []
        for signal in signals:
            if signal.rule_id == self.spec.danger_rule:
                station = signal.subject
            elif signal.kind == "threshold" or signal.rule_id == self.spec.jump_rule:
                i = self.fleet.sensor_index.get(signal.subject)
                if i is None:
                    continue
                is_jump = signal.rule_id == self.spec.jump_rule
                if not is_jump and not self.detector[i]:
                    continue
                station = station_of(self.fleet.sensors[signal.subject])
                if station not in self._station_number:
                    continue
                tier = int(self.spec.jump_tier if is_jump else signal.tier) if signal.tier else 0
                self.detecting[i] = tier
            else:
                continue
            change = self._update(station, signal)
            if change is not None:
                out.append(change)
        return out

    def _tier(self, station: str) -> tuple[int, int, int]:
        """(tier the station shows, detection signals there, its danger tier); tier 0 when nothing detects.

        The strongest detector's tier, at least one above the danger tier, at most
        ``unconfirmed_max_tier`` — unless ``confirm_k`` signals agree: then at least ``confirmed_tier``.
        """
        rows = self._rows[station]
        detected = int(self.detecting[rows].max()) if len(rows) else 0
        count = int(np.count_nonzero(self.detecting[rows]))
        danger = self.danger.danger_tier(station) if self.danger else 0
        if not detected:
            return 0, count, danger
        tier = min(int(self.spec.unconfirmed_max_tier), max(detected, danger + 1))
        if self.spec.confirm_k is not None and count >= self.spec.confirm_k:
            tier = max(tier, int(self.spec.confirmed_tier))
        return min(int(Tier.RED), tier), count, danger

    def _update(self, station: str, cause: Signal) -> Signal | None:
        number = self._station_number.get(station)
        if number is None:
            return None
        tier, count, danger = self._tier(station)
        if tier == self.shown[number]:
            return None
        self.shown[number] = tier
        site = self.fleet.sensor_sites[int(self._rows[station][0])]
        confirmed = self.spec.confirm_k is not None and count >= self.spec.confirm_k
        danger_zh = f"当前火险报警 {Tier(danger).label_zh}" if danger else "当前无火险报警"
        message = (f"{station} 发现火情: {count} 个探测信号{', 多源确认' if confirmed else ''} ({danger_zh})"
                   if tier else f"{station} 火情探测信号已全部消除")
        return Signal(rule_id=self.id, kind=self.kind, subject=station, site_id=site, family=Family.FOREST,
                      tier=Tier(tier) if tier else None, level="fire_detected" if tier else None, value=float(count),
                      threshold=None, unit="个", ts=cause.ts, message=message)

    def subjects(self) -> list[str]:
        """Fleet sensor ids (the per-sensor detection array is in fleet order; station tiers are rebuilt)."""
        return list(self.fleet.sensor_ids)

    def state(self) -> dict[str, np.ndarray]:
        """Each sensor's detection tier."""
        return {"detecting": self.detecting}

    def restore(self, arrays: dict[str, np.ndarray], rows: np.ndarray, into: np.ndarray) -> None:
        """Restore detection tiers and recompute each station's shown tier."""
        self.detecting[into] = arrays["detecting"][rows]
        for station, number in self._station_number.items():
            self.shown[number] = self._tier(station)[0]

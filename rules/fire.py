"""Forest fire: daily fire danger per station (LY/T 1172-95 or FWI) and direct detection above it.

A danger day closes once a day at the index's hour (CST): 20:00 for LY/T 1172 (the Chinese
meteorological day 20–20 [S]), 12:00 for FWI. Over the day `FireDangerRule` accumulates, in event
time, each station's daily aggregates into a `DangerDay`: max/min temperature, minimum RH, the RH
at 14:00 (the last reading in the half hour up to 14:00), the largest 10-minute mean wind (blocks
``(t-600, t]`` aligned to the epoch), the last temperature, RH and wind at the close (each within
the past 24 h) and the rain summed over the day. The index turns one `DangerDay` and the codes it
carries (FWI: FFMC, DMC, DC; LY/T 1172: the dry-day count) into the day's value and tomorrow's codes.
A station missing an input that day keeps yesterday's codes and is logged
(``fire_danger_inputs_missing``). The close passes in event time: the first released reading after
it closes the day, so replay gives the same days as a live run. Liaocheng (36.5° N) lies in the
band where FWI's standard 46° N day-length factors apply.

The index is pluggable: `DANGER_INDICES` maps a spec's ``index`` to a factory of `DangerIndex`.
LY/T 1172-95 (five levels 一级 … 五级, rules/lyt1172.py) is the default; ``index: fwi`` keeps the
Canadian FWI (Van Wagner & Pickett 1985). GB/T 36743's text is not available to us.

A class listed in the spec's ``warnings`` (三–五级 in the default pack: yellow/orange/red, QX/T 77
[S]) proposes a warning about the station's forest zone through ``propose_warning`` (the lead
wires it to `earlywarning.forest.danger_proposer`) on the day the station enters that class; 一–二级
never propose one. The alarm priority is separate: 三级/四级 medium, 五级 high, never urgent (a
weather index is not a fire).

Direct detection (smoke, flame, CO, a temperature jump) is evidence of a fire, not of danger: the
station's detection alert takes the detector's tier but at least one above the station's danger tier,
up to the spec's ``unconfirmed_max_tier``; when ``confirm_k`` signals agree at the station (smoke and
flame, say, or flame and a temperature jump) the fire is confirmed and takes ``confirmed_tier``.
With the default pack, walking a fire at a station under a medium (三级) danger::

    signals     smoke            + temperature jump    + flame          all gone
    station     high             urgent (2 agree)      urgent           -
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Callable

import numpy as np
import structlog

from foundation.config import Fleet
from foundation.domain import BAD_CODE, CST, Family, ReadingBatch, Tier
from foundation.rulespec import FireDangerSpec, FireDetectionSpec
from rules.base import Signal, members, station_of
from rules.danger import DANGER_INDICES, DangerDay, DangerIndex, FwiIndex, Lyt1172Index

__all__ = ["DANGER_INDICES", "DangerDay", "DangerIndex", "DangerWarning", "FireDangerRule", "FireDetectionRule",
           "FwiIndex", "Lyt1172Index", "noon_period"]

log = structlog.get_logger("rules")

DAY_S = 86_400.0
NOON_UTC_S = 4 * 3600.0  # 12:00 CST is 04:00 UTC
WIND_BLOCK_S = 600.0     # the 10-minute mean wind
INPUTS = ("temperature", "relative_humidity", "wind_speed", "rain")


@dataclass(frozen=True, slots=True)
class DangerWarning:
    """A proposal to warn about a station's forest zone: the day's class asks for ``colour``.

    ``zone`` is the station's site (a forest site is a forest zone); the lead's adapter
    (`earlywarning.forest.danger_proposer`) turns it into a `WarningDesk` proposal.
    """

    rule_id: str
    station: str
    zone: str
    colour: str      # yellow | orange | red
    level: str       # the class name, e.g. 五级
    value: float
    ts: float
    message: str


def noon_period(ts: np.ndarray | float, close_utc_s: float = NOON_UTC_S) -> np.ndarray:
    """The number of the close (noon by default) that ends the danger day containing ``ts`` (the close included)."""
    return np.ceil((np.asarray(ts, dtype=float) - close_utc_s) / DAY_S).astype(np.int64)


class FireDangerRule:
    """Daily danger index per station, tier by class limits; subject = station id.

    ``propose_warning`` (optional) receives a `DangerWarning` the day a station enters a class the
    spec's ``warnings`` lists; a failing callable is logged and does not stop the rule.
    """

    kind = "fire_danger"

    def __init__(self, fleet: Fleet, spec: FireDangerSpec,
                 propose_warning: Callable[[DangerWarning], object] | None = None) -> None:
        self.id, self.spec, self.fleet = spec.id, spec, fleet
        self.index = DANGER_INDICES[spec.index](spec)
        self.propose_warning = propose_warning
        hour = spec.day_close_hour if spec.day_close_hour is not None else self.index.close_hour
        self.close_utc_s = ((hour - 8) % 24) * 3600.0
        self.h14_before_close = ((hour - 14) % 24) * 3600.0
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
        self.codes = np.tile(self.index.start(), (n, 1)).astype(float)
        self.last_value = np.full((n, 3), np.nan)
        self.last_ts = np.full((n, 3), -np.inf)
        self.rain = np.zeros(n)
        # the day's aggregates: temp max, temp min, rh min, rh at 14:00, 10-min wind max; current wind block
        self.agg = np.full((n, 5), np.nan)
        self.wind_block = np.full((n, 3), np.nan)  # block number, sum, count
        self.value = np.full(n, np.nan)
        self.tier = np.zeros(n, dtype=np.int8)
        self.klass = np.full(n, -1, dtype=np.int8)  # the class of the last computed day
        self.period = np.full(1, -1, dtype=np.int64)  # the close being accumulated towards
        self._limits = np.array([c.min for c in spec.classes])

    def evaluate(self, batch: ReadingBatch) -> list[Signal]:
        """Accumulate the batch's weather readings; close every day the batch passes."""
        if not len(batch.ts):
            return []
        keep = (self.role[batch.sensor] >= 0) & (batch.quality != BAD_CODE) & ~np.isnan(batch.value)
        sensor, ts, value = batch.sensor[keep], batch.ts[keep], batch.value[keep]
        if self.period[0] < 0:
            self.period[0] = int(noon_period(batch.ts.min(), self.close_utc_s))
        signals: list[Signal] = []
        end = int(noon_period(batch.ts.max(), self.close_utc_s))
        done = np.zeros(len(ts), dtype=bool)
        while True:
            close = float(self.period[0] * DAY_S + self.close_utc_s)
            part = ~done & (ts <= close)
            self._accumulate(sensor[part], ts[part], value[part], close)
            done |= part
            if end <= self.period[0]:
                return signals
            signals += self._close_day(close)
            rest = ts[~done]
            # skip empty days at once (a feed gap): the next close is the one the next reading falls before
            nxt = int(noon_period(rest.min(), self.close_utc_s)) if len(rest) else end
            self.period[0] = max(self.period[0] + 1, min(nxt, end))

    def _accumulate(self, sensor: np.ndarray, ts: np.ndarray, value: np.ndarray, close: float) -> None:
        if not len(sensor):
            return
        role, station = self.role[sensor], self.station_of_sensor[sensor]
        rain = role == 3
        np.add.at(self.rain, station[rain], value[rain])
        weather = ~rain
        # the last reading per (station, input): rows are time-ordered, so take each key's last row
        key = station[weather] * 3 + role[weather]
        if len(key):
            unique, rows = _last_per_key(key, np.flatnonzero(weather))
            self.last_value.reshape(-1)[unique] = value[rows]
            self.last_ts.reshape(-1)[unique] = ts[rows]
        temp, rh = role == 0, role == 1
        np.fmax.at(self.agg[:, 0], station[temp], value[temp])
        np.fmin.at(self.agg[:, 1], station[temp], value[temp])
        np.fmin.at(self.agg[:, 2], station[rh], value[rh])
        h14 = close - self.h14_before_close
        at14 = rh & (ts <= h14) & (ts > h14 - 1800.0)
        if at14.any():
            unique, rows = _last_per_key(station[at14], np.flatnonzero(at14))
            self.agg[unique, 3] = value[rows]
        for s, t, v in zip(station[role == 2].tolist(), ts[role == 2].tolist(), value[role == 2].tolist()):
            block = math.ceil(t / WIND_BLOCK_S)
            if self.wind_block[s, 0] != block:
                self._end_wind_block(s)
                self.wind_block[s] = (block, 0.0, 0.0)
            self.wind_block[s, 1] += v
            self.wind_block[s, 2] += 1.0

    def _end_wind_block(self, s: int) -> None:
        if self.wind_block[s, 2] > 0:
            self.agg[s, 4] = np.fmax(self.agg[s, 4], self.wind_block[s, 1] / self.wind_block[s, 2])
        self.wind_block[s] = np.nan

    def _close_day(self, close: float) -> list[Signal]:
        date = datetime.fromtimestamp(close, CST).date()
        signals = []
        fresh = self.last_ts > close - DAY_S
        for s, station in enumerate(self.stations):
            self._end_wind_block(s)
            last = np.where(fresh[s], self.last_value[s], np.nan)
            day = DangerDay(date=date, temp=float(last[0]), rh=float(last[1]), wind=float(last[2]),
                            rain=float(self.rain[s]), temp_max=float(self.agg[s, 0]), temp_min=float(self.agg[s, 1]),
                            rh_min=float(self.agg[s, 2]), rh_14=float(self.agg[s, 3]),
                            wind_10min_max=float(self.agg[s, 4]))
            self.rain[s] = 0.0
            self.agg[s] = np.nan
            missing = self.index.missing(day)
            if missing:
                # a station with no input at all is silent, which the stale rule reports; a partial one is logged
                if fresh[s].any():
                    log.warning("fire_danger_inputs_missing", rule_id=self.id, station=station, date=str(date),
                                missing=missing)
                continue
            value, codes = self.index.day(tuple(self.codes[s]), day)
            self.codes[s] = codes
            self.value[s] = value
            number = max(int(np.searchsorted(self._limits, value, side="right")) - 1, 0)
            klass = self.spec.classes[number]
            entered, self.klass[s] = number != self.klass[s], number
            place = f"{self.fleet.sites[self.station_site[s]].name} {_station_tag(station, self.station_site[s])}"
            message = (f"{place} {date} 森林火险 {self.spec.index.upper()} {value:.1f} {self.index.unit} "
                       f"({klass.name}); {self.index.describe(day, codes)}")
            if entered and (colour := self.spec.warnings.get(klass.name)) and self.propose_warning is not None:
                warning = DangerWarning(rule_id=self.id, station=station, zone=self.station_site[s], colour=colour,
                                        level=klass.name, value=round(float(value), 2), ts=close, message=message)
                try:
                    self.propose_warning(warning)
                except Exception:  # the desk's failure must not stop the rule; it is logged with its cause
                    log.exception("fire_danger_warning_failed", rule_id=self.id, station=station, date=str(date))
            tier = int(klass.tier) if klass.tier is not None else 0
            if tier == self.tier[s] and tier == 0:
                continue
            self.tier[s] = tier
            signals.append(Signal(rule_id=self.id, kind=self.kind, subject=station, site_id=self.station_site[s],
                                  family=Family.FOREST, tier=Tier(tier) if tier else None, level=klass.name,
                                  value=round(float(value), 2), threshold=klass.min, unit=self.index.unit,
                                  ts=close, message=message,
                                  facts={"station": station, "index": self.spec.index, "date": date.isoformat(),
                                         "inputs": _inputs(day, codes, self.spec.index)}))
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
                "agg": self.agg, "wind_block": self.wind_block, "value": self.value, "tier": self.tier,
                "klass": self.klass, "period": np.repeat(self.period, len(self.stations))}

    def restore(self, arrays: dict[str, np.ndarray], rows: np.ndarray, into: np.ndarray) -> None:
        """Restore snapshot rows into stations ``into`` (a snapshot from before the daily aggregates lacks them)."""
        for name in ("codes", "last_value", "last_ts", "rain", "value", "tier", "agg", "wind_block", "klass"):
            if name in arrays and arrays[name].shape[1:] == getattr(self, name).shape[1:]:
                getattr(self, name)[into] = arrays[name][rows]
        if len(rows):
            self.period[0] = int(arrays["period"][rows[0]])


def _station_tag(station: str, site_id: str) -> str:
    """A station by its tag within its site (``LC-DEHH-WS1`` → ``WS1``): the Chinese line names no ids."""
    return station[len(site_id) + 1:] if station.startswith(f"{site_id}-") else station


def _inputs(day: DangerDay, codes: tuple[float, ...], index: str) -> dict[str, float | None]:
    """The day's inputs as structured facts (None where the day had no value): the alarm text lists them."""
    def number(x: float) -> float | None:
        return None if math.isnan(x) else round(float(x), 2)
    return {"temp": number(day.temp), "rh": number(day.rh), "wind": number(day.wind), "rain": number(day.rain),
            "temp_max": number(day.temp_max), "rh_min": number(day.rh_min), "rh_14": number(day.rh_14),
            "wind_10min_max": number(day.wind_10min_max), "dry_days": float(codes[0]) if index == "lyt1172" else None}


def _last_per_key(key: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each distinct key and the row of its last occurrence (``rows`` in time order)."""
    unique, first_from_end = np.unique(key[::-1], return_index=True)
    return unique, rows[::-1][first_from_end]


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
        place = f"{self.fleet.sites[site].name} {_station_tag(station, site)}"
        message = (f"{place} 发现火情: {count} 个探测信号{', 多源确认' if confirmed else ''} ({danger_zh})"
                   if tier else f"{place} 火情探测信号已全部消除")
        return Signal(rule_id=self.id, kind=self.kind, subject=station, site_id=site, family=Family.FOREST,
                      tier=Tier(tier) if tier else None, level="fire_detected" if tier else None, value=float(count),
                      threshold=None, unit="个", ts=cause.ts, message=message,
                      facts={"station": station, "confirmed": confirmed, "danger_tier": danger})

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

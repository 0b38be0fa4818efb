"""Sensor-fault rules: a frozen transmitter (stuck) and a value outside the instrument range.

Both raise sensor-fault alerts (level ``fault``), not process alarms: the duty room sends a
technician, not a fire engine. One exception: above the range of a gas detector the reading is a
超量程 alarm (level ``over_range``, its own rule id and kind ``over_range``), not a fault — a
catalytic sensor can roll over above its LEL span, so the top of the scale means "at least this
much gas" (DOMAIN.md "Gas" [S]). Stuck needs a window where noise is expected — it belongs on
analogue process measurements (temperature, pressure, level), not on detectors that read a flat
zero in clean air.
"""

from __future__ import annotations

import numpy as np

from foundation.config import Fleet, Sensor
from foundation.domain import BAD_CODE, ReadingBatch
from foundation.rulespec import HeldSpec, OutOfRangeSpec, StuckSpec
from rules.base import Signal, members
from rules.ladder import Change, Ladder, LadderBank, Rung
from rules.trend import WindowedRule
from rules.window import WindowStats


class StuckRule(WindowedRule):
    """Standard deviation over a full window at or below ``min_std`` → fault."""

    kind = "stuck"

    def ladder(self) -> Ladder:
        spec: StuckSpec = self.spec  # type: ignore[assignment]
        return Ladder(lows=(Rung(level="fault", tier=spec.tier, set=spec.min_std, reset=spec.min_std * 2, high=False),))

    def metric(self, stats: WindowStats, subjects: np.ndarray, value: np.ndarray) -> np.ndarray:
        return stats.std

    def describe(self, sensor: Sensor, change: Change, value: float, metric: float, ts: float) -> Signal:
        if change.rung is None:
            message = f"{sensor.name} 数值恢复变化"
        else:
            message = f"{sensor.name} 传感器故障: {self.spec.window_s:g} 秒内数值不变 ({value:g} {sensor.unit}), 疑似卡死"
        return self._signal(sensor, change, value, ts, message)  # facts: sensor, window_s


class OutOfRangeRule:
    """A value beyond the instrument range (plus a margin) → fault; back inside the range clears it."""

    kind = "out_of_range"

    def __init__(self, fleet: Fleet, spec: OutOfRangeSpec) -> None:
        self.id = spec.id
        self.spec = spec
        self.fleet = fleet
        sensors = members(fleet, spec.match, lambda s: fleet.instrument_range(s) is not None)
        ladders: list[Ladder | None] = [None] * len(fleet.sensor_ids)
        shared: dict[tuple[float, float, bool], Ladder] = {}
        alarm_families = set(spec.over_range_families)
        for i in sensors.tolist():
            sensor = fleet.sensors[fleet.sensor_ids[i]]
            low, high = fleet.instrument_range(sensor)  # type: ignore[misc]
            alarm = sensor.family in alarm_families
            if (low, high, alarm) not in shared:
                margin = (high - low) * spec.margin_fraction
                top = (Rung("over_range", spec.over_range_tier, high + margin, high, True) if alarm
                       else Rung("fault", spec.tier, high + margin, high, True))
                shared[(low, high, alarm)] = Ladder(highs=(top,), lows=(Rung("fault", spec.tier, low - margin, low, False),))
            ladders[i] = shared[(low, high, alarm)]
        self.bank = LadderBank(ladders)

    def evaluate(self, batch: ReadingBatch) -> list[Signal]:
        """Step every matched sensor's range ladder through the batch."""
        good = batch.quality != BAD_CODE
        sensor, ts, value = batch.sensor[good], batch.ts[good], batch.value[good]
        out = []
        for change in self.bank.step(sensor, ts, value):
            s = self.fleet.sensors[self.fleet.sensor_ids[change.subject]]
            v = float(value[change.row])
            low, high = self.fleet.instrument_range(s)  # type: ignore[misc]
            over = (change.rung or change.previous) is not None and (change.rung or change.previous).level == "over_range"
            if over:
                message = (f"{s.name} 数值回到量程内" if change.rung is None else
                           f"{s.name} 超量程报警: {v:g} {s.unit} 超出量程上限 {high:g} {s.unit}, 实际浓度可能更高")
            else:
                message = (f"{s.name} 数值回到量程内" if change.rung is None else
                           f"{s.name} 传感器故障: {v:g} {s.unit} 超出量程 {low:g}–{high:g} {s.unit}")
            if over and change.rung is not None and change.previous is not None and change.previous.level == "fault":
                out.append(self._clear(s, v, float(ts[change.row]), fault=True))  # straight from below to above
            elif change.rung is not None and change.rung.level == "fault" and change.previous is not None \
                    and change.previous.level == "over_range":
                out.append(self._clear(s, v, float(ts[change.row]), fault=False))
                over = False
            out.append(Signal(rule_id=self.spec.over_range_rule_id if over else self.id,
                              kind="over_range" if over else self.kind, subject=s.id, site_id=s.site_id, family=s.family,
                              tier=change.rung.tier if change.rung else None, level=change.rung.level if change.rung else None,
                              value=v, threshold=change.rung.set if change.rung else None, unit=s.unit,
                              ts=float(ts[change.row]), message=message,
                              facts={"sensor": s.id, "low": low, "high": high}))
        return out

    def _clear(self, s: Sensor, v: float, ts: float, fault: bool) -> Signal:
        """Clear the other side's alert when a value jumps from one side of the range to the other."""
        return Signal(rule_id=self.id if fault else self.spec.over_range_rule_id, kind=self.kind if fault else "over_range",
                      subject=s.id, site_id=s.site_id, family=s.family, tier=None, level=None, value=v, threshold=None,
                      unit=s.unit, ts=ts, message=f"{s.name} 数值离开原越限侧", facts={"sensor": s.id, "variant": "side"})

    def subjects(self) -> list[str]:
        """Fleet sensor ids (state arrays are in fleet order)."""
        return list(self.fleet.sensor_ids)

    def state(self) -> dict[str, np.ndarray]:
        """Ladder state, fleet order."""
        return self.bank.state()

    def restore(self, arrays: dict[str, np.ndarray], rows: np.ndarray, into: np.ndarray) -> None:
        """Restore snapshot rows into sensors ``into``."""
        self.bank.restore(arrays, rows, into)


class HeldRule(OutOfRangeRule):
    """A value at or above ``set`` for ``hold_s`` of event time → alert (an interlock bypass left in place).

    One rung with an on-delay: the ladder gives event-time holds, replay equivalence and snapshots.
    """

    kind = "held"

    def __init__(self, fleet: Fleet, spec: HeldSpec) -> None:  # type: ignore[override]
        self.id = spec.id
        self.spec = spec  # type: ignore[assignment]
        self.fleet = fleet
        sensors = members(fleet, spec.match)
        ladder = Ladder(highs=(Rung(spec.level, spec.tier, spec.set, spec.reset, True, on_delay=spec.hold_s),))
        ladders: list[Ladder | None] = [None] * len(fleet.sensor_ids)
        for i in sensors.tolist():
            ladders[i] = ladder
        self.bank = LadderBank(ladders)

    def evaluate(self, batch: ReadingBatch) -> list[Signal]:
        """Step every matched sensor's one-rung ladder through the batch."""
        good = batch.quality != BAD_CODE
        sensor, ts, value = batch.sensor[good], batch.ts[good], batch.value[good]
        spec: HeldSpec = self.spec  # type: ignore[assignment]
        out = []
        for change in self.bank.step(sensor, ts, value):
            s = self.fleet.sensors[self.fleet.sensor_ids[change.subject]]
            v = float(value[change.row])
            message = (f"{s.name} 已恢复 ({v:g} {s.unit})" if change.rung is None else
                       f"{s.name} 持续超过 {spec.hold_s / 3600:g} 小时 ({spec.description or spec.level})")
            out.append(Signal(rule_id=self.id, kind=self.kind, subject=s.id, site_id=s.site_id, family=s.family,
                              tier=change.rung.tier if change.rung else None, level=change.rung.level if change.rung else None,
                              value=v, threshold=change.rung.set if change.rung else None, unit=s.unit,
                              ts=float(ts[change.row]), message=message, facts={"sensor": s.id, "hold_s": spec.hold_s}))
        return out

"""Sensor-fault rules: a frozen transmitter (stuck) and a value outside the instrument range.

Both raise sensor-fault alerts (level ``fault``), not process alarms: the duty room sends a
technician, not a fire engine. Stuck needs a window where noise is expected — it belongs on
analogue process measurements (temperature, pressure, level), not on detectors that read a flat
zero in clean air.
"""

from __future__ import annotations

import numpy as np

from liaowang.config import Fleet, Sensor
from liaowang.domain import BAD_CODE, ReadingBatch
from liaowang.rulespec import OutOfRangeSpec, StuckSpec
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
        return self._signal(sensor, change, value, ts, message)


class OutOfRangeRule:
    """A value beyond the instrument range (plus a margin) → fault; back inside the range clears it."""

    kind = "out_of_range"

    def __init__(self, fleet: Fleet, spec: OutOfRangeSpec) -> None:
        self.id = spec.id
        self.spec = spec
        self.fleet = fleet
        sensors = members(fleet, spec.match, lambda s: fleet.instrument_range(s) is not None)
        ladders: list[Ladder | None] = [None] * len(fleet.sensor_ids)
        shared: dict[tuple[float, float], Ladder] = {}
        for i in sensors.tolist():
            low, high = fleet.instrument_range(fleet.sensors[fleet.sensor_ids[i]])  # type: ignore[misc]
            if (low, high) not in shared:
                margin = (high - low) * spec.margin_fraction
                shared[(low, high)] = Ladder(
                    highs=(Rung("fault", spec.tier, high + margin, high, True),),
                    lows=(Rung("fault", spec.tier, low - margin, low, False),))
            ladders[i] = shared[(low, high)]
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
            message = (f"{s.name} 数值回到量程内" if change.rung is None else
                       f"{s.name} 传感器故障: {v:g} {s.unit} 超出量程 {low:g}–{high:g} {s.unit}")
            out.append(Signal(rule_id=self.id, kind=self.kind, subject=s.id, site_id=s.site_id, family=s.family,
                              tier=change.rung.tier if change.rung else None, level="fault" if change.rung else None,
                              value=v, threshold=change.rung.set if change.rung else None, unit=s.unit,
                              ts=float(ts[change.row]), message=message))
        return out

    def subjects(self) -> list[str]:
        """Fleet sensor ids (state arrays are in fleet order)."""
        return list(self.fleet.sensor_ids)

    def state(self) -> dict[str, np.ndarray]:
        """Ladder state, fleet order."""
        return self.bank.state()

    def restore(self, arrays: dict[str, np.ndarray], rows: np.ndarray, into: np.ndarray) -> None:
        """Restore snapshot rows into sensors ``into``."""
        self.bank.restore(arrays, rows, into)

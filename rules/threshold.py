"""Multi-tier threshold rules with separate set and reset values (deadband), in event time.

A sensor's ladder has high rungs (H, HH or gas level1, level2) and low rungs (L, LL). Walking a
value sequence through a high ladder H set 40/reset 38, HH set 50/reset 48::

    value   35   41   51   49   47.5  39   37.9
    rung    -    H    HH   HH   H     H    -

It climbs as soon as a value reaches a rung's ``set``, and steps down only when the value falls
to that rung's ``reset`` (so a value chattering around 40 gives one alert, not many). ``bad``
quality readings never move the ladder; readings older than the sensor's last one are skipped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

from liaowang.config import Fleet, Sensor, Setpoint
from liaowang.domain import Reading, Tier
from rules.base import LEVEL_ZH, Signal


@dataclass(slots=True)
class _SensorState:
    high: int = 0       # rungs of the high ladder currently tripped
    low: int = 0        # rungs of the low ladder currently tripped
    last_ts: float = float("-inf")


@dataclass(frozen=True, slots=True)
class _Ladder:
    sensor: Sensor
    rule_id: str
    highs: tuple[Setpoint, ...]
    lows: tuple[Setpoint, ...]
    tiers: dict[str, Tier] = field(default_factory=dict)


def climb(index: int, rungs: Sequence[Setpoint], value: float, high: bool) -> int:
    """The number of tripped rungs after ``value``, starting from ``index`` tripped (hysteresis).

    >>> from liaowang.config import Setpoint
    >>> ladder = [Setpoint(level="H", direction="high", set=40, reset=38, source="demo"),
    ...           Setpoint(level="HH", direction="high", set=50, reset=48, source="demo")]
    >>> [climb(i, ladder, v, True) for i, v in [(0, 41), (1, 39), (1, 38), (2, 47)]]
    [1, 1, 0, 1]
    """
    while index < len(rungs) and (value >= rungs[index].set if high else value <= rungs[index].set):
        index += 1
    while index > 0 and (value <= rungs[index - 1].reset if high else value >= rungs[index - 1].reset):
        index -= 1
    return index


class ThresholdRule:
    """Threshold ladders for every sensor that has setpoints; rule id ``{family}.{quantity}.threshold``."""

    kind = "threshold"

    def __init__(self, fleet: Fleet) -> None:
        self._ladders: dict[str, _Ladder] = {}
        for sensor in fleet.sensors.values():
            rungs = fleet.setpoints_for(sensor)
            if not rungs:
                continue
            grade = fleet.sites[sensor.site_id].hazard_grade
            self._ladders[sensor.id] = _Ladder(
                sensor=sensor,
                rule_id=f"{sensor.family.value}.{sensor.quantity}.threshold",
                highs=tuple(r for r in rungs if r.direction == "high"),
                lows=tuple(r for r in rungs if r.direction == "low"),
                tiers={r.level: fleet.tiers.tier_for(r.level, grade) for r in rungs},
            )
        self._state: dict[str, _SensorState] = {}
        self.late_readings = 0

    def evaluate(self, readings: Sequence[Reading]) -> list[Signal]:
        """Move each sensor's ladder through its readings; emit a signal whenever its rung changes."""
        signals: list[Signal] = []
        for reading in readings:
            ladder = self._ladders.get(reading.sensor_id)
            if ladder is None or not reading.trips_thresholds:
                continue
            state = self._state.setdefault(reading.sensor_id, _SensorState())
            if reading.ts <= state.last_ts:
                self.late_readings += reading.ts < state.last_ts
                continue
            state.last_ts = reading.ts
            before = self._active(ladder, state)
            state.high = climb(state.high, ladder.highs, reading.value, True)
            state.low = climb(state.low, ladder.lows, reading.value, False)
            after = self._active(ladder, state)
            if after is not before:
                signals.append(self._signal(ladder, after, reading))
        return signals

    @staticmethod
    def _active(ladder: _Ladder, state: _SensorState) -> Setpoint | None:
        if state.high:
            return ladder.highs[state.high - 1]
        if state.low:
            return ladder.lows[state.low - 1]
        return None

    @staticmethod
    def _signal(ladder: _Ladder, rung: Setpoint | None, reading: Reading) -> Signal:
        sensor = ladder.sensor
        if rung is None:
            message = f"{sensor.name} {reading.value:g} {sensor.unit} 恢复正常"
        else:
            relation = "达到" if rung.direction == "high" else "低于"
            message = (f"{sensor.name} {reading.value:g} {sensor.unit} {relation}{LEVEL_ZH.get(rung.level, rung.level)}"
                       f"设定值 {rung.set:g} {sensor.unit}")
        return Signal(
            rule_id=ladder.rule_id, kind="threshold", subject=sensor.id, site_id=sensor.site_id, family=sensor.family,
            tier=ladder.tiers[rung.level] if rung else None, level=rung.level if rung else None,
            value=reading.value, threshold=rung.set if rung else None, unit=sensor.unit, ts=reading.ts,
            message=message,
        )

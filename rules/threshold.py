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

import numpy as np

from liaowang.config import Fleet, Sensor, Setpoint
from liaowang.domain import BAD_CODE, ReadingBatch, Tier
from rules.base import LEVEL_ZH, Signal


@dataclass(frozen=True, slots=True)
class _Ladder:
    """A setpoint ladder with its tiers; shared by every sensor with the same setpoints and grade."""

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
    """Threshold ladders for every sensor that has setpoints; rule id ``{family}.{quantity}.threshold``.

    Evaluation is vectorised: one numpy pass finds the readings that could move a ladder (a value
    at or beyond the first rung, or a sensor already tripped); only those sensors' readings are
    walked one by one, in event time. In normal operation that is almost none.
    """

    kind = "threshold"

    def __init__(self, fleet: Fleet) -> None:
        n = len(fleet.sensor_ids)
        self._fleet = fleet
        self._ladders: list[_Ladder | None] = [None] * n
        shared: dict[tuple[int, int | None], _Ladder] = {}
        self._has_ladder = np.zeros(n, dtype=bool)
        self._first_high = np.full(n, np.inf)
        self._first_low = np.full(n, -np.inf)
        for i, sensor_id in enumerate(fleet.sensor_ids):
            sensor = fleet.sensors[sensor_id]
            rungs = fleet.setpoints_for(sensor)
            if not rungs:
                continue
            grade = fleet.sites[sensor.site_id].hazard_grade
            key = (id(rungs), grade)  # profiles hand out the same list to all their sensors
            ladder = shared.get(key)
            if ladder is None:
                ladder = shared[key] = _Ladder(
                    highs=tuple(r for r in rungs if r.direction == "high"),
                    lows=tuple(r for r in rungs if r.direction == "low"),
                    tiers={r.level: fleet.tiers.tier_for(r.level, grade) for r in rungs},
                )
            self._ladders[i] = ladder
            self._has_ladder[i] = True
            if ladder.highs:
                self._first_high[i] = ladder.highs[0].set
            if ladder.lows:
                self._first_low[i] = ladder.lows[0].set
        self._high = np.zeros(n, dtype=np.int8)   # rungs of the high ladder tripped, per sensor
        self._low = np.zeros(n, dtype=np.int8)    # rungs of the low ladder tripped, per sensor
        self._last_ts = np.full(n, -np.inf)       # event time of the last reading applied
        self.late_readings = 0

    def evaluate(self, batch: ReadingBatch) -> list[Signal]:
        """Move the ladders through a time-ordered batch; emit a signal whenever a sensor's rung changes."""
        sensor, ts, value = batch.sensor, batch.ts, batch.value
        usable = self._has_ladder[sensor] & (batch.quality != BAD_CODE)
        late = ts <= self._last_ts[sensor]
        self.late_readings += int(np.count_nonzero(usable & (ts < self._last_ts[sensor])))
        usable &= ~late
        quiet = ((value < self._first_high[sensor]) & (value > self._first_low[sensor])
                 & (self._high[sensor] == 0) & (self._low[sensor] == 0))
        hot = np.unique(sensor[usable & ~quiet])
        in_hot = np.isin(sensor, hot) if hot.size else np.zeros(len(sensor), dtype=bool)
        calm = usable & ~in_hot
        np.maximum.at(self._last_ts, sensor[calm], ts[calm])
        signals: list[Signal] = []
        for row in np.flatnonzero(usable & in_hot).tolist():
            signal = self._step(int(sensor[row]), float(ts[row]), float(value[row]))
            if signal is not None:
                signals.append(signal)
        return signals

    def _step(self, i: int, ts: float, value: float) -> Signal | None:
        if ts <= self._last_ts[i]:  # a duplicate (or an earlier reading) inside the batch
            return None
        self._last_ts[i] = ts
        ladder = self._ladders[i]
        before = self._active(ladder, int(self._high[i]), int(self._low[i]))
        self._high[i] = climb(int(self._high[i]), ladder.highs, value, True)
        self._low[i] = climb(int(self._low[i]), ladder.lows, value, False)
        after = self._active(ladder, int(self._high[i]), int(self._low[i]))
        if after is before:
            return None
        return self._signal(self._fleet.sensors[self._fleet.sensor_ids[i]], ladder, after, value, ts)

    @staticmethod
    def _active(ladder: _Ladder, high: int, low: int) -> Setpoint | None:
        if high:
            return ladder.highs[high - 1]
        if low:
            return ladder.lows[low - 1]
        return None

    @staticmethod
    def _signal(sensor: Sensor, ladder: _Ladder, rung: Setpoint | None, value: float, ts: float) -> Signal:
        if rung is None:
            message = f"{sensor.name} {value:g} {sensor.unit} 恢复正常"
        else:
            relation = "达到" if rung.direction == "high" else "低于"
            message = (f"{sensor.name} {value:g} {sensor.unit} {relation}{LEVEL_ZH.get(rung.level, rung.level)}"
                       f"设定值 {rung.set:g} {sensor.unit}")
        return Signal(
            rule_id=f"{sensor.family.value}.{sensor.quantity}.threshold", kind="threshold", subject=sensor.id, site_id=sensor.site_id, family=sensor.family,
            tier=ladder.tiers[rung.level] if rung else None, level=rung.level if rung else None,
            value=value, threshold=rung.set if rung else None, unit=sensor.unit, ts=ts, message=message,
        )

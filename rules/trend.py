"""Trend rules on event-time windows: rate of change (报警 on speed) and predictive alarms (预测报警).

Both fit a least-squares line to each sensor's window (`rules.window`) at every reading:

* rate of change: the slope, per minute, through a tiered ladder (e.g. tank temperature rising
  ≥ 2 °C/min → yellow). Rise or fall.
* predictive: the time until the fitted line reaches a setpoint of the sensor's ladder (e.g. HH);
  when it falls under the horizon the rule warns — before the threshold is crossed. It stays while
  the trend carries on and resolves when the trend turns. A slope must be significant (slope /
  standard error ≥ ``min_t_stat``) so that noise on a flat level near the setpoint predicts nothing.

A window with fewer than ``min_points`` readings, or spanning less than ``min_coverage`` of its
length, gives no verdict: the rule holds its state (after start-up or a gap it says nothing
rather than something wrong).
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from foundation.config import Fleet, Sensor
from foundation.domain import BAD_CODE, ReadingBatch
from foundation.rulespec import PredictiveSpec, RateOfChangeSpec, StuckSpec, TierRung
from rules.base import LEVEL_ZH, Signal, members
from rules.ladder import Change, Ladder, LadderBank, Rung
from rules.window import Windows, WindowStats


class WindowedRule:
    """A ladder over a per-reading window statistic of the matched sensors (compact subject numbering)."""

    kind = "windowed"

    def __init__(self, fleet: Fleet, spec: RateOfChangeSpec | PredictiveSpec | StuckSpec,
                 ladders: list[Ladder | None] | None = None, sensors: np.ndarray | None = None) -> None:
        self.id = spec.id
        self.spec = spec
        self.fleet = fleet
        self.sensors = members(fleet, spec.match) if sensors is None else sensors
        self.compact = np.full(len(fleet.sensor_ids), -1, dtype=np.int64)
        self.compact[self.sensors] = np.arange(len(self.sensors))
        periods = [fleet.sensors[fleet.sensor_ids[i]].period_s for i in self.sensors.tolist()]
        # room for every reading a window can hold at the fastest matched period, with slack for jitter
        capacity = min(spec.capacity, math.ceil(spec.window_s / min(periods, default=1.0) * 1.5) + 3)
        self.windows = Windows(len(self.sensors), spec.window_s, max(capacity, spec.min_points))
        self.bank = LadderBank(ladders if ladders is not None else [self.ladder()] * len(self.sensors))

    def ladder(self) -> Ladder:
        """The ladder shared by every subject (rules whose ladder differs per sensor pass ``ladders``)."""
        raise NotImplementedError

    def metric(self, stats: WindowStats, subjects: np.ndarray, value: np.ndarray) -> np.ndarray:
        """The statistic the ladder walks, one per row; NaN for no verdict."""
        raise NotImplementedError

    def describe(self, sensor: Sensor, change: Change, value: float, metric: float, ts: float) -> Signal:
        """The signal for one shown-rung change."""
        raise NotImplementedError

    def evaluate(self, batch: ReadingBatch) -> list[Signal]:
        """Push the batch's good readings of matched sensors into the windows; step the ladder."""
        subject = self.compact[batch.sensor]
        rows = (subject >= 0) & (batch.quality != BAD_CODE) & np.isfinite(batch.value)
        subject, ts, value = subject[rows], batch.ts[rows], batch.value[rows]
        if not len(subject):
            return []
        stats = self.windows.push(subject, ts, value)
        metric = self.metric(stats, subject, value)
        enough = (stats.count >= self.spec.min_points) & (stats.span >= self.spec.min_coverage * self.spec.window_s)
        metric = np.where(enough, metric, np.nan)
        changes = self.bank.step(subject, ts, metric)
        return [self.describe(self.fleet.sensors[self.fleet.sensor_ids[self.sensors[c.subject]]], c,
                              float(value[c.row]), float(metric[c.row]), float(ts[c.row])) for c in changes]

    def _signal(self, sensor: Sensor, change: Change, value: float, ts: float, message: str,
                unit: str | None = None, **facts: object) -> Signal:
        rung = change.rung
        return Signal(rule_id=self.id, kind=self.kind, subject=sensor.id, site_id=sensor.site_id, family=sensor.family,
                      tier=rung.tier if rung else None, level=rung.level if rung else None, value=value,
                      threshold=rung.set if rung else None, unit=unit or sensor.unit, ts=ts, message=message,
                      facts={"sensor": sensor.id, "window_s": self.spec.window_s, **facts})

    def state(self) -> dict[str, np.ndarray]:
        """Windows and ladder state, in `subjects()` order."""
        return {**{f"w_{k}": v for k, v in self.windows.state().items()}, **self.bank.state()}

    def subjects(self) -> list[str]:
        """The sensor ids behind the compact subject numbers."""
        return [self.fleet.sensor_ids[i] for i in self.sensors.tolist()]

    def restore(self, arrays: dict[str, np.ndarray], rows: np.ndarray, into: np.ndarray) -> None:
        """Restore snapshot rows into subjects ``into``."""
        self.windows.restore({k[2:]: v for k, v in arrays.items() if k.startswith("w_")}, rows, into)
        self.bank.restore(arrays, rows, into)


def _rungs(spec_rungs: list[TierRung], level: str) -> tuple[Rung, ...]:
    return tuple(Rung(level=level, tier=r.tier, set=r.set, reset=r.reset, high=True) for r in spec_rungs)


class RateOfChangeRule(WindowedRule):
    """Least-squares slope per minute through a tiered ladder (rise, or fall as a positive magnitude)."""

    kind = "rate_of_change"

    def ladder(self) -> Ladder:
        spec: RateOfChangeSpec = self.spec  # type: ignore[assignment]
        return Ladder(highs=_rungs(spec.rungs, f"rate_{spec.direction}"))

    def metric(self, stats: WindowStats, subjects: np.ndarray, value: np.ndarray) -> np.ndarray:
        sign = 1.0 if self.spec.direction == "rise" else -1.0  # type: ignore[union-attr]
        return sign * stats.slope * 60.0

    def describe(self, sensor: Sensor, change: Change, value: float, metric: float, ts: float) -> Signal:
        verb = "上升" if self.spec.direction == "rise" else "下降"  # type: ignore[union-attr]
        unit = f"{sensor.unit}/min"
        if change.rung is None:
            message = f"{sensor.name} {verb}速率回落至 {metric:.3g} {unit}"
        else:
            message = (f"{sensor.name} {self.spec.window_s:g} 秒内{verb}速率 {metric:.3g} {unit}, "
                       f"达到设定值 {change.rung.set:g} {unit} (当前 {value:g} {sensor.unit})")
        return self._signal(sensor, change, round(metric, 6), ts, message, unit,
                            direction=self.spec.direction, current=value)  # type: ignore[union-attr]


class PredictiveRule(WindowedRule):
    """Predicted time until the sensor's ``target_level`` setpoint is reached, against a horizon."""

    kind = "predictive"

    def __init__(self, fleet: Fleet, spec: PredictiveSpec) -> None:
        def has_target(sensor: Sensor) -> bool:
            return any(s.level == spec.target_level for s in fleet.setpoints_for(sensor))

        sensors = members(fleet, spec.match, has_target)
        self._target = np.zeros(len(sensors))
        self._high = np.zeros(len(sensors), dtype=bool)
        for j, i in enumerate(sensors.tolist()):
            rung = next(s for s in fleet.setpoints_for(fleet.sensors[fleet.sensor_ids[i]]) if s.level == spec.target_level)
            self._target[j], self._high[j] = rung.set, rung.direction == "high"
        level = f"predicted_{spec.target_level}"
        ladder = Ladder(lows=(Rung(level=level, tier=spec.tier, set=spec.horizon_s,
                                   reset=spec.horizon_s * spec.reset_factor, high=False),))
        super().__init__(fleet, spec, [ladder] * len(sensors), sensors)

    def metric(self, stats: WindowStats, subjects: np.ndarray, value: np.ndarray) -> np.ndarray:
        spec: PredictiveSpec = self.spec  # type: ignore[assignment]
        target, high = self._target[subjects], self._high[subjects]
        toward = np.where(high, stats.slope, -stats.slope)
        with np.errstate(divide="ignore", invalid="ignore"):
            significant = (toward > 0) & (toward >= spec.min_t_stat * stats.slope_stderr)
            gap = np.where(high, target - stats.fitted, stats.fitted - target)
            eta = np.where(significant, np.maximum(gap, 0.0) / toward, np.inf)
        return np.where(np.isnan(stats.slope), np.nan, eta)

    def describe(self, sensor: Sensor, change: Change, value: float, metric: float, ts: float) -> Signal:
        spec: PredictiveSpec = self.spec  # type: ignore[assignment]
        target = float(self._target[self.compact[self.fleet.sensor_index[sensor.id]]])
        name = LEVEL_ZH.get(spec.target_level, spec.target_level)
        if change.rung is None:
            message = f"{sensor.name} 趋势已转, 不再预计达到{name} (当前 {value:g} {sensor.unit})"
        elif metric <= 0:
            message = f"{sensor.name} 已达到{name}设定值 {target:g} {sensor.unit}且仍在上升趋势 (当前 {value:g} {sensor.unit})"
        else:
            message = (f"{sensor.name} 按当前趋势约 {metric / 60:.1f} 分钟后达到{name}设定值 {target:g} {sensor.unit}"
                       f" (当前 {value:g} {sensor.unit})")
        variant = "clear" if change.rung is None else "reached" if metric <= 0 else "eta"
        eta = float(metric) if variant == "eta" else None
        return replace(self._signal(sensor, change, value, ts, message, target_level=spec.target_level,
                                    variant=variant, eta_s=eta), threshold=target)

"""Multi-tier threshold rules: the sensors' setpoint ladders, with deadband and delays, in event time.

A sensor's ladder has high rungs (H, HH or gas level1, level2) and low rungs (L, LL). Walking a
value sequence through a high ladder H set 40/reset 38, HH set 50/reset 48 (no delays)::

    value   35   41   51   49   47.5  39   37.9
    rung    -    H    HH   HH   H     H    -

It climbs as soon as a value reaches a rung's ``set``, and steps down only when the value falls
to that rung's ``reset`` (so a value chattering around 40 gives one alert, not many). With an
on-delay the value must stay at the rung that long before it trips; with an off-delay it must
stay back that long before it clears. ``bad`` quality readings never move the ladder.
"""

from __future__ import annotations

import numpy as np

from foundation.config import Fleet, Sensor
from foundation.domain import BAD_CODE, ReadingBatch
from foundation.rulespec import ThresholdSpec
from rules.base import LEVEL_ZH, Signal
from rules.ladder import Ladder, LadderBank, Rung


def threshold_rule_id(sensor: Sensor) -> str:
    """The rule id of a sensor's threshold alerts (CONTRACT §6): ``{family}.{quantity}.threshold``."""
    return f"{sensor.family.value}.{sensor.quantity}.threshold"


class ThresholdRule:
    """Threshold ladders for every sensor with setpoints that a threshold spec matches.

    All threshold specs share one rule (one vectorised pass per batch); a sensor takes the
    delays of the first spec that matches it.
    """

    kind = "threshold"

    def __init__(self, fleet: Fleet, specs: ThresholdSpec | list[ThresholdSpec] | None = None) -> None:
        if specs is None:
            specs = [ThresholdSpec(kind="threshold", id="threshold.all")]
        self.specs = [specs] if isinstance(specs, ThresholdSpec) else list(specs)
        self.id = "+".join(spec.id for spec in self.specs)
        self._fleet = fleet
        ladders: list[Ladder | None] = []
        shared: dict[tuple[int, int | None, str], Ladder] = {}
        for sensor_id in fleet.sensor_ids:
            sensor = fleet.sensors[sensor_id]
            site = fleet.sites[sensor.site_id]
            setpoints = fleet.setpoints_for(sensor)
            spec = next((s for s in self.specs if s.match.selects(sensor, site)), None) if setpoints else None
            if spec is None:
                ladders.append(None)
                continue
            # profiles hand out one list to all their sensors (of one quantity); tiers depend on grade and quantity
            key = (id(setpoints), site.hazard_grade, sensor.quantity, spec.id)
            if key not in shared:
                rungs = [Rung(level=s.level, tier=fleet.tiers.tier_for(s.level, site.hazard_grade, sensor.quantity),
                              set=s.set, reset=s.reset, high=s.direction == "high", on_delay=spec.on_delay_s.get(s.level, 0.0),
                              off_delay=spec.off_delay_s.get(s.level, 0.0)) for s in setpoints]
                shared[key] = Ladder(highs=tuple(r for r in rungs if r.high), lows=tuple(r for r in rungs if not r.high))
            ladders.append(shared[key])
        self.bank = LadderBank(ladders)

    def evaluate(self, batch: ReadingBatch) -> list[Signal]:
        """Step the ladders through a time-ordered batch; a signal whenever a sensor's shown rung changes."""
        good = batch.quality != BAD_CODE
        changes = self.bank.step(batch.sensor[good], batch.ts[good], batch.value[good])
        ts, value = batch.ts[good], batch.value[good]
        return [self.signal(self._fleet.sensors[self._fleet.sensor_ids[c.subject]], c.rung,
                            float(value[c.row]), float(ts[c.row])) for c in changes]

    def level_of(self, i: int) -> Rung | None:
        """The rung sensor ``i`` (fleet index) shows now."""
        return self.bank.shown_rung(i)

    @staticmethod
    def signal(sensor: Sensor, rung: Rung | None, value: float, ts: float) -> Signal:
        """The signal for a sensor entering ``rung`` (None: back to normal)."""
        if rung is None:
            message = f"{sensor.name} {value:g} {sensor.unit} 恢复正常"
        else:
            relation = "达到" if rung.high else "低于"
            message = (f"{sensor.name} {value:g} {sensor.unit} {relation}{LEVEL_ZH.get(rung.level, rung.level)}"
                       f"设定值 {rung.set:g} {sensor.unit}")
        return Signal(
            rule_id=threshold_rule_id(sensor), kind="threshold", subject=sensor.id, site_id=sensor.site_id,
            family=sensor.family, tier=rung.tier if rung else None, level=rung.level if rung else None,
            value=value, threshold=rung.set if rung else None, unit=sensor.unit, ts=ts, message=message,
            facts={"sensor": sensor.id, "direction": "high" if rung is None or rung.high else "low"})

    def state(self) -> dict[str, np.ndarray]:
        """Per-sensor ladder state, fleet order."""
        return self.bank.state()

    def restore(self, arrays: dict[str, np.ndarray], rows: np.ndarray, into: np.ndarray) -> None:
        """Restore snapshot rows into sensors ``into``."""
        self.bank.restore(arrays, rows, into)

    def subjects(self) -> list[str]:
        """Fleet sensor ids (state arrays are in fleet order)."""
        return list(self._fleet.sensor_ids)

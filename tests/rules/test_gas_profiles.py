"""Gas details: toxic alarms outrank combustible ones at the same level; the oxygen profile
(23.5 %VOL enrichment high, 19.5 %VOL deficiency low) on a demo O2 detector."""

from __future__ import annotations

import pytest

from foundation.config import TierMapping
from foundation.domain import Tier
from rules.threshold import ThresholdRule
from tests.rules.feeds import deliver, engine_for, series


@pytest.mark.parametrize("toxic", ["h2s", "nh3", "co", "cl2"])
@pytest.mark.parametrize("grade", [None, 1, 2, 3, 4])
def test_a_toxic_level_is_one_priority_above_the_combustible_one(demo_config, toxic, grade):
    tiers = demo_config.fleet.tiers
    for level in ("level1", "level2"):
        assert tiers.tier_for(level, grade, toxic) == tiers.tier_for(level, grade, "combustible_gas") + 1


def test_quantity_keys_in_levels_must_name_a_level():
    with pytest.raises(ValueError):
        TierMapping(levels={"level1": "yellow", "h2s.level9": "orange"})
    m = TierMapping(levels={"level1": "yellow", "h2s.level1": "orange"}, grade_overrides={1: {"h2s.level1": "red"}})
    assert [m.tier_for("level1", None, "h2s"), m.tier_for("level1", 1, "h2s"), m.tier_for("level1", 2, "co")] == [
        Tier.ORANGE, Tier.RED, Tier.YELLOW]


def test_toxic_threshold_alarm_carries_the_toxic_priority(demo_config):
    fleet = demo_config.fleet
    sensor = next(s for s in fleet.sensors.values() if s.quantity == "h2s")
    rung = next(r for r in fleet.setpoints_for(sensor) if r.level == "level1")
    readings = series(fleet, sensor.id, 0, 20, 2, lambda t: rung.set + 1 if t >= 10 else 0.5)
    raised = [s for s in deliver(engine_for(demo_config, "threshold.gas"), readings, fleet) if s.tier]
    assert raised and raised[0].level == "level1" and raised[0].tier is Tier.ORANGE


def test_oxygen_enrichment_and_deficiency(demo_config):
    fleet = demo_config.fleet
    o2 = fleet.sensors["LC-QLQY-OX-01"]
    assert (o2.family.value, o2.quantity, o2.unit, fleet.instrument_range(o2)) == ("gas", "o2", "%VOL", (0.0, 25.0))
    ladder = {(r.level, r.direction): r.set for r in fleet.setpoints_for(o2)}
    assert ladder == {("level1", "high"): 23.5, ("level2", "low"): 19.5}
    values = [20.9, 23.8, 23.8] + [20.9] * 8 + [19.0, 19.0] + [20.9] * 8  # the gas off-delay is 10 s
    readings = series(fleet, o2.id, 0, 2 * len(values), 2, lambda t: values[min(int(t // 2), len(values) - 1)])
    out = [(s.level, s.tier) for s in deliver(engine_for(demo_config, "threshold.gas"), readings, fleet)]
    assert ("level1", Tier.YELLOW) in out and ("level2", Tier.ORANGE) in out
    assert out[-1] == (None, None)
    assert ThresholdRule.signal(o2, None, 20.9, 0).rule_id == "gas.o2.threshold"

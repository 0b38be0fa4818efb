"""Threshold ladders: tiers, deadband, bad quality and event order."""

from __future__ import annotations

from foundation.domain import Quality, Reading, Tier
from rules import RuleEngine, ThresholdRule

T0 = 1_795_564_800.0


def feed(rule, sensor_id, site_id, values, quality=Quality.GOOD, start=T0, step=2.0, fleet=None):
    signals = []
    for i, v in enumerate(values):
        signals += rule.evaluate(rule.fleet.batch([Reading(sensor_id, site_id, start + i * step, v, quality)]))
    return signals


def one(rule, sensor_id, ts, value):
    return rule.evaluate(rule.fleet.batch([Reading(sensor_id, "", ts, value)]))


def test_gas_leak_rises_through_both_levels_then_clears(fleet):
    rule = ThresholdRule(fleet)
    rule.fleet = fleet
    signals = feed(rule, "LC-LUXI-GD-01", "LC-LUXI", [1, 15, 21, 30, 41, 60, 37, 35, 17])
    assert [(s.level, s.tier) for s in signals] == [
        ("level1", Tier.YELLOW), ("level2", Tier.ORANGE), ("level1", Tier.YELLOW), (None, None)]
    assert [s.ts - T0 for s in signals] == [4.0, 8.0, 14.0, 16.0]
    assert signals[0].rule_id == "gas.combustible_gas.threshold"
    assert signals[1].threshold == 40 and signals[1].value == 41


def test_a_value_flapping_around_a_setpoint_stays_one_episode(fleet):
    rule = ThresholdRule(fleet)
    rule.fleet = fleet
    flapping = [19.5, 20.1, 19.2, 20.3, 18.9, 20.0, 19.0, 18.5]  # level1 set 20, reset 18
    signals = feed(rule, "LC-LUXI-GD-01", "LC-LUXI", flapping)
    assert [s.level for s in signals] == ["level1"]


def test_bad_quality_never_trips_a_threshold(fleet):
    rule = ThresholdRule(fleet)
    rule.fleet = fleet
    assert feed(rule, "LC-LUXI-GD-01", "LC-LUXI", [80, 90], quality=Quality.BAD) == []


def test_older_and_duplicate_readings_do_not_move_the_ladder(fleet):
    rule = ThresholdRule(fleet)
    rule.fleet = fleet
    assert one(rule, "LC-LUXI-GD-01", T0 + 10, 25.0)[0].level == "level1"
    assert one(rule, "LC-LUXI-GD-01", T0 + 5, 1.0) == []
    assert one(rule, "LC-LUXI-GD-01", T0 + 10, 1.0) == []


def test_low_ladder_and_grade_override(fleet):
    rule = ThresholdRule(fleet)
    rule.fleet = fleet
    # LC-LUXI is a GB 18218 grade-1 source: L is medium there, LL high — never urgent on a storage tank.
    signals = feed(rule, "LC-LUXI-T101-LT", "LC-LUXI", [5.0, 1.1, 0.5, 0.9, 1.5])
    assert [(s.level, s.tier) for s in signals] == [("L", Tier.YELLOW), ("LL", Tier.ORANGE), ("L", Tier.YELLOW),
                                                    (None, None)]
    # LC-QLQY is grade 4: HH stays high.
    signals = feed(rule, "LC-QLQY-T101-TT", "LC-QLQY", [30, 55])
    assert [(s.level, s.tier) for s in signals] == [("HH", Tier.ORANGE)]


def test_grade_1_temperature_and_pressure_hh_are_urgent_but_level_hh_is_high(fleet):
    """tiers.yaml grade_overrides by quantity: temperature.HH and pressure.HH at grade 1 only."""
    rule = ThresholdRule(fleet)
    rule.fleet = fleet
    assert [(s.level, s.tier) for s in feed(rule, "LC-XFPVC-T101-TT", "LC-XFPVC", [30, 45, 55])] == [
        ("H", Tier.YELLOW), ("HH", Tier.RED)]
    assert [(s.level, s.tier) for s in feed(rule, "LC-XFPVC-T101-PT", "LC-XFPVC", [0.5, 0.95])] == [("HH", Tier.RED)]
    assert [(s.level, s.tier) for s in feed(rule, "LC-XFPVC-T101-LT", "LC-XFPVC", [6.0, 11.0])] == [("HH", Tier.ORANGE)]
    # 信发化工 is grade 2: temperature HH is high there; H medium (a major hazard source)
    assert [(s.level, s.tier) for s in feed(rule, "LC-XFHG-T101-TT", "LC-XFHG", [30, 45, 55])] == [
        ("H", Tier.YELLOW), ("HH", Tier.ORANGE)]
    # a chemical park's shared tank is no graded source: H low
    assert [(s.level, s.tier) for s in feed(rule, "LC-HGYQ-T101-TT", "LC-HGYQ", [30, 45])] == [("H", Tier.BLUE)]


def test_sensors_without_setpoints_raise_nothing(fleet):
    rule = ThresholdRule(fleet)
    rule.fleet = fleet
    assert feed(rule, "LC-DEHH-WS1-TA", "LC-DEHH", [45, 60, 80]) == []


def test_engine_orders_a_batch_by_event_time(fleet):
    engine = RuleEngine(fleet)
    batch = [Reading("LC-LUXI-GD-01", "LC-LUXI", T0 + 4, 45.0), Reading("LC-LUXI-GD-01", "LC-LUXI", T0 + 2, 25.0)]
    assert [s.level for s in engine.evaluate(fleet.batch(batch))] == ["level1", "level2"]

"""超量程: above the span of a gas detector is an alarm (high, its own rule id), below it a fault;
other families keep out-of-range as a fault (rules/fault.py, DOMAIN.md "Gas")."""

from __future__ import annotations

from foundation.domain import Family, Tier
from tests.rules.feeds import deliver, engine_for, series


def signals(demo_config, sensor, values):
    readings = series(demo_config.fleet, sensor, 0, 2 * len(values), 2, lambda t: values[min(int(t // 2), len(values) - 1)])
    return [s for s in deliver(engine_for(demo_config, "sensor.out_of_range"), readings, demo_config.fleet)]


def test_gas_above_its_span_is_a_high_over_range_alarm_not_a_fault(demo_config):
    out = signals(demo_config, "LC-LUXI-GD-02", [1.0, 1.0, 130.0, 130.0, 1.0, 1.0])
    raised = [s for s in out if s.tier is not None]
    assert [(s.rule_id, s.kind, s.level, s.tier) for s in raised] == [("gas.over_range", "over_range", "over_range", Tier.ORANGE)]
    assert raised[0].family is Family.GAS and "超量程" in raised[0].message
    assert out[-1].rule_id == "gas.over_range" and out[-1].tier is None  # back in range clears the same alert


def test_gas_below_its_span_is_still_a_fault(demo_config):
    out = signals(demo_config, "LC-LUXI-GD-02", [1.0, -20.0, -20.0, 1.0])
    assert [(s.rule_id, s.level, s.tier) for s in out] == [("sensor.out_of_range", "fault", Tier.YELLOW),
                                                          ("sensor.out_of_range", None, None)]


def test_gas_jumping_from_below_to_above_clears_the_fault_and_raises_the_alarm(demo_config):
    out = signals(demo_config, "LC-LUXI-GD-02", [-20.0, 130.0, 1.0])
    assert [(s.rule_id, s.tier) for s in out] == [("sensor.out_of_range", Tier.YELLOW), ("sensor.out_of_range", None),
                                                  ("gas.over_range", Tier.ORANGE), ("gas.over_range", None)]


def test_process_transmitter_out_of_range_stays_a_fault(demo_config):
    out = signals(demo_config, "LC-XFPVC-T101-PT", [0.4, 3.0, 3.0, 0.4])
    assert [(s.rule_id, s.kind, s.level, s.tier) for s in out if s.tier] == [
        ("sensor.out_of_range", "out_of_range", "fault", Tier.YELLOW)]

"""Interlock/SIS bypass and emergency shut-off (ESD) states as inputs (issue 13 §3): a bypassed
interlock is a high, latching alarm, and a bypass held past the configured time (4 h) raises an
urgent 联锁旁路超时 alert; an ESD trip is a high alarm."""

from __future__ import annotations

import pytest

from foundation.domain import Tier
from tests.rules.feeds import deliver, engine_for, series


@pytest.mark.parametrize("site", ["LC-LUXI", "LC-XFPVC"])
def test_grade_one_units_have_bypass_and_esd_inputs(demo_config, site):
    fleet = demo_config.fleet
    for suffix, quantity in (("ILB", "interlock_bypass"), ("ESD", "esd_state")):
        s = fleet.sensors[f"{site}-U1-{suffix}"]
        assert (s.quantity, s.unit, fleet.instrument_range(s)) == (quantity, "状态", (0.0, 1.0))
    assert fleet.sites[site].hazard_grade == 1


def run(demo_config, sensor, until, f):
    readings = series(demo_config.fleet, sensor, 0, until, 60, f)
    return [(s.rule_id, s.level, s.tier, s.ts) for s in deliver(engine_for(demo_config, "threshold.interlock"), readings,
                                                               demo_config.fleet)]


def test_a_short_bypass_is_a_high_alarm_that_clears(demo_config):
    out = run(demo_config, "LC-LUXI-U1-ILB", 3 * 3600, lambda t: 1.0 if 600 <= t < 3600 else 0.0)
    assert [(r, lvl, tier) for r, lvl, tier, _ in out] == [
        ("hazard.interlock_bypass.threshold", "bypassed", Tier.ORANGE), ("hazard.interlock_bypass.threshold", None, None)]


def test_an_esd_trip_is_a_high_alarm(demo_config):
    out = run(demo_config, "LC-XFPVC-U1-ESD", 3600, lambda t: 1.0 if 600 <= t < 1800 else 0.0)
    assert [(r, lvl, tier) for r, lvl, tier, _ in out] == [
        ("hazard.esd_state.threshold", "esd_tripped", Tier.ORANGE), ("hazard.esd_state.threshold", None, None)]


def test_a_bypass_held_past_four_hours_raises_an_urgent_alert(demo_config):
    readings = series(demo_config.fleet, "LC-LUXI-U1-ILB", 0, 6 * 3600, 60, lambda t: 1.0 if 600 <= t < 5 * 3600 else 0.0)
    out = deliver(engine_for(demo_config, "threshold.interlock", "hazard.interlock_bypass.long"), readings, demo_config.fleet)
    held = [(s.rule_id, s.kind, s.level, s.tier) for s in out if s.rule_id == "hazard.interlock_bypass.long"]
    assert held == [("hazard.interlock_bypass.long", "held", "bypass_long", Tier.RED),
                    ("hazard.interlock_bypass.long", "held", None, None)]
    raised = next(s for s in out if s.rule_id == "hazard.interlock_bypass.long" and s.tier)
    assert raised.ts - readings[0].ts == pytest.approx(600 + 14_400, abs=60)
    assert [s.level for s in out if s.rule_id == "hazard.interlock_bypass.threshold"] == ["bypassed", None]


def test_a_short_bypass_never_raises_the_long_one(demo_config):
    readings = series(demo_config.fleet, "LC-LUXI-U1-ILB", 0, 3 * 3600, 60, lambda t: 1.0 if 600 <= t < 3600 else 0.0)
    out = deliver(engine_for(demo_config, "hazard.interlock_bypass.long"), readings, demo_config.fleet)
    assert out == []

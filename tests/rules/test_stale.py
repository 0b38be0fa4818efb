"""The deadman rule on a fake clock: silence, bad-only readings and gateway Last Will make faults."""

from __future__ import annotations

import pytest

from alerting import AlertManager, AlertStore
from liaowang.domain import Quality, Reading, Tier
from rules import RuleEngine

T0 = 1_795_564_800.0
GAS = "LC-LUXI-GD-01"  # period 2 s: stale after 6 s at 3 periods


@pytest.fixture
def engine(fleet):
    return RuleEngine(fleet, stale_periods=3, stale_tier=Tier.YELLOW, start=T0)


def feed(engine, fleet, *readings):
    return engine.evaluate(fleet.batch(list(readings)))


def test_sensors_never_seen_go_stale_after_k_periods_from_start(engine, fleet):
    assert engine.check(T0 + 5.9) == []
    stale = {s.subject for s in engine.check(T0 + 6.1)}
    assert GAS in stale and "LC-LUXI-T101-LT" not in stale  # the tank sensor's period is 5 s: 15 s
    assert "LC-LUXI-T101-LT" in {s.subject for s in engine.check(T0 + 15.1)}
    assert engine.check(T0 + 16) == [], "each sensor is reported once"


def test_a_fresh_reading_clears_the_fault(engine, fleet):
    engine.check(T0 + 10)
    [cleared] = [s for s in feed(engine, fleet, Reading(GAS, "LC-LUXI", T0 + 11, 1.0)) if s.subject == GAS]
    assert cleared.tier is None and cleared.rule_id == "sensor.stale"


def test_only_bad_quality_for_k_periods_is_a_fault(engine, fleet):
    for t in range(0, 12, 2):
        feed(engine, fleet, Reading(GAS, "LC-LUXI", T0 + t, 1.0, Quality.BAD))
    [fault] = [s for s in engine.check(T0 + 12) if s.subject == GAS]
    assert fault.tier is Tier.YELLOW and fault.kind == "stale"


def test_a_gateway_last_will_makes_its_site_stale_at_once(engine, fleet):
    feed(engine, fleet, *[Reading(s.id, s.site_id, T0 + 1, 1.0) for s in fleet.sensors.values()])
    engine.gateway("LC-GTLC", online=False)
    stale = {s.subject for s in engine.check(T0 + 2)}
    assert stale == {s.id for s in fleet.sensors.values() if s.site_id == "LC-GTLC"}
    engine.gateway("LC-GTLC", online=True)
    assert {s.subject for s in engine.check(T0 + 3) if s.tier is None} == stale


def test_a_silent_sensor_keeps_its_process_alert_marked_as_source_lost(engine, fleet, tmp_path):
    alerts = AlertManager(AlertStore(tmp_path / "alerts.db"), fleet, lambda: T0)
    alerts.apply(feed(engine, fleet, Reading(GAS, "LC-LUXI", T0 + 1, 45.0)))
    changes = alerts.apply([s for s in engine.check(T0 + 8) if s.subject == GAS])
    events = {(c.alert.rule_id, c.event) for c in changes}
    assert events == {("sensor.stale", "raised"), ("gas.combustible_gas.threshold", "source_lost")}
    leak = next(c.alert for c in changes if c.alert.rule_id == "gas.combustible_gas.threshold")
    assert leak.state == "active" and leak.source_lost, "never silently resolved"
    changes = alerts.apply(feed(engine, fleet, Reading(GAS, "LC-LUXI", T0 + 9, 45.0)))
    assert {(c.alert.rule_id, c.event) for c in changes} == {
        ("sensor.stale", "resolved"), ("gas.combustible_gas.threshold", "source_restored")}

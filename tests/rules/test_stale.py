"""The deadman rule on a fake clock: silence, bad-only readings and gateway Last Will make faults."""

from __future__ import annotations

import pytest

from alerting import AlertManager, AlertStore
from foundation.domain import Quality, Reading, Tier
from rules import RuleEngine

T0 = 1_795_564_800.0
GAS = "LC-LUXI-GD-01"  # period 2 s: stale after 6 s at 3 periods


@pytest.fixture
def engine(fleet):
    return RuleEngine(fleet, stale_periods=3, stale_tier=Tier.YELLOW, start=T0)


def feed(engine, fleet, *readings):
    return engine.evaluate(fleet.batch(list(readings)))


def hear_all(engine, fleet, at: float) -> None:
    """Every sensor reports once at ``at`` (so each is judged on its own from then)."""
    feed(engine, fleet, *[Reading(s.id, s.site_id, at, 1.0) for s in fleet.sensors.values()])


def test_sensors_never_heard_give_one_not_reporting_alarm_per_site_not_one_each(engine, fleet):
    assert engine.check(T0 + 59) == [], "not before the first-report grace (60 s)"
    signals = engine.check(T0 + 61)
    assert {s.rule_id for s in signals} == {"site.not_reporting"}
    assert {s.subject for s in signals} == {f"site:{site}" for site in fleet.sites}
    luxi = next(s for s in signals if s.subject == "site:LC-LUXI")
    assert luxi.value == sum(1 for s in fleet.sensors.values() if s.site_id == "LC-LUXI") and "未上报" in luxi.message
    assert engine.check(T0 + 62) == [], "each site is reported once"
    hear_all(engine, fleet, T0 + 63)
    cleared = engine.check(T0 + 64)
    assert {(s.rule_id, s.tier) for s in cleared} == {("site.not_reporting", None)} and len(cleared) == len(fleet.sites)


def test_a_sensor_that_reported_goes_stale_on_its_own_after_k_periods(engine, fleet):
    hear_all(engine, fleet, T0)
    feed(engine, fleet, *[Reading(s.id, s.site_id, T0 + 5, 1.0) for s in fleet.sensors.values() if s.id != GAS])
    stale = engine.check(T0 + 6.1)
    assert [(s.rule_id, s.subject) for s in stale] == [("sensor.stale", GAS)]
    assert engine.check(T0 + 6.5) == [], "each sensor is reported once"


def test_a_fresh_reading_clears_the_fault(engine, fleet):
    hear_all(engine, fleet, T0)
    feed(engine, fleet, *[Reading(s.id, s.site_id, T0 + 9, 1.0) for s in fleet.sensors.values() if s.id != GAS])
    assert [s.subject for s in engine.check(T0 + 10)] == [GAS]
    [cleared] = [s for s in feed(engine, fleet, Reading(GAS, "LC-LUXI", T0 + 11, 1.0)) if s.subject == GAS]
    assert cleared.tier is None and cleared.rule_id == "sensor.stale"


def test_only_bad_quality_for_k_periods_is_a_fault(engine, fleet):
    hear_all(engine, fleet, T0)
    for t in range(2, 14, 2):
        feed(engine, fleet, Reading(GAS, "LC-LUXI", T0 + t, 1.0, Quality.BAD),
             *[Reading(s.id, s.site_id, T0 + t, 1.0) for s in fleet.sensors.values() if s.id != GAS])
    [fault] = [s for s in engine.check(T0 + 12) if s.subject == GAS]
    assert fault.tier is Tier.YELLOW and fault.kind == "stale"


def test_a_gateway_last_will_gives_one_communication_loss_alarm_for_its_site(engine, fleet):
    hear_all(engine, fleet, T0 + 1)
    engine.gateway("LC-GTLC", online=False)
    [lost] = engine.check(T0 + 2)
    hidden = [s for s in fleet.sensors.values() if s.site_id == "LC-GTLC"]
    assert (lost.rule_id, lost.subject, lost.tier) == ("site.comm_loss", "site:LC-GTLC", Tier.YELLOW)
    assert lost.value == len(hidden) and "网关离线" in lost.message and hidden[0].name in lost.message
    others = [s for s in fleet.sensors.values() if s.site_id != "LC-GTLC"]
    for t in range(5, 60, 5):
        feed(engine, fleet, *[Reading(s.id, s.site_id, T0 + t, 1.0) for s in others])
    assert engine.check(T0 + 58) == [], "its sensors raise nothing of their own while it lasts"
    engine.gateway("LC-GTLC", online=True, at=T0 + 58.5)
    [back] = engine.check(T0 + 59)
    assert (back.subject, back.tier) == ("site:LC-GTLC", None)
    assert engine.check(T0 + 59.5) == [], "back online: its sensors get a full limit to report again"


def test_a_whole_site_falling_silent_is_one_communication_loss_not_a_flood(engine, fleet):
    hear_all(engine, fleet, T0)
    others = [s for s in fleet.sensors.values() if s.site_id != "LC-LUXI"]
    for t in range(10, 130, 10):
        feed(engine, fleet, *[Reading(s.id, s.site_id, T0 + t, 1.0) for s in others])
    signals = engine.check(T0 + 125)
    assert [(s.rule_id, s.subject) for s in signals] == [("site.comm_loss", "site:LC-LUXI")]
    assert "全部传感器同时中断" in signals[0].message


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

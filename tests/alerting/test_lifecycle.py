"""The alert lifecycle: one alert per episode, escalation in place, people's actions, restarts."""

from __future__ import annotations

import pytest

from alerting import AlertManager, AlertStore, LifecycleError
from foundation.domain import Family, Tier
from rules.base import Signal

T0 = 1_795_564_800.0


def signal(tier, ts, subject="LC-LUXI-GD-01", value=30.0, level="level1", family=Family.GAS):
    rule = "gas.combustible_gas.threshold" if family is Family.GAS else "hazard.temperature.threshold"
    return Signal(rule, "threshold", subject, "LC-LUXI", family, tier, level if tier else None, value,
                  20.0 if tier else None, "%LEL", ts, "msg")


@pytest.fixture
def manager(alerts_db_target, fleet):
    """An alert manager on a fresh alerts.db: every test here runs on SQLite and on PostgreSQL."""
    clock = {"now": T0 + 1000}
    m = AlertManager(AlertStore(alerts_db_target), fleet, lambda: clock["now"])
    m.clock = clock
    return m


def test_one_alert_per_episode_escalated_and_deescalated_in_place(manager):
    changes = manager.apply([signal(Tier.YELLOW, T0), signal(Tier.ORANGE, T0 + 2), signal(Tier.YELLOW, T0 + 4)])
    assert [c.event for c in changes] == ["raised", "escalated", "deescalated"]
    assert len({c.alert.id for c in changes}) == 1
    alert = changes[-1].alert
    assert alert.tier is Tier.YELLOW and alert.raised_at == T0
    assert [(h.event, h.tier.colour) for h in alert.history] == [
        ("raised", "yellow"), ("escalated", "orange"), ("deescalated", "yellow")]


def test_clearing_resolves_and_a_new_trip_opens_a_new_episode(manager):
    """A medium process alarm does not latch: clearing ends the episode; the next trip is a new one."""
    first = manager.apply([signal(Tier.YELLOW, T0, family=Family.HAZARD), signal(None, T0 + 5, family=Family.HAZARD)])
    assert first[-1].event == "resolved" and first[-1].alert.state == "resolved"
    second = manager.apply([signal(Tier.YELLOW, T0 + 10, family=Family.HAZARD)])
    assert second[0].event == "raised" and second[0].alert.id != first[0].alert.id


def test_gas_latches_at_every_priority_and_a_repeat_reactivates_the_same_episode(manager):
    first = manager.apply([signal(Tier.YELLOW, T0), signal(None, T0 + 5)])
    assert [c.event for c in first] == ["raised", "returned"] and first[-1].alert.latched
    again = manager.apply([signal(Tier.YELLOW, T0 + 10)])
    assert [(c.event, c.alert.id) for c in again] == [("reactivated", first[0].alert.id)]
    assert again[0].alert.isa_state == "unacknowledged" and again[0].announce


def test_the_same_tier_again_changes_nothing(manager):
    assert len(manager.apply([signal(Tier.YELLOW, T0), signal(Tier.YELLOW, T0 + 2)])) == 1


def test_acknowledge_then_close_requires_resolution_and_a_note(manager):
    alert = manager.apply([signal(Tier.ORANGE, T0)])[0].alert
    with pytest.raises(LifecycleError, match="only resolved"):
        manager.close(alert.id, "duty", "done")
    acked = manager.acknowledge(alert.id, "op", "on my way")[-1].alert
    assert acked.state == "acknowledged" and acked.acknowledged_by == "op"
    with pytest.raises(LifecycleError, match="already acknowledged"):
        manager.acknowledge(alert.id, "op", None)
    manager.apply([signal(None, T0 + 60)])
    with pytest.raises(LifecycleError, match="note is required"):
        manager.close(alert.id, "duty", "  ")
    closed = manager.close(alert.id, "duty", "valve closed, area ventilated")[-1].alert
    assert closed.state == "closed" and closed.closed_by == "duty"
    assert [h.event for h in closed.history] == ["raised", "acknowledged", "resolved", "closed"]


def test_escalation_after_acknowledgement_needs_a_person_again(manager):
    alert = manager.apply([signal(Tier.YELLOW, T0)])[0].alert
    manager.acknowledge(alert.id, "op", None)
    escalated = manager.apply([signal(Tier.ORANGE, T0 + 5)])[0].alert
    assert escalated.state == "active"


def test_shelving_needs_a_reason_and_a_future_end(manager):
    alert = manager.apply([signal(Tier.YELLOW, T0)])[0].alert
    with pytest.raises(LifecycleError):
        manager.shelve(alert.id, "duty", manager.clock["now"] - 1, "maintenance")
    with pytest.raises(LifecycleError):
        manager.shelve(alert.id, "duty", manager.clock["now"] + 60, "")
    assert manager.shelve(alert.id, "duty", manager.clock["now"] + 60, "calibration")[-1].alert.state == "shelved"


def test_open_episodes_survive_a_restart(alerts_db_target, fleet):
    store_path = alerts_db_target
    first = AlertManager(AlertStore(store_path), fleet, lambda: T0)
    alert = first.apply([signal(Tier.YELLOW, T0)])[0].alert
    restarted = AlertManager(AlertStore(store_path), fleet, lambda: T0)
    changes = restarted.apply([signal(Tier.ORANGE, T0 + 3)])
    assert [(c.event, c.alert.id) for c in changes] == [("escalated", alert.id)]


def test_replaying_the_same_signals_gives_the_same_alert_ids(alerts_db_factory, fleet):
    a = AlertManager(AlertStore(alerts_db_factory("a.db")), fleet, lambda: T0).apply([signal(Tier.RED, T0)])
    b = AlertManager(AlertStore(alerts_db_factory("b.db")), fleet, lambda: T0).apply([signal(Tier.RED, T0)])
    assert a[0].alert.id == b[0].alert.id

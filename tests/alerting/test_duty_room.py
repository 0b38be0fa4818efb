"""Duty-room scenarios on a fake clock: latching, shelving, suppression, chattering, floods, escalation.

Signals are built by hand (the rules are tested in tests/rules); alerts, audit, suppressions and
the notification outbox live in a real SQLite file, and notifications go over HTTP to a real
local server (`Recorder`).
"""

from __future__ import annotations

import sqlite3

import pytest

from alerting import AlertChange, AlertManager, AlertStore
from alerting.audit import AuditLog
from alerting.db import AlertDB
from alerting.notify import Notifier
from alerting.suppress import Suppressions
from foundation.alertspec import AlertingSettings
from foundation.domain import Family, Tier, iso
from liaowang.scenario import FakeClock
from rules.base import Signal
from tests.alerting.servers import Recorder

T0 = 1_795_564_800.0


def settings_for(url: str, **overrides) -> AlertingSettings:
    hook = lambda name: [{"kind": "webhook", "url": f"{url}/{name}"}]  # noqa: E731
    return AlertingSettings.model_validate({
        "receivers": [
            {"id": "op", "name": "operator", "level": "plant_operator", "channels": hook("op")},
            {"id": "safety", "name": "safety officer", "level": "plant_safety_officer", "channels": hook("safety")},
            {"id": "county", "name": "county desk", "level": "county_duty_desk", "channels": hook("county")},
            {"id": "city", "name": "city desk", "level": "city_duty_desk", "channels": hook("city")},
            {"id": "city-log", "name": "fallback", "level": "city_duty_desk", "channels": [{"kind": "log"}]},
        ],
        "fallback_receiver": "city-log",
        "routes": [
            {"match": {"tiers": ["red"]}, "receivers": ["op", "county", "city"]},
            {"match": {}, "receivers": ["op"], "escalation": ["safety", "county", "city"]},
        ],
        **overrides,
    })


class Room:
    """Alert manager + notifier over one alerts.db, with a recorder for webhooks."""

    def __init__(self, tmp_path, fleet, recorder: Recorder | None = None, **overrides) -> None:
        self.clock = FakeClock(T0)
        self.recorder = recorder or Recorder()
        self.settings = settings_for(self.recorder.url, **overrides)
        db = AlertDB(tmp_path / "alerts.db")  # one connection, as the pipeline has it
        self.store = AlertStore(db)
        self.audit = AuditLog(db)
        self.suppressions = Suppressions(db, self.settings.maintenance)
        self.manager = AlertManager(self.store, fleet, self.clock, self.settings, self.audit, self.suppressions)
        self.notifier = Notifier(db, self.settings, fleet, self.manager, self.clock)

    def signal(self, subject: str, tier: Tier | None, at: float, rule: str = "gas.combustible_gas.threshold",
               site: str = "LC-LUXI", family: Family = Family.GAS) -> list:
        self.clock.now = T0 + at
        if family is not Family.GAS and rule.startswith("gas."):
            rule = "hazard.temperature.threshold"
        changes = self.manager.apply([Signal(rule, "threshold", subject, site, family, tier,
                                             "level1" if tier else None, 25.0 if tier else 1.0, 20.0, "%LEL",
                                             T0 + at, f"{subject} test")])
        self.notifier.on_changes(changes)
        return [c.event for c in changes]

    def tick(self, at: float) -> list:
        self.clock.now = T0 + at
        changes = self.manager.expire_shelves(self.clock.now) + self.notifier.tick(self.clock.now)
        self.notifier.on_changes(changes)
        return [c.event for c in changes]

    def deliver(self) -> list[tuple[str, str]]:
        """Send everything due; return (receiver path, event) of the posts this call made."""
        before = len(self.recorder.posts)
        self.notifier.deliver_due(self.clock.now)
        return [(path.strip("/"), body["event"]) for path, _, body in self.recorder.posts[before:]]

    def close(self) -> None:
        self.recorder.close()


@pytest.fixture
def room(tmp_path, fleet):
    r = Room(tmp_path, fleet)
    yield r
    r.close()


def test_orange_latches_until_acknowledged_while_yellow_resolves(room):
    assert room.signal("LC-LUXI-GD-01", Tier.ORANGE, 0) == ["raised"]
    assert room.signal("LC-LUXI-GD-01", None, 10) == ["returned"]
    [alert] = room.manager.open_alerts()
    assert alert.latched and alert.state == "active" and alert.cleared_at == T0 + 10
    room.clock.now = T0 + 20
    room.manager.acknowledge(alert.id, "值班员", None)
    stored = room.store.get(alert.id)
    assert stored.state == "resolved" and stored.resolved_at == T0 + 10 and not stored.latched
    assert [h.event for h in stored.history] == ["raised", "returned", "acknowledged", "resolved"]
    assert room.signal("LC-LUXI-GD-02", Tier.YELLOW, 30) == ["raised"]
    assert room.signal("LC-LUXI-GD-02", None, 40) == ["returned"]  # gas latches at every priority
    assert room.signal("LC-LUXI-T101-TT", Tier.YELLOW, 50, family=Family.HAZARD) == ["raised"]
    assert room.signal("LC-LUXI-T101-TT", None, 60, family=Family.HAZARD) == ["resolved"]  # medium process: no latch


def test_shelf_expires_and_the_alert_returns(room):
    room.signal("LC-LUXI-GD-01", Tier.YELLOW, 0)
    [alert] = room.manager.open_alerts()
    room.clock.now = T0 + 10
    room.manager.shelve(alert.id, "值班员", T0 + 110, "传感器标定中")
    assert room.tick(60) == []
    assert room.tick(110) == ["unshelved"]
    assert room.store.get(alert.id).state == "active"


def test_a_resolution_while_shelved_is_recorded_and_announced(room):
    room.signal("LC-LUXI-T101-TT", Tier.YELLOW, 0, family=Family.HAZARD)
    assert room.deliver() == [("op", "raised")]
    [alert] = room.manager.open_alerts()
    room.clock.now = T0 + 10
    room.manager.shelve(alert.id, "值班员", T0 + 3600, "检修")
    assert room.signal("LC-LUXI-T101-TT", None, 20, family=Family.HAZARD) == ["resolved"]
    assert room.store.get(alert.id).state == "resolved"
    assert room.deliver() == [("op", "resolved")]  # unlike Alertmanager#226, silenced still says resolved


def test_a_latching_alarm_that_clears_under_a_shelf_still_waits_for_a_person(room):
    room.signal("LC-LUXI-GD-01", Tier.ORANGE, 0)
    [alert] = room.manager.open_alerts()
    room.clock.now = T0 + 10
    room.manager.shelve(alert.id, "值班员", T0 + 100, "标定")
    assert room.signal("LC-LUXI-GD-01", None, 20) == ["returned"]
    assert room.store.get(alert.id).isa_state == "shelved" and room.store.get(alert.id).latched
    assert room.tick(100) == ["unshelved"]  # back, still returned-unacknowledged, announced again
    assert room.store.get(alert.id).isa_state == "returned_unacknowledged"


def test_chattering_is_notified_once_not_at_every_activation(room):
    events = []
    for k in range(4):  # four activations within 60 s
        events += room.signal("LC-LUXI-T101-TT", Tier.YELLOW, k * 12, family=Family.HAZARD)
        events += room.signal("LC-LUXI-T101-TT", None, k * 12 + 6, family=Family.HAZARD)
    assert events.count("raised") == 4 and events.count("chattering") == 2  # the 3rd and 4th are chattering
    posts = room.deliver()
    assert posts == [("op", "raised"), ("op", "resolved"), ("op", "raised"), ("op", "resolved"), ("op", "chattering")]
    alerts = room.store.query()
    assert sum(a.chattering for a in alerts) == 2


def test_a_flood_groups_by_site_but_never_delays_red(room, fleet):
    for k in range(10):
        room.signal(f"S{k:02d}", Tier.YELLOW, k * 10)
    assert len(room.deliver()) == 10  # ten in ten minutes is not yet a flood
    assert room.signal("S10", Tier.YELLOW, 110) == ["raised"]  # the 11th: a flood at 东昌府区's desk
    assert room.signal("S11", Tier.RED, 120) == ["raised"]
    assert room.signal("S12", Tier.YELLOW, 130) == ["raised"]
    assert sorted(room.deliver()) == [("city", "raised"), ("county", "raised"), ("op", "raised")]  # red at once
    first = [a for a in room.store.query(limit=100) if a.first_out]
    assert [a.subject for a in first] == ["S00"]
    room.tick(110 + 61)  # the digest of the grouped yellow alerts goes once per site
    assert room.deliver() == [("op", "digest")]
    body = room.recorder.posts[-1][2]
    assert len(body["alert"]["alerts"]) == 2 and "报警汇总" in body["title"]


def test_escalation_after_the_deadline_and_not_after_an_acknowledgement(room):
    room.signal("LC-LUXI-GD-01", Tier.YELLOW, 0)  # yellow: 30 min to acknowledge
    room.signal("LC-LUXI-GD-02", Tier.YELLOW, 0)
    room.deliver()
    [a1, a2] = sorted(room.manager.open_alerts(), key=lambda a: a.subject)
    room.clock.now = T0 + 100
    room.manager.acknowledge(a2.id, "值班员", None)
    assert room.tick(1799) == []
    assert room.tick(1800) == ["notification_escalated"]
    assert room.deliver() == [("safety", "notification_escalated")]
    assert room.tick(1801) == []  # once per step
    assert room.tick(3600) == ["notification_escalated"]
    assert ("county", "notification_escalated") in room.deliver()
    assert [h.event for h in room.store.get(a2.id).history] == ["raised", "acknowledged"]
    assert [h.event for h in room.store.get(a1.id).history].count("notification_escalated") == 2


def test_suppressed_alerts_are_recorded_and_shown_not_sent(tmp_path, fleet):
    window = {"site_id": "LC-LUXI", "start": iso(T0), "end": iso(T0 + 3600), "reason": "年度检修", "include_gas": True}
    room = Room(tmp_path, fleet, maintenance=[window])
    try:
        assert room.signal("LC-LUXI-GD-01", Tier.ORANGE, 10) == ["raised"]
        [alert] = room.manager.open_alerts()
        assert alert.suppressed == "年度检修"
        assert room.deliver() == []
        assert [d["outcome"] for d in room.notifier.deliveries(alert.id)] == ["suppressed"]
        assert room.signal("LC-LUXI-GD-03", Tier.YELLOW, 3700) == ["raised"]  # after the window
        assert room.manager.open_alerts()[-1].suppressed is None
    finally:
        room.close()


def test_a_site_wide_window_does_not_cover_gas_detectors_unless_it_says_so(tmp_path, fleet):
    window = {"site_id": "LC-LUXI", "start": iso(T0), "end": iso(T0 + 3600), "reason": "年度检修"}
    room = Room(tmp_path, fleet, maintenance=[window])
    try:
        room.signal("LC-LUXI-GD-01", Tier.ORANGE, 10)
        room.signal("LC-LUXI-T101-TT", Tier.ORANGE, 10, family=Family.HAZARD)
        by_subject = {a.subject: a for a in room.manager.open_alerts()}
        assert by_subject["LC-LUXI-GD-01"].suppressed is None  # a leak during maintenance is still a leak
        assert by_subject["LC-LUXI-T101-TT"].suppressed == "年度检修"
        assert room.deliver() == [("op", "raised")]
    finally:
        room.close()


def test_out_of_service_sensors_raise_nothing(tmp_path, fleet):
    room = Room(tmp_path, fleet, out_of_service=["LC-LUXI-GD-01"])
    try:
        assert room.signal("LC-LUXI-GD-01", Tier.RED, 0) == []
        assert room.manager.out_of_service_signals == 1
    finally:
        room.close()


def test_the_audit_trail_is_append_only_and_exports(room):
    room.signal("LC-LUXI-GD-01", Tier.YELLOW, 0)
    [alert] = room.manager.open_alerts()
    room.clock.now = T0 + 5
    room.manager.acknowledge(alert.id, "张三", "已通知巡检")
    room.signal("LC-LUXI-GD-01", None, 10)
    room.clock.now = T0 + 20
    room.manager.close(alert.id, "李四", "阀门已关闭")
    records = room.audit.records()
    assert [(r["actor"], r["action"]) for r in records] == [
        ("system", "raised"), ("张三", "acknowledged"), ("system", "resolved"), ("李四", "closed")]
    csv = room.audit.export("csv")
    assert csv.splitlines()[0] == "seq,at,actor,action,alert_id,subject,detail" and "阀门已关闭" in csv
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        room.audit._conn.execute("UPDATE audit SET actor = 'x'")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        room.audit._conn.execute("DELETE FROM audit")


def test_a_crash_loses_no_alert_sends_nothing_twice_and_keeps_escalation_timers(tmp_path, fleet):
    first = Room(tmp_path, fleet)
    first.signal("LC-LUXI-GD-01", Tier.YELLOW, 0)   # will escalate, unacknowledged
    first.signal("LC-LUXI-GD-02", Tier.YELLOW, 0)   # acknowledged
    first.signal("LC-LUXI-GD-03", Tier.ORANGE, 0)   # shelved
    by_subject = {a.subject: a for a in first.manager.open_alerts()}
    first.clock.now = T0 + 60
    first.notifier.on_changes(first.manager.acknowledge(by_subject["LC-LUXI-GD-02"].id, "值班员", None))
    first.notifier.on_changes(first.manager.shelve(by_subject["LC-LUXI-GD-03"].id, "值班员", T0 + 7200, "检修"))
    assert len(first.deliver()) == 4  # three raised, one acknowledged (told to those who got the alarm)
    assert first.tick(1800) == ["notification_escalated"]  # recorded, then the process dies before sending
    before = {a.id: (a.state, a.notify_level) for a in first.manager.open_alerts()}
    # kill -9: nothing is closed or flushed; every write above was already committed to alerts.db
    second = Room(tmp_path, fleet, recorder=first.recorder)
    second.clock.now = T0 + 1800
    assert {a.id: (a.state, a.notify_level) for a in second.manager.open_alerts()} == before
    for alert in second.manager.open_alerts():  # re-enqueueing everything that happened stores nothing new
        second.notifier.on_changes([AlertChange(alert, h.event) for h in alert.history])
    assert second.deliver() == [("safety", "notification_escalated")]  # the pending one, once
    assert second.tick(1801) == [] and second.deliver() == []
    assert second.tick(3600) == ["notification_escalated"]  # the timer still runs from when it was raised
    assert sorted(second.deliver()) == [("county", "notification_escalated"), ("county", "repeat"), ("op", "repeat"),
                                        ("safety", "repeat")]  # an hour active: yellow's reminder to all told
    ids = [body["id"] for _, _, body in second.recorder.posts]
    assert len(ids) == len(set(ids)) == 9  # every document once: 3 raised, 1 acknowledged, 2 escalations, 3 repeats
    second.close()

"""Forest fire incidents (火情): opened from a fire-detection alarm, 核查 → 报告 → 扑救 → 扑灭, graded by area."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from alerting.audit import AuditLog
from alerting.db import AlertDB
from earlywarning.incidents import (FireGrade, IncidentDesk, IncidentNotFound, IncidentState, StepNotAllowed, Verdict,
                                    grade_for)
from liaowang.scenario import FakeClock

T0 = 1_795_564_800.0


def alarm(rule_id="forest.fire_detected", station="LC-DEHH-WS1", alarm_id="A1", tier="red"):
    return SimpleNamespace(id=alarm_id, rule_id=rule_id, subject=station, site_id="LC-DEHH", raised_at=T0,
                           message=f"{station} 发现火情", tier=tier)


@pytest.fixture
def desk(alerts_db_target):
    """The incident desk on a fresh alerts.db: SQLite, then PostgreSQL."""
    db = AlertDB(alerts_db_target)
    return IncidentDesk(db, AuditLog(db), FakeClock(T0 + 60))


def test_a_real_fire_walks_check_report_fight_extinguish_and_is_graded_by_area(desk):
    incident = desk.open_from_alarm(alarm())
    assert incident.state is IncidentState.REPORTED and incident.alarm_id == "A1"
    desk.check(incident.id, "护林员 张三", Verdict.REAL_FIRE, "瞭望塔视频确认", at=T0 + 300)
    desk.report(incident.id, "森林防火办 李四", at=T0 + 400)
    desk.fight(incident.id, "森林防火办 李四", at=T0 + 600)
    done = desk.extinguish(incident.id, "森林防火办 李四", burned_ha=3.5, at=T0 + 7200)
    assert (done.state, done.grade, done.burned_ha) == (IncidentState.EXTINGUISHED, FireGrade.LARGER, 3.5)
    assert [(s.step, s.by, s.at) for s in desk.get(incident.id).history] == [
        ("reported", "system", T0), ("check", "护林员 张三", T0 + 300), ("report", "森林防火办 李四", T0 + 400),
        ("fight", "森林防火办 李四", T0 + 600), ("extinguish", "森林防火办 李四", T0 + 7200)]
    actions = [(r["actor"], r["action"]) for r in desk.audit.records()]
    assert actions == [("system", "incident_reported"), ("护林员 张三", "incident_check"),
                       ("森林防火办 李四", "incident_report"), ("森林防火办 李四", "incident_fight"),
                       ("森林防火办 李四", "incident_extinguish")]


@pytest.mark.parametrize("verdict", [Verdict.AGRICULTURAL_BURNING, Verdict.FALSE_ALARM])
def test_agricultural_burning_or_a_false_alarm_dismisses_the_incident(desk, verdict):
    incident = desk.open_from_alarm(alarm())
    closed = desk.check(incident.id, "护林员 张三", verdict)
    assert closed.state is IncidentState.DISMISSED and closed.verdict is verdict and closed.grade is None
    assert closed.history[-1].at == T0 + 60  # a person's step is stamped by the clock
    with pytest.raises(StepNotAllowed):
        desk.report(incident.id, "x")


def test_steps_out_of_order_are_refused_and_leave_no_trace(desk):
    incident = desk.open_from_alarm(alarm())
    with pytest.raises(StepNotAllowed, match="needs checked"):
        desk.report(incident.id, "x")
    with pytest.raises(StepNotAllowed):
        desk.extinguish(incident.id, "x", burned_ha=1)
    assert desk.get(incident.id).state is IncidentState.REPORTED and len(desk.audit.records()) == 1
    with pytest.raises(IncidentNotFound):
        desk.get("nope")


def test_only_fire_detection_alarms_open_one_incident_per_station(desk):
    assert desk.open_from_alarm(alarm(rule_id="forest.danger")) is None
    assert desk.open_from_alarm(alarm(tier=None)) is None
    first = desk.open_from_alarm(alarm())
    again = desk.open_from_alarm(alarm(alarm_id="A2"))
    other = desk.open_from_alarm(alarm(station="LC-DEHH-WS2", alarm_id="A3"))
    assert again.id == first.id and other.id != first.id
    assert {i.station for i in desk.query(states=[IncidentState.REPORTED])} == {"LC-DEHH-WS1", "LC-DEHH-WS2"}
    assert desk.query(sites=["LC-GTLC"]) == []


def test_a_closed_stations_next_fire_is_a_new_incident(desk):
    first = desk.open_from_alarm(alarm())
    desk.check(first.id, "x", "false_alarm")
    assert desk.open_from_alarm(alarm(alarm_id="A2")).id != first.id


@pytest.mark.parametrize(("ha", "grade"), [(0, "一般"), (0.99, "一般"), (1, "较大"), (99.9, "较大"), (100, "重大"),
                                           (999, "重大"), (1000, "特别重大"), (5000, "特别重大")])
def test_grades_by_burned_area_follow_art_40(ha, grade):
    """一般 < 1 ha, 较大 1–100 ha, 重大 100–1000 ha, 特别重大 ≥ 1000 ha (an edge takes the higher grade)."""
    assert grade_for(ha).value == grade


def test_extinguishing_needs_an_area(desk):
    incident = desk.open_from_alarm(alarm())
    desk.check(incident.id, "x", "real_fire")
    desk.report(incident.id, "x")
    desk.fight(incident.id, "x")
    with pytest.raises(StepNotAllowed, match="burned area"):
        desk.extinguish(incident.id, "x", burned_ha=-1)
    assert desk.get(incident.id).state is IncidentState.FIGHTING

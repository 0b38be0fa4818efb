"""The monitor through the warning desk: issue 13's check proposes an orange enterprise warning with its evidence;
proposing is idempotent; grade changes are stored and audited; nothing is re-proposed after a rejection or a restart."""

from __future__ import annotations

import pytest

from earlywarning import Origin, RiskGrade, RiskMonitor, SubjectKind, WarningEvent, WarningLevel, WarningState
from foundation.riskspec import RiskSettings
from tests.risk.support import SITE, T0, TANKS, Room, alarm


@pytest.fixture
def room(fleet, alerts_db_target) -> Room:
    """The monitor on a fresh alerts.db: these tests run on SQLite and on PostgreSQL."""
    return Room(fleet, alerts_db_target)


def check_inputs(room: Room) -> None:
    """Issue 13's check: repeated unacknowledged alarms at the grade-1 tank farm during registered 动火 there."""
    room.states.register(SITE, "hot_work", T0, T0 + 8 * 3600, "xfpvc-operator", T0, unit_id=TANKS, note="T101 管线动火",
                         permit="DH-20261125-01")
    room.alarms[:] = [alarm("A1", "LC-XFPVC-T101-PT", "high", T0 + 10), alarm("A2", "LC-XFPVC-T101-PT", "high", T0 + 200)]


def test_issue_13_check_through_the_desk_proposes_an_orange_enterprise_warning(room: Room) -> None:
    check_inputs(room)
    room.later(60)
    assert room.monitor.tick().proposals == ()  # 50 + 16 (open) + 15 (动火) = 66: 一般, nothing proposed yet
    room.later(800)                             # both alarms now unacknowledged past 600 s: 81, 较大
    tick = room.monitor.tick()
    [change] = tick.proposals
    w = change.warning
    assert change.created and change.event is WarningEvent.PROPOSED
    assert (w.subject.kind, w.subject.id, w.category) == (SubjectKind.ENTERPRISE, SITE, "事故灾难/危险化学品")
    assert (w.level, w.level.colour, w.state, w.origin, w.proposed_by) == (
        WarningLevel.II, "orange", WarningState.PROPOSED, Origin.RISK_GRADE, "risk:grading")
    assert w.evidence.alarm_ids == ("A1", "A2") and w.evidence.risk_grade is RiskGrade.SIGNIFICANT
    assert "较大风险" in w.history[0].reason and "动火作业 1 项" in w.history[0].reason
    assert room.desk.query(subject=f"enterprise:{SITE}") == [w]
    # the desk kept it: a duty officer can verify and issue it as any other proposal
    room.desk.verify(w.id, "值班员", "视频核实: 动火作业期间储罐区压力报警未确认")
    assert room.desk.issue(w.id, "值班员").warning.state is WarningState.ISSUED


def test_proposing_is_idempotent_and_new_evidence_updates_the_one_open_warning(room: Room) -> None:
    check_inputs(room)
    room.later(900)
    first = room.monitor.tick().proposals[0].warning
    assert room.monitor.tick().proposals == ()           # nothing new: nothing proposed
    room.alarms.append(alarm("A3", "LC-XFPVC-T102-TT", "medium", room.clock.now))
    room.later(5)
    [update] = room.monitor.tick().proposals
    assert update.event is WarningEvent.UPDATED and update.warning.id == first.id
    assert update.warning.evidence.alarm_ids == ("A1", "A2", "A3")
    room.alarms.append(alarm("A4", "LC-XFPVC-T103-PT", "urgent", room.clock.now))
    room.later(400)                                      # 重大 now: the proposal (not yet verified) is raised to Ⅰ
    [raised] = room.monitor.tick().proposals
    assert raised.warning.id == first.id and raised.warning.level is WarningLevel.I
    assert len(room.desk.query(subject=f"enterprise:{SITE}")) == 1


def test_grade_changes_are_stored_and_audited_and_a_falling_grade_proposes_nothing(room: Room) -> None:
    first = room.monitor.tick()
    assert {c.key for c in first.changes} >= {f"enterprise:{SITE}", f"hazard_unit:{TANKS}"}  # first grading
    assert room.monitor.tick().changes == ()
    check_inputs(room)
    room.later(900)
    tick = room.monitor.tick()
    moved = {c.key: (c.before, c.after) for c in tick.changes}
    assert moved[f"enterprise:{SITE}"] == (RiskGrade.GENERAL, RiskGrade.SIGNIFICANT)
    assert moved[f"hazard_unit:{TANKS}"] == (RiskGrade.LOW, RiskGrade.GENERAL)
    assert room.monitor.since(f"enterprise:{SITE}") == room.clock.now
    records = [r for r in room.audit.records() if r["action"] == "risk_grade_changed"
               and r["detail"]["subject_key"] == f"enterprise:{SITE}"]
    assert [(r["detail"]["before"], r["detail"]["after"]) for r in records] == [(None, "general"),
                                                                              ("general", "significant")]
    assert records[-1]["actor"] == "system" and records[-1]["detail"]["alarm_ids"] == ["A1", "A2"]
    room.alarms.clear()
    room.later(10)
    tick = room.monitor.tick()
    assert {c.key: c.after for c in tick.changes}[f"enterprise:{SITE}"] is RiskGrade.GENERAL  # 50 + 15 (动火)
    assert tick.proposals == ()
    assert room.desk.query(subject=f"enterprise:{SITE}")[0].state is WarningState.PROPOSED  # lifting is a person's


def test_a_rejected_proposal_is_not_proposed_again_even_after_a_restart(fleet, alerts_db_target) -> None:
    path = alerts_db_target
    room = Room(fleet, path)
    check_inputs(room)
    room.later(900)
    w = room.monitor.tick().proposals[0].warning
    room.desk.reject(w.id, "值班员", "动火作业已停止, 压力报警为仪表故障")
    room.later(5)
    assert room.monitor.tick().proposals == ()
    again = Room(fleet, path)          # a restart: the board is read back from alerts.db
    again.clock.now = room.clock.now + 5
    again.alarms[:] = room.alarms
    assert again.monitor.tick().proposals == () and again.monitor.board.grade(f"enterprise:{SITE}") is \
        RiskGrade.SIGNIFICANT
    again.alarms.append(alarm("A9", "LC-XFPVC-T103-TT", "high", again.clock.now))  # new evidence, same grade:
    again.later(5)                                                                   # held by the rejection
    [held] = again.monitor.tick().proposals
    assert not held.created and held.event is None and held.warning.id == w.id
    assert [r["actor"] for r in again.audit.records() if r["action"] == "warning_proposal_held"] == ["risk:grading"]
    again.alarms.append(alarm("A10", "LC-XFPVC-T102-TT", "high", again.clock.now))
    again.later(7200)  # past warnings.yaml verification.rejection_hold_s: new evidence proposes a new warning
    [fresh] = again.monitor.tick().proposals
    assert fresh.created and fresh.warning.id != w.id and fresh.warning.evidence.alarm_ids[-1] == "A10"


def test_a_grade_that_falls_below_the_threshold_and_rises_again_proposes_again(room: Room) -> None:
    check_inputs(room)
    room.later(900)
    w = room.monitor.tick().proposals[0].warning
    room.desk.reject(w.id, "值班员", "误报")
    kept = list(room.alarms)
    room.alarms.clear()
    room.later(5)
    room.monitor.tick()
    room.alarms[:] = kept
    room.later(5)
    [held] = room.monitor.tick().proposals  # within the rejection hold, at the rejected level: not asked again
    assert not held.created and held.warning.id == w.id
    room.alarms.clear()
    room.later(5)
    room.monitor.tick()
    room.alarms[:] = kept
    room.later(7200)
    [again] = room.monitor.tick().proposals
    assert again.created and again.warning.id != w.id


def test_without_a_desk_it_grades_and_proposes_nothing_and_a_mismatched_category_is_refused(fleet) -> None:
    room = Room(fleet, desk=False)
    check_inputs(room)
    room.later(900)
    tick = room.monitor.tick()
    assert tick.proposals == () and tick.risks[SITE].enterprise.grade is RiskGrade.SIGNIFICANT
    odd = RiskSettings.model_validate({"proposals": {"category": "自然灾害/森林火险", "enterprise": "low",
                                                     "source": "test", "certainty": "U"}})  # that category has no Ⅳ
    other = Room(fleet)
    with pytest.raises(ValueError, match="warnings.yaml"):
        RiskMonitor(other.db, odd, fleet, other.clock, desk=other.desk)


def test_unit_warnings_when_configured(fleet) -> None:
    settings = RiskSettings.model_validate({"proposals": {"enterprise": None, "hazard_unit": "general",
                                                          "source": "test", "certainty": "U"}})
    room = Room(fleet, settings=settings)
    check_inputs(room)
    room.later(900)
    proposed = {c.warning.subject.key: c.warning for c in room.monitor.tick().proposals}
    tanks = proposed[f"hazard_unit:{TANKS}"]  # the tank farm at 71: 一般 → Ⅲ
    assert (tanks.site_id, tanks.level, tanks.subject.name) == (SITE, WarningLevel.III, "信发聚氯乙烯 氯乙烯储罐区")
    assert tanks.evidence.alarm_ids == ("A1", "A2") and f"enterprise:{SITE}" not in proposed
    assert set(proposed) == {f"hazard_unit:{TANKS}", "hazard_unit:LC-XFPVC-U2", "hazard_unit:LC-LUXI-U1"}  # at rest: 一般

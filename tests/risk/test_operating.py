"""The operating-state registry and daily commitments: validated, one audited transaction per change; special work
raises risk and never touches an alarm."""

from __future__ import annotations

import pytest

from alerting import AlertManager, AlertStore
from earlywarning import (CommitmentDraft, Devices, EntryConflict, EntryNotFound, InvalidEntry, OperationDraft,
                          RiskGrade)
from earlywarning.operating import day_bounds
from foundation.domain import Family, Tier
from foundation.riskspec import OperatingKind
from rules.base import Signal
from tests.risk.support import POLY, SITE, T0, TANKS, Room, alarm


@pytest.fixture
def room(fleet, alerts_db_target) -> Room:
    """Operating states and commitments on a fresh alerts.db: SQLite, then PostgreSQL."""
    return Room(fleet, alerts_db_target)


def draft(**changes) -> CommitmentDraft:
    data = dict(site_id=SITE, date="2026-11-25", committed_by="演示·信发聚氯乙烯主要负责人",
                statement="今天我公司已进行安全风险研判，各项安全风险防控措施已落实到位", risks_controlled=True,
                devices=Devices(running=2, stopped=0, maintenance=1),
                operations=(OperationDraft(OperatingKind.HOT_WORK, TANKS, T0, T0 + 4 * 3600, "T101 管线动火", "DH-01"),
                            OperationDraft(OperatingKind.MAINTENANCE, POLY)))
    return CommitmentDraft(**{**data, **changes})


def test_register_and_withdraw_are_each_one_audited_step(room: Room) -> None:
    e = room.states.register(SITE, "动火", T0, T0 + 3600, "xfpvc-operator", T0 - 60, unit_id=TANKS, note="管线动火",
                             permit="DH-01")
    assert (e.kind, e.unit_id, e.by, e.permit, e.origin) == (OperatingKind.HOT_WORK, TANKS, "xfpvc-operator", "DH-01",
                                                             "api")
    assert room.states.get(e.id) == e and room.states.active(T0) == [e] and room.states.active(T0 - 1) == []
    out = room.states.withdraw(e.id, "xfpvc-operator", T0 + 600, "作业结束")
    assert (out.withdrawn_at, out.withdraw_reason, out.active(T0 + 600), out.active(T0 + 599)) == (
        T0 + 600, "作业结束", False, True)
    with pytest.raises(EntryConflict, match="withdrawn"):
        room.states.withdraw(e.id, "xfpvc-operator", T0 + 700)
    over = room.states.register(SITE, "lifting", T0, T0 + 60, "xfpvc-operator", T0)
    with pytest.raises(EntryConflict, match="ended"):
        room.states.withdraw(over.id, "xfpvc-operator", T0 + 60)
    with pytest.raises(EntryNotFound):
        room.states.withdraw("OS-nope", "x", T0)
    assert room.actions() == ["operating_state_registered", "operating_state_withdrawn", "operating_state_registered"]
    detail = room.audit.records()[0]["detail"]
    assert (detail["entry_id"], detail["kind"], detail["unit_id"], detail["permit"]) == (e.id, "hot_work", TANKS, "DH-01")


@pytest.mark.parametrize("args, error, match", [
    (dict(site_id="LC-NOPE"), EntryNotFound, "no site"),
    (dict(site_id="LC-DEHH"), InvalidEntry, "not risk-graded"),
    (dict(unit_id="LC-NOPE-U1"), EntryNotFound, "no hazard unit"),
    (dict(unit_id="LC-LUXI-U1"), InvalidEntry, "belongs to LC-LUXI"),
    (dict(ends=T0), InvalidEntry, "after from"),
    (dict(kind="hot_work", ends=T0 + 4 * 86400), InvalidEntry, "at most 259200 s"),
    (dict(by="  "), InvalidEntry, "must not be blank"),
])
def test_bad_entries_are_refused_and_nothing_is_stored(room: Room, args, error, match) -> None:
    call = {"site_id": SITE, "kind": "confined_space", "starts": T0, "ends": T0 + 3600, "by": "op", "at": T0, **args}
    with pytest.raises(error, match=match):
        room.states.register(**call)
    assert room.states.query() == [] and room.actions() == []


def test_a_commitment_registers_its_operations_in_the_same_transaction(room: Room) -> None:
    c = room.states.commit(draft(), "xfpvc-operator", T0 + 60)
    assert (c.id, c.date, c.uploaded_by, c.special_work) == (f"C20261125-{SITE}-1", "2026-11-25", "xfpvc-operator",
                                                           {"hot_work": 1, "maintenance": 1})
    hot, upkeep = (room.states.get(i) for i in c.entries)
    assert (hot.starts, hot.ends, hot.permit, hot.origin, hot.by) == (T0, T0 + 4 * 3600, "DH-01",
                                                                      f"commitment:{c.id}", c.committed_by)
    assert (upkeep.starts, upkeep.ends, upkeep.unit_id) == (*day_bounds("2026-11-25"), POLY)  # the whole day
    assert room.actions() == ["operating_state_registered", "operating_state_registered", "commitment_uploaded"]
    assert room.states.current("2026-11-25") == {SITE: c}
    with pytest.raises(EntryConflict, match="send amends"):
        room.states.commit(draft(), "xfpvc-operator", T0 + 120)


def test_amending_supersedes_the_days_commitment_and_withdraws_what_it_declared(room: Room) -> None:
    first = room.states.commit(draft(), "xfpvc-operator", T0 + 60)
    second = room.states.commit(draft(amends=first.id, operations=(), risks_controlled=False), "xfpvc-operator",
                                T0 + 600)
    assert second.id.endswith("-2") and room.states.commitment(first.id).superseded_by == second.id
    assert all(room.states.get(i).withdrawn_at == T0 + 600 for i in first.entries)
    assert room.states.current("2026-11-25") == {SITE: second}
    with pytest.raises(EntryConflict, match="replaced by"):
        room.states.commit(draft(amends=first.id), "xfpvc-operator", T0 + 700)
    room.later(2 * 3600)  # 10:00: the amended commitment declares the risks not under control
    risk = room.monitor.assess()[SITE].enterprise
    assert risk.group("commitment").points == 20 and risk.group("operating").points == 0


@pytest.mark.parametrize("changes, error, match", [
    (dict(date="2026-11-28"), InvalidEntry, "yesterday, today or tomorrow"),
    (dict(date="25.11.2026"), InvalidEntry, "YYYY-MM-DD"),
    (dict(committed_by=" "), InvalidEntry, "blank"),
    (dict(amends="C20261125-LC-XFPVC-9"), EntryNotFound, "no commitment"),
    (dict(operations=(OperationDraft(OperatingKind.HOT_WORK, "LC-LUXI-U1"),)), InvalidEntry, "belongs to LC-LUXI"),
    (dict(site_id="LC-GTLC"), InvalidEntry, "not risk-graded"),
])
def test_a_bad_commitment_stores_nothing(room: Room, changes, error, match) -> None:
    with pytest.raises(error, match=match):
        room.states.commit(draft(**changes), "xfpvc-operator", T0)
    assert room.states.commitments() == [] and room.states.query() == [] and room.actions() == []


def test_special_work_raises_risk_and_never_changes_an_alarm(fleet) -> None:
    """An alarm open at the tank farm; 动火 registered there, the monitor ticks: the grade rises, the alarm's state,
    history and announcements are exactly what they were, and nobody but the registry wrote to the audit."""
    room = Room(fleet)
    manager = AlertManager(AlertStore(room.db), fleet, room.clock, audit=room.audit)
    signal = Signal("hazard.pressure.threshold", "threshold", "LC-XFPVC-T101-PT", SITE, Family.HAZARD, Tier.ORANGE,
                    "HH", 1.9, 1.8, "MPa", T0, "T101储罐压力 高高报")
    manager.apply([signal])
    room.monitor._alarms = manager.open_alerts  # what the composition root passes
    before = [(a.id, a.state, a.isa_state, a.acknowledged_at, a.shelved_until, a.suppressed, len(a.history))
              for a in manager.open_alerts()]
    alarm_audit = [r for r in room.audit.records() if r["alert_id"] is not None]
    room.later(60)
    graded = room.monitor.tick().risks[SITE]
    room.states.register(SITE, "hot_work", room.clock.now, room.clock.now + 3600, "xfpvc-operator", room.clock.now,
                         unit_id=TANKS)
    room.later(60)
    after_work = room.monitor.tick().risks[SITE]
    assert after_work.enterprise.score == graded.enterprise.score + 15
    assert after_work.enterprise.alarm_ids == graded.enterprise.alarm_ids == (manager.open_alerts()[0].id,)
    manager.reload()  # what is stored, not only what is in memory
    assert [(a.id, a.state, a.isa_state, a.acknowledged_at, a.shelved_until, a.suppressed, len(a.history))
            for a in manager.open_alerts()] == before
    assert [r for r in room.audit.records() if r["alert_id"] is not None] == alarm_audit and alarm_audit


def test_assessment_reads_active_entries_and_todays_commitment_from_the_registry(room: Room) -> None:
    room.alarms[:] = [alarm("A1", "LC-XFPVC-T101-PT", "high", T0)]
    room.states.commit(draft(), "xfpvc-operator", T0 + 60)
    room.later(3 * 3600)  # 11:00: the commitment is in; 动火 (until 12:00) and 检修 (all day) are on
    risk = room.monitor.assess()[SITE]
    assert risk.enterprise.group("operating").points == 25 and risk.enterprise.group("commitment").points == 0
    assert risk.enterprise.grade is RiskGrade.SIGNIFICANT  # 50 + 4 + 4 (unacknowledged) + 3 (an hour) + 25 = 86

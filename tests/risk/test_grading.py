"""The risk grade as a pure function: issue 13's check on direct inputs; every input moves the grade up and down.

Shipped defaults (risk.yaml = riskspec defaults): 一般 ≥ 45, 较大 ≥ 75, 重大 ≥ 100. At 信发聚氯乙烯 the
tank farm (grade 1) scores 40 at rest, the polymerisation unit 50, the enterprise 50 (its highest unit).
"""

from __future__ import annotations

import pytest

from earlywarning import DataQuality, OperatingEntry, RiskGrade, SubjectKind, assess
from earlywarning.operating import Commitment, Devices
from foundation.config import Fleet
from foundation.riskspec import OperatingKind, RiskSettings
from tests.risk.support import POLY, SITE, T0, TANKS, alarm

SETTINGS = RiskSettings()
LATE = 601.0  # past a high alarm's unacknowledged delay (600 s)


def entry(kind: str = "hot_work", unit_id: str | None = TANKS, starts: float = T0 - 3600, ends: float = T0 + 7200,
          site_id: str = SITE, entry_id: str = "OS1", withdrawn_at: float | None = None) -> OperatingEntry:
    return OperatingEntry(entry_id, site_id, unit_id, OperatingKind(kind), starts, ends, "xfpvc-operator", starts,
                          withdrawn_at=withdrawn_at)


def grades(fleet: Fleet, now: float = T0, **inputs) -> dict[str, tuple[float, RiskGrade]]:
    """(score, grade) of XFPVC's enterprise and units at ``now``."""
    risk = assess(fleet, SETTINGS, now, **inputs)[SITE]
    return {a.id: (a.score, a.grade) for a in risk.assessments()}


def test_issue_13_check_repeated_unacknowledged_alarms_during_hot_work_at_a_grade_1_source_is_orange(fleet):
    """A grade-1 source (the tank farm), two of its alarms unacknowledged past their delay, 动火 registered there:
    the enterprise is 较大 (orange); the same alarms without the 动火 leave it 一般."""
    now = T0 + LATE
    alarms = [alarm("A1", "LC-XFPVC-T101-PT", raised_at=T0), alarm("A2", "LC-XFPVC-T102-TT", raised_at=T0 + 1)]
    risk = assess(fleet, SETTINGS, now, alarms, entries=[entry()])[SITE]
    e = risk.enterprise
    assert (e.kind, e.id, e.grade, e.colour, e.score) == (SubjectKind.ENTERPRISE, SITE, RiskGrade.SIGNIFICANT, "orange",
                                                          81)
    assert e.alarm_ids == ("A1", "A2") and e.entry_ids == ("OS1",)
    assert [(g.name, g.points) for g in e.groups] == [("inherent", 50), ("alarms", 16), ("data_quality", 0),
                                                        ("operating", 15), ("commitment", 0)]
    assert "动火作业 1 项" in e.reason_zh() and "超时未确认报警 2 条 (高 2)" in e.reason_zh()
    assert all(f.certainty == "U" and f.source for g in e.groups for f in g.factors)  # MEM's weights: unconfirmed
    units = {u.id: u for u in risk.units}
    assert units[TANKS].score == 40 + 16 + 15 and units[TANKS].alarm_ids == ("A1", "A2")
    assert units[POLY].score == 50 and units[POLY].alarm_ids == ()  # not its sensors, not its 动火
    without = assess(fleet, SETTINGS, now, alarms)[SITE].enterprise
    assert (without.score, without.grade) == (66, RiskGrade.GENERAL)


def test_at_rest_only_inherent_risk_counts_and_only_enterprises_are_graded(fleet):
    risks = assess(fleet, SETTINGS, T0)
    assert set(risks) == {s.id for s in fleet.sites.values() if s.kind == "enterprise"}
    assert {sid: r.enterprise.score for sid, r in risks.items()} == {
        "LC-LUXI": 45, "LC-QLQY": 10, "LC-XFHG": 30, "LC-XFPVC": 50, "LC-HTHG": 20, "LC-XGTY": 35}
    luxi = risks["LC-LUXI"]
    assert [f.detail for f in luxi.enterprise.group("inherent").factors] == ["液氨储罐区 一级重大危险源",
                                                                            "液氨储罐区: 氨 β ≥ 2"]
    poly = next(u for u in risks[SITE].units if u.id == POLY)
    assert [f.rule for f in poly.group("inherent").factors] == ["inherent.unit_grade", "inherent.substances",
                                                               "inherent.key_process"]


@pytest.mark.parametrize("inputs", [
    {"alarms": [alarm("A1", "LC-XFPVC-T101-PT", "urgent")]},
    {"entries": [entry("confined_space", unit_id=None)]},
    {"alarms": [alarm("S1", "site:LC-XFPVC", "medium", kind="comm_loss")]},
])
def test_the_enterprise_never_grades_below_any_of_its_units(fleet, inputs):
    risk = assess(fleet, SETTINGS, T0 + 4000, **inputs)[SITE]
    assert all(risk.enterprise.score >= u.score for u in risk.units)


def test_alarms_move_the_grade_up_and_back_down(fleet):
    """Open → unacknowledged past the delay → more at once → acknowledged → cleared."""
    a1, a2, a3 = (alarm(f"A{i}", f"LC-XFPVC-T10{i}-PT", "high", T0) for i in (1, 2, 3))
    assert grades(fleet)[SITE] == (50, RiskGrade.GENERAL)
    assert grades(fleet, T0 + 60, alarms=[a1])[SITE][0] == 54                       # open: high 4
    assert grades(fleet, T0 + LATE, alarms=[a1])[SITE][0] == 58                     # + unacknowledged 4
    assert grades(fleet, T0 + LATE, alarms=[a1, a2, a3])[SITE] == (79, RiskGrade.SIGNIFICANT)  # 3 × 8 + 5 at once
    acked = [alarm(a.id, a.subject, "high", T0, acknowledged_at=T0 + 300, state="acknowledged") for a in (a1, a2, a3)]
    assert grades(fleet, T0 + LATE, alarms=acked)[SITE] == (67, RiskGrade.GENERAL)
    assert grades(fleet, T0 + LATE, alarms=[])[SITE] == (50, RiskGrade.GENERAL)


def test_unacknowledged_time_duration_and_priority_each_count(fleet):
    start = T0 - 3600  # 07:00, so the hour ends before the day's commitment is due
    urgent = alarm("U1", "LC-XFPVC-T101-TT", "urgent", start)
    assert grades(fleet, start + 299, alarms=[urgent])[SITE][0] == 60          # open: urgent 10
    assert grades(fleet, start + 300, alarms=[urgent])[SITE][0] == 70          # + not acknowledged within 5 min
    assert grades(fleet, start + 3600, alarms=[urgent])[SITE][0] == 73         # + open an hour
    low = alarm("L1", "LC-XFPVC-T101-TT", "low", start)
    assert grades(fleet, start + 3599, alarms=[low])[SITE][0] == 51
    # acknowledged, then escalated past the acknowledgement: it waits again from the acknowledgement
    again = alarm("H1", "LC-XFPVC-T101-TT", "high", T0, acknowledged_at=T0 + 100, state="unacknowledged")
    assert grades(fleet, T0 + 699, alarms=[again])[SITE][0] == 54
    assert grades(fleet, T0 + 700, alarms=[again])[SITE][0] == 58


def test_groups_are_capped(fleet):
    flood = [alarm(f"A{i}", "LC-XFPVC-T101-PT", "urgent", T0) for i in range(20)]
    risk = assess(fleet, SETTINGS, T0 + 4000, flood)[SITE]
    group = risk.enterprise.group("alarms")
    assert group.points == 45 and sum(f.points for f in group.factors) > 45
    tanks = next(u for u in risk.units if u.id == TANKS)
    assert (tanks.score, tanks.grade) == (85, RiskGrade.SIGNIFICANT)  # alarms alone: a plain grade-1 unit, 较大 at most


def test_alarms_outside_every_unit_count_for_the_enterprise_only_and_zones_through_their_members(fleet):
    stray = alarm("Z1", "LC-XFPVC-combustible-gas-Z1", "high", T0)
    plain = assess(fleet, SETTINGS, T0, [stray])[SITE]
    assert plain.enterprise.alarm_ids == ("Z1",) and all(u.alarm_ids == () for u in plain.units)
    zoned = assess(fleet, SETTINGS, T0, [stray],
                   members={"LC-XFPVC-combustible-gas-Z1": ["LC-XFPVC-GD-02", "LC-XFPVC-GD-03"]})[SITE]
    assert {u.id: u.alarm_ids for u in zoned.units} == {TANKS: ("Z1",), POLY: ("Z1",)}


def test_data_quality_alarms_count_as_data_quality_not_as_alarms(fleet):
    """Communication loss hits the enterprise and every unit; a stale or frozen sensor its own unit; back: down."""
    comm = alarm("C1", "site:LC-XFPVC", "medium", T0, kind="comm_loss")
    risk = assess(fleet, SETTINGS, T0 + 7200, [comm])[SITE]
    assert risk.enterprise.group("alarms").points == 0
    assert risk.enterprise.group("data_quality").points == 20 and risk.enterprise.alarm_ids == ("C1",)
    assert [u.group("data_quality").points for u in risk.units] == [20, 20]
    stale = [alarm("S1", "LC-XFPVC-T101-LT", "medium", T0, kind="stale"),
             alarm("S2", "LC-XFPVC-GT-01", "medium", T0, kind="stuck")]
    risk = assess(fleet, SETTINGS, T0, stale)[SITE]
    assert {u.id: u.group("data_quality").points for u in risk.units} == {TANKS: 3, POLY: 3}
    assert risk.enterprise.group("data_quality").points == 6
    assert grades(fleet, T0)[SITE][0] == 50
    given = DataQuality(out_of_range=frozenset({"LC-XFPVC-T101-LT"}))
    assert grades(fleet, T0, quality=given)[TANKS][0] == 43


def test_operating_states_raise_risk_while_they_last_and_a_site_wide_one_counts_at_every_unit(fleet):
    work = entry("hot_work", TANKS, T0, T0 + 3600)
    assert grades(fleet, T0 - 1, entries=[work])[TANKS][0] == 40       # not yet
    assert grades(fleet, T0, entries=[work])[TANKS][0] == 55
    assert grades(fleet, T0, entries=[work])[POLY][0] == 50            # another unit's work
    assert grades(fleet, T0 + 3600, entries=[work])[TANKS][0] == 40    # over
    withdrawn = entry("hot_work", TANKS, T0, T0 + 3600, withdrawn_at=T0 + 60)
    assert grades(fleet, T0 + 60, entries=[withdrawn])[TANKS][0] == 40
    startup = entry("startup", None, T0, T0 + 3600, entry_id="OS2")
    g = grades(fleet, T0, entries=[startup, work])
    assert (g[TANKS][0], g[POLY][0], g[SITE][0]) == (70, 65, 80)
    assert grades(fleet, T0, entries=[entry("maintenance", None, site_id="LC-LUXI")])[SITE][0] == 50  # not this site


def test_the_days_commitment_missing_or_declaring_risk_uncontrolled_raises_the_enterprise(fleet):
    nine = T0 + 3600  # 09:00, when the commitment is due
    assert grades(fleet, nine - 1)[SITE][0] == 50
    assert grades(fleet, nine)[SITE][0] == 55 and grades(fleet, nine)[TANKS][0] == 40
    ok = Commitment("C1", SITE, "2026-11-25", "演示·信发聚氯乙烯主要负责人", "main", "今天我公司已进行安全风险研判", True,
                    Devices(2, 0, 0), False, T0 + 60, "xfpvc-operator")
    assert grades(fleet, nine, commitments=[ok])[SITE][0] == 50
    yesterday = Commitment("C0", SITE, "2026-11-24", "x", "main", "…", True, Devices(), False, T0 - 86400, "x")
    assert grades(fleet, nine, commitments=[yesterday])[SITE][0] == 55
    uncontrolled = Commitment("C2", SITE, "2026-11-25", "x", "main", "部分风险未能有效管控", False, Devices(), False,
                              T0 + 120, "x", amends="C1")
    assert grades(fleet, nine, commitments=[ok, uncontrolled])[SITE][0] == 70   # the latest upload counts
    assert grades(fleet, T0 + 90, commitments=[ok, uncontrolled])[SITE][0] == 50  # not uploaded yet at that time


def test_alarms_raised_after_now_and_normal_ones_are_ignored(fleet):
    later = alarm("A1", "LC-XFPVC-T101-PT", "urgent", T0 + 10)
    over = alarm("A2", "LC-XFPVC-T101-PT", "urgent", T0 - 10, state="normal")
    assert grades(fleet, T0, alarms=[later, over])[SITE][0] == 50


def test_a_site_without_units_is_graded_by_its_own_hazard_grade(fleet):
    sites = dict(fleet.sites)
    sites["LC-XFHG"] = sites["LC-XFHG"].model_copy(update={"hazard_units": []})
    bare = Fleet(sites=sites, sensors=fleet.sensors, profiles=fleet.profiles, tiers=fleet.tiers)
    risk = assess(bare, SETTINGS, T0)["LC-XFHG"]
    assert risk.units == () and risk.enterprise.score == 30
    assert risk.enterprise.group("inherent").factors[0].detail == "信发化工 二级重大危险源"

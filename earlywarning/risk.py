"""The dynamic risk grade of enterprises and hazard units, MEM style: a pure function of its inputs at ``now``.

MEM's hazchem monitoring grades each enterprise and each major hazard source 重大/较大/一般/低 risk
(红橙黄蓝) from four kinds of input (DOMAIN.md [S]); `assess` does the same with the sourced,
configurable rules of ``risk.yaml`` (`foundation.riskspec`; every weight is unconfirmed, [U]):

* **inherent risk** (固有风险): the unit's GB 18218 grade and R, its substances (β), whether it runs a
  重点监管危险化工工艺; an enterprise takes its highest-scoring unit;
* **real-time alarms** (实时报警): open over-limit alarms by priority — count, unacknowledged time,
  duration, concurrency; a unit counts the alarms of its sensors, the enterprise all of its site's;
* **data quality** (数据质量): communication loss, sensors not reporting, stale, frozen or out-of-range
  sensors (their alarms count here, not as alarms);
* **operating state** (运行状态): registered 开停车, 检修 and 特殊作业 (GB 30871) and the daily
  研判与承诺 — these *raise* risk; nothing here ever touches an alarm.

Each rule adds non-negative points, each group is capped, the grade is the highest band the sum
reaches, so more alarms, more special work or worse data quality never lower a grade. A walk
through the shipped defaults at 信发聚氯乙烯, whose tank farm is a grade-1 unit (40 points) and whose
polymerisation unit scores 50 (grade 2: 30, 氯 β 4: 10, 氯化/聚合工艺: 10), with the day's commitment
uploaded::

    nothing happening                      enterprise 50                 一般 (yellow)
    two high alarms on the tank farm       + 2 × 4            = 58       一般
    … unacknowledged for 10 min            + 2 × 4            = 66       一般
    … during registered 动火 there         + 15               = 81       较大 (orange): warning Ⅱ proposed
    … and two more, also unacknowledged    + 2 × (4 + 4) + 5  = 102      重大 (red; ≥ 3 alarms at once: + 5)
    all acknowledged and cleared, 动火 over                       50       一般

The values in and out live in `earlywarning.riskmodel`; `RiskBoard` (`earlywarning.riskboard`) keeps
the last grade of every subject, reports changes and says when a grade calls for a warning
proposal; `earlywarning.riskmonitor` runs it all on the clock and sends proposals to the `WarningDesk`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Iterable

from earlywarning.model import RiskGrade, SubjectKind
from earlywarning.operating import Commitment, OperatingEntry, local_date
from earlywarning.riskboard import GradeChange, RiskBoard
from earlywarning.riskmodel import (GRADE_COLOUR, AlarmRecord, Assessment, DataQuality, Factor, FactorGroup, SiteRisk,
                                    grade_rank)
from foundation.config import Fleet, Site
from foundation.domain import CST
from foundation.hazardunits import HazardUnit, Members
from foundation.riskspec import PRIORITIES, OperatingKind, RiskSettings

__all__ = ["GRADE_COLOUR", "AlarmRecord", "Assessment", "DataQuality", "Factor", "FactorGroup", "GradeChange",
           "RiskBoard", "SiteRisk", "assess", "grade_rank"]

_PRIORITY_ZH = {"urgent": "紧急", "high": "高", "medium": "中", "low": "低"}
_GRADE_ZH = {1: "一级", 2: "二级", 3: "三级", 4: "四级"}
_PROBLEM_ZH = {"stale": "数据中断", "frozen": "数值冻结", "out_of_range": "超出量程"}


# ---------------------------------------------------------------- the rules

def _inherent(settings: RiskSettings, label: str, grade: int | None, r: float | None, unit: HazardUnit | None
              ) -> list[Factor]:
    rules = settings.inherent
    out: list[Factor] = []
    if grade is not None:
        out.append(Factor("inherent.unit_grade", rules.unit_grade.points[grade],  # type: ignore[index]
                          f"{label} {_GRADE_ZH[grade]}重大危险源", rules.unit_grade.source, rules.unit_grade.certainty))
    steps = [s for s in rules.r_steps if r is not None and r >= s.min_r]
    if steps:
        step = max(steps, key=lambda s: s.points)
        out.append(Factor("inherent.r", step.points, f"{label}: R = {r:g} ≥ {step.min_r:g}", step.source,
                          step.certainty))
    if unit is not None:
        beta = unit.max_beta
        bands = [b for b in rules.substances if beta is not None and beta >= b.min_beta]
        if bands:
            band = max(bands, key=lambda b: b.points)
            names = "、".join(x.name for x in unit.substances if x.beta is not None and x.beta >= band.min_beta)
            out.append(Factor("inherent.substances", band.points, f"{label}: {names} β ≥ {band.min_beta:g}",
                              band.source, band.certainty))
        if unit.key_processes:
            out.append(Factor("inherent.key_process", rules.key_process.points,
                              f"{label}: 重点监管危险化工工艺 " + "、".join(unit.key_processes), rules.key_process.source,
                              rules.key_process.certainty))
    return out


def _by_priority(alarms: list[AlarmRecord]) -> str:
    counts = {p: sum(1 for a in alarms if a.priority == p) for p in PRIORITIES}
    return ", ".join(f"{_PRIORITY_ZH[p]} {n}" for p, n in counts.items() if n)


def _order(alarms: Iterable[AlarmRecord]) -> tuple[str, ...]:
    rank = {p: i for i, p in enumerate(PRIORITIES)}
    return tuple(a.id for a in sorted(alarms, key=lambda a: (rank.get(a.priority, 9), a.raised_at, a.id)))


def _alarm_factors(settings: RiskSettings, alarms: list[AlarmRecord], now: float) -> list[Factor]:
    rules = settings.alarms
    out: list[Factor] = []
    if not alarms:
        return out
    o = rules.open
    points = min(sum(o.points.get(a.priority, 0) for a in alarms), o.max_points)  # type: ignore[call-overload]
    out.append(Factor("alarms.open", points, f"未消除报警 {len(alarms)} 条 ({_by_priority(alarms)})", o.source,
                      o.certainty, _order(alarms)))
    u = rules.unacknowledged
    late = [a for a in alarms if a.priority in u.after_s and a.waiting_s(now) >= u.after_s[a.priority]]  # type: ignore[index]
    if late:
        points = min(sum(u.points[a.priority] for a in late), u.max_points)  # type: ignore[index]
        out.append(Factor("alarms.unacknowledged", points, f"超时未确认报警 {len(late)} 条 ({_by_priority(late)})",
                          u.source, u.certainty, _order(late)))
    long_open = [a for a in alarms if now - a.raised_at >= rules.long_open.after_s]
    if long_open:
        lo = rules.long_open
        out.append(Factor("alarms.long_open", min(len(long_open) * lo.points, lo.max_points),
                          f"持续超过 {lo.after_s / 60:g} 分钟的报警 {len(long_open)} 条", lo.source, lo.certainty,
                          _order(long_open)))
    steps = [s for s in rules.concurrent if len(alarms) >= s.min_alarms]
    if steps:
        step = max(steps, key=lambda s: s.points)
        out.append(Factor("alarms.concurrent", step.points, f"同时存在报警 {len(alarms)} 条 (≥ {step.min_alarms})",
                          step.source, step.certainty))
    return out


def _quality_factors(settings: RiskSettings, quality: DataQuality, site_id: str, sensors: set[str] | None,
                     fleet: Fleet) -> list[Factor]:
    rules = settings.data_quality
    out: list[Factor] = []
    site_ids = quality.alarm_ids.get(f"site:{site_id}", ())
    if site_id in quality.offline:
        out.append(Factor("data_quality.offline", rules.offline.points, "通信中断 (离线)", rules.offline.source,
                          rules.offline.certainty, site_ids))
    if site_id in quality.not_reporting:
        out.append(Factor("data_quality.not_reporting", rules.not_reporting.points, "有传感器自启动以来未上报",
                          rules.not_reporting.source, rules.not_reporting.certainty, site_ids))

    def mine(sensor_id: str) -> bool:
        if sensors is not None:
            return sensor_id in sensors
        sensor = fleet.sensors.get(sensor_id)
        return sensor is not None and sensor.site_id == site_id

    counts = {p: sorted(s for s in getattr(quality, p) if mine(s)) for p in ("stale", "frozen", "out_of_range")}
    if any(counts.values()):
        rule = rules.sensors
        points = min(sum(rule.points[p] * len(ids) for p, ids in counts.items()), rule.max_points)  # type: ignore[index]
        detail = ", ".join(f"{_PROBLEM_ZH[p]} {len(ids)}" for p, ids in counts.items() if ids)
        evidence = tuple(a for ids in counts.values() for s in ids for a in quality.alarm_ids.get(s, ()))
        out.append(Factor("data_quality.sensors", points, f"数据异常传感器 {sum(map(len, counts.values()))} 个 ({detail})",
                          rule.source, rule.certainty, evidence))
    return out


def _operating_factors(settings: RiskSettings, entries: list[OperatingEntry]) -> list[Factor]:
    out: list[Factor] = []
    for kind in OperatingKind:
        mine = [e for e in entries if e.kind is kind]
        if mine:
            rule = settings.operating.kinds[kind]
            out.append(Factor(f"operating.{kind.value}", rule.points * len(mine), f"{kind.zh} {len(mine)} 项",
                              rule.source, rule.certainty, entry_ids=tuple(e.id for e in mine)))
    return out


def _commitment_factors(settings: RiskSettings, commitment: Commitment | None, now: float) -> list[Factor]:
    rules = settings.commitment
    local = datetime.fromtimestamp(now, CST)
    if commitment is None:
        if local.hour * 60 + local.minute >= rules.due_minutes:
            return [Factor("commitment.missing", rules.missing.points,
                           f"{local.date().isoformat()} 安全风险研判与承诺未在 {rules.due} 前上报",
                           rules.missing.source, rules.missing.certainty)]
        return []
    if not commitment.risks_controlled:
        return [Factor("commitment.not_controlled", rules.not_controlled.points,
                       f"承诺公告 {commitment.id} 声明安全风险未有效管控", rules.not_controlled.source,
                       rules.not_controlled.certainty)]
    return []


def _group(name: str, factors: list[Factor], cap: float | None) -> FactorGroup:
    raw = sum(f.points for f in factors)
    return FactorGroup(name, min(raw, cap) if cap is not None else raw, cap, tuple(factors))


def _assessment(settings: RiskSettings, kind: SubjectKind, subject_id: str, site_id: str, name: str, now: float,
                groups: list[FactorGroup]) -> Assessment:
    score = round(sum(g.points for g in groups), 6)
    return Assessment(kind, subject_id, site_id, name, now, score, RiskGrade(settings.grades.grade(score)),
                      tuple(groups))


def assess(fleet: Fleet, settings: RiskSettings, now: float, alarms: Iterable[Any] = (),
           quality: DataQuality | None = None, entries: Iterable[OperatingEntry] = (),
           commitments: Iterable[Commitment] = (), members: Members | None = None) -> dict[str, SiteRisk]:
    """The risk grade of every graded enterprise and its hazard units at ``now``, by site id.

    ``alarms``: open alarms (`AlarmRecord` or `alerting.model.Alert`); those raised after ``now`` or
    already normal are ignored, and those of risk.yaml's data-quality kinds count as data quality.
    ``quality``: data-quality problems; None derives them from ``alarms``. ``entries``: registered
    operating states (those active at ``now`` count). ``commitments``: uploaded commitments (the
    current one of ``now``'s local day counts). ``members``: a confirmation zone's sensors, to place
    a zone's alarm in its units. Pure: the same inputs give the same grades.
    """
    records = [r for r in (AlarmRecord.of(a) for a in alarms) if r.raised_at <= now and r.state != "normal"]
    kinds = settings.data_quality.alarm_kinds
    if quality is None:
        quality = DataQuality.from_alarms(records, kinds)
    process = [r for r in records if r.kind not in kinds]
    active = [e for e in entries if e.active(now)]
    today = local_date(now)
    current: dict[str, Commitment] = {}
    for c in sorted(commitments, key=lambda c: c.uploaded_at):
        if c.date == today and c.uploaded_at <= now:
            current[c.site_id] = c  # the latest upload of the day by now (an amendment is a later upload)
    out: dict[str, SiteRisk] = {}
    for site in fleet.sites.values():
        if settings.graded(site.id, site.kind):
            out[site.id] = _site_risk(fleet, settings, site, now, [a for a in process if a.site_id == site.id],
                                      quality, [e for e in active if e.site_id == site.id], current.get(site.id),
                                      members)
    return out


def _site_risk(fleet: Fleet, settings: RiskSettings, site: Site, now: float, alarms: list[AlarmRecord],
               quality: DataQuality, entries: list[OperatingEntry], commitment: Commitment | None,
               members: Members | None) -> SiteRisk:
    caps = (settings.alarms.cap.points, settings.data_quality.cap.points, settings.operating.cap.points)
    units = fleet.units_of(site.id)
    in_unit: dict[str, list[AlarmRecord]] = {u.id: [] for u in units}
    for alarm in alarms:
        for unit in fleet.hazards.units_of_subject(site.id, alarm.subject, members):
            in_unit[unit.id].append(alarm)
    unit_risks: list[Assessment] = []
    inherent_by_unit: dict[str, list[Factor]] = {}
    for unit in units:
        inherent = _inherent(settings, unit.name, unit.grade, unit.r_value, unit)
        inherent_by_unit[unit.id] = inherent
        groups = [_group("inherent", inherent, None),
                  _group("alarms", _alarm_factors(settings, in_unit[unit.id], now), caps[0]),
                  _group("data_quality", _quality_factors(settings, quality, site.id, set(unit.sensors), fleet),
                         caps[1]),
                  _group("operating", _operating_factors(settings, [e for e in entries if e.unit_id in (None, unit.id)]),
                         caps[2])]
        unit_risks.append(_assessment(settings, SubjectKind.HAZARD_UNIT, unit.id, site.id, f"{site.name} {unit.name}",
                                      now, groups))
    if units:
        top = max(units, key=lambda u: sum(f.points for f in inherent_by_unit[u.id]))  # the first of equals
        inherent = inherent_by_unit[top.id]
    else:
        inherent = _inherent(settings, site.name, site.hazard_grade, site.hazard_r, None)
    groups = [_group("inherent", inherent, None),
              _group("alarms", _alarm_factors(settings, alarms, now), caps[0]),
              _group("data_quality", _quality_factors(settings, quality, site.id, None, fleet), caps[1]),
              _group("operating", _operating_factors(settings, entries), caps[2]),
              _group("commitment", _commitment_factors(settings, commitment, now), None)]
    enterprise = _assessment(settings, SubjectKind.ENTERPRISE, site.id, site.id, site.name, now, groups)
    return SiteRisk(site.id, enterprise, tuple(unit_risks))

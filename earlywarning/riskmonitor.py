"""The risk grading at work: pull the inputs, grade, keep and store the grades, propose warnings.

`RiskMonitor` is what the composition root holds. It owns the operating-state registry
(`OperatingStates`) and a `RiskBoard`; ``tick(now)`` grades every enterprise and hazard unit
(`earlywarning.risk.assess`) from the open alarms it is given a callable for, the data quality
they report (plus any extra source), the registered operating states and the day's commitments;
stores each grade change in ``alerts.db`` (table ``risk_grades``, audit action
``risk_grade_changed``, one transaction per tick); and for a grade at or above risk.yaml's
``proposals`` threshold proposes a warning through the `WarningDesk` (category 事故灾难/危险化学品,
level from the grade, evidence: the contributing alarms and the grade). The desk keeps one open
warning per subject, so proposing again only adds evidence or raises a not-yet-published level.

The monitor never reads a clock beyond the ``clock`` it is given, and never changes an alarm.
Call ``tick`` outside any open transaction of the `AlertDB` (after an alarm commit, on the ticker).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterable

import orjson
import structlog

from alerting.audit import AuditLog
from alerting.db import AlertDB
from earlywarning.desk import WarningChange, WarningDesk
from earlywarning.drafting import Proposal, SubjectRef
from earlywarning.model import Origin, RiskGrade, SubjectKind
from earlywarning.operating import OperatingStates, local_date
from earlywarning.risk import (AlarmRecord, Assessment, DataQuality, GradeChange, RiskBoard, SiteRisk, assess,
                              grade_rank)
from earlywarning.states import WarningError
from foundation.config import Fleet
from foundation.hazardunits import Members
from foundation.riskspec import RiskSettings

__all__ = ["RiskMonitor", "RiskTick"]

log = structlog.get_logger("earlywarning.risk")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS risk_grades (
    subject_key TEXT PRIMARY KEY,
    site_id TEXT NOT NULL,
    grade TEXT NOT NULL,
    score DOUBLE PRECISION NOT NULL,
    since DOUBLE PRECISION NOT NULL,
    proposed_grade TEXT,
    proposed_alarms {blob}
);
"""

PROPOSER = "risk:grading"
"""Who proposes warnings for the risk grading (the desk's ``proposed_by``)."""


@dataclass(frozen=True, slots=True)
class RiskTick:
    """What one tick did: the grades, the grades that moved, the warning steps its proposals caused."""

    risks: dict[str, SiteRisk]
    changes: tuple[GradeChange, ...] = ()
    proposals: tuple[WarningChange, ...] = ()


class RiskMonitor:
    """Grades enterprises and hazard units and proposes warnings; thread-safe.

    ``alarms()`` returns the open alarms (e.g. ``AlertManager.open_alerts``); ``quality()``, when
    given, extra data-quality problems beside those the alarms report (video loss …); ``members``
    a confirmation zone's sensors. Without a ``desk`` nothing is proposed. ``audit`` must be on ``db``.
    """

    def __init__(self, db: AlertDB, settings: RiskSettings, fleet: Fleet, clock: Callable[[], float],
                 alarms: Callable[[], Iterable[Any]] = lambda: (), desk: WarningDesk | None = None,
                 audit: AuditLog | None = None, quality: Callable[[], DataQuality] | None = None,
                 members: Members | None = None) -> None:
        if audit is not None and audit.db is not db:
            raise ValueError("the audit log must share the monitor's AlertDB: one transaction spans them")
        if desk is not None and desk.db is not db:
            raise ValueError("the warning desk must share the monitor's AlertDB")
        self.db = db
        self.settings = settings
        self.fleet = fleet
        self.audit = audit or AuditLog(db)
        self.states = OperatingStates(db, fleet, settings, self.audit)
        self.board = RiskBoard()
        self.desk = desk
        self._clock = clock
        self._alarms = alarms
        self._quality = quality
        self._members = members
        self._lock = db.lock  # the AlertDB's lock, as the desk's: two locks taken in either order could deadlock
        rules = settings.proposals
        self.thresholds = {SubjectKind.ENTERPRISE: RiskGrade(rules.enterprise) if rules.enterprise else None,
                           SubjectKind.HAZARD_UNIT: RiskGrade(rules.hazard_unit) if rules.hazard_unit else None}
        if desk is not None:  # every level a proposal may carry must exist in warnings.yaml's category
            lowest = min((grade_rank(g) for g in self.thresholds.values() if g is not None), default=None)
            for grade in RiskGrade:
                if lowest is not None and grade_rank(grade) >= lowest:
                    try:
                        desk.drafter.check_level(rules.category, rules.levels[grade.value])  # type: ignore[index]
                    except WarningError as err:
                        raise ValueError(f"risk.yaml proposals do not fit warnings.yaml: {err}") from None
        with self._lock:
            self.db.conn.executescript(self.db.dialect.schema(_SCHEMA))
            self._since: dict[str, float] = {}
            grades, proposed = {}, {}
            for key, grade, since, p_grade, p_alarms in self.db.conn.execute(
                    "SELECT subject_key, grade, since, proposed_grade, proposed_alarms FROM risk_grades"):
                grades[key] = grade
                self._since[key] = since
                if p_grade is not None:
                    proposed[key] = [p_grade, orjson.loads(p_alarms)]
            self.board.restore({"grades": grades, "proposed": proposed})
        self._latest: dict[str, SiteRisk] = {}

    # ------------------------------------------------------------------ reads

    def assess(self, now: float | None = None) -> dict[str, SiteRisk]:
        """Fresh grades at ``now`` (default: the clock) from the current inputs; stores nothing."""
        now = self._clock() if now is None else now
        records = [AlarmRecord.of(a) for a in self._alarms()]  # outside the DB lock: the alarm manager has its own
        quality = DataQuality.from_alarms(records, self.settings.data_quality.alarm_kinds)
        if self._quality is not None:
            quality = quality.worse(self._quality())
        entries = self.states.active(now)
        commitments = self.states.commitments(date=local_date(now), limit=1_000_000)
        return assess(self.fleet, self.settings, now, records, quality, entries, commitments, self._members)

    @property
    def latest(self) -> dict[str, SiteRisk]:
        """The grades of the last tick."""
        return dict(self._latest)

    def since(self, key: str) -> float | None:
        """Since when a subject (``enterprise:ID``, ``hazard_unit:ID``) has had its stored grade."""
        return self._since.get(key)

    # ------------------------------------------------------------------ the tick

    def tick(self, now: float | None = None) -> RiskTick:
        """Grade everything at ``now``, store the grade changes, and propose the warnings the grades call for."""
        now = self._clock() if now is None else now
        risks = self.assess(now)
        with self._lock:
            before = self.board.snapshot()
            changes = self.board.update(risks)
            try:
                if changes:
                    with self.db.transaction():
                        for change in changes:
                            self._record(change, now)
            except BaseException:
                self.board.restore(before)  # memory never runs ahead of the store: the next tick tries again
                raise
            for change in changes:
                self._since[change.key] = now
                log.info("risk_grade_changed", subject=change.key, before=change.before.value if change.before else None,
                         after=change.after.value, score=change.assessment.score)
            proposals = [p for a in self.board.due(risks, self.thresholds) if (p := self._propose(a, now)) is not None]
            self._latest = risks
        return RiskTick(risks, tuple(changes), tuple(proposals))

    def _record(self, change: GradeChange, now: float) -> None:
        a = change.assessment
        self.db.conn.execute(
            "INSERT INTO risk_grades (subject_key, site_id, grade, score, since) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT(subject_key) DO UPDATE SET grade = excluded.grade, score = excluded.score, "
            "since = excluded.since", (a.key, a.site_id, a.grade.value, a.score, now))
        self.audit.append(now, "system", "risk_grade_changed", None, a.site_id, subject_key=a.key,
                          before=change.before.value if change.before else None, after=a.grade.value, score=a.score,
                          factors=[f"{f.rule} +{f.points:g}: {f.detail}" for g in a.groups for f in g.factors
                                   if f.points], alarm_ids=list(a.alarm_ids), entry_ids=list(a.entry_ids))

    def _propose(self, a: Assessment, now: float) -> WarningChange | None:
        if self.desk is None:
            return None
        rules = self.settings.proposals
        ref = SubjectRef(a.kind, a.id, a.site_id if a.kind is SubjectKind.HAZARD_UNIT else None)
        proposal = Proposal(subject=ref, category=rules.category, level=rules.levels[a.grade.value],  # type: ignore[index]
                            by=PROPOSER, origin=Origin.RISK_GRADE, reason=a.reason_zh(), alarm_ids=a.alarm_ids,
                            risk_grade=a.grade)
        try:
            change = self.desk.propose(proposal, at=now)
        except Exception as err:  # a store that cannot write, a subject the desk does not know: tried next tick
            log.error("risk_proposal_failed", subject=a.key, grade=a.grade.value, error=f"{type(err).__name__}: {err}")
            return None
        self.board.proposed(a)
        grade, alarms = self.board.snapshot()["proposed"][a.key]
        try:
            with self.db.transaction():
                self.db.conn.execute("UPDATE risk_grades SET proposed_grade = ?, proposed_alarms = ? "
                                     "WHERE subject_key = ?", (grade, orjson.dumps(alarms), a.key))
        except Exception as err:  # the desk merges a repeated proposal: after a restart it adds nothing
            log.error("risk_proposal_not_noted", subject=a.key, error=str(err))
        log.info("risk_warning_proposed", subject=a.key, grade=a.grade.value, warning_id=change.warning.id,
                 warning_event=change.event.value if change.event else None)
        return change

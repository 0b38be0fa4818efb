"""The last grade of every subject, and when a grade calls for a warning proposal."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from earlywarning.model import RiskGrade, SubjectKind
from earlywarning.riskmodel import Assessment, SiteRisk, grade_rank

__all__ = ["GradeChange", "RiskBoard"]


@dataclass(frozen=True, slots=True)
class GradeChange:
    """A subject's grade moved (``before`` None: first graded)."""

    key: str
    before: RiskGrade | None
    after: RiskGrade
    assessment: Assessment

    @property
    def raised(self) -> bool:
        return self.before is None or grade_rank(self.after) > grade_rank(self.before)


class RiskBoard:
    """The last grade of every subject, and what each last proposed warning carried.

    `update` takes a fresh `assess` result and returns the grades that moved; `due` says which
    assessments call for a warning proposal: at or above the threshold, and either never proposed
    since the grade last fell below it, or with a higher grade or alarms not yet proposed.

    >>> board = RiskBoard()
    >>> board.snapshot()
    {'grades': {}, 'proposed': {}}
    """

    def __init__(self) -> None:
        self._grades: dict[str, RiskGrade] = {}
        self._proposed: dict[str, tuple[RiskGrade, frozenset[str]]] = {}

    def grade(self, key: str) -> RiskGrade | None:
        return self._grades.get(key)

    def grades(self) -> dict[str, RiskGrade]:
        return dict(self._grades)

    def update(self, risks: Mapping[str, SiteRisk]) -> list[GradeChange]:
        """Take new grades; return the changes (subjects no longer graded are forgotten)."""
        changes: list[GradeChange] = []
        seen: set[str] = set()
        for risk in risks.values():
            for a in risk.assessments():
                seen.add(a.key)
                before = self._grades.get(a.key)
                if before is not a.grade:
                    changes.append(GradeChange(a.key, before, a.grade, a))
                    self._grades[a.key] = a.grade
        for key in set(self._grades) - seen:
            del self._grades[key]
            self._proposed.pop(key, None)
        return changes

    def due(self, risks: Mapping[str, SiteRisk], thresholds: Mapping[SubjectKind, RiskGrade | None]
            ) -> list[Assessment]:
        """Assessments that call for a (new or updated) proposal; a subject below its threshold is forgotten, so
        when it rises again it proposes again."""
        out: list[Assessment] = []
        for risk in risks.values():
            for a in risk.assessments():
                threshold = thresholds.get(a.kind)
                if threshold is None or grade_rank(a.grade) < grade_rank(threshold):
                    self._proposed.pop(a.key, None)
                    continue
                last = self._proposed.get(a.key)
                if last is None or grade_rank(a.grade) > grade_rank(last[0]) or not set(a.alarm_ids) <= last[1]:
                    out.append(a)
        return out

    def proposed(self, assessment: Assessment) -> None:
        """Note that ``assessment`` was proposed (its grade and alarms)."""
        last = self._proposed.get(assessment.key)
        grade = assessment.grade if last is None or grade_rank(assessment.grade) > grade_rank(last[0]) else last[0]
        alarms = frozenset(assessment.alarm_ids) | (last[1] if last else frozenset())
        self._proposed[assessment.key] = (grade, alarms)

    def snapshot(self) -> dict[str, Any]:
        return {"grades": {k: v.value for k, v in self._grades.items()},
                "proposed": {k: [g.value, sorted(ids)] for k, (g, ids) in self._proposed.items()}}

    def restore(self, data: Mapping[str, Any]) -> None:
        self._grades = {k: RiskGrade(v) for k, v in data.get("grades", {}).items()}
        self._proposed = {k: (RiskGrade(g), frozenset(ids)) for k, (g, ids) in data.get("proposed", {}).items()}

"""The risk grading's values: its inputs (open alarms, data quality) and its outputs (factors, groups, grades).

`earlywarning.risk.assess` turns the inputs into `SiteRisk` values; everything here is immutable.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from earlywarning.model import RiskGrade, SubjectKind
from foundation.domain import iso

__all__ = ["GRADE_COLOUR", "AlarmRecord", "Assessment", "DataQuality", "Factor", "FactorGroup", "SiteRisk",
           "grade_rank"]

GRADE_COLOUR = {RiskGrade.MAJOR: "red", RiskGrade.SIGNIFICANT: "orange", RiskGrade.GENERAL: "yellow",
                RiskGrade.LOW: "blue"}
"""Risk grades use the warning colours (DOMAIN.md [S]): 重大 red, 较大 orange, 一般 yellow, 低 blue."""
_RANK = {RiskGrade.LOW: 0, RiskGrade.GENERAL: 1, RiskGrade.SIGNIFICANT: 2, RiskGrade.MAJOR: 3}
_NEEDS_PERSON = ("unacknowledged", "returned_unacknowledged")


def grade_rank(grade: RiskGrade) -> int:
    """0 for 低 … 3 for 重大."""
    return _RANK[grade]


# ---------------------------------------------------------------- inputs

@dataclass(frozen=True, slots=True)
class AlarmRecord:
    """What the grading needs of one open alarm (docs/alarms.md); `of` reads an `alerting.model.Alert`.

    ``state`` is its ISA-18.2 state (``isa_state``); it waits for a person while ``unacknowledged``
    or ``returned_unacknowledged``. ``kind`` is the rule kind (``threshold``, ``stale`` …).
    """

    id: str
    site_id: str
    subject: str
    priority: str            # urgent, high, medium, low
    raised_at: float
    acknowledged_at: float | None = None
    state: str = "unacknowledged"
    kind: str = "threshold"

    @classmethod
    def of(cls, alert: Any) -> "AlarmRecord":
        """From an `alerting.model.Alert` (or any object with its fields), or pass an `AlarmRecord` through."""
        if isinstance(alert, AlarmRecord):
            return alert
        tier = alert.tier
        return cls(alert.id, alert.site_id, alert.subject, getattr(tier, "priority", tier), alert.raised_at,
                   alert.acknowledged_at, alert.isa_state, alert.kind)

    @property
    def needs_person(self) -> bool:
        return self.state in _NEEDS_PERSON

    def waiting_s(self, now: float) -> float:
        """How long it has waited for an acknowledgement: since raised, or since the last acknowledgement when
        it escalated past it (docs/alarms.md; the moment of escalation is not known, so this is a lower bound)."""
        if not self.needs_person:
            return 0.0
        return now - (self.acknowledged_at if self.acknowledged_at is not None else self.raised_at)


@dataclass(frozen=True, slots=True)
class DataQuality:
    """Data-quality problems: sites offline or not reporting, sensors stale, frozen or out of range.

    ``alarm_ids`` maps a sensor id or ``site:{id}`` to the alarms that reported its problem (evidence).
    """

    offline: frozenset[str] = frozenset()
    not_reporting: frozenset[str] = frozenset()
    stale: frozenset[str] = frozenset()
    frozen: frozenset[str] = frozenset()
    out_of_range: frozenset[str] = frozenset()
    alarm_ids: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    @classmethod
    def from_alarms(cls, alarms: Iterable[AlarmRecord], kinds: Mapping[str, str]) -> "DataQuality":
        """The problems that open alarms of the data-quality ``kinds`` (risk.yaml) report."""
        found: dict[str, set[str]] = {"offline": set(), "not_reporting": set(), "stale": set(), "frozen": set(),
                                      "out_of_range": set()}
        evidence: dict[str, list[str]] = {}
        for alarm in alarms:
            problem = kinds.get(alarm.kind)
            if problem is None or alarm.state == "normal":
                continue
            key = alarm.site_id if problem in ("offline", "not_reporting") else alarm.subject
            found[problem].add(key)
            evidence.setdefault(f"site:{key}" if problem in ("offline", "not_reporting") else key, []).append(alarm.id)
        return cls(**{k: frozenset(v) for k, v in found.items()}, alarm_ids={k: tuple(v) for k, v in evidence.items()})

    def worse(self, other: "DataQuality") -> "DataQuality":
        """Both sets of problems together."""
        ids = {k: tuple(dict.fromkeys(self.alarm_ids.get(k, ()) + other.alarm_ids.get(k, ())))
               for k in {*self.alarm_ids, *other.alarm_ids}}
        return DataQuality(self.offline | other.offline, self.not_reporting | other.not_reporting,
                           self.stale | other.stale, self.frozen | other.frozen, self.out_of_range | other.out_of_range,
                           ids)


# ---------------------------------------------------------------- outputs

@dataclass(frozen=True, slots=True)
class Factor:
    """One rule that added points, why (in Chinese), its source and certainty, and the alarms or entries behind it."""

    rule: str
    points: float
    detail: str
    source: str
    certainty: str
    alarm_ids: tuple[str, ...] = ()
    entry_ids: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"rule": self.rule, "points": self.points, "detail": self.detail, "source": self.source,
                "certainty": self.certainty, "alarm_ids": list(self.alarm_ids), "entry_ids": list(self.entry_ids)}


@dataclass(frozen=True, slots=True)
class FactorGroup:
    """A group of rules (inherent, alarms, data_quality, operating, commitment): its points after its cap."""

    name: str
    points: float
    cap: float | None
    factors: tuple[Factor, ...]

    def to_json(self) -> dict[str, Any]:
        raw = sum(f.points for f in self.factors)
        return {"name": self.name, "points": self.points, "uncapped": raw, "cap": self.cap,
                "factors": [f.to_json() for f in self.factors]}


@dataclass(frozen=True, slots=True)
class Assessment:
    """The grade of one enterprise or hazard unit at ``at``, with every factor that made it."""

    kind: SubjectKind
    id: str
    site_id: str
    name: str
    at: float
    score: float
    grade: RiskGrade
    groups: tuple[FactorGroup, ...]

    @property
    def key(self) -> str:
        """``enterprise:{site}`` or ``hazard_unit:{unit}``: the warning desk's subject key."""
        return f"{self.kind.value}:{self.id}"

    @property
    def colour(self) -> str:
        return GRADE_COLOUR[self.grade]

    @property
    def alarm_ids(self) -> tuple[str, ...]:
        """The alarms that added points (alarms, then data quality), each once."""
        return tuple(dict.fromkeys(a for g in self.groups for f in g.factors for a in f.alarm_ids))

    @property
    def entry_ids(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(e for g in self.groups for f in g.factors for e in f.entry_ids))

    def group(self, name: str) -> FactorGroup:
        return next(g for g in self.groups if g.name == name)

    def reason_zh(self) -> str:
        """One line for a warning proposal: the grade, the score and what raised it."""
        parts = [f.detail for g in self.groups for f in g.factors if f.points > 0]
        return f"{self.name} 动态风险等级 {self.grade.zh} (得分 {self.score:g}): " + "; ".join(parts)

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind.value, "id": self.id, "site_id": self.site_id, "name": self.name,
                "at": iso(self.at), "score": self.score, "grade": self.grade.value, "grade_zh": self.grade.zh,
                "colour": self.colour, "alarm_ids": list(self.alarm_ids), "entry_ids": list(self.entry_ids),
                "groups": [g.to_json() for g in self.groups]}


@dataclass(frozen=True, slots=True)
class SiteRisk:
    """An enterprise's grade and its hazard units' grades."""

    site_id: str
    enterprise: Assessment
    units: tuple[Assessment, ...] = ()

    def assessments(self) -> tuple[Assessment, ...]:
        return (self.enterprise, *self.units)

    def to_json(self) -> dict[str, Any]:
        return {**self.enterprise.to_json(), "units": [u.to_json() for u in self.units]}

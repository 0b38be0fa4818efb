"""The warning (预警) record: the fields of the Emergency Response Law art. 64, its state and history.

An `EarlyWarning` is immutable: every step of its lifecycle (`earlywarning.states`) returns a new one,
so a step that fails to store leaves nothing half-changed in memory. Times are epoch seconds;
`to_json` writes them in +08:00 as the rest of the API does.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

from foundation.domain import iso
from foundation.warningspec import Circle, Issuer, Measure, WarningLevel

__all__ = ["FINAL_STATES", "IN_FORCE_STATES", "OPEN_STATES", "Area", "EarlyWarning", "Evidence", "HistoryEntry",
           "Origin", "RiskGrade", "Subject", "SubjectKind", "WarningEvent", "WarningState"]


class WarningState(enum.StrEnum):
    """Where a warning is in its lifecycle (docs/warnings.md has the table)."""

    PROPOSED = "proposed"    # by a rule, a risk grade or a person; waits for 研判
    VERIFIED = "verified"    # a duty officer checked it (研判/核实) and found it warranted; not yet published
    REJECTED = "rejected"    # a duty officer found it unwarranted: final, never published
    ISSUED = "issued"        # published (发布), in force
    ADJUSTED = "adjusted"    # level raised or lowered and republished (art. 70), in force
    LIFTED = "lifted"        # 解除 (art. 70): final

    @property
    def zh(self) -> str:
        """The state as the duty room says it."""
        return _STATE_ZH[self]


_STATE_ZH = {WarningState.PROPOSED: "待研判", WarningState.VERIFIED: "已核实(待发布)", WarningState.REJECTED: "已否决",
             WarningState.ISSUED: "已发布", WarningState.ADJUSTED: "已调整", WarningState.LIFTED: "已解除"}

OPEN_STATES = frozenset({WarningState.PROPOSED, WarningState.VERIFIED, WarningState.ISSUED, WarningState.ADJUSTED})
"""At most one warning per (subject, category) is in one of these."""
IN_FORCE_STATES = frozenset({WarningState.ISSUED, WarningState.ADJUSTED})
"""Published and not lifted: its MQTT message is retained."""
FINAL_STATES = frozenset({WarningState.REJECTED, WarningState.LIFTED})
"""Nothing happens to a warning after these."""


class WarningEvent(enum.StrEnum):
    """What happened to a warning: one history entry, one audit record (action ``warning_<event>``)."""

    PROPOSED = "proposed"
    UPDATED = "updated"      # a new proposal for the same (subject, category): evidence added, level raised
    VERIFIED = "verified"
    REJECTED = "rejected"
    ISSUED = "issued"
    ADJUSTED = "adjusted"
    LIFTED = "lifted"
    OVERDUE = "overdue"      # nobody verified the proposal in time: the next desk was told

    @property
    def zh(self) -> str:
        return _EVENT_ZH[self]

    @property
    def publishes(self) -> bool:
        """Whether this event publishes a document (CAP Alert, Update, Cancel)."""
        return self in (WarningEvent.ISSUED, WarningEvent.ADJUSTED, WarningEvent.LIFTED)


_EVENT_ZH = {WarningEvent.PROPOSED: "预警建议, 待研判", WarningEvent.UPDATED: "预警建议更新", WarningEvent.VERIFIED: "研判: 核实",
             WarningEvent.REJECTED: "研判: 否决", WarningEvent.ISSUED: "发布", WarningEvent.ADJUSTED: "调整级别",
             WarningEvent.LIFTED: "解除", WarningEvent.OVERDUE: "超时未研判, 逐级上报"}


class SubjectKind(enum.StrEnum):
    """What a warning is about."""

    ENTERPRISE = "enterprise"      # a site of kind enterprise (or a chemical park, a lifeline asset)
    HAZARD_UNIT = "hazard_unit"    # a major hazard source (生产/储存单元) inside a site: GB 18218's grade is its own
    FOREST_ZONE = "forest_zone"    # a configured zone, or a forest site


class Origin(enum.StrEnum):
    """Who proposed a warning."""

    RULE = "rule"
    RISK_GRADE = "risk_grade"
    PERSON = "person"


class RiskGrade(enum.StrEnum):
    """An enterprise's or hazard unit's dynamic risk grade (MEM style; DOMAIN.md [S]): 重大/较大/一般/低."""

    MAJOR = "major"            # 重大风险, red
    SIGNIFICANT = "significant"  # 较大风险, orange
    GENERAL = "general"        # 一般风险, yellow
    LOW = "low"                # 低风险, blue

    @property
    def zh(self) -> str:
        return {"major": "重大风险", "significant": "较大风险", "general": "一般风险", "low": "低风险"}[self.value]


@dataclass(frozen=True, slots=True)
class Subject:
    """What the warning is about, resolved against the fleet and zones: the site gives scope and county."""

    kind: SubjectKind
    id: str
    name: str
    site_id: str | None
    county: str | None

    @property
    def key(self) -> str:
        """``kind:id``: with the category, what makes a warning unique while open."""
        return f"{self.kind.value}:{self.id}"

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind.value, "id": self.id, "name": self.name, "site_id": self.site_id,
                "county": self.county}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Subject":
        return cls(SubjectKind(data["kind"]), data["id"], data["name"], data["site_id"], data["county"])


@dataclass(frozen=True, slots=True)
class Area:
    """The area possibly affected (可能影响范围): a circle or a polygon, and how it is described."""

    desc: str
    circle: Circle | None = None
    polygon: tuple[tuple[float, float], ...] | None = None

    def __post_init__(self) -> None:
        if (self.circle is None) == (self.polygon is None):
            raise ValueError("an area is a circle or a polygon")

    def to_json(self) -> dict[str, Any]:
        return {"desc": self.desc, "circle": self.circle.model_dump() if self.circle else None,
                "polygon": [list(p) for p in self.polygon] if self.polygon else None}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Area":
        return cls(data["desc"], Circle.model_validate(data["circle"]) if data.get("circle") else None,
                   tuple((p[0], p[1]) for p in data["polygon"]) if data.get("polygon") else None)


@dataclass(frozen=True, slots=True)
class Evidence:
    """Why a warning was proposed: the related alarms and the risk grade that called for it."""

    alarm_ids: tuple[str, ...] = ()
    risk_grade: RiskGrade | None = None

    def merged(self, other: "Evidence") -> "Evidence":
        """This evidence with ``other``'s alarms added (in order, once) and its risk grade if it has one."""
        ids = self.alarm_ids + tuple(a for a in other.alarm_ids if a not in self.alarm_ids)
        return Evidence(ids, other.risk_grade or self.risk_grade)

    def to_json(self) -> dict[str, Any]:
        return {"alarm_ids": list(self.alarm_ids), "risk_grade": self.risk_grade.value if self.risk_grade else None,
                "risk_grade_zh": self.risk_grade.zh if self.risk_grade else None}


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One step: when, what, who and why, the level and state after it, and what it published."""

    at: float
    event: WarningEvent
    by: str
    level: WarningLevel
    state: WarningState
    reason: str | None = None
    identifier: str | None = None     # the published document's identifier
    receivers: tuple[str, ...] = ()   # who was told of this step

    def to_json(self) -> dict[str, Any]:
        return {"at": iso(self.at), "event": self.event.value, "event_zh": self.event.zh, "by": self.by,
                "level": self.level.value, "colour": self.level.colour, "state": self.state.value,
                "reason": self.reason, "identifier": self.identifier, "receivers": list(self.receivers)}

    def to_record(self) -> dict[str, Any]:
        return {"at": self.at, "event": self.event.value, "by": self.by, "level": self.level.value,
                "state": self.state.value, "reason": self.reason, "identifier": self.identifier,
                "receivers": list(self.receivers)}

    @classmethod
    def from_record(cls, data: dict[str, Any]) -> "HistoryEntry":
        return cls(data["at"], WarningEvent(data["event"]), data["by"], WarningLevel(data["level"]),
                   WarningState(data["state"]), data["reason"], data["identifier"], tuple(data["receivers"]))


@dataclass(frozen=True, slots=True)
class EarlyWarning:
    """A warning with the art. 64 fields: category, level, start time (``onset``), area possibly
    affected, what to watch, measures to take, issuer and time issued; plus its subject, evidence,
    state and history.
    """

    id: str
    category: str
    event: str
    level: WarningLevel
    state: WarningState
    subject: Subject
    area: Area
    watch: tuple[Measure, ...]
    measures: tuple[Measure, ...]
    issuer: Issuer
    origin: Origin
    proposed_at: float
    proposed_by: str
    updated_at: float
    evidence: Evidence = Evidence()
    hazard: str | None = None
    onset: float | None = None            # start time; the time issued unless a proposal said otherwise
    expires: float | None = None
    issued_at: float | None = None
    issued_by: str | None = None
    verified_at: float | None = None
    verified_by: str | None = None
    rejected_at: float | None = None
    lifted_at: float | None = None
    proposed_level: WarningLevel | None = None   # a higher level new evidence calls for while in force
    escalation_step: int = 0                      # overdue escalations taken
    version: int = 0                              # documents published
    history: tuple[HistoryEntry, ...] = field(default=())

    @property
    def site_id(self) -> str | None:
        """The site whose tokens see this warning (None: unscoped tokens only)."""
        return self.subject.site_id

    @property
    def is_open(self) -> bool:
        return self.state in OPEN_STATES

    @property
    def in_force(self) -> bool:
        return self.state in IN_FORCE_STATES

    def last(self, event: WarningEvent) -> HistoryEntry | None:
        """The latest history entry of ``event``, or None."""
        return next((h for h in reversed(self.history) if h.event is event), None)

    def to_json(self) -> dict[str, Any]:
        """The API's and MQTT's view. ``tier`` and ``site_id`` let a notification channel treat it as an alert."""
        reason = lambda event: (entry.reason if (entry := self.last(event)) else None)  # noqa: E731
        return {
            "id": self.id, "category": self.category, "category_path": self.category.split("/"), "event": self.event,
            "level": self.level.value, "level_roman": self.level.roman, "level_zh": self.level.name_zh,
            "colour": self.level.colour, "colour_zh": self.level.colour_zh, "label_zh": self.level.label_zh,
            "tier": self.level.colour, "state": self.state.value, "state_zh": self.state.zh,
            "in_force": self.in_force, "subject": self.subject.to_json(), "site_id": self.site_id,
            "county": self.subject.county, "area": self.area.to_json(),
            "onset": iso(self.onset), "expires": iso(self.expires),
            "watch": [m.model_dump() for m in self.watch], "measures": [m.model_dump() for m in self.measures],
            "issuer": {"id": self.issuer.id, "name": self.issuer.name, "sender": self.issuer.sender},
            "issued_at": iso(self.issued_at), "issued_by": self.issued_by,
            "origin": self.origin.value, "proposed_at": iso(self.proposed_at), "proposed_by": self.proposed_by,
            "verified_at": iso(self.verified_at), "verified_by": self.verified_by,
            "verify_reason": reason(WarningEvent.VERIFIED), "rejected_at": iso(self.rejected_at),
            "reject_reason": reason(WarningEvent.REJECTED), "lifted_at": iso(self.lifted_at),
            "lift_reason": reason(WarningEvent.LIFTED), "hazard": self.hazard, "evidence": self.evidence.to_json(),
            "proposed_level": self.proposed_level.value if self.proposed_level else None,
            "escalation_step": self.escalation_step, "version": self.version, "updated_at": iso(self.updated_at),
            "history": [h.to_json() for h in self.history],
        }

    def to_record(self) -> dict[str, Any]:
        """Everything, as stored (epoch seconds, enum values)."""
        return {
            "id": self.id, "category": self.category, "event": self.event, "level": self.level.value,
            "state": self.state.value, "subject": self.subject.to_json(), "area": self.area.to_json(),
            "watch": [m.model_dump() for m in self.watch], "measures": [m.model_dump() for m in self.measures],
            "issuer": self.issuer.model_dump(), "origin": self.origin.value, "proposed_at": self.proposed_at,
            "proposed_by": self.proposed_by, "updated_at": self.updated_at,
            "evidence": {"alarm_ids": list(self.evidence.alarm_ids),
                         "risk_grade": self.evidence.risk_grade.value if self.evidence.risk_grade else None},
            "hazard": self.hazard, "onset": self.onset, "expires": self.expires, "issued_at": self.issued_at,
            "issued_by": self.issued_by, "verified_at": self.verified_at, "verified_by": self.verified_by,
            "rejected_at": self.rejected_at, "lifted_at": self.lifted_at,
            "proposed_level": self.proposed_level.value if self.proposed_level else None,
            "escalation_step": self.escalation_step, "version": self.version,
            "history": [h.to_record() for h in self.history],
        }

    @classmethod
    def from_record(cls, data: dict[str, Any]) -> "EarlyWarning":
        evidence = data["evidence"]
        return cls(
            id=data["id"], category=data["category"], event=data["event"], level=WarningLevel(data["level"]),
            state=WarningState(data["state"]), subject=Subject.from_json(data["subject"]),
            area=Area.from_json(data["area"]), watch=tuple(Measure.model_validate(m) for m in data["watch"]),
            measures=tuple(Measure.model_validate(m) for m in data["measures"]),
            issuer=Issuer.model_validate(data["issuer"]), origin=Origin(data["origin"]),
            proposed_at=data["proposed_at"], proposed_by=data["proposed_by"], updated_at=data["updated_at"],
            evidence=Evidence(tuple(evidence["alarm_ids"]),
                              RiskGrade(evidence["risk_grade"]) if evidence["risk_grade"] else None),
            hazard=data["hazard"], onset=data["onset"], expires=data["expires"], issued_at=data["issued_at"],
            issued_by=data["issued_by"], verified_at=data["verified_at"], verified_by=data["verified_by"],
            rejected_at=data["rejected_at"], lifted_at=data["lifted_at"],
            proposed_level=WarningLevel(data["proposed_level"]) if data["proposed_level"] else None,
            escalation_step=data["escalation_step"], version=data["version"],
            history=tuple(HistoryEntry.from_record(h) for h in data["history"]))

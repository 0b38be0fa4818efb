"""The alert record of CONTRACT §3: one episode of one rule on one subject."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from typing import Any

from liaowang.domain import Tier, iso

STATES = ("active", "acknowledged", "resolved", "closed", "shelved")
OPEN_STATES = ("active", "acknowledged", "shelved")
"""States in which the episode's condition is (or may still be) true."""

EVENTS = ("raised", "escalated", "deescalated", "acknowledged", "resolved", "closed", "shelved",
          "source_lost", "source_restored", "returned", "unshelved", "chattering", "notification_escalated")
"""``returned``: a latched alert's condition cleared (it stays until acknowledged); ``unshelved``:
a shelf expired; ``chattering``: the (rule, subject) was raised ≥ 3 times in 60 s;
``notification_escalated``: unacknowledged past its tier's deadline, the next receiver was notified."""


@dataclass(slots=True)
class HistoryEntry:
    at: float
    event: str
    tier: Tier
    by: str | None = None
    note: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"at": iso(self.at), "event": self.event, "tier": self.tier.colour, "by": self.by, "note": self.note}


@dataclass(slots=True)
class Alert:
    """A mutable alert episode; alerting's lifecycle is the only writer."""

    id: str
    rule_id: str
    kind: str
    subject: str
    site_id: str
    county: str
    family: str
    tier: Tier
    level: str | None
    state: str
    message: str
    value: float
    threshold: float | None
    unit: str
    raised_at: float
    updated_at: float
    acknowledged_at: float | None = None
    acknowledged_by: str | None = None
    resolved_at: float | None = None
    closed_at: float | None = None
    closed_by: str | None = None
    shelved_until: float | None = None
    source_lost: bool = False
    latched: bool = False
    cleared_at: float | None = None
    suppressed: str | None = None
    chattering: bool = False
    first_out: bool = False
    notify_level: int = 0
    note: str | None = None
    history: list[HistoryEntry] = field(default_factory=list)

    @staticmethod
    def make_id(rule_id: str, subject: str, raised_at: float) -> str:
        """A deterministic id, so a replay of the same feed gives the same alert ids."""
        return hashlib.sha1(f"{rule_id}|{subject}|{raised_at!r}".encode()).hexdigest()[:20]

    def to_json(self) -> dict[str, Any]:
        """The contract's JSON form (times RFC 3339 in +08:00, tier as its colour)."""
        return {
            "id": self.id, "rule_id": self.rule_id, "kind": self.kind, "subject": self.subject,
            "site_id": self.site_id, "county": self.county, "family": self.family,
            "tier": self.tier.colour, "tier_zh": self.tier.label_zh, "level": self.level, "state": self.state,
            "message": self.message, "value": self.value, "threshold": self.threshold, "unit": self.unit,
            "raised_at": iso(self.raised_at), "updated_at": iso(self.updated_at),
            "acknowledged_at": iso(self.acknowledged_at), "acknowledged_by": self.acknowledged_by,
            "resolved_at": iso(self.resolved_at), "closed_at": iso(self.closed_at), "closed_by": self.closed_by,
            "shelved_until": iso(self.shelved_until), "source_lost": self.source_lost, "note": self.note,
            "latched": self.latched, "cleared_at": iso(self.cleared_at), "suppressed": self.suppressed,
            "chattering": self.chattering, "first_out": self.first_out, "notify_level": self.notify_level,
            "history": [h.to_json() for h in self.history],
        }

    def to_record(self) -> dict[str, Any]:
        """A lossless dict for storage (epoch seconds, tier as its number)."""
        record = asdict(self)
        record["tier"] = int(self.tier)
        for h in record["history"]:
            h["tier"] = int(h["tier"])
        return record

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> "Alert":
        """Rebuild an alert from `to_record` output."""
        data = {k: v for k, v in record.items() if k in cls.__dataclass_fields__}  # records from older versions load too
        data["tier"] = Tier(data["tier"])
        data["history"] = [HistoryEntry(**{**h, "tier": Tier(h["tier"])}) for h in data["history"]]
        return cls(**data)

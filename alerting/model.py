"""The alert record of CONTRACT §3: one episode of one rule on one subject (docs/alarms.md)."""

from __future__ import annotations

import enum
import functools
import hashlib
from dataclasses import dataclass, field, fields
from typing import Any

from alerting.messages import Rendered, legacy
from foundation.wording import load_wording
from foundation.domain import Tier, iso as _iso_uncached

# Serialisation is on the alarm hot path (docs/BENCHMARKS.md: 29 % of the batch feed's GIL with alarms on):
# an alert's times and its history entries' times never change once written, so their RFC 3339 strings
# are formatted once (datetime.fromtimestamp + isoformat is most of an entry's cost).
iso = functools.lru_cache(maxsize=1 << 16)(_iso_uncached)


class _Words:
    """The shipped wording's phrase dicts, built once per (table, key): callers only serialise them (read-only)."""

    def __init__(self) -> None:
        self._words: object = None
        self._cache: dict[tuple[str, str], dict[str, str] | None] = {}

    def __call__(self, table: str, key: str | None) -> dict[str, str] | None:
        words = load_wording()
        if words is not self._words:  # a reloaded wording: forget what the old one said
            self._words, self._cache = words, {}
        if key is None:
            return None
        found = self._cache.get((table, key), _MISSING)
        if found is _MISSING:
            found = self._cache[(table, key)] = words.words_for(getattr(words, table), key)
        return found


_MISSING = object()
_phrase = _Words()

STATES = ("active", "acknowledged", "resolved", "closed", "shelved")
"""The contract's ``state`` values (derived from the ISA-18.2 state, see `Alert.state`)."""
OPEN_STATES = ("active", "acknowledged", "shelved")
"""States in which the episode is open: its condition holds, or a person still has to look at it."""


class AlarmState(enum.StrEnum):
    """The ISA-18.2 state of an episode underneath shelving and suppression (docs/alarms.md)."""

    NORMAL = "normal"                                      # over: back to normal and nobody has to look
    UNACKNOWLEDGED = "unacknowledged"                      # condition holds, nobody has taken it
    ACKNOWLEDGED = "acknowledged"                          # condition holds, a person has taken it
    RETURNED_UNACKNOWLEDGED = "returned_unacknowledged"    # latched: back to normal, still to be acknowledged


class CloseCause(enum.StrEnum):
    """消警 cause categories (DOMAIN.md, MEM practice [S]): why an alarm episode was closed.

    >>> CloseCause.parse("误报") is CloseCause.FALSE_ALARM, CloseCause.parse("maintenance").zh
    (True, '检修作业')
    """

    FALSE_ALARM = "false_alarm"
    INSTRUMENT_FAULT = "instrument_fault"
    PROCESS_UPSET = "process_upset"
    MAINTENANCE = "maintenance"
    REAL_INCIDENT = "real_incident"

    @property
    def zh(self) -> str:
        """The Chinese name the duty room uses."""
        return _CAUSE_ZH[self]

    @classmethod
    def parse(cls, value: str) -> "CloseCause":
        """A cause by its English value or its Chinese name; ValueError otherwise."""
        for cause in cls:
            if value in (cause.value, _CAUSE_ZH[cause]):
                return cause
        raise ValueError(f"unknown close cause {value!r}: one of " + ", ".join(f"{c.value} ({c.zh})" for c in cls))


_CAUSE_ZH = {CloseCause.FALSE_ALARM: "误报", CloseCause.INSTRUMENT_FAULT: "仪表故障", CloseCause.PROCESS_UPSET: "工艺波动",
             CloseCause.MAINTENANCE: "检修作业", CloseCause.REAL_INCIDENT: "真实险情"}


class Event(enum.StrEnum):
    """What happened to an alert: the ``event`` of CONTRACT §2 and of every history entry."""

    RAISED = "raised"
    ESCALATED = "escalated"
    DEESCALATED = "deescalated"
    RETURNED = "returned"            # a latching episode's condition cleared before anyone acknowledged it
    REACTIVATED = "reactivated"      # the condition came back while returned-unacknowledged
    RESOLVED = "resolved"            # the episode is over (normal)
    ACKNOWLEDGED = "acknowledged"
    CLOSED = "closed"                # 消警
    SHELVED = "shelved"
    UNSHELVED = "unshelved"
    SOURCE_LOST = "source_lost"
    SOURCE_RESTORED = "source_restored"
    CHATTERING = "chattering"
    NOTIFICATION_ESCALATED = "notification_escalated"


EVENTS = tuple(e.value for e in Event)
"""``returned``: a latched alert's condition cleared (it stays until acknowledged); ``reactivated``:
it came back before that; ``unshelved``: a shelf ended; ``chattering``: the (rule, subject) was
raised ≥ 3 times in 60 s; ``notification_escalated``: unacknowledged past its tier's deadline, the
next receiver was notified."""


@dataclass(slots=True)
class HistoryEntry:
    """One change of an alert, with the value and message of that moment and why it was not announced."""

    at: float
    event: str
    tier: Tier
    by: str | None = None
    note: str | None = None
    value: float | None = None
    message: str | None = None
    muted: str | None = None
    text: dict[str, str] | None = None  # the message in both languages (alerting/messages.py), for rule-driven entries

    def to_json(self) -> dict[str, Any]:
        return {"at": iso(self.at), "event": self.event, "event_text": _phrase("events", self.event),
                "tier": self.tier.colour, "priority": self.tier.priority,
                "by": self.by, "note": self.note, "value": self.value, "message": self.message, "muted": self.muted,
                "text": self.text}


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
    cleared_at: float | None = None
    suppressed: str | None = None
    chattering: bool = False
    first_out: bool = False
    notify_level: int = 0
    note: str | None = None
    history: list[HistoryEntry] = field(default_factory=list)
    isa: AlarmState = AlarmState.UNACKNOWLEDGED
    condition_active: bool = True
    peak_tier: Tier | None = None
    peak_value: float | None = None
    peak_at: float | None = None
    raise_message: str | None = None
    latching: bool = False
    acked_tier: Tier | None = None
    ack_note: str | None = None
    activated_at: float | None = None
    shelved_by: str | None = None
    shelve_reason: str | None = None
    close_cause: str | None = None
    title: dict[str, str] | None = None       # what it is about, by name: {"zh", "en"} (alerting/messages.py)
    text: dict[str, str] | None = None        # `message` in both languages
    raise_text: dict[str, str] | None = None  # `raise_message` in both languages

    def __post_init__(self) -> None:
        if self.peak_tier is None:
            self.peak_tier, self.peak_value, self.peak_at = self.tier, self.value, self.raised_at
        if self.raise_message is None:
            self.raise_message = self.message
        if self.raise_text is None:
            self.raise_text = self.text
        if self.activated_at is None:
            self.activated_at = self.raised_at

    # ------------------------------------------------------------------ derived contract fields

    @property
    def state(self) -> str:
        """The contract's state: closed, resolved (over), shelved, acknowledged or active."""
        if self.closed_at is not None:
            return "closed"
        if self.isa is AlarmState.NORMAL:
            return "resolved"
        if self.shelved_until is not None:
            return "shelved"
        return "acknowledged" if self.isa is AlarmState.ACKNOWLEDGED else "active"

    @property
    def latched(self) -> bool:
        """Back to normal, waiting for an acknowledgement (returned-unacknowledged)."""
        return self.isa is AlarmState.RETURNED_UNACKNOWLEDGED

    @property
    def open(self) -> bool:
        """Whether the episode is still open (not normal)."""
        return self.isa is not AlarmState.NORMAL

    @property
    def isa_state(self) -> str:
        """The ISA-18.2 state as docs/alarms.md names it, shelving and suppression included."""
        if self.isa is AlarmState.NORMAL:
            return "normal"
        if self.shelved_until is not None:
            return "shelved"
        if self.suppressed:
            return "suppressed"
        return self.isa.value

    @staticmethod
    def make_id(rule_id: str, subject: str, raised_at: float) -> str:
        """A deterministic id, so a replay of the same feed gives the same alert ids."""
        return hashlib.sha1(f"{rule_id}|{subject}|{raised_at!r}".encode()).hexdigest()[:20]

    def texts(self) -> Rendered:
        """Title and text in both languages; for an alert stored before alarm texts, words from its kind and level."""
        if self.title is not None and self.text is not None:
            return Rendered(self.title, self.text)
        return legacy(self.kind, self.tier, self.level, self.value, self.unit, self.message)

    def to_json(self) -> dict[str, Any]:
        """The contract's JSON form (times RFC 3339 in +08:00, tier as its colour)."""
        texts, words = self.texts(), load_wording()
        return {"title": texts.title, "text": texts.text, "county_en": words.county(self.county),
                "priority_text": _phrase("priorities", self.tier.priority),
                "level_text": {lang: words.level(self.level, lang) for lang in ("zh", "en")} if self.level else None,
                "kind_text": _phrase("kinds", self.kind),
                "isa_state_text": _phrase("states", self.isa_state),
                "raise_text": self.raise_text or (texts.text if self.raise_message == self.message else
                                                  {"zh": self.raise_message, "en": texts.text["en"]}),
            "id": self.id, "rule_id": self.rule_id, "kind": self.kind, "subject": self.subject,
            "site_id": self.site_id, "county": self.county, "family": self.family,
            "tier": self.tier.colour, "tier_zh": self.tier.label_zh, "priority": self.tier.priority,
            "level": self.level, "state": self.state, "isa_state": self.isa_state,
            "peak_tier": self.peak_tier.colour if self.peak_tier else None,
            "peak_priority": self.peak_tier.priority if self.peak_tier else None,
            "peak_value": self.peak_value, "peak_at": iso(self.peak_at), "raise_message": self.raise_message,
            "condition_active": self.condition_active, "latching": self.latching, "ack_note": self.ack_note,
            "activated_at": iso(self.activated_at), "shelved_by": self.shelved_by, "shelve_reason": self.shelve_reason,
            "message": self.message, "value": self.value, "threshold": self.threshold, "unit": self.unit,
            "raised_at": iso(self.raised_at), "updated_at": iso(self.updated_at),
            "acknowledged_at": iso(self.acknowledged_at), "acknowledged_by": self.acknowledged_by,
            "resolved_at": iso(self.resolved_at), "closed_at": iso(self.closed_at), "closed_by": self.closed_by,
            "close_cause": self.close_cause,
            "close_cause_zh": CloseCause(self.close_cause).zh if self.close_cause else None,
            "shelved_until": iso(self.shelved_until), "source_lost": self.source_lost, "note": self.note,
            "latched": self.latched, "cleared_at": iso(self.cleared_at), "suppressed": self.suppressed,
            "chattering": self.chattering, "first_out": self.first_out, "notify_level": self.notify_level,
            "history": [h.to_json() for h in self.history],
        }

    def to_record(self) -> dict[str, Any]:
        """A lossless dict for storage (epoch seconds, tier as its number).

        Built field by field, not with `dataclasses.asdict` (which deep-copies every value: twice the
        cost of the whole JSON form on an alert with a long history). The dicts it holds (``text``,
        ``title``) are the alert's own: serialise the record, do not change it.
        """
        record = {name: getattr(self, name) for name in _ALERT_FIELDS}
        record["tier"] = int(self.tier)
        record["peak_tier"] = int(self.peak_tier) if self.peak_tier is not None else None
        record["acked_tier"] = int(self.acked_tier) if self.acked_tier is not None else None
        record["isa"] = self.isa.value
        record["history"] = [{**{name: getattr(h, name) for name in _ENTRY_FIELDS}, "tier": int(h.tier)}
                             for h in self.history]
        return record

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> "Alert":
        """Rebuild an alert from `to_record` output."""
        data = {k: v for k, v in record.items() if k in cls.__dataclass_fields__}  # records from older versions load too
        data["tier"] = Tier(data["tier"])
        for key in ("peak_tier", "acked_tier"):
            if data.get(key) is not None:
                data[key] = Tier(data[key])
        if "isa" in data:
            data["isa"] = AlarmState(data["isa"])
        else:  # written before the ISA-18.2 core: derive it from the old state and latch flag
            old = record.get("state")
            data["isa"] = (AlarmState.NORMAL if old in ("resolved", "closed") else
                           AlarmState.RETURNED_UNACKNOWLEDGED if record.get("latched") else
                           AlarmState.ACKNOWLEDGED if record.get("acknowledged_at") is not None else
                           AlarmState.UNACKNOWLEDGED)
            data["condition_active"] = old not in ("resolved", "closed") and not record.get("latched")
        data["history"] = [HistoryEntry(**{k: v for k, v in {**h, "tier": Tier(h["tier"])}.items()
                                           if k in HistoryEntry.__dataclass_fields__}) for h in data["history"]]
        return cls(**data)


_ALERT_FIELDS = tuple(f.name for f in fields(Alert))
_ENTRY_FIELDS = tuple(f.name for f in fields(HistoryEntry))

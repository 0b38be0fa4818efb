"""The warning lifecycle as pure functions: each takes a warning and returns the next one.

They know nothing of stores, routing, clocks or publishing; `earlywarning.desk.WarningDesk`
decides which warning an action is for and stores, audits, notifies and publishes what they return.
Each raises `NotAllowed` (HTTP 409) when the state does not allow the step and `InvalidWarning`
(HTTP 422) when its parameters are wrong (no reason, the same level, a level the category does not have).

Walk-through (an enterprise warning, docs/warnings.md)::

    proposed  Ⅱ orange   a rule or a person proposes
    verified  Ⅱ          a duty officer checks it (研判/核实), with a reason
    issued    Ⅱ          published: CAP Alert, retained on MQTT
    adjusted  Ⅰ red      raised as things got worse (art. 70): CAP Update
    lifted    Ⅰ          the danger has passed (art. 70): CAP Cancel, retained message cleared

>>> TRANSITIONS[Action.VERIFY]
(<WarningState.PROPOSED: 'proposed'>,)
>>> sorted(s.value for s in TRANSITIONS[Action.LIFT])
['adjusted', 'issued']
"""

from __future__ import annotations

import enum
from dataclasses import replace

from earlywarning.model import EarlyWarning, Evidence, HistoryEntry, WarningEvent, WarningState
from foundation.warningspec import Measure, WarningLevel

__all__ = ["TRANSITIONS", "Action", "InvalidWarning", "NotAllowed", "WarningError", "WarningNotFound", "adjust",
           "issue", "lift", "merge", "overdue", "reject", "verify"]


class WarningError(Exception):
    """Base of the warning lifecycle's errors."""


class WarningNotFound(WarningError, LookupError):
    """No warning (or no subject) has that id: HTTP 404."""


class NotAllowed(WarningError):
    """The warning's state does not allow this step: HTTP 409."""


class InvalidWarning(WarningError, ValueError):
    """The step's parameters are wrong (a missing reason, the same level, a level the category lacks): HTTP 422."""


class Action(enum.StrEnum):
    """What a person (or the ticker) does to an existing warning."""

    VERIFY = "verify"
    REJECT = "reject"
    ISSUE = "issue"
    ADJUST = "adjust"
    LIFT = "lift"
    MERGE = "merge"      # a new proposal for the same (subject, category)
    OVERDUE = "overdue"  # the ticker: a proposal past its verification deadline


S = WarningState
TRANSITIONS: dict[Action, tuple[WarningState, ...]] = {
    Action.VERIFY: (S.PROPOSED,),
    Action.REJECT: (S.PROPOSED, S.VERIFIED),       # a verified proposal not yet published may still be withdrawn
    Action.ISSUE: (S.VERIFIED,),                   # never published unless verified
    Action.ADJUST: (S.ISSUED, S.ADJUSTED),
    Action.LIFT: (S.ISSUED, S.ADJUSTED),
    Action.MERGE: (S.PROPOSED, S.VERIFIED, S.ISSUED, S.ADJUSTED),
    Action.OVERDUE: (S.PROPOSED,),
}
"""Action → the states it is allowed in. Rejected and lifted allow nothing: they are final."""


def _allowed(warning: EarlyWarning, action: Action) -> None:
    if warning.state not in TRANSITIONS[action]:
        allowed = ", ".join(s.value for s in TRANSITIONS[action])
        raise NotAllowed(f"warning {warning.id} is {warning.state.value}; {action.value} needs {allowed}")


def _reason(reason: str | None, action: Action) -> str:
    text = (reason or "").strip()
    if not text:
        raise InvalidWarning(f"{action.value} needs a reason")
    return text


def _step(warning: EarlyWarning, at: float, event: WarningEvent, by: str, reason: str | None = None,
          receivers: tuple[str, ...] = (), **changes) -> EarlyWarning:
    after = replace(warning, updated_at=max(at, warning.updated_at), **changes)
    entry = HistoryEntry(at, event, by, after.level, after.state, reason, None, receivers)
    return replace(after, history=warning.history + (entry,))


def verify(warning: EarlyWarning, by: str, reason: str | None, at: float) -> EarlyWarning:
    """研判/核实: the duty officer finds the proposal warranted (a reason is required)."""
    _allowed(warning, Action.VERIFY)
    text = _reason(reason, Action.VERIFY)
    return _step(warning, at, WarningEvent.VERIFIED, by, text, state=S.VERIFIED, verified_at=at, verified_by=by)


def reject(warning: EarlyWarning, by: str, reason: str | None, at: float) -> EarlyWarning:
    """研判: the duty officer finds the proposal unwarranted (a reason is required); final, never published."""
    _allowed(warning, Action.REJECT)
    text = _reason(reason, Action.REJECT)
    return _step(warning, at, WarningEvent.REJECTED, by, text, state=S.REJECTED, rejected_at=at)


def issue(warning: EarlyWarning, by: str, at: float, note: str | None = None, expires: float | None = None
          ) -> EarlyWarning:
    """Publish a verified warning: it is in force from ``onset`` (the time issued unless the proposal set one)."""
    _allowed(warning, Action.ISSUE)
    expires = expires if expires is not None else warning.expires
    onset = warning.onset if warning.onset is not None else at
    if expires is not None and expires <= onset:
        raise InvalidWarning("expires must be after the start time (onset)")
    return _step(warning, at, WarningEvent.ISSUED, by, (note or "").strip() or None, state=S.ISSUED, issued_at=at,
                 issued_by=by, onset=onset, expires=expires, version=warning.version + 1)


def adjust(warning: EarlyWarning, by: str, level: WarningLevel, reason: str | None, at: float,
           allowed: tuple[WarningLevel, ...], watch: tuple[Measure, ...], measures: tuple[Measure, ...]
           ) -> EarlyWarning:
    """Raise or lower an issued warning's level and republish it (art. 70); ``watch`` and ``measures``
    are the guidance for the new level."""
    _allowed(warning, Action.ADJUST)
    text = _reason(reason, Action.ADJUST)
    if level is warning.level:
        raise InvalidWarning(f"warning {warning.id} is already {level.label_zh}")
    if level not in allowed:
        raise InvalidWarning(f"category {warning.category} has no level {level.value}")
    return _step(warning, at, WarningEvent.ADJUSTED, by, text, state=S.ADJUSTED, level=level, watch=watch,
                 measures=measures, proposed_level=None, version=warning.version + 1)


def lift(warning: EarlyWarning, by: str, reason: str | None, at: float) -> EarlyWarning:
    """解除: the danger has passed (art. 70); final. A reason is required."""
    _allowed(warning, Action.LIFT)
    text = _reason(reason, Action.LIFT)
    return _step(warning, at, WarningEvent.LIFTED, by, text, state=S.LIFTED, lifted_at=at,
                 version=warning.version + 1)


def merge(warning: EarlyWarning, by: str, level: WarningLevel, evidence: Evidence, at: float,
          watch: tuple[Measure, ...], measures: tuple[Measure, ...], reason: str | None = None
          ) -> EarlyWarning | None:
    """A new proposal for an open warning's (subject, category); None when it brings nothing new.

    Not yet published (proposed, verified): a higher level raises the warning (``watch`` and
    ``measures`` are the guidance for it); a lower one never lowers it. In force: the level stays
    until a person adjusts it; a higher one is kept as ``proposed_level`` and the desk is told.
    New alarms and a new risk grade are added to the evidence either way.
    """
    _allowed(warning, Action.MERGE)
    merged = warning.evidence.merged(evidence)
    changes: dict = {}
    notes: list[str] = []
    if merged != warning.evidence:
        changes["evidence"] = merged
        added = len(merged.alarm_ids) - len(warning.evidence.alarm_ids)
        notes.append(f"新增 {added} 条相关报警" if added else "风险等级更新")
    if level.rank > warning.level.rank:
        if warning.in_force:
            if warning.proposed_level is None or level.rank > warning.proposed_level.rank:
                changes["proposed_level"] = level
                notes.append(f"建议调整为{level.label_zh}")
        else:
            changes.update(level=level, watch=watch, measures=measures)
            notes.append(f"级别提高为{level.label_zh}")
    if not changes:
        return None
    text = "; ".join(notes) + (f" ({reason.strip()})" if reason and reason.strip() else "")
    return _step(warning, at, WarningEvent.UPDATED, by, text, **changes)


def overdue(warning: EarlyWarning, at: float, step: int, receivers: tuple[str, ...], deadline_s: float
            ) -> EarlyWarning:
    """Nobody verified the proposal within ``deadline_s``: escalation step ``step`` tells ``receivers``."""
    _allowed(warning, Action.OVERDUE)
    reason = f"超过 {deadline_s:g} 秒未研判" + (f", 通知 {', '.join(receivers)}" if receivers else ", 无上级接收方")
    return _step(warning, at, WarningEvent.OVERDUE, "system", reason, receivers, escalation_step=step)

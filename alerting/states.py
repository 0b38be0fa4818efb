"""The state table of docs/alarms.md as code: one function per event, each moving one open alert.

These functions change an `Alert` in place and return the `Step`s they took — the events to
store and whether to announce them (notify receivers). They know nothing of stores, routing or
clocks; `alerting.lifecycle.AlertManager` decides which alert an event is for, opens new episodes
(with their mutes: shelf, maintenance, out of service) and stores what the steps say.

Walk-through (a gas alarm that latches at every priority)::

    activate(yellow)  → raised            unacknowledged, peak yellow
    activate(orange)  → escalated         unacknowledged, peak orange
    activate(yellow)  → deescalated       unacknowledged, peak stays orange
    clear             → returned          returned-unacknowledged (latched on its peak)
    activate(orange)  → reactivated       unacknowledged again, announced like a new activation
    ack               → acknowledged      acknowledged
    clear             → resolved          normal: the episode is over
"""

from __future__ import annotations

from dataclasses import dataclass

from alerting.model import AlarmState, Alert, Event, HistoryEntry
from foundation.domain import Tier
from rules.base import Signal


class LifecycleError(Exception):
    """A person's action that the alert's state does not allow (HTTP 409)."""


@dataclass(frozen=True, slots=True)
class Step:
    """One event an alert went through: ``announce`` says whether receivers are notified; ``muted``
    names the rule that kept an activation from being announced (shelved, suppressed)."""

    event: Event
    announce: bool = True
    muted: str | None = None
    entry: int | None = None  # the index of the history entry it recorded


def mute_of(alert: Alert) -> str | None:
    """Why changes of this alert are not announced right now, or None."""
    if alert.shelved_until is not None:
        return f"shelved until {alert.shelved_until:.0f} by {alert.shelved_by}"
    if alert.suppressed:
        return f"suppressed: {alert.suppressed}"
    return None


def record(alert: Alert, at: float, event: Event, *, announce: bool = True, muted: str | None = None,
           by: str | None = None, note: str | None = None, value: float | None = None,
           message: str | None = None) -> Step:
    """Append the history entry of one event and return its step (muted steps are never announced)."""
    alert.history.append(HistoryEntry(at=at, event=event.value, tier=alert.tier, by=by, note=note, value=value,
                                      message=message, muted=muted))
    alert.updated_at = max(alert.updated_at, at)
    return Step(event, announce and muted is None, muted, len(alert.history) - 1)


def _reach(alert: Alert, signal: Signal) -> None:
    """Keep the episode's peak: the highest priority reached, with the value and time it first got there."""
    assert signal.tier is not None
    if alert.peak_tier is None or signal.tier > alert.peak_tier:
        alert.peak_tier, alert.peak_value, alert.peak_at = signal.tier, signal.value, signal.ts


def activate(alert: Alert, signal: Signal) -> list[Step]:
    """activate(p) on an open episode: the rows unacknowledged, acknowledged, returned-unacknowledged
    (and the same underneath a shelf or a suppression) of docs/alarms.md."""
    tier = signal.tier
    assert tier is not None and alert.open
    alert.condition_active = True
    alert.value = signal.value
    if signal.threshold is not None:
        alert.threshold = signal.threshold
    alert.level = signal.level if signal.level is not None else alert.level
    _reach(alert, signal)
    muted = mute_of(alert)
    if alert.isa is AlarmState.RETURNED_UNACKNOWLEDGED:
        alert.isa, alert.cleared_at = AlarmState.UNACKNOWLEDGED, None
        alert.tier, alert.message = tier, signal.message
        alert.activated_at, alert.notify_level = signal.ts, 0  # escalation timers start again
        return [record(alert, signal.ts, Event.REACTIVATED, muted=muted, value=signal.value, message=signal.message)]
    if tier == alert.tier:
        alert.updated_at = max(alert.updated_at, signal.ts)
        return []
    event = Event.ESCALATED if tier > alert.tier else Event.DEESCALATED
    if alert.isa is AlarmState.ACKNOWLEDGED and tier > (alert.acked_tier or alert.tier):
        alert.isa = AlarmState.UNACKNOWLEDGED  # above what was taken: a person must take it again
        alert.activated_at, alert.notify_level = signal.ts, 0
    alert.tier, alert.message = tier, signal.message
    return [record(alert, signal.ts, event, muted=muted, value=signal.value, message=signal.message)]


def clear(alert: Alert, signal: Signal) -> list[Step]:
    """clear on an open episode: latching and unacknowledged → returned-unacknowledged; otherwise over."""
    assert alert.open
    alert.condition_active = False
    alert.value = signal.value
    muted = mute_of(alert)
    if alert.isa is AlarmState.RETURNED_UNACKNOWLEDGED:
        return []
    if alert.isa is AlarmState.UNACKNOWLEDGED and alert.latching and not alert.suppressed:
        alert.isa, alert.cleared_at = AlarmState.RETURNED_UNACKNOWLEDGED, signal.ts
        return [record(alert, signal.ts, Event.RETURNED, muted=muted, value=signal.value, message=signal.message)]
    return [end(alert, signal.ts, value=signal.value, message=signal.message)]


def end(alert: Alert, at: float, *, value: float | None = None, message: str | None = None) -> Step:
    """The episode is over (normal); a resolution is good news, announced even under a shelf."""
    alert.isa, alert.resolved_at = AlarmState.NORMAL, at
    alert.shelved_until = None
    muted = f"suppressed: {alert.suppressed}" if alert.suppressed else None
    return record(alert, at, Event.RESOLVED, muted=muted, value=value, message=message)


def acknowledge(alert: Alert, by: str, note: str | None, now: float) -> list[Step]:
    """确认: unacknowledged → acknowledged; returned-unacknowledged → normal; a resolved episode
    nobody acknowledged is marked acknowledged."""
    if alert.closed_at is not None:
        raise LifecycleError(f"alert {alert.id} is closed")
    if alert.acknowledged_at is not None and alert.isa in (AlarmState.ACKNOWLEDGED, AlarmState.NORMAL):
        raise LifecycleError(f"alert {alert.id} is already acknowledged")
    muted = f"suppressed: {alert.suppressed}" if alert.suppressed else None
    alert.acknowledged_at, alert.acknowledged_by, alert.ack_note = now, by, note
    alert.acked_tier = alert.tier
    alert.note = note if note else alert.note
    steps = [record(alert, now, Event.ACKNOWLEDGED, by=by, note=note, muted=muted)]
    if alert.isa is AlarmState.UNACKNOWLEDGED:
        alert.isa = AlarmState.ACKNOWLEDGED
    elif alert.isa is AlarmState.RETURNED_UNACKNOWLEDGED:
        cleared = alert.cleared_at
        steps.append(end(alert, now))
        alert.resolved_at = cleared if cleared is not None else now  # when the process returned to normal
    return steps


def close(alert: Alert, by: str, note: str, now: float, cause: str | None = None) -> list[Step]:
    """消警: a person closes an episode that is over, with a note saying why (and its cause category)."""
    if not note or not note.strip():
        raise LifecycleError("a closing note is required")
    if alert.closed_at is not None:
        raise LifecycleError(f"alert {alert.id} is already closed")
    if alert.isa is not AlarmState.NORMAL:
        raise LifecycleError(f"alert {alert.id} is {alert.state}; only resolved alerts can be closed")
    alert.closed_at, alert.closed_by, alert.close_cause = now, by, cause
    alert.note = note
    muted = f"suppressed: {alert.suppressed}" if alert.suppressed else None
    return [record(alert, now, Event.CLOSED, by=by, note=note, muted=muted)]


def shelve(alert: Alert, by: str, until: float, reason: str, now: float) -> list[Step]:
    """Hide an open episode until ``until``: its changes are stored, not announced."""
    if not reason or not reason.strip():
        raise LifecycleError("a shelving reason is required")
    if not alert.open:
        raise LifecycleError(f"alert {alert.id} is {alert.state}; only open alerts are shelved")
    if alert.shelved_until is not None:
        raise LifecycleError(f"alert {alert.id} is already shelved")
    if alert.suppressed:  # docs/alarms.md, row suppressed: shelve 409 (it is announced to nobody already)
        raise LifecycleError(f"alert {alert.id} is suppressed by design ({alert.suppressed}); it cannot be shelved")
    if until <= now:
        raise LifecycleError("shelving must end in the future")
    alert.shelved_until, alert.shelved_by, alert.shelve_reason = until, by, reason
    return [record(alert, now, Event.SHELVED, announce=False, by=by, note=reason)]


def unshelve(alert: Alert, by: str, now: float) -> list[Step]:
    """The shelf ends (a person, or its expiry): back to the state underneath, announced when that
    state needs a person."""
    if alert.shelved_until is None:
        raise LifecycleError(f"alert {alert.id} is not shelved")
    alert.shelved_until, alert.shelved_by, alert.shelve_reason = None, None, None
    needs_person = alert.isa in (AlarmState.UNACKNOWLEDGED, AlarmState.RETURNED_UNACKNOWLEDGED)
    if needs_person:
        alert.notify_level = 0
    return [record(alert, now, Event.UNSHELVED, announce=needs_person and not alert.suppressed, by=by)]


def needs_person(alert: Alert) -> bool:
    """Whether someone still has to look at this alert (unacknowledged or returned-unacknowledged)."""
    return alert.isa in (AlarmState.UNACKNOWLEDGED, AlarmState.RETURNED_UNACKNOWLEDGED)


def priority_of(tier: Tier | None) -> str:
    """The priority name of a tier, or ``normal``."""
    return tier.priority if tier is not None else "normal"

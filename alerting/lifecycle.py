"""The alert lifecycle: signals from the rules and people's actions turn into alert changes.

One alert per episode of (rule, subject): raised when a rule first calls for a tier, escalated or
de-escalated in place when the tier moves (the law asks that a warning's level be adjusted and
republished), resolved when the condition clears, closed (消警) by a person with a note.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Callable, Sequence

import structlog

from alerting.model import Alert, HistoryEntry
from alerting.store import AlertStore
from liaowang.config import Fleet
from rules.base import Signal

log = structlog.get_logger("alerting")


@dataclass(frozen=True, slots=True)
class AlertChange:
    """One change of one alert, as published on MQTT and SSE (``event`` per CONTRACT §2)."""

    alert: Alert
    event: str


class LifecycleError(Exception):
    """A person's action that the alert's state does not allow (HTTP 409)."""


class AlertNotFound(LookupError):
    """No alert has that id (HTTP 404)."""


class AlertManager:
    """Owns every alert; the only writer of the alert store. Thread-safe.

    ``clock`` gives wall-clock epoch seconds for people's actions; rule-driven changes carry the
    signal's event time, so a replay produces the same alert times as the live run.
    """

    def __init__(self, store: AlertStore, fleet: Fleet, clock: Callable[[], float]) -> None:
        self._store = store
        self._fleet = fleet
        self._clock = clock
        self._lock = threading.RLock()
        self._open: dict[tuple[str, str], Alert] = {(a.rule_id, a.subject): a for a in store.open_alerts()}
        self._horizon = store.horizons()

    # ------------------------------------------------------------------ automatic transitions

    def apply(self, signals: Sequence[Signal]) -> list[AlertChange]:
        """Apply the rules' signals in order; return the resulting changes (already stored).

        A signal older than the last one applied for its (rule, subject) is skipped: after a
        restart the rules re-run stored readings since their snapshot, and what they say again
        about the past has already been applied (no alert is raised twice).
        """
        changes: list[AlertChange] = []
        with self._lock:
            for signal in signals:
                key = (signal.rule_id, signal.subject)
                if signal.ts < self._horizon.get(key, float("-inf")):
                    continue
                self._horizon[key] = signal.ts
                self._store.set_horizon(signal.rule_id, signal.subject, signal.ts)
                found = [self._apply_one(signal)]
                if signal.kind == "stale":
                    found += self._mark_source(signal)
                for change in filter(None, found):
                    self._store.save(change.alert)
                    changes.append(change)
                    log.info(f"alert_{change.event}", alert_id=change.alert.id, rule_id=change.alert.rule_id,
                             subject=signal.subject, tier=change.alert.tier.colour)
        return changes

    def _mark_source(self, signal: Signal) -> list[AlertChange]:
        """A stale sensor never silently resolves its process alerts: they stay open, marked."""
        lost = signal.tier is not None
        changes = []
        for alert in self._open.values():
            if alert.subject == signal.subject and alert.kind != "stale" and alert.source_lost != lost:
                alert.source_lost = lost
                alert.updated_at = max(alert.updated_at, signal.ts)
                event = "source_lost" if lost else "source_restored"
                alert.history.append(HistoryEntry(at=signal.ts, event=event, tier=alert.tier))
                changes.append(AlertChange(alert, event))
        return changes

    def _apply_one(self, signal: Signal) -> AlertChange | None:
        key = (signal.rule_id, signal.subject)
        alert = self._open.get(key)
        if signal.tier is None:
            if alert is None:
                return None
            del self._open[key]
            alert.state, alert.resolved_at = "resolved", signal.ts
            return self._record(alert, signal, "resolved")
        if alert is None:
            alert = Alert(
                id=Alert.make_id(signal.rule_id, signal.subject, signal.ts), rule_id=signal.rule_id, kind=signal.kind,
                subject=signal.subject, site_id=signal.site_id, county=self._county(signal.site_id),
                family=signal.family.value, tier=signal.tier, level=signal.level, state="active",
                message=signal.message, value=signal.value, threshold=signal.threshold, unit=signal.unit,
                raised_at=signal.ts, updated_at=signal.ts)
            self._open[key] = alert
            return self._record(alert, signal, "raised")
        if signal.tier == alert.tier:
            alert.level, alert.value, alert.threshold, alert.message = (
                signal.level, signal.value, signal.threshold, signal.message)
            alert.updated_at = max(alert.updated_at, signal.ts)
            return None
        event = "escalated" if signal.tier > alert.tier else "deescalated"
        if event == "escalated" and alert.state == "acknowledged":
            alert.state = "active"  # a higher tier needs a person to take it again
        alert.tier = signal.tier
        return self._record(alert, signal, event)

    def _county(self, site_id: str) -> str:
        site = self._fleet.sites.get(site_id)
        return site.county if site else ""  # alerts about Liaowang itself belong to no county

    @staticmethod
    def _record(alert: Alert, signal: Signal, event: str) -> AlertChange:
        alert.level = signal.level if signal.level is not None else alert.level
        alert.value, alert.message = signal.value, signal.message
        if signal.threshold is not None:
            alert.threshold = signal.threshold
        alert.updated_at = max(alert.updated_at, signal.ts)
        alert.history.append(HistoryEntry(at=signal.ts, event=event, tier=alert.tier))
        return AlertChange(alert, event)

    # ------------------------------------------------------------------ people's actions

    def acknowledge(self, alert_id: str, by: str, note: str | None) -> AlertChange:
        """确认: a person takes the alert (active → acknowledged; resolved stays resolved, acknowledged)."""
        with self._lock:
            alert = self._get(alert_id)
            if alert.acknowledged_at is not None and alert.state in ("acknowledged", "resolved"):
                raise LifecycleError(f"alert {alert_id} is already acknowledged")
            if alert.state not in ("active", "resolved"):
                raise LifecycleError(f"alert {alert_id} is {alert.state}; only active or resolved alerts are acknowledged")
            now = self._clock()
            if alert.state == "active":
                alert.state = "acknowledged"
            alert.acknowledged_at, alert.acknowledged_by = now, by
            return self._human(alert, "acknowledged", by, note, now)

    def close(self, alert_id: str, by: str, note: str) -> AlertChange:
        """消警: a person closes a resolved alert, with a note saying why."""
        if not note or not note.strip():
            raise LifecycleError("a closing note is required")
        with self._lock:
            alert = self._get(alert_id)
            if alert.state != "resolved":
                raise LifecycleError(f"alert {alert_id} is {alert.state}; only resolved alerts can be closed")
            now = self._clock()
            alert.state, alert.closed_at, alert.closed_by = "closed", now, by
            return self._human(alert, "closed", by, note, now)

    def shelve(self, alert_id: str, by: str, until: float, reason: str) -> AlertChange:
        """Hide an open alert until ``until`` with a reason (ISA-18.2 shelving)."""
        if not reason or not reason.strip():
            raise LifecycleError("a shelving reason is required")
        with self._lock:
            alert = self._get(alert_id)
            now = self._clock()
            if alert.state not in ("active", "acknowledged"):
                raise LifecycleError(f"alert {alert_id} is {alert.state}; only active or acknowledged alerts are shelved")
            if until <= now:
                raise LifecycleError("shelving must end in the future")
            alert.state, alert.shelved_until = "shelved", until
            return self._human(alert, "shelved", by, reason, now)

    def _get(self, alert_id: str) -> Alert:
        for alert in self._open.values():
            if alert.id == alert_id:
                return alert
        alert = self._store.get(alert_id)
        if alert is None:
            raise AlertNotFound(alert_id)
        return alert

    def _human(self, alert: Alert, event: str, by: str, note: str | None, now: float) -> AlertChange:
        alert.note = note if note else alert.note
        alert.updated_at = max(alert.updated_at, now)
        alert.history.append(HistoryEntry(at=now, event=event, tier=alert.tier, by=by, note=note))
        self._store.save(alert)
        log.info(f"alert_{event}", alert_id=alert.id, by=by)
        return AlertChange(alert, event)

    def open_alerts(self) -> list[Alert]:
        """A snapshot of the open episodes."""
        with self._lock:
            return list(self._open.values())

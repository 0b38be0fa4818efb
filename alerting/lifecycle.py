"""The alert lifecycle: signals from the rules and people's actions turn into alert changes.

One alert per episode of (rule, subject): raised when a rule first calls for a tier, escalated or
de-escalated in place when the tier moves (the law asks that a warning's level be adjusted and
republished), resolved when the condition clears, closed (消警) by a person with a note.

ISA-18.2 practice on top (DOMAIN.md, ``alerting.yaml``):

* latching: an unacknowledged alert of a latching tier (orange, red) whose condition clears stays
  open, marked ``latched`` (event ``returned``), until a person acknowledges it;
* shelving: by a person, with a reason and an expiry; the alert returns (``unshelved``) when the
  shelf expires, and a resolution while shelved is still recorded and announced;
* suppression by design: an alert raised inside a maintenance window is recorded and shown with
  ``suppressed`` set to the window's reason (and not notified);
* out of service: signals about a sensor taken out of service raise nothing (counted);
* chattering: ≥ 3 activations of one (rule, subject) in 60 s mark the alert ``chattering``;
* floods: > 10 new alerts in 10 min at one duty desk (a county; the city desk for alerts of no
  county) mark the flood's first alert ``first_out``.

Every automatic transition and every human action is written to the audit trail.
"""

from __future__ import annotations

import threading
from collections import deque
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterator, Sequence

import structlog

from alerting.audit import AuditLog
from alerting.model import Alert, HistoryEntry
from alerting.store import AlertStore
from alerting.suppress import Suppressions
from liaowang.alertspec import AlertingSettings
from liaowang.config import Fleet
from rules.base import Signal

log = structlog.get_logger("alerting")


@dataclass(frozen=True, slots=True)
class AlertChange:
    """One change of one alert, as published on MQTT and SSE (``event`` per CONTRACT §2)."""

    alert: Alert
    event: str


def flood_onsets(raise_times: Sequence[float], limit: int, window_s: float) -> int:
    """How many floods start in sorted raise times: moments a window first holds more than ``limit`` raises.

    >>> flood_onsets([0, 1, 2, 3, 100, 101, 102, 103], limit=3, window_s=10)
    2
    """
    floods, first, flooding = 0, 0, False
    for i, t in enumerate(raise_times):
        while raise_times[first] <= t - window_s:
            first += 1
        over = i - first + 1 > limit
        floods += over and not flooding
        flooding = over
    return floods


class LifecycleError(Exception):
    """A person's action that the alert's state does not allow (HTTP 409)."""


class AlertNotFound(LookupError):
    """No alert has that id (HTTP 404)."""


class AlertManager:
    """Owns every alert; the only writer of the alert store. Thread-safe.

    ``clock`` gives wall-clock epoch seconds for people's actions; rule-driven changes carry the
    signal's event time, so a replay produces the same alert times as the live run.
    """

    def __init__(self, store: AlertStore, fleet: Fleet, clock: Callable[[], float],
                 settings: AlertingSettings | None = None, audit: AuditLog | None = None,
                 suppressions: Suppressions | None = None) -> None:
        for part in (audit, suppressions):
            if part is not None and part.db is not store.db:
                raise ValueError("the audit log and maintenance windows must share the alert store's AlertDB: "
                                 "one transaction spans them")
        self._store = store
        self._fleet = fleet
        self._clock = clock
        self.settings = settings or AlertingSettings()
        self.audit = audit
        self.suppressions = suppressions
        self._lock = threading.RLock()
        self._open: dict[tuple[str, str], Alert] = {(a.rule_id, a.subject): a for a in store.open_alerts()}
        self._horizon = store.horizons()
        self._latching = frozenset(self.settings.latch_tiers)
        self._out_of_service = frozenset(self.settings.out_of_service)
        self._activations: dict[tuple[str, str], deque[float]] = {}
        self._desk_raises: dict[str, deque[tuple[float, str]]] = {}
        self.out_of_service_signals = 0

    # ------------------------------------------------------------------ transactions

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Every alert, history, audit (and, for a caller that joins it, outbox) write inside is one transaction.

        When it fails — a full disk, a locked or broken database — the rows are rolled back and the
        open episodes are reloaded from the store, so memory never runs ahead of what is stored and
        the same signals or action can simply be retried.
        """
        with self._lock:
            try:
                with self._store.db.transaction():
                    yield
            except BaseException:
                if self._store.db.depth == 0:  # the outermost transaction rolled back: forget what it changed
                    self.reload()
                raise

    def reload(self) -> None:
        """Rebuild the open episodes and signal horizons from the store (after a rolled-back transaction)."""
        with self._lock:
            self._open = {(a.rule_id, a.subject): a for a in self._store.open_alerts()}
            self._horizon = self._store.horizons()

    # ------------------------------------------------------------------ automatic transitions

    def apply(self, signals: Sequence[Signal]) -> list[AlertChange]:
        """Apply the rules' signals in order; return the resulting changes (already stored).

        A signal older than the last one applied for its (rule, subject) is skipped: after a
        restart the rules re-run stored readings since their snapshot, and what they say again
        about the past has already been applied (no alert is raised twice).
        """
        changes: list[AlertChange] = []
        with self.transaction():
            for signal in signals:
                key = (signal.rule_id, signal.subject)
                if signal.ts < self._horizon.get(key, float("-inf")):
                    continue
                self._horizon[key] = signal.ts
                self._store.set_horizon(signal.rule_id, signal.subject, signal.ts)
                if signal.subject in self._out_of_service and signal.tier is not None and key not in self._open:
                    self.out_of_service_signals += 1
                    continue
                found = [self._apply_one(signal)]
                if signal.kind == "stale":
                    found += self._mark_source(signal)
                if found[0] is not None and found[0].event == "raised":
                    found += self._noise(found[0].alert, signal.ts)
                for change in filter(None, found):
                    self._store.save(change.alert)
                    changes.append(change)
                    self._audit(change, signal.ts, "system")
                    log.info(f"alert_{change.event}", alert_id=change.alert.id, rule_id=change.alert.rule_id,
                             subject=signal.subject, tier=change.alert.tier.colour)
        return changes

    def _audit(self, change: AlertChange, at: float, actor: str, note: str | None = None) -> None:
        if self.audit is not None:
            alert = change.alert
            self.audit.append(at, actor, change.event, alert.id, alert.subject, rule_id=alert.rule_id,
                              tier=alert.tier.colour, state=alert.state, note=note)

    def _noise(self, alert: Alert, ts: float) -> list[AlertChange]:
        """Chattering and flood bookkeeping for a newly raised alert."""
        out: list[AlertChange] = []
        chatter = self.settings.chattering
        times = self._activations.setdefault((alert.rule_id, alert.subject), deque())
        times.append(ts)
        while times and times[0] <= ts - chatter.window_s:
            times.popleft()
        if len(times) >= chatter.activations:
            alert.chattering = True
            alert.history.append(HistoryEntry(at=ts, event="chattering", tier=alert.tier))
            out.append(AlertChange(alert, "chattering"))
        flood = self.settings.flood
        desk = self.desk_of(alert)
        raises = self._desk_raises.setdefault(desk, deque())
        raises.append((ts, alert.id))
        while raises and raises[0][0] <= ts - flood.window_s:
            raises.popleft()
        if len(raises) == flood.alerts + 1:  # the flood starts now: its first alert is the first-out
            first = self._find(raises[0][1])
            if first is not None and not first.first_out:
                first.first_out = True
                if first is not alert:
                    self._store.save(first)
        return out

    @staticmethod
    def desk_of(alert: Alert) -> str:
        """The duty desk an alert belongs to: its county, or the city desk."""
        return alert.county or "city"

    def in_flood(self, desk: str, now: float) -> bool:
        """Whether ``desk`` has had more than the flood limit of new alerts in the flood window up to ``now``."""
        raises = self._desk_raises.get(desk, ())
        return sum(1 for t, _ in raises if t > now - self.settings.flood.window_s) > self.settings.flood.alerts

    def _find(self, alert_id: str) -> Alert | None:
        for alert in self._open.values():
            if alert.id == alert_id:
                return alert
        return self._store.get(alert_id)

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
            if alert is None or alert.latched:
                return None
            if alert.tier in self._latching and alert.state == "active" and alert.acknowledged_at is None:
                alert.latched, alert.cleared_at = True, signal.ts  # stays until a person acknowledges it
                return self._record(alert, signal, "returned")
            del self._open[key]
            alert.state, alert.resolved_at, alert.shelved_until = "resolved", signal.ts, None
            return self._record(alert, signal, "resolved")
        if alert is not None and alert.latched:  # the condition came back before anyone acknowledged
            alert.latched, alert.cleared_at = False, None
        if alert is None:
            alert = Alert(
                id=Alert.make_id(signal.rule_id, signal.subject, signal.ts), rule_id=signal.rule_id, kind=signal.kind,
                subject=signal.subject, site_id=signal.site_id, county=self._county(signal.site_id),
                family=signal.family.value, tier=signal.tier, level=signal.level, state="active",
                message=signal.message, value=signal.value, threshold=signal.threshold, unit=signal.unit,
                raised_at=signal.ts, updated_at=signal.ts)
            if self.suppressions is not None:
                alert.suppressed = self.suppressions.reason_for(signal.site_id, signal.subject, signal.ts)
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
        with self.transaction():
            alert = self._get(alert_id)
            if alert.acknowledged_at is not None and alert.state in ("acknowledged", "resolved"):
                raise LifecycleError(f"alert {alert_id} is already acknowledged")
            if alert.state not in ("active", "resolved"):
                raise LifecycleError(f"alert {alert_id} is {alert.state}; only active or resolved alerts are acknowledged")
            now = self._clock()
            if alert.state == "active":
                alert.state = "acknowledged"
            alert.acknowledged_at, alert.acknowledged_by = now, by
            change = self._human(alert, "acknowledged", by, note, now)
            if alert.latched:  # its condition had cleared: acknowledging releases the latch
                alert.latched = False
                alert.state, alert.resolved_at = "resolved", alert.cleared_at
                self._open.pop((alert.rule_id, alert.subject), None)
                alert.history.append(HistoryEntry(at=now, event="resolved", tier=alert.tier))
                self._store.save(alert)
                self._audit(AlertChange(alert, "resolved"), now, "system")
            return change

    def close(self, alert_id: str, by: str, note: str) -> AlertChange:
        """消警: a person closes a resolved alert, with a note saying why."""
        if not note or not note.strip():
            raise LifecycleError("a closing note is required")
        with self.transaction():
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
        with self.transaction():
            alert = self._get(alert_id)
            now = self._clock()
            if alert.state not in ("active", "acknowledged"):
                raise LifecycleError(f"alert {alert_id} is {alert.state}; only active or acknowledged alerts are shelved")
            if until <= now:
                raise LifecycleError("shelving must end in the future")
            alert.state, alert.shelved_until = "shelved", until
            return self._human(alert, "shelved", by, reason, now)

    def get(self, alert_id: str) -> Alert | None:
        """An alert by id (open or stored), or None."""
        with self._lock:
            return self._find(alert_id)

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
        change = AlertChange(alert, event)
        self._audit(change, now, by, note)
        log.info(f"alert_{event}", alert_id=alert.id, by=by)
        return change

    def expire_shelves(self, now: float) -> list[AlertChange]:
        """Return shelved alerts whose shelf has expired to their state before (``unshelved``)."""
        changes = []
        with self.transaction():
            for alert in list(self._open.values()):
                if alert.state == "shelved" and alert.shelved_until is not None and alert.shelved_until <= now:
                    alert.state = "acknowledged" if alert.acknowledged_at is not None else "active"
                    alert.shelved_until = None
                    alert.updated_at = max(alert.updated_at, now)
                    alert.history.append(HistoryEntry(at=now, event="unshelved", tier=alert.tier))
                    self._store.save(alert)
                    change = AlertChange(alert, "unshelved")
                    self._audit(change, now, "system")
                    changes.append(change)
        return changes

    def record(self, alert: Alert, event: str, at: float, note: str | None = None) -> AlertChange:
        """Append an automatic history event to an alert (notification escalation) and store it."""
        with self.transaction():
            alert.history.append(HistoryEntry(at=at, event=event, tier=alert.tier, note=note))
            alert.updated_at = max(alert.updated_at, at)
            self._store.save(alert)
            change = AlertChange(alert, event)
            self._audit(change, at, "system", note)
            return change

    def open_alerts(self) -> list[Alert]:
        """A snapshot of the open episodes."""
        with self._lock:
            return list(self._open.values())

"""The alarm lifecycle: signals from the rules and people's actions turn into alert changes.

`AlertManager` owns every open episode and is the only writer of the alert tables. It decides
which episode a signal or an action is for, opens new episodes with their mutes (a running
shelf, a maintenance window, a sensor out of service), runs the state table of docs/alarms.md
(`alerting.states`), keeps the noise bookkeeping (chattering, floods) and writes the alert rows,
history and audit — all inside one `transaction`, which the pipeline widens to include the
notification outbox. Rule-driven changes carry the signal's event time, so a replay produces
the same alerts as the live run; people's actions carry the injected wall clock.

Every change is an `AlertChange`; ``announce`` says whether receivers are notified, ``muted``
names the rule that kept an activation from being announced (and is written to the audit).
"""

from __future__ import annotations

import threading
from collections import deque
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable, Iterator, Sequence

import orjson
import structlog

from alerting import states
from alerting.audit import AuditLog
from alerting.eventlog import EventLog
from alerting.messages import Messages, Rendered, legacy
from alerting.model import AlarmState, Alert, CloseCause, Event, HistoryEntry
from alerting.mute import OutOfService, OutOfServiceEntry, Shelf, Shelves
from alerting.states import LifecycleError, Step
from alerting.store import AlertStore
from alerting.suppress import Suppressions
from foundation.alertspec import AlertingSettings
from foundation.config import ROLES, Fleet
from foundation.domain import Tier
from rules.base import Signal

__all__ = ["AlertChange", "AlertManager", "AlertNotFound", "InvalidAction", "LifecycleError", "NotPermitted",
           "flood_onsets"]

log = structlog.get_logger("alerting")


@dataclass(frozen=True, slots=True)
class AlertChange:
    """One change of one alert, as published on MQTT and SSE (``event`` per CONTRACT §2).

    ``announce``: whether receivers are notified of it; ``muted``: why an activation was not.
    """

    alert: Alert
    event: str
    announce: bool = True
    muted: str | None = None
    entry: int | None = None  # the history entry this change recorded (its notifications are keyed by it)
    _body: bytes | None = field(default=None, init=False, repr=False, compare=False)

    def payload(self) -> bytes:
        """The change as CONTRACT §2 JSON bytes (the alert's JSON plus ``event``), serialised once.

        Every consumer (MQTT, SSE, an event log) reuses these bytes: serialising an alert with its
        history is the costly part of an alarm change. The first call fixes them, so serialise after
        the change is committed.
        """
        if self._body is None:
            object.__setattr__(self, "_body", orjson.dumps({**self.alert.to_json(), "event": self.event}))
        return self._body


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


class AlertNotFound(LookupError):
    """No alert has that id (HTTP 404)."""


class InvalidAction(LifecycleError):
    """An action whose parameters break configuration (a shelf too long, a missing note): HTTP 422."""


class NotPermitted(LifecycleError):
    """An action the person's role may not take on this alert (shelving an urgent alarm): HTTP 403."""


class AlertManager:
    """Owns every alert; the only writer of the alert store. Thread-safe.

    ``clock`` gives wall-clock epoch seconds for people's actions; rule-driven changes carry the
    signal's event time.
    """

    def __init__(self, store: AlertStore, fleet: Fleet, clock: Callable[[], float],
                 settings: AlertingSettings | None = None, audit: AuditLog | None = None,
                 suppressions: Suppressions | None = None, out_of_service: OutOfService | None = None,
                 messages: Messages | None = None) -> None:
        for part in (audit, suppressions, out_of_service):
            if part is not None and part.db is not store.db:
                raise ValueError("the audit log, maintenance windows and out-of-service list must share the alert "
                                 "store's AlertDB: one transaction spans them")
        self._store = store
        self._fleet = fleet
        self.messages = messages or Messages(fleet)
        self._clock = clock
        self.settings = settings or AlertingSettings()
        self.audit = audit
        self.suppressions = suppressions
        self.shelves = Shelves(store.db)
        self.out_of_service = out_of_service or OutOfService(store.db, self.settings.out_of_service)
        self._lock = threading.RLock()
        self._open: dict[tuple[str, str], Alert] = {}
        self._horizon: dict[tuple[str, str], float] = {}
        self.reload()
        self._activations: dict[tuple[str, str], deque[float]] = {}
        self._desk_raises: dict[str, deque[tuple[float, str]]] = {}
        self._noise_undo: list[tuple[deque[float], deque[tuple[float, str]]]] = []  # this transaction's appends
        self.out_of_service_signals = 0
        self.events: EventLog | None = None
        """The live-event log every change is appended to in its own transaction (SSE resume); set by the wiring."""

    # ------------------------------------------------------------------ transactions

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Every alert, history, audit, shelf (and, for a caller that joins it, outbox) write inside is one transaction.

        When it fails — a full disk, a locked or broken database — the rows are rolled back and the
        open episodes are reloaded from the store, so memory never runs ahead of what is stored and
        the same signals or action can simply be retried (the noise bookkeeping too: a retried raise
        is one activation for chattering and floods, not one per attempt).
        """
        with self._lock:
            outer = self._store.db.depth == 0
            if outer:
                self._noise_undo.clear()
                counted = self.out_of_service_signals
            try:
                with self._store.db.transaction():
                    yield
            except BaseException:
                if outer:  # the outermost transaction rolled back: forget what it changed
                    self.reload()
                    for times, raises in reversed(self._noise_undo):
                        times.pop()
                        raises.pop()
                    self.out_of_service_signals = counted
                raise

    def reload(self) -> None:
        """Rebuild the open episodes, signal horizons and registries from the store."""
        with self._lock:
            self._open = {(a.rule_id, a.subject): a for a in self._store.open_alerts()}
            self._horizon = self._store.horizons()
            self.shelves.reload()
            self.out_of_service.reload()
            if self.suppressions is not None:
                self.suppressions.reload()

    # ------------------------------------------------------------------ automatic transitions

    def apply(self, signals: Sequence[Signal]) -> list[AlertChange]:
        """Apply the rules' signals in order; return the resulting changes (stored, in one transaction).

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
                found = self._apply_one(signal)
                if signal.kind == "stale":
                    found += self._mark_source(signal)
                if found and found[0].event == Event.RAISED:
                    found += self._noise(found[0].alert, signal.ts)
                for change in found:
                    self._save(change, signal.ts, "system")
                    changes.append(change)
        return changes

    def _apply_one(self, signal: Signal) -> list[AlertChange]:
        key = (signal.rule_id, signal.subject)
        alert = self._open.get(key)
        if alert is None:
            return [] if signal.tier is None else self._open_episode(signal)
        steps = states.activate(alert, signal) if signal.tier is not None else states.clear(alert, signal)
        self._word(alert, signal, steps)
        if alert.peak_tier is not None:
            alert.latching = alert.latching or self.latches(alert)
        if not alert.open:
            del self._open[key]
        if not steps:  # the same priority again (or a clear while returned) still updated the value: store it
            self._store.save(alert)
        return self._changes(alert, steps)

    def _open_episode(self, signal: Signal) -> list[AlertChange]:
        """activate(p) from normal: a new episode, muted by a running shelf or a maintenance window;
        nothing at all for a sensor out of service (counted and audited)."""
        assert signal.tier is not None
        off = self.out_of_service.entry(signal.subject, signal.ts)
        if off is not None:
            self.out_of_service_signals += 1
            if self.audit is not None:
                self.audit.append(signal.ts, "system", "not_raised", None, signal.subject, rule_id=signal.rule_id,
                                  tier=signal.tier.colour, reason=f"out of service: {off.reason} ({off.by})")
            return []
        alert = Alert(
            id=Alert.make_id(signal.rule_id, signal.subject, signal.ts), rule_id=signal.rule_id, kind=signal.kind,
            subject=signal.subject, site_id=signal.site_id, county=self._county(signal.site_id),
            family=signal.family.value, tier=signal.tier, level=signal.level, message=signal.message,
            value=signal.value, threshold=signal.threshold, unit=signal.unit, raised_at=signal.ts, updated_at=signal.ts)
        shelf = self.shelves.running(signal.rule_id, signal.subject, signal.ts)
        if shelf is not None:
            alert.shelved_until, alert.shelved_by, alert.shelve_reason = shelf.until, shelf.by, shelf.reason
        if self.suppressions is not None:
            alert.suppressed = self.suppressions.reason_for(signal.site_id, signal.subject, signal.ts,
                                                            signal.family.value)
        alert.latching = self.latches(alert)
        self._open[(signal.rule_id, signal.subject)] = alert
        step = states.record(alert, signal.ts, Event.RAISED, muted=states.mute_of(alert), value=signal.value,
                             message=signal.message)
        self._word(alert, signal, [step])
        alert.raise_text = alert.text
        return self._changes(alert, [step])

    def _word(self, alert: Alert, signal: Signal, steps: list[Step]) -> None:
        """Title and text in both languages for what ``signal`` changed: the alert's text follows its message,
        and each history entry the signal recorded gets the text of its message."""
        rendered = self._render(signal)
        alert.title = rendered.title
        if alert.message == signal.message:
            alert.text = rendered.text
        for step in steps:
            if step.entry is not None and alert.history[step.entry].message == signal.message:
                alert.history[step.entry].text = rendered.text

    def _render(self, signal: Signal) -> Rendered:
        """The signal's texts; a template that fails leaves the rule's Chinese message and says so in English."""
        try:
            return self.messages.render(signal)
        except Exception as err:  # a wording bug must not lose the alarm: the text shows that it failed
            log.error("alarm_text_failed", rule_id=signal.rule_id, subject=signal.subject, kind=signal.kind,
                      error=f"{type(err).__name__}: {err}")
            fallback = legacy(signal.kind, signal.tier or Tier.BLUE, signal.level, signal.value, signal.unit,
                              signal.message, clear=signal.tier is None)
            return Rendered(fallback.title, {"zh": signal.message,
                                             "en": f"{fallback.text['en']} [alarm text failed: {type(err).__name__}]"})

    def latches(self, alert: Alert) -> bool:
        """Whether an episode latches, on its peak priority and family (docs/alarms.md); suppressed ones never do."""
        if alert.suppressed:
            return False
        peak = alert.peak_tier or alert.tier
        if peak in self.settings.latch_tiers:
            return True
        family = self.settings.latch_families.get(alert.family)
        return bool(family) and peak in family and alert.kind not in self.settings.latch_exempt_kinds

    @staticmethod
    def _changes(alert: Alert, steps: list[Step]) -> list[AlertChange]:
        return [AlertChange(alert, step.event.value, step.announce, step.muted, step.entry) for step in steps]

    def _save(self, change: AlertChange, at: float, actor: str, note: str | None = None) -> None:
        """Store the alert and its audit row (inside the caller's transaction) and log the change."""
        self._store.save(change.alert)
        if self.events is not None:  # in the same transaction: an SSE client resuming later misses no change
            self.events.append_changes([change], at)
        if self.audit is not None:
            alert = change.alert
            self.audit.append(at, actor, change.event, alert.id, alert.subject, rule_id=alert.rule_id,
                              tier=alert.tier.colour, state=alert.state, isa_state=alert.isa_state, note=note,
                              announced=change.announce, muted=change.muted)
        log.info(f"alert_{change.event}", alert_id=change.alert.id, rule_id=change.alert.rule_id,
                 subject=change.alert.subject, tier=change.alert.tier.colour, by=actor,
                 **({"muted": change.muted} if change.muted else {}))

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
            alert.history.append(HistoryEntry(at=ts, event=Event.CHATTERING.value, tier=alert.tier))
            out.append(AlertChange(alert, Event.CHATTERING.value, states.mute_of(alert) is None, states.mute_of(alert)))
        flood = self.settings.flood
        desk = self.desk_of(alert)
        raises = self._desk_raises.setdefault(desk, deque())
        raises.append((ts, alert.id))
        self._noise_undo.append((times, raises))
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
                event = Event.SOURCE_LOST if lost else Event.SOURCE_RESTORED
                changes.append(AlertChange(alert, event.value, False))
                states.record(alert, signal.ts, event)
        return changes

    def _county(self, site_id: str) -> str:
        site = self._fleet.sites.get(site_id)
        return site.county if site else ""  # alerts about Liaowang itself belong to no county

    # ------------------------------------------------------------------ people's actions

    def acknowledge(self, alert_id: str, by: str, note: str | None) -> list[AlertChange]:
        """确认 (docs/alarms.md, column ack); a note is required when ``ack_note_required``."""
        if self.settings.ack_note_required and not (note and note.strip()):
            raise InvalidAction("an acknowledgement note is required (alerting.yaml ack_note_required)")
        return self._act(alert_id, by, lambda alert, now: states.acknowledge(alert, by, note, now), note)

    def close(self, alert_id: str, by: str, note: str, cause: str | None = None) -> list[AlertChange]:
        """消警: a person closes an episode that is over, with a note saying why and a cause category
        (`CloseCause`: 误报/仪表故障/工艺波动/检修作业/真实险情, English or Chinese name). The API
        requires the cause unless ``alerting.yaml close_cause_required`` is false; here it may be None
        (replays, scenarios, stored episodes). The audit note carries the cause."""
        if not note or not note.strip():
            raise InvalidAction("a closing note is required")
        try:
            parsed = CloseCause.parse(cause) if cause else None
        except ValueError as e:
            raise InvalidAction(str(e)) from None
        audited = f"[{parsed.value} {parsed.zh}] {note}" if parsed else note
        return self._act(alert_id, by, lambda alert, now: states.close(alert, by, note, now,
                                                                     parsed.value if parsed else None), audited)

    def shelve(self, alert_id: str, by: str, until: float, reason: str, role: str = "admin") -> list[AlertChange]:
        """Shelve an open alarm until ``until`` (at most ``shelving.max_s`` ahead) with a reason.

        The shelf is on the alarm (rule, subject): a new episode while it runs opens shelved.
        Priorities in ``shelving.protected_tiers`` need ``shelving.protected_role`` (403 otherwise).
        """
        if not reason or not reason.strip():
            raise InvalidAction("a shelving reason is required")
        shelving = self.settings.shelving
        now = self._clock()
        if until - now > shelving.max_s:
            raise InvalidAction(f"a shelf may last at most {shelving.max_s:g} s (alerting.yaml shelving.max_s); "
                                f"asked {until - now:.0f} s")

        def action(alert: Alert, at: float) -> list[Step]:
            top = max(alert.tier, alert.peak_tier or alert.tier)
            if top in shelving.protected_tiers and ROLES.index(role) < ROLES.index(shelving.protected_role):
                raise NotPermitted(f"{top.label_zh} alarms are shelved only by {shelving.protected_role} "
                                   "(alerting.yaml shelving.protected_tiers)")
            steps = states.shelve(alert, by, until, reason, at)
            self.shelves.put(Shelf(alert.rule_id, alert.subject, until, by, reason))
            return steps

        return self._act(alert_id, by, action, reason)

    def unshelve(self, alert_id: str, by: str) -> list[AlertChange]:
        """End a shelf before its time: the alarm is back, announced when it needs a person."""
        def action(alert: Alert, at: float) -> list[Step]:
            steps = states.unshelve(alert, by, at)
            self.shelves.drop(alert.rule_id, alert.subject)
            return steps

        return self._act(alert_id, by, action, None)

    def _act(self, alert_id: str, by: str, action: Callable[[Alert, float], list[Step]],
             note: str | None) -> list[AlertChange]:
        with self.transaction():
            alert = self._get(alert_id)
            now = self._clock()
            steps = action(alert, now)
            key = (alert.rule_id, alert.subject)
            if not alert.open and key in self._open and self._open[key].id == alert.id:  # not a newer episode's
                del self._open[key]
            changes = self._changes(alert, steps)
            for change in changes:
                self._save(change, now, by if change.event != Event.RESOLVED else "system", note)
            return changes

    def take_out_of_service(self, sensor_id: str, by: str, reason: str, until: float | None) -> OutOfServiceEntry:
        """Take a sensor out of service (audited): nothing is raised for it until ``until`` or its return."""
        if not reason or not reason.strip():
            raise InvalidAction("a reason is required")
        now = self._clock()
        if until is not None and until <= now:
            raise InvalidAction("until must be in the future")
        entry = OutOfServiceEntry(sensor_id, by, reason, now, until)
        with self.transaction():
            self.out_of_service.take_out(entry)
            if self.audit is not None:
                self.audit.append(now, by, "out_of_service", None, sensor_id, reason=reason, until=until)
        return entry

    def return_to_service(self, sensor_id: str, by: str) -> bool:
        """Return a sensor taken out of service through the API (audited); False when it was not."""
        with self.transaction():
            done = self.out_of_service.put_back(sensor_id)
            if done and self.audit is not None:
                self.audit.append(self._clock(), by, "returned_to_service", None, sensor_id)
        return done

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

    def expire_shelves(self, now: float) -> list[AlertChange]:
        """End the shelves whose time is up: their alarms come back (``unshelved``), announced when they need a person."""
        changes: list[AlertChange] = []
        with self.transaction():
            for shelf in self.shelves.due(now):
                self.shelves.drop(shelf.rule_id, shelf.subject)
                alert = self._open.get((shelf.rule_id, shelf.subject))
                if alert is not None and alert.shelved_until is not None:
                    for change in self._changes(alert, states.unshelve(alert, "system", now)):
                        self._save(change, now, "system")
                        changes.append(change)
        return changes

    def shelved(self) -> list[Alert]:
        """The open alarms under a shelf (the shelved-alarm list)."""
        with self._lock:
            return [a for a in self._open.values() if a.shelved_until is not None]

    def record(self, alert: Alert, event: str, at: float, note: str | None = None) -> AlertChange:
        """Append an automatic history event to an alert (notification escalation) and store it."""
        with self.transaction():
            states.record(alert, at, Event(event), note=note)
            change = AlertChange(alert, event, False)
            self._save(change, at, "system", note)
            return change

    def open_alerts(self) -> list[Alert]:
        """A snapshot of the open episodes."""
        with self._lock:
            return list(self._open.values())

    def needs_person(self) -> list[Alert]:
        """Open alarms waiting for a person (unacknowledged or returned-unacknowledged)."""
        with self._lock:
            return [a for a in self._open.values() if a.isa in (AlarmState.UNACKNOWLEDGED,
                                                                 AlarmState.RETURNED_UNACKNOWLEDGED)]

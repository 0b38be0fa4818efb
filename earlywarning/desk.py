"""The warning desk: the only writer of warnings; every step stored, audited, notified and published.

`WarningDesk` takes proposals (from rules, the risk grading, people) and people's decisions, runs
the state table (`earlywarning.states`) and, for each step, in **one transaction** on the shared
`AlertDB`: stores the warning, appends its audit record (who, when, why), stores the published
document (issued, adjusted, lifted) and hands each notification to ``notify`` — which the
pipeline points at the notifier's outbox on the same connection, so the notifications commit with
the step or not at all. Only after the commit does it publish on MQTT (``publish``), so nothing is
announced that is not stored. `tick` escalates proposals nobody verified before their deadline.

Time is injected: people's steps take ``at`` (the API passes its clock), rule proposals their
event time, `tick` its ``now``; the desk never reads a clock itself beyond the ``clock`` it is given.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable, Iterable

import structlog

from alerting.audit import AuditLog
from alerting.db import AlertDB
from earlywarning import states as table
from earlywarning.cap import MSG_TYPES, cap_document, identifier_for
from earlywarning.drafting import Drafter, Proposal, SubjectRef
from earlywarning.model import EarlyWarning, Origin, Subject, WarningEvent, WarningState
from earlywarning.notices import Notice, WarningRouter, notices_for
from earlywarning.publish import Publish, messages
from earlywarning.states import NotAllowed, WarningNotFound
from earlywarning.store import Publication, WarningStore
from foundation.config import Fleet
from foundation.warningspec import CategorySpec, WarningLevel, WarningSettings

__all__ = ["WarningChange", "WarningDesk"]

log = structlog.get_logger("earlywarning")

Notify = Callable[[Notice], None]
"""Enqueues one notification; called inside the step's transaction (raise to roll the step back)."""


@dataclass(frozen=True, slots=True)
class WarningChange:
    """What one call did: the warning after it, the event recorded (None: nothing new), whether the call
    created the warning, the notices enqueued and the document published."""

    warning: EarlyWarning
    event: WarningEvent | None
    created: bool = False
    notices: tuple[Notice, ...] = ()
    publication: Publication | None = None


class WarningDesk:
    """Owns the warnings of one ``alerts.db``. Thread-safe.

    ``publish(topic, payload, retain)`` sends MQTT messages (QoS 1); ``notify(notice)`` enqueues a
    notification; either may be None (nothing sent). ``audit`` must be on the same `AlertDB`.
    Call the steps outside any open transaction of that `AlertDB`: inside one, the step joins it and
    its MQTT message goes out before the outer transaction commits.
    """

    def __init__(self, db: AlertDB, settings: WarningSettings, fleet: Fleet, clock: Callable[[], float],
                 publish: Publish | None = None, notify: Notify | None = None, audit: AuditLog | None = None) -> None:
        if audit is not None and audit.db is not db:
            raise ValueError("the audit log must share the desk's AlertDB: one transaction spans them")
        self.db = db
        self.settings = settings
        self.store = WarningStore(db)
        self.audit = audit or AuditLog(db)
        self.drafter = Drafter(settings, fleet)
        self.router = WarningRouter(settings)
        self._clock = clock
        self._publish = publish
        self._notify = notify
        self._unsent: dict[str, str] = {}  # warning id → why its latest MQTT message was not taken (retried)
        # the AlertDB's own re-entrant lock, not one of ours: a caller inside an alarm transaction (holding it)
        # may propose a warning while an API thread acts on one, and two locks taken in either order could deadlock
        self._lock = db.lock

    # ------------------------------------------------------------------ reads

    def get(self, warning_id: str) -> EarlyWarning:
        """The warning ``warning_id``; `WarningNotFound` otherwise."""
        warning = self.store.get(warning_id)
        if warning is None:
            raise WarningNotFound(f"no warning {warning_id}")
        return warning

    def query(self, states: Iterable[WarningState] | None = None, levels: Iterable[WarningLevel] | None = None,
              subject: str | None = None, category: str | None = None, sites: Iterable[str] | None = None,
              limit: int = 500) -> list[EarlyWarning]:
        """Warnings newest first, filtered (see `WarningStore.query`)."""
        return self.store.query(states, levels, subject, category, sites, limit)

    def in_force(self) -> list[EarlyWarning]:
        """Warnings published and not lifted."""
        return self.store.in_state(WarningState.ISSUED, WarningState.ADJUSTED)

    def publications(self, warning_id: str) -> list[Publication]:
        """The documents published for a warning, first to last."""
        self.get(warning_id)
        return self.store.publications(warning_id)

    def document(self, warning_id: str) -> Publication:
        """The latest published document of a warning; `NotAllowed` when it was never published."""
        found = self.publications(warning_id)
        if not found:
            raise NotAllowed(f"warning {warning_id} has not been published")
        return found[-1]

    def resolve(self, ref: SubjectRef) -> Subject:
        """The subject ``ref`` names (`WarningNotFound` for an unknown site or zone)."""
        return self.drafter.subject(ref)

    # ------------------------------------------------------------------ steps

    def propose(self, proposal: Proposal, at: float | None = None) -> WarningChange:
        """Propose a warning; an open one of the same (subject, category) is updated instead of duplicated.

        ``at``: the event time for a rule's or the risk grading's proposal; a person's comes from the clock.
        """
        at = self._clock() if at is None else at
        subject = self.drafter.subject(proposal.subject)
        self.drafter.check_level(proposal.category, proposal.level)
        with self._lock:
            current = self.store.open_for(subject.key, proposal.category)
            if current is None and (held := self._held(subject.key, proposal, at)) is not None:
                return held
            if current is None:
                draft = self.drafter.draft(proposal, subject, at, self.store.count_for(subject.key, proposal.category))
                return self._commit(draft, None, created=True)
            level = proposal.level if proposal.level.rank > current.level.rank else current.level
            watch, measures = self.drafter.reguide(current, level, proposal.watch, proposal.measures)
            after = table.merge(current, proposal.by, proposal.level, proposal.evidence, at, watch, measures,
                                 proposal.reason)
            if after is None:
                return WarningChange(current, None)
            return self._commit(after, current)

    def _held(self, subject_key: str, proposal: Proposal, at: float) -> WarningChange | None:
        """A rule's or the grading's proposal within ``rejection_hold_s`` of a rejection of the same subject and
        category, at no higher a level: not proposed again (audited, so the decision it follows is on record)."""
        hold = self.settings.verification.rejection_hold_s
        if proposal.origin is Origin.PERSON or hold <= 0:
            return None
        rejected = [w for w in self.store.query([WarningState.REJECTED], subject=subject_key,
                                                category=proposal.category, limit=20)
                    if w.category == proposal.category and w.rejected_at is not None and at - w.rejected_at < hold]
        if not rejected:
            return None
        last = max(rejected, key=lambda w: w.rejected_at or 0.0)
        if proposal.level.rank > last.level.rank:
            return None
        with self.db.transaction():
            self.audit.append(at, proposal.by, "warning_proposal_held", None, last.site_id or subject_key,
                              warning_id=last.id, subject_key=subject_key, category=proposal.category,
                              level=proposal.level.value, reason=proposal.reason,
                              hold_until=(last.rejected_at or at) + hold)
        log.info("warning_proposal_held", warning_id=last.id, subject=subject_key, level=proposal.level.value,
                 rejected_at=last.rejected_at)
        return WarningChange(last, None)

    def verify(self, warning_id: str, by: str, reason: str | None, at: float | None = None) -> WarningChange:
        """研判/核实: the proposal is warranted; a reason is required."""
        return self._act(warning_id, lambda w, t: table.verify(w, by, reason, t), at)

    def reject(self, warning_id: str, by: str, reason: str | None, at: float | None = None) -> WarningChange:
        """研判: the proposal is not warranted (final, never published); a reason is required."""
        return self._act(warning_id, lambda w, t: table.reject(w, by, reason, t), at)

    def issue(self, warning_id: str, by: str, at: float | None = None, note: str | None = None,
              expires: float | None = None) -> WarningChange:
        """Publish a verified warning (CAP Alert; retained on MQTT; recipients notified)."""
        return self._act(warning_id, lambda w, t: table.issue(w, by, t, note, expires), at)

    def adjust(self, warning_id: str, by: str, level: WarningLevel, reason: str | None,
               at: float | None = None) -> WarningChange:
        """Raise or lower an issued warning and republish it (art. 70; CAP Update); a reason is required."""

        def step(warning: EarlyWarning, t: float) -> EarlyWarning:
            allowed = self.drafter.levels(warning.category)
            watch, measures = self.drafter.reguide(warning, level)
            return table.adjust(warning, by, level, reason, t, allowed, watch, measures)

        return self._act(warning_id, step, at)

    def lift(self, warning_id: str, by: str, reason: str | None, at: float | None = None) -> WarningChange:
        """解除 (art. 70; CAP Cancel; the retained MQTT message cleared); a reason is required."""
        return self._act(warning_id, lambda w, t: table.lift(w, by, reason, t), at)

    def tick(self, now: float) -> list[WarningChange]:
        """Escalate every proposal past its verification deadline: one ``overdue`` step per deadline
        elapsed since it was proposed, each telling the next receiver of its route's escalation."""
        changes: list[WarningChange] = []
        with self._lock:
            for warning in self.store.in_state(WarningState.PROPOSED):
                deadline = self.settings.verification.deadline_s[warning.level]
                chain = self.router.chain(warning)
                last = max(len(chain) - 1, 1)  # without an escalation, the overdue proposal is still recorded once
                due = min(int((now - warning.proposed_at) // deadline), last)
                while warning.escalation_step < due:
                    step = warning.escalation_step + 1
                    receivers = tuple(chain[step]) if step < len(chain) else ()
                    at = min(now, warning.proposed_at + step * deadline)  # the moment it fell due: replays agree
                    change = self._commit(table.overdue(warning, at, step, receivers, deadline), warning)
                    changes.append(change)
                    warning = change.warning
        return changes

    def republish(self, lifted_since: float | None = None) -> int:
        """Send the retained message of every warning in force again (a broker that lost its retained store,
        a publish that failed); with ``lifted_since``, clear the topics of warnings lifted since then too.
        Returns how many warnings were sent."""
        warnings = self.in_force()
        if lifted_since is not None:
            warnings += [w for w in self.store.in_state(WarningState.LIFTED)
                         if w.lifted_at is not None and w.lifted_at >= lifted_since]
        count = 0
        for warning in warnings:
            publications = self.store.publications(warning.id)
            if publications:
                last = next(h.event for h in reversed(warning.history) if h.event.publishes)
                self._send(warning, last, publications[-1].document)
                count += 1
        return count

    @property
    def unsent(self) -> dict[str, str]:
        """Warnings whose latest MQTT message the broker has not taken yet, with why (`retry_unsent` resends)."""
        return dict(self._unsent)

    def retry_unsent(self) -> int:
        """Send again the latest message of every warning whose publish failed (the step itself is stored);
        returns how many are still unsent. The ticker calls this, so a broker that was down hears every step."""
        for warning_id in list(self._unsent):
            warning = self.store.get(warning_id)
            publications = self.store.publications(warning_id)
            if warning is None or not publications:
                self._unsent.pop(warning_id, None)
                continue
            last = next(h.event for h in reversed(warning.history) if h.event.publishes)
            self._send(warning, last, publications[-1].document)
        return len(self._unsent)

    # ------------------------------------------------------------------ internals

    def _act(self, warning_id: str, step: Callable[[EarlyWarning, float], EarlyWarning],
             at: float | None) -> WarningChange:
        at = self._clock() if at is None else at
        with self._lock:
            before = self.get(warning_id)
            return self._commit(step(before, at), before)

    def _commit(self, after: EarlyWarning, before: EarlyWarning | None, created: bool = False) -> WarningChange:
        """Store, audit, document and notify one step in one transaction; publish on MQTT after the commit."""
        entry = after.history[-1]
        publication = None
        with self.db.transaction():
            if entry.event.publishes:
                after, publication = self._publication(after, before)
                self.store.add_publication(publication)
            self.store.save(after)
            entry = after.history[-1]
            notices = tuple(notices_for(after, self.router))
            self.audit.append(entry.at, entry.by, f"warning_{entry.event.value}", None,
                              after.site_id or after.subject.key, warning_id=after.id, subject_key=after.subject.key,
                              category=after.category, level=after.level.value, state=after.state.value,
                              reason=entry.reason, identifier=entry.identifier,
                              receivers=[n.receiver for n in notices])
            if self._notify is not None:
                for notice in notices:
                    self._notify(notice)
        log.info(f"warning_{entry.event.value}", warning_id=after.id, subject=after.subject.key,
                 category=after.category, level=after.level.value, state=after.state.value, by=entry.by)
        if entry.event is WarningEvent.OVERDUE and not entry.receivers:
            log.warning("warning_overdue_unrouted", warning_id=after.id, subject=after.subject.key)
        if not notices:
            log.info("warning_not_routed", warning_id=after.id, warning_event=entry.event.value)
        if publication is not None:
            self._send(after, entry.event, publication.document)
        return WarningChange(after, entry.event, created, notices, publication)

    def _publication(self, warning: EarlyWarning, before: EarlyWarning | None
                     ) -> tuple[EarlyWarning, Publication]:
        """The document of a publishing step, and the warning with its identifier in the history entry."""
        entry = warning.history[-1]
        earlier = self.store.publications(warning.id)
        sent = entry.at
        sequence = 0
        if warning.issuer.sender_code:
            probe = identifier_for(warning, warning.version, sent, 0).rsplit("_", 1)[0] + "_"
            sequence = self.store.identifiers_like(probe)
        identifier = identifier_for(warning, warning.version, sent, sequence)
        entry = replace(entry, identifier=identifier)
        warning = replace(warning, history=warning.history[:-1] + (entry,))
        category = (self.settings.category(warning.category)  # a category since removed from warnings.yaml: Other
                    or CategorySpec(event=warning.event, cap_categories=["Other"]))
        references = [(p.document["sender"], p.identifier, p.sent) for p in earlier]
        document = cap_document(warning, entry.event, identifier, sent, self.settings.cap, category, references,
                                entry.reason, before.level if before is not None else None)
        return warning, Publication(identifier, warning.id, warning.version, MSG_TYPES[entry.event], sent, document)

    def _send(self, warning: EarlyWarning, event: WarningEvent, document: dict) -> None:
        """Publish a step's messages; one the broker does not take is kept in `unsent` and resent by
        `retry_unsent` (the step is stored already: only its announcement waits)."""
        if self._publish is None:
            return
        self._unsent.pop(warning.id, None)
        for message in messages(warning, event, document):
            try:
                ok = self._publish(message.topic, message.payload, message.retain)
            except Exception as err:  # the broker is gone: the step is stored, the message is retried
                ok, error = False, f"{type(err).__name__}: {err}"
            else:
                error = "broker did not take the message"
            if ok is False:
                self._unsent[warning.id] = error
                log.warning("warning_publish_failed", warning_id=warning.id, topic=message.topic,
                            retain=message.retain, error=error)
                return  # the rest (a lift's clearing message) must not overtake the one that failed

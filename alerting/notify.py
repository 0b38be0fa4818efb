"""Notification: routing, escalation, noise control and a persistent outbox with retries and a fallback.

Alert changes become notification documents for receivers chosen by the routing tree
(``alerting.yaml``: match tier, family, site, county; first matching branch wins, ``continue``
tries the next too). Every document goes into the outbox table of ``alerts.db`` under a key
derived from what it is about (alert, history entry or escalation step, receiver, channel), so
enqueuing twice — after a restart, say — stores it once, and a delivered notification is never
sent again. A delivery thread sends due documents; a failure worth a retry backs off
exponentially; after ``retry_max_attempts`` (or a failure not worth a retry) the document goes
to the fallback receiver. Every attempt is in the delivery log (``GET /api/v1/alerts/{id}/deliveries``).

Timers are derived from stored alerts, so they survive restarts: an alert unacknowledged past
its tier's deadline (counted from when it was raised) escalates to the next receiver of its
route, one step per deadline, recorded in its history (``notification_escalated``); an alert
still active is repeated to its receivers every ``repeat_s``.

Noise control: a chattering (rule, subject) is notified once per chattering window, not at every
activation. During a flood at a duty desk, notifications other than red ones are grouped into
one digest per site every ``flood.digest_every_s``; red alerts are never delayed or folded.
Suppressed alerts (maintenance) are logged as suppressed, not sent.
"""

from __future__ import annotations

import threading
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Sequence

import orjson
import structlog

from alerting.channels import Channel, Delivery, LogSender, make_sender
from alerting import states
from alerting.lifecycle import AlertChange, AlertManager
from alerting.model import Alert
from alerting.db import AlertDB
from foundation.alertspec import AlertingSettings, Receiver, Route
from foundation.config import Fleet
from foundation.domain import CST, iso

log = structlog.get_logger("notify")

NOTIFIED_EVENTS = {"raised", "reactivated", "escalated", "deescalated", "resolved", "returned", "unshelved",
                   "chattering", "acknowledged", "closed"}
FIRST_RECEIVERS = {"raised", "reactivated"}
STATE_ZH = {"normal": "已恢复", "unacknowledged": "未确认", "acknowledged": "已确认", "returned_unacknowledged": "已恢复, 待确认",
            "shelved": "已搁置", "suppressed": "已屏蔽(设计抑制)"}
"""Events that go to the route's first receivers (a new activation); the rest go to everyone told so far."""
EVENT_EN = {"raised": "alarm", "reactivated": "alarm again", "escalated": "escalated", "deescalated": "stepped down",
            "resolved": "back to normal", "returned": "back to normal (to be acknowledged)", "unshelved": "shelf ended",
            "chattering": "chattering", "acknowledged": "acknowledged", "closed": "closed",
            "notification_escalated": "not acknowledged in time, escalated", "repeat": "still not acknowledged",
            "digest": "alarm digest"}
STATE_EN = {"normal": "back to normal", "unacknowledged": "unacknowledged", "acknowledged": "acknowledged",
            "returned_unacknowledged": "back to normal, to be acknowledged", "shelved": "shelved",
            "suppressed": "suppressed (designed suppression)"}
EVENT_ZH = {"raised": "报警", "reactivated": "再次报警", "escalated": "升级", "deescalated": "降级", "resolved": "恢复正常",
            "returned": "恢复正常(待确认)", "unshelved": "搁置结束", "chattering": "频繁报警", "acknowledged": "已确认",
            "closed": "已消警", "notification_escalated": "超时未确认, 逐级上报", "repeat": "仍未确认", "digest": "报警汇总"}

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    key TEXT PRIMARY KEY,
    alert_id TEXT,
    site_id TEXT,
    receiver TEXT NOT NULL,
    channel BIGINT NOT NULL,
    kind TEXT NOT NULL,
    document {blob} NOT NULL,
    status TEXT NOT NULL,          -- pending, sent, failed, suppressed
    attempts BIGINT NOT NULL DEFAULT 0,
    next_attempt_at DOUBLE PRECISION NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL,
    detail TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS outbox_due ON outbox (status, next_attempt_at);
CREATE INDEX IF NOT EXISTS outbox_alert ON outbox (alert_id);
CREATE TABLE IF NOT EXISTS delivery_log (
    seq {serial},
    key TEXT NOT NULL,
    alert_id TEXT,
    receiver TEXT NOT NULL,
    channel TEXT NOT NULL,
    kind TEXT NOT NULL,
    at DOUBLE PRECISION NOT NULL,
    outcome TEXT NOT NULL,
    detail TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS delivery_alert ON delivery_log (alert_id);
"""


class Router:
    """The routing tree and receivers of ``alerting.yaml``, with who is on duty."""

    def __init__(self, settings: AlertingSettings) -> None:
        self.settings = settings
        self.receivers: dict[str, Receiver] = {r.id: r for r in settings.receivers}

    def chain(self, alert: Alert) -> list[list[str]]:
        """Receivers by escalation step: step 0 the route's receivers, then one step per escalation entry."""
        steps: list[list[str]] = []
        for route in self._matching(self.settings.routes, alert):
            if not steps:
                steps.append(list(route.receivers))
            else:
                steps[0] += [r for r in route.receivers if r not in steps[0]]
            for i, receiver in enumerate(route.escalation, start=1):
                while len(steps) <= i:
                    steps.append([])
                if receiver not in steps[i]:
                    steps[i].append(receiver)
        return steps

    def _matching(self, routes: Sequence[Route], alert: Alert) -> list[Route]:
        found: list[Route] = []
        for route in routes:
            m = route.match
            if ((m.tiers and alert.tier not in m.tiers) or (m.families and alert.family not in [f.value for f in m.families])
                    or (m.sites and alert.site_id not in m.sites) or (m.counties and alert.county not in m.counties)):
                continue
            deeper = self._matching(route.routes, alert)
            found += deeper or [route]
            if not route.continue_:
                break
        return found

    def on_duty(self, receiver_id: str, at: float) -> str | None:
        """The person on duty for a receiver at ``at`` (CST), from its roster; None without a roster."""
        receiver = self.receivers.get(receiver_id)
        if receiver is None or not receiver.roster:
            return None
        moment = datetime.fromtimestamp(at, CST)
        minute = moment.hour * 60 + moment.minute
        for shift in receiver.roster:
            start = int(shift.start[:2]) * 60 + int(shift.start[3:])
            end = int(shift.end[:2]) * 60 + int(shift.end[3:])
            inside = start <= minute < end if start < end else (minute >= start or minute < end)
            day = moment.isoweekday() if not (start >= end and minute < end) else (moment.isoweekday() - 2) % 7 + 1
            if inside and day in shift.days:
                return shift.person
        return None


class Notifier:
    """Turns alert changes into outbox documents and delivers them. Thread-safe."""

    def __init__(self, db: AlertDB | Path | str, settings: AlertingSettings, fleet: Fleet, manager: AlertManager,
                 clock: Callable[[], float], publish: Callable[[str, bytes], bool] | None = None,
                 senders: dict[str, list[Channel]] | None = None) -> None:
        self.db = AlertDB.of(db)
        self._conn = self.db.conn
        self._lock = self.db.lock
        with self._lock:
            self._conn.executescript(self.db.dialect.schema(_SCHEMA))
        self.settings = settings
        self.fleet = fleet
        self.manager = manager
        self.clock = clock
        self.router = Router(settings)
        self.senders: dict[str, list[Channel]] = senders or {
            r.id: [make_sender(c, publish) for c in r.channels] for r in settings.receivers}
        self._chatter_notified: dict[tuple[str, str], float] = {}
        self._digest_due: dict[str, float] = {}
        self._stop = threading.Event()
        self.problem: str | None = None
        """Why delivery is failing right now (the outbox cannot be read or written), or None."""
        self._thread = threading.Thread(target=self._run, name="notify-delivery", daemon=True)
        self.recover_digests()

    # ------------------------------------------------------------------ enqueueing

    def on_changes(self, changes: Sequence[AlertChange]) -> None:
        """Enqueue the notifications the changes call for."""
        now = self.clock()
        for change in changes:
            alert, event = change.alert, change.event
            if event not in NOTIFIED_EVENTS or (not change.announce and not change.muted):
                continue
            key = (alert.rule_id, alert.subject)
            if alert.chattering:
                if event == "raised":
                    continue  # its "chattering" change (same apply) notifies instead
                last = self._chatter_notified.get(key)
                window = self.settings.chattering.window_s
                if last is not None and alert.updated_at - last < window:
                    continue  # notified once already for this burst
                if event == "chattering":
                    self._chatter_notified[key] = alert.updated_at
            steps = self.router.chain(alert)
            if not steps:
                continue
            # a raise goes to the route's first receivers (escalation informs the others); later news goes to
            # everyone told so far
            told = steps[0] if event in FIRST_RECEIVERS else [r for step in steps[: alert.notify_level + 1] for r in step]
            # the history entry this change recorded: part of the outbox key, so a re-enqueue stores nothing new
            entry = change.entry if change.entry is not None else max(
                (i for i, h in enumerate(alert.history) if h.event == event), default=len(alert.history) - 1)
            if change.muted:  # recorded in the delivery log as not sent, and why
                self._enqueue(f"{alert.id}:h{entry}", alert, told, event, now,
                              status="shelved" if change.muted.startswith("shelved") else "suppressed")
                continue
            desk = AlertManager.desk_of(alert)
            if alert.tier.colour != "red" and event == "raised" and self.manager.in_flood(desk, alert.raised_at):
                self._digest_due.setdefault(alert.site_id, now + self.settings.flood.digest_every_s)
                self._enqueue(f"{alert.id}:h{entry}", alert, told, "flood_grouped", now, status="grouped")
                continue
            self._enqueue(f"{alert.id}:h{entry}", alert, told, event, now)

    def tick(self, now: float | None = None) -> list[AlertChange]:
        """Escalations, repeats and flood digests due at ``now``; returns the alert changes it recorded."""
        now = self.clock() if now is None else now
        changes: list[AlertChange] = []
        for alert in self.manager.open_alerts():
            if not states.needs_person(alert) or alert.suppressed or alert.shelved_until is not None:
                continue
            steps = self.router.chain(alert)
            deadline = self.settings.ack_deadline_s.get(alert.tier.colour)
            since = alert.activated_at if alert.activated_at is not None else alert.raised_at
            if deadline and steps:
                due_level = min(int((now - since) // deadline), len(steps) - 1)
                while alert.notify_level < due_level:
                    alert.notify_level += 1
                    receivers = steps[alert.notify_level]
                    change = self.manager.record(alert, "notification_escalated", now,
                                                 note=f"超过 {deadline:g} 秒未确认, 通知 {', '.join(receivers)}")
                    changes.append(change)
                    self._enqueue(f"{alert.id}:a{since:.3f}:esc{alert.notify_level}", alert, receivers,
                                  "notification_escalated", now)
            repeat = self.settings.repeat_s.get(alert.tier.colour)
            if repeat and steps:
                count = int((now - since) // repeat)
                if count >= 1:
                    told = [r for step in steps[: alert.notify_level + 1] for r in step]
                    self._enqueue(f"{alert.id}:a{since:.3f}:rep{count}", alert, told, "repeat", now)
        for site_id, due in list(self._digest_due.items()):
            if now >= due:
                try:
                    self._send_digest(site_id, now)
                except BaseException:
                    self.recover_digests()  # its grouped rows stay grouped (rolled back): due again next tick
                    raise
                del self._digest_due[site_id]
        return changes

    def recover_digests(self) -> None:
        """Schedule a digest for every site of this notifier's fleet with grouped documents in the outbox.

        The due times are kept in memory; a restart or a partition's new owner (whose fleet is the
        partition's sites) finds the groups the last process left and digests them — none stays grouped
        unsent. A group already digested is marked so in the same transaction as its digest."""
        with self._lock:
            rows = self._conn.execute("SELECT site_id, MIN(created_at) FROM outbox WHERE status = 'grouped' "
                                      "GROUP BY site_id").fetchall()
        for site_id, first in rows:
            if site_id in self.fleet.sites:
                self._digest_due.setdefault(site_id, float(first) + self.settings.flood.digest_every_s)

    def _send_digest(self, site_id: str, now: float) -> None:
        with self._lock:
            rows = self._conn.execute("SELECT key, alert_id, receiver FROM outbox WHERE status = 'grouped' AND "
                                      "site_id = ?", (site_id,)).fetchall()
            self._conn.execute("UPDATE outbox SET status = 'digested', updated_at = ? WHERE status = 'grouped' AND "
                               "site_id = ?", (now, site_id))
        if not rows:
            return
        alerts = [a for a in (self.manager.get(r[1]) for r in {row[1]: row for row in rows}.values()) if a]
        alerts.sort(key=lambda a: (not a.first_out, a.raised_at))
        receivers = sorted({r[2] for r in rows})
        name = self.manager.messages.site_name(site_id)
        doc = {"site_id": site_id, "alerts": [a.id for a in alerts],
               "first_out": next((a.id for a in alerts if a.first_out), None)}
        for receiver in receivers:
            known = self.router.receivers.get(receiver)
            if known is not None and known.language == "en":
                title = f"[Alarm digest] {name['en']}: {len(alerts)} alarms (alarm flood, grouped by site)"
                lines = [f"- {'[first out] ' if a.first_out else ''}{a.texts().text['en']}" for a in alerts]
            else:
                title = f"【报警汇总】{name['zh']} {len(alerts)} 条报警 (报警泛滥, 按场所汇总)"
                lines = [f"- {'【首发】' if a.first_out else ''}{a.texts().text['zh']}" for a in alerts]
            self._insert(f"digest:{site_id}:{int(now)}:{receiver}", None, receiver, "digest", title,
                         "\n".join(lines), doc, now)

    def enqueue_document(self, key: str, receiver: str, event: str, title: str, text: str, document: dict[str, Any],
                         now: float) -> None:
        """Queue a notification that is not about one alarm (a warning 预警 step) for ``receiver``'s channels.

        ``document`` is what the receiver gets as ``alert`` (it carries ``tier`` and ``site_id``); the
        key makes a second enqueue of the same step store nothing new.
        """
        self._insert(key, None, receiver, event, title, text, document, now)

    def _enqueue(self, key: str, alert: Alert, receivers: list[str], event: str, now: float,
                 status: str = "pending") -> None:
        document = alert.to_json()
        for receiver in receivers:
            known = self.router.receivers.get(receiver)
            title, text = self._wording(alert, event, known.language if known else "zh")
            self._insert(f"{key}:{receiver}", alert.id, receiver, event, title, text, document, now, status=status)

    def _wording(self, alert: Alert, event: str, language: str) -> tuple[str, str]:
        """A notification's title and text in the receiver's language, from the alarm's own title and text."""
        texts = alert.texts()
        peak = alert.peak_tier or alert.tier
        if language == "en":
            words = self.manager.messages.wording
            who = (f"\nAcknowledged by: {alert.acknowledged_by}" + (f" ({alert.ack_note})" if alert.ack_note else "")
                   if alert.acknowledged_by and event in ("acknowledged", "closed") else "")
            title = f"[{words.priorities[alert.tier.priority].en}] {texts.title['en']}: {EVENT_EN.get(event, event)}"
            text = (f"{texts.text['en']}\nTime: {iso(alert.updated_at)}\n"
                    f"State: {STATE_EN.get(alert.isa_state, alert.isa_state)}\n"
                    f"Peak: {words.priorities[peak.priority].en}{who}\nAlarm id: {alert.id}")
            return title, text
        site = self.fleet.sites.get(alert.site_id)
        name = site.name if site else "瞭望系统"
        who = f"\n确认人: {alert.acknowledged_by}" + (f" ({alert.ack_note})" if alert.ack_note else "") \
            if alert.acknowledged_by and event in ("acknowledged", "closed") else ""
        title = f"【{alert.tier.label_zh}】{texts.title['zh']} {EVENT_ZH.get(event, event)}"
        text = (f"{texts.text['zh']}\n时间: {iso(alert.updated_at)}\n场所: {name} ({alert.county or '市级'})\n"
                f"状态: {STATE_ZH.get(alert.isa_state, alert.isa_state)}\n"
                f"最高: {peak.label_zh}{who}\n告警号: {alert.id}")
        return title, text

    def _insert(self, key: str, alert_id: str | None, receiver: str, event: str, title: str, text: str,
                alert_json: dict[str, Any], now: float, status: str = "pending") -> None:
        person = self.router.on_duty(receiver, now)
        markdown = f"### {title}\n" + "\n".join(f"> {line}" for line in text.splitlines())
        if person:
            markdown += f"\n> 值班: {person}"
        channels = self.senders.get(receiver) or [LogSender()]
        with self._lock:
            for index, channel in enumerate(channels):
                doc = {"id": f"{key}:{index}", "receiver": receiver, "on_duty": person, "event": event,
                       "alert_id": alert_id, "tier": alert_json.get("tier"), "site_id": alert_json.get("site_id"),
                       "title": title, "text": text, "markdown": markdown, "alert": alert_json}
                cur = self._conn.execute(
                    "INSERT INTO outbox (key, alert_id, site_id, receiver, channel, kind, document, status, "
                    "attempts, next_attempt_at, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?) "
                    "ON CONFLICT (key) DO NOTHING",
                    (doc["id"], alert_id, doc["site_id"], receiver, index, event, orjson.dumps(doc), status, now, now,
                     now))
                if cur.rowcount and status != "pending":
                    self._log(doc["id"], alert_id, receiver, channel.kind, event, now, status, "")

    # ------------------------------------------------------------------ delivery

    def deliver_due(self, now: float | None = None, limit: int = 100) -> int:
        """Send the outbox documents due at ``now``; return how many attempts were made."""
        now = self.clock() if now is None else now
        with self._lock:
            rows = self._conn.execute("SELECT key, alert_id, receiver, channel, kind, document, attempts FROM outbox "
                                      "WHERE status = 'pending' AND next_attempt_at <= ? ORDER BY created_at LIMIT ?",
                                      (now, limit)).fetchall()
        for key, alert_id, receiver, index, kind, document, attempts in rows:
            channels = self.senders.get(receiver) or [LogSender()]
            channel = channels[index] if index < len(channels) else LogSender()
            try:
                result = channel.send(orjson.loads(document))
            except Exception as err:  # a channel must not raise; if one does, treat it as a retryable failure
                result = Delivery(False, True, f"{type(err).__name__}: {err}")
            self._after(key, alert_id, receiver, channel.kind, kind, document, attempts + 1, result, now)
        return len(rows)

    def _after(self, key: str, alert_id: str | None, receiver: str, channel: str, kind: str, document: bytes,
               attempts: int, result: Delivery, now: float) -> None:
        settings = self.settings
        if result.ok:
            status, next_at = "sent", now
        elif result.retry and attempts < settings.retry_max_attempts:
            status = "pending"
            next_at = now + min(settings.retry_initial_s * 2 ** (attempts - 1), settings.retry_max_s)
        else:
            status, next_at = "failed", now
        with self._lock:
            self._conn.execute("UPDATE outbox SET status = ?, attempts = ?, next_attempt_at = ?, updated_at = ?, "
                               "detail = ? WHERE key = ?", (status, attempts, next_at, now, result.detail, key))
        outcome = "sent" if result.ok else ("retry" if status == "pending" else "failed")
        self._log(key, alert_id, receiver, channel, kind, now, outcome, result.detail)
        if status == "failed":
            log.warning("notification_failed", key=key, receiver=receiver, channel=channel, attempts=attempts,
                        detail=result.detail)
            fallback = settings.fallback_receiver
            if fallback and receiver != fallback:
                doc = orjson.loads(document)
                doc["title"] = f"[转交: {receiver} 通知失败] " + doc["title"]
                self._insert(f"{key}:fallback", alert_id, fallback, kind, doc["title"], doc["text"], doc["alert"], now)

    def _log(self, key: str, alert_id: str | None, receiver: str, channel: str, kind: str, at: float, outcome: str,
             detail: str) -> None:
        with self._lock:
            self._conn.execute("INSERT INTO delivery_log (key, alert_id, receiver, channel, kind, at, outcome, detail) "
                               "VALUES (?, ?, ?, ?, ?, ?, ?, ?)", (key, alert_id, receiver, channel, kind, at, outcome,
                                                                   detail))

    def deliveries(self, alert_id: str) -> list[dict[str, Any]]:
        """The delivery log of one alert: what was sent, to whom, when, the outcome."""
        with self._lock:
            rows = self._conn.execute("SELECT key, receiver, channel, kind, at, outcome, detail FROM delivery_log "
                                      "WHERE alert_id = ? ORDER BY seq", (alert_id,)).fetchall()
        return [{"notification": r[0], "receiver": r[1], "channel": r[2], "event": r[3], "at": iso(r[4]),
                 "outcome": r[5], "detail": r[6]} for r in rows]

    def pending(self) -> int:
        """Documents waiting for delivery."""
        with self._lock:
            return self._conn.execute("SELECT count(*) FROM outbox WHERE status = 'pending'").fetchone()[0]

    # ------------------------------------------------------------------ thread

    def start(self) -> None:
        """Start the delivery thread."""
        self._thread.start()

    def stop(self) -> None:
        """Stop the delivery thread (pending documents stay in the outbox) and close the connection."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        self._conn.close()

    def _run(self) -> None:
        """Deliver what is due every half second; while the outbox cannot be read or written (a full
        disk) back off up to 10 s and say so in `problem` (health shows it) — documents stay queued."""
        wait = 0.5
        while not self._stop.wait(wait):
            try:
                self.deliver_due()
                self.problem, wait = None, 0.5
            except Exception as err:
                first = self.problem is None
                self.problem = f"{type(err).__name__}: {str(err)[:200]}"
                wait = min(wait * 2, 10.0)
                log.error("notification_delivery_failed", error=self.problem, retry_in_s=wait, exc_info=first)

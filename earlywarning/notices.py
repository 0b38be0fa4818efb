"""Who is told of a warning's step, and the notification documents they get.

Routes come from warnings.yaml (`WarningRoute`): the first route matching the warning's category,
level, county, site and subject kind gives its ``desk`` (told of proposals, to verify them), its
``escalation`` (told in turn while a proposal waits past its deadline) and its ``recipients``
(told of published warnings). A `Notice` is one document for one receiver; its ``key`` names
the step and the receiver, so enqueuing it twice stores it once. `Notice.to_document` has the
shape of `alerting.notify.Notifier`'s outbox documents, so the receivers' channels (log, MQTT,
webhook, WeCom, DingTalk, email) send it as they send alarms.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from earlywarning.model import EarlyWarning, HistoryEntry, WarningEvent
from foundation.domain import iso
from foundation.warningspec import WarningRoute, WarningSettings

__all__ = ["Notice", "WarningRouter", "notices_for"]


@dataclass(frozen=True, slots=True)
class Notice:
    """One notification of one warning step for one receiver (alerting.yaml's receiver ids)."""

    key: str
    receiver: str
    event: str               # warning_proposed, warning_issued, …
    warning_id: str
    site_id: str | None
    tier: str                # the level's colour
    title: str
    text: str
    markdown: str
    warning: dict[str, Any]  # EarlyWarning.to_json() at that step

    def to_document(self) -> dict[str, Any]:
        """The outbox document; `alerting.channels` read id, receiver, event, tier, title, text and markdown."""
        return {"id": self.key, "receiver": self.receiver, "on_duty": None, "event": self.event, "alert_id": None,
                "warning_id": self.warning_id, "tier": self.tier, "site_id": self.site_id, "title": self.title,
                "text": self.text, "markdown": self.markdown, "warning": self.warning}


def _unique(names: list[str]) -> list[str]:
    return list(dict.fromkeys(names))


class WarningRouter:
    """The routes of warnings.yaml."""

    def __init__(self, settings: WarningSettings) -> None:
        self.settings = settings

    def route(self, warning: EarlyWarning) -> WarningRoute | None:
        """The first route matching ``warning``, or None."""
        s = warning.subject
        return next((r for r in self.settings.routes
                     if r.covers(warning.category, warning.level, s.county, s.site_id, s.kind.value)), None)

    def chain(self, warning: EarlyWarning) -> list[list[str]]:
        """Who is told of a proposal by escalation step: step 0 the desk, then one escalation receiver per step."""
        route = self.route(warning)
        return [list(route.desk)] + [[r] for r in route.escalation] if route else []

    def told(self, warning: EarlyWarning) -> list[str]:
        """Everyone told of the proposal so far: the desk and the escalation steps taken."""
        return _unique([r for step in self.chain(warning)[: warning.escalation_step + 1] for r in step])

    def receivers(self, warning: EarlyWarning, entry: HistoryEntry) -> list[str]:
        """Who is told of the step ``entry`` recorded."""
        event = entry.event
        if event is WarningEvent.PROPOSED:
            chain = self.chain(warning)
            return chain[0] if chain else []
        if event is WarningEvent.OVERDUE:
            return list(entry.receivers)
        if event.publishes:
            route = self.route(warning)
            return _unique(self.told(warning) + (list(route.recipients) if route else []))
        return self.told(warning)  # updated, verified, rejected


_EVENT_NAMES = {e: f"warning_{e.value}" for e in WarningEvent}


def _text(warning: EarlyWarning, entry: HistoryEntry) -> str:
    w = warning
    lines = [f"类别: {w.category} ({w.event})", f"级别: {w.level.label_zh}"
             + (f" (建议调整为 {w.proposed_level.label_zh})" if w.proposed_level else ""),
             f"状态: {w.state.zh}", f"对象: {w.subject.name} ({w.subject.county or '市级'})", f"范围: {w.area.desc}"]
    if w.onset is not None:
        lines.append(f"起始时间: {iso(w.onset)}")
    if w.watch:
        lines.append("警示事项: " + "; ".join(m.text for m in w.watch))
    if w.measures:
        lines.append("措施: " + " ".join(f"{i}. {m.text}" for i, m in enumerate(w.measures, start=1)))
    lines.append(f"发布单位: {w.issuer.name}" + (f"  发布时间: {iso(w.issued_at)}" if w.issued_at is not None else ""))
    evidence = w.evidence
    if evidence.alarm_ids or evidence.risk_grade:
        lines.append("依据: " + "; ".join(([f"相关报警 {len(evidence.alarm_ids)} 条"] if evidence.alarm_ids else [])
                                         + ([f"风险等级 {evidence.risk_grade.zh}"] if evidence.risk_grade else [])))
    lines.append(f"{entry.event.zh}: {entry.by} {iso(entry.at)}" + (f" — {entry.reason}" if entry.reason else ""))
    lines.append(f"预警号: {w.id}")
    return "\n".join(lines)


def notices_for(warning: EarlyWarning, router: WarningRouter) -> list[Notice]:
    """The notices of ``warning``'s latest step (its last history entry), one per receiver."""
    index = len(warning.history) - 1
    entry = warning.history[index]
    receivers = router.receivers(warning, entry)
    if not receivers:
        return []
    title = f"【{warning.level.label_zh}】{warning.subject.name} {warning.event} {entry.event.zh}"
    text = _text(warning, entry)
    markdown = f"### {title}\n" + "\n".join(f"> {line}" for line in text.splitlines())
    data = warning.to_json()
    return [Notice(f"warning:{warning.id}:h{index}:{receiver}", receiver, _EVENT_NAMES[entry.event], warning.id,
                   warning.site_id, warning.level.colour, title, text, markdown, data) for receiver in receivers]

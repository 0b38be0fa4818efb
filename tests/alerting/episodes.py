"""Stored alarm episodes for the history, export and statistics tests: built directly, no rule engine.

`episode` makes one `Alert` with the fields the history reads; `november` is a fixed month of
them across three sites, two counties, every priority, state and 消警 cause, so API and browser
tests can assert exact counts.
"""

from __future__ import annotations

from datetime import datetime

from alerting.model import AlarmState, Alert, HistoryEntry
from foundation.domain import CST, Tier

T0 = datetime(2026, 11, 2, 8, 0, tzinfo=CST).timestamp()
"""2026-11-02 08:00 Beijing time: the first episode of `november`."""

SITES = {"LC-LUXI": ("东昌府区", "gas", "gas.combustible_gas.threshold", "LC-LUXI-GD-0{}"),
         "LC-XFHG": ("茌平区", "gas", "gas.combustible_gas.threshold", "LC-XFHG-GD-0{}"),
         "LC-DEHH": ("东阿县", "forest", "forest.danger", "LC-DEHH-WS{}")}


def episode(site_id: str, subject: str, raised_at: float, tier: Tier = Tier.ORANGE, *, family: str = "gas",
            county: str = "东昌府区", rule_id: str = "gas.combustible_gas.threshold", ack_after: float | None = None,
            close_after: float | None = None, cause: str | None = None, chattering: bool = False,
            open_: bool = False, message: str | None = None, peak: Tier | None = None) -> Alert:
    """One stored episode; acknowledged/closed ``ack_after``/``close_after`` seconds after it was raised.

    Without ``open_`` it is over (resolved, or closed when ``close_after`` is given).
    """
    alert = Alert(id=Alert.make_id(rule_id, subject, raised_at), rule_id=rule_id, kind="threshold", subject=subject,
                  site_id=site_id, county=county, family=family, tier=tier, level="level1",
                  message=message or f"{subject} 可燃气体浓度 27.5 %LEL", value=27.5, threshold=25.0, unit="%LEL",
                  raised_at=raised_at, updated_at=raised_at, peak_tier=peak or tier, peak_value=27.5, peak_at=raised_at,
                  chattering=chattering)
    alert.history.append(HistoryEntry(raised_at, "raised", tier))
    if ack_after is not None:
        alert.acknowledged_at, alert.acknowledged_by = raised_at + ack_after, "值班员甲"
        alert.history.append(HistoryEntry(raised_at + ack_after, "acknowledged", tier, by="值班员甲", note="收到"))
        alert.isa = AlarmState.ACKNOWLEDGED
    if not open_:
        alert.isa, alert.condition_active = AlarmState.NORMAL, False
        alert.resolved_at = raised_at + (ack_after or 0) + 60
    if close_after is not None:
        alert.closed_at, alert.closed_by, alert.close_cause = raised_at + close_after, "值班长乙", cause
        alert.history.append(HistoryEntry(raised_at + close_after, "closed", tier, by="值班长乙", note="现场确认已处置"))
    alert.updated_at = max([raised_at] + [h.at for h in alert.history])
    return alert


CAUSES = ("false_alarm", "instrument_fault", "process_upset", "maintenance", "real_incident", None)


def november(start: float = T0) -> list[Alert]:
    """60 episodes from 2026-11-02 08:00 (or ``start``) over 6 days: 20 per site, one every 7 h, priorities
    cycling low→urgent, every third closed (causes cycling, one in six without a cause), every other
    acknowledged, the last two of each site still open (unacknowledged)."""
    alerts = []
    for s, (site_id, (county, family, rule_id, pattern)) in enumerate(SITES.items()):
        for i in range(20):
            tier = Tier(1 + i % 4)
            closed = i % 3 == 0 and i < 18
            alerts.append(episode(
                site_id, pattern.format(1 + i % 3), start + s * 600 + i * 7 * 3600, tier, family=family, county=county,
                rule_id=rule_id, ack_after=120.0 * (1 + i % 5) if i % 2 == 0 else None,
                close_after=3600.0 * (1 + i % 4) if closed else None, cause=CAUSES[(i // 3) % 6] if closed else None,
                open_=i >= 18, chattering=i == 5))
    return alerts

"""Site status (CONTRACT §3): the highest tier among a site's active alerts, else normal or offline."""

from __future__ import annotations

from collections import Counter
from typing import Callable, Iterable

from alerting.model import Alert
from foundation.config import Fleet
from foundation.domain import Tier

COUNTED_STATES = ("active", "acknowledged")
"""States that colour a site; shelved alerts are hidden by a person, resolved ones are over."""

TIER_NAMES = tuple(t.colour for t in Tier)
SILENCE_KINDS = ("stale", "comm_loss", "not_reporting")
"""Alarm kinds that say a site or sensor is silent: an offline site shows as offline, not by these."""


def site_statuses(fleet: Fleet, open_alerts: Iterable[Alert], site_offline: Callable[[str], bool]) -> dict[str, dict]:
    """Status and open-alert counts by tier for every site.

    ``site_offline(site_id)`` says whether all the site's sensors are stale (or its gateway left).
    An offline site is ``offline`` unless a process alert is still open there (that tier wins:
    the last known danger matters more than the silence); its stale-sensor faults are not counted.
    """
    counts: dict[str, Counter[str]] = {site_id: Counter() for site_id in fleet.sites}
    top: dict[str, Tier] = {}
    offline = {site_id for site_id in fleet.sites if site_offline(site_id)}
    for alert in open_alerts:
        if alert.kind in SILENCE_KINDS and alert.site_id in offline:
            continue  # a silent site shows as offline, not as a heap of sensor faults
        if alert.state in COUNTED_STATES and alert.site_id in counts:
            counts[alert.site_id][alert.tier.colour] += 1
            top[alert.site_id] = max(top.get(alert.site_id, alert.tier), alert.tier)
    out = {}
    for site_id in fleet.sites:
        if site_id in top:
            status = top[site_id].colour
        elif site_id in offline:
            status = "offline"
        else:
            status = "normal"
        out[site_id] = {"status": status, "alerts": {t: counts[site_id][t] for t in TIER_NAMES}}
    return out

"""Alarm statistics a safety manager reviews monthly (ISA-18.2 §16, EEMUA 191): pure functions over episodes.

Everything here is computed from stored `Alert` episodes and the times it is given; nothing reads
the clock. `alarm_kpis` is the one entry point (``/api/v1/kpis`` and ``/api/v1/statistics`` both
call it); the helpers are public because their arithmetic is tested on its own.

Conventions, chosen once for every figure:

- An episode belongs to the period it was *raised* in (``start <= raised_at <= end``).
- "Priority" is the episode's *peak* priority: an alarm that went orange → red counts as urgent,
  also after it fell back (what the operator had to handle at worst).
- A day is a calendar day in China Standard Time (UTC+08:00), written ``YYYY-MM-DD``.
- A desk is the county the alarm is in (``city`` for alarms of no county), as the flood settings
  of ``alerting.yaml`` mean it.
- Percentiles interpolate linearly between ranks (Excel's PERCENTILE.INC, numpy's default):
  the median of 1, 2, 3, 10 is 2.5.
- A desk is in flood while MORE than ``flood.alerts`` alarms were raised in the trailing
  ``flood.window_s`` (the raise at ``r`` counts over ``[r, r + window_s)``, as `flood_onsets`).
"""

from __future__ import annotations

import math
from collections import Counter
from datetime import datetime
from typing import Any, Callable, Iterable, Sequence

from alerting.lifecycle import flood_onsets
from alerting.model import Alert, CloseCause
from foundation.alertspec import AlertingSettings
from foundation.domain import CST, Tier, iso

__all__ = ["alarm_kpis", "day_of", "durations_by_priority", "flood_intervals", "interval_union", "percentile",
           "per_day"]

PRIORITIES = tuple(t.priority for t in Tier)
"""``low``, ``medium``, ``high``, ``urgent``: the keys of every by-priority figure, lowest first."""

TOP = 10
"""How many bad actors the statistics list (EEMUA 191: the top ten give most of the load)."""


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q``-th percentile (0–100) of ``values`` by linear interpolation; None for no values.

    >>> percentile([1, 2, 3, 10], 50), round(percentile([1, 2, 3, 10], 90), 6), percentile([], 50)
    (2.5, 7.9, None)
    """
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    # written as a weighted mean of the two neighbours so that equal neighbours give exactly their value
    return ordered[low] * (1 - (rank - low)) + ordered[high] * (rank - low)


def day_of(ts: float) -> str:
    """The calendar day (China Standard Time) of epoch seconds ``ts``.

    >>> day_of(1795564800.0 - 1), day_of(1795564800.0 - 8 * 3600)
    ('2026-11-25', '2026-11-25')
    >>> day_of(1795564800.0 - 8 * 3600 - 1)
    '2026-11-24'
    """
    return datetime.fromtimestamp(ts, CST).date().isoformat()


def _priority(alert: Alert) -> str:
    return (alert.peak_tier or alert.tier).priority


def _desk(alert: Alert) -> str:
    return alert.county or "city"


_KEYS: dict[str, Callable[[Alert], str]] = {"county": _desk, "family": lambda a: a.family, "priority": _priority}


def per_day(alerts: Iterable[Alert]) -> dict[str, dict[str, dict[str, int]]]:
    """Episodes raised per CST day by county (desk), family and peak priority: ``{day: {"county": {…}, …}}``.

    Days without an episode are left out (the page fills them with zeros).
    """
    days: dict[str, dict[str, Counter[str]]] = {}
    for alert in alerts:
        counters = days.setdefault(day_of(alert.raised_at), {key: Counter() for key in _KEYS})
        for key, of in _KEYS.items():
            counters[key][of(alert)] += 1
    return {day: {key: dict(sorted(c.items())) for key, c in counters.items()} for day, counters in sorted(days.items())}


def durations_by_priority(alerts: Iterable[Alert], until: Callable[[Alert], float | None]) -> dict[str, dict[str, Any]]:
    """Seconds from raise to ``until(alert)`` (acknowledged, closed), by peak priority: count, median, p90.

    Episodes where ``until`` gives None (never acknowledged, not closed) are not counted.
    """
    spans: dict[str, list[float]] = {p: [] for p in PRIORITIES}
    for alert in alerts:
        end = until(alert)
        if end is not None:
            spans[_priority(alert)].append(max(0.0, end - alert.raised_at))
    return {p: {"count": len(v), "median_s": percentile(v, 50), "p90_s": percentile(v, 90)} for p, v in spans.items()}


def flood_intervals(raise_times: Iterable[float], limit: int, window_s: float, start: float,
                    end: float) -> list[tuple[float, float]]:
    """The stretches of ``[start, end]`` in which MORE than ``limit`` raises fall in the trailing window.

    A raise at ``r`` is counted over ``[r, r + window_s)``. The stretches are sorted and disjoint.

    >>> flood_intervals([0, 1, 2, 3], limit=3, window_s=10, start=0, end=100)
    [(3, 10)]
    """
    events = sorted([(t, 1) for t in raise_times] + [(t + window_s, -1) for t in raise_times],
                    key=lambda e: (e[0], e[1]))  # a raise leaving before one arriving at the same instant
    stretches: list[tuple[float, float]] = []
    count = 0
    for (t, delta), following in zip(events, events[1:] + [(math.inf, 0)]):
        count += delta
        if count > limit:
            low, high = max(t, start), min(following[0], end)
            if high > low:
                stretches.append((low, high))
    return interval_union(stretches)


def interval_union(stretches: Iterable[tuple[float, float]]) -> list[tuple[float, float]]:
    """Sorted, disjoint stretches covering the same time as ``stretches`` (touching ones merged).

    >>> interval_union([(5, 7), (0, 2), (1, 3), (3, 4)])
    [(0, 4), (5, 7)]
    """
    merged: list[tuple[float, float]] = []
    for low, high in sorted(stretches):
        if merged and low <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], high))
        else:
            merged.append((low, high))
    return merged


def _length(stretches: Iterable[tuple[float, float]]) -> float:
    return sum(high - low for low, high in stretches)


def alarm_kpis(alerts: Iterable[Alert], open_alerts: Iterable[Alert], settings: AlertingSettings, start: float,
               end: float, now: float, name_of: Callable[[str], str] = str) -> dict[str, Any]:
    """The alarm KPIs of the episodes raised in ``[start, end]``; stale alarms are those open at ``now``.

    ``alerts`` may hold more episodes than the period's (they are filtered here); ``open_alerts``
    are the open episodes of the same sites; ``name_of`` gives a subject's name for the bad-actor
    list. The keys ``since``…``top_sources`` are those ``/api/v1/kpis`` always had.
    """
    period = sorted((a for a in alerts if start <= a.raised_at <= end), key=lambda a: (a.raised_at, a.id))
    span = max(end - start, 0.0)
    flood = settings.flood
    per_desk: dict[str, list[float]] = {}
    for alert in period:
        per_desk.setdefault(_desk(alert), []).append(alert.raised_at)
    desks, all_floods = {}, []
    for desk, times in sorted(per_desk.items()):
        buckets = Counter(int((t - start) // 600) for t in times)
        stretches = flood_intervals(times, flood.alerts, flood.window_s, start, end)
        all_floods += stretches
        desks[desk] = {"alerts": len(times), "max_per_10_min": max(buckets.values()),
                       "avg_per_10_min": len(times) / (span / 600) if span else None,
                       "floods": flood_onsets(times, flood.alerts, flood.window_s),
                       "flood_s": _length(stretches), "flood_share": _length(stretches) / span if span else 0.0}
    episodes = Counter((a.rule_id, a.subject) for a in period)
    sites = {(a.rule_id, a.subject): a.site_id for a in period}
    chattering = Counter((a.rule_id, a.subject) for a in period if a.chattering)
    stale = sorted((a for a in open_alerts if now - a.raised_at > settings.stale_alert_s), key=lambda a: a.raised_at)
    by_cause = {c.value: 0 for c in CloseCause}
    for alert in period:
        if alert.closed_at is not None:
            by_cause[alert.close_cause or "unspecified"] = by_cause.get(alert.close_cause or "unspecified", 0) + 1
    flood_s = _length(interval_union(all_floods))

    def ranked(counts: Counter[tuple[str, str]], noun: str) -> list[dict[str, Any]]:
        top = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP]
        return [{"rule_id": r, "subject": s, "name": name_of(s), "site_id": sites[(r, s)], noun: n}
                for (r, s), n in top]

    return {"since": iso(start), "until": iso(end), "new_alerts": len(period), "desks": desks,
            "closed_by_cause": by_cause, "closed_by_cause_zh": {c.zh: by_cause[c.value] for c in CloseCause},
            "floods": sum(d["floods"] for d in desks.values()),
            "chattering_alerts": sum(chattering.values()),
            "stale_alerts": len(stale), "stale_alert_ids": [a.id for a in stale],
            "top_sources": ranked(episodes, "alerts"),
            # added with the statistics page (issue 14)
            "by_priority": {p: sum(1 for a in period if _priority(a) == p) for p in PRIORITIES},
            "by_county": dict(sorted(Counter(map(_desk, period)).items())),
            "by_family": dict(sorted(Counter(a.family for a in period).items())),
            "per_day": per_day(period),
            "time_to_ack": durations_by_priority(period, lambda a: a.acknowledged_at),
            "time_to_close": durations_by_priority(period, lambda a: a.closed_at),
            "flood_s": flood_s, "flood_share": flood_s / span if span else 0.0,
            "chattering_sources": ranked(chattering, "alerts"),
            "stale": [{"id": a.id, "rule_id": a.rule_id, "subject": a.subject, "name": name_of(a.subject),
                       "site_id": a.site_id, "priority": _priority(a), "raised_at": iso(a.raised_at),
                       "open_s": now - a.raised_at} for a in stale]}

"""The alarm history API (issue 14 §4): search past and present alarms, export them, and their statistics.

`history_router` builds an `APIRouter` for `liaowang.api.create_app` to mount. Every route reads
(role ``viewer``, anonymous too under ``auth.public_read``) and is checked before anything else
(`AuthFirstRoute`). A token scoped to sites sees its sites' alarms only, in the list, the exports
and the statistics alike; a ``site_id`` filter naming another site finds nothing; alarms of no
site (``_system``) are for unscoped tokens only.

- ``GET /api/v1/history/alarms`` — filters (all optional, lists comma-separated): ``since``,
  ``until`` (raise time, RFC 3339 or epoch seconds), ``site_id``, ``county``, ``family``,
  ``priority`` (the episode's peak: ``low…urgent`` or the colours), ``state``, ``cause`` (消警
  cause or ``unspecified``), ``q`` (text); paged by ``limit``/``offset``, newest raised first,
  answered as ``{"total", "offset", "limit", "items": [alert + site_name, subject_name]}``.
- ``GET /api/v1/history/alarms/export?format=csv|xlsx&lang=zh|en`` — the same search as a file.
- ``GET /api/v1/statistics?month=YYYY-MM`` (or ``since``/``until``; default: this month, CST) —
  the KPIs of `alerting.statistics.alarm_kpis` plus the period and the names of sites.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Callable

import structlog
from fastapi import APIRouter, Depends, HTTPException, Query, Response

from alerting import STATES, AlertStore
from alerting.model import CloseCause
from alerting.search import UNSPECIFIED, AlarmQuery, Found, search
from liaowang.alarm_export import subject_name, to_csv, to_xlsx
from liaowang.auth import AuthFirstRoute, Authenticator, Principal
from foundation.config import COUNTIES, Fleet
from foundation.domain import CST, Tier
from liaowang.params import parse_time_param, split_choices

__all__ = ["history_router"]

API = "/api/v1"
log = structlog.get_logger(__name__)
EXPORT_MAX = 100_000
"""The most rows one export holds; a larger search is a 422 asking to narrow it (a month of a flood fits)."""
_MONTH = re.compile(r"(\d{4})-(\d{2})")

Kpis = Callable[[float, float, "frozenset[str] | None"], dict[str, Any]]
"""(start, end, sites) → the KPIs of the episodes raised in [start, end] (`liaowang.api.alarm_kpis_for`)."""


def month_bounds(month: str, now: float) -> tuple[float, float]:
    """The epoch seconds a ``YYYY-MM`` month (China Standard Time) spans, cut at ``now``; 422 otherwise.

    >>> from foundation.domain import iso
    >>> start, end = month_bounds("2026-11", now=2e9)
    >>> iso(start), iso(end)
    ('2026-11-01T00:00:00.000+08:00', '2026-11-30T23:59:59.999+08:00')
    """
    match = _MONTH.fullmatch(month.strip())
    if not match or not (1 <= int(match[2]) <= 12 and 1970 <= int(match[1]) < 3000):
        raise HTTPException(422, f"month: expected YYYY-MM (2026-11), got {month[:20]!r}")
    year, number = int(match[1]), int(match[2])
    start = datetime(year, number, 1, tzinfo=CST).timestamp()
    following = datetime(year + number // 12, number % 12 + 1, 1, tzinfo=CST).timestamp()
    return start, max(start, min(following - 0.001, now))


def history_router(store: AlertStore, auth: Authenticator, fleet: Fleet, clock: Callable[[], float],
                   kpis: Kpis) -> APIRouter:
    """The history, export and statistics routes over ``store``; ``kpis`` computes the statistics.

    Mount with ``app.include_router(history_router(pipeline.alert_store, auth, fleet, pipeline.clock, …))``.
    """
    router = APIRouter(prefix=API, route_class=AuthFirstRoute, tags=["history"])
    reader = auth.needs("viewer", read=True)

    def name_of(subject: str) -> str:
        return subject_name(fleet, subject)

    def site_name(site_id: str) -> str:
        site = fleet.sites.get(site_id)
        return site.name if site is not None else site_id

    def _query(since: str | None, until: str | None, site_id: str | None, county: str | None, family: str | None,
               priority: str | None, state: str | None, cause: str | None, q: str | None) -> AlarmQuery:
        start, end = parse_time_param(since, "since"), parse_time_param(until, "until")
        if start is not None and end is not None and end < start:
            raise HTTPException(422, "until: before since")
        priorities = split_choices(priority, tuple(t.priority for t in Tier) + tuple(t.colour for t in Tier),
                                   "priority")
        causes = split_choices(cause, tuple(c.value for c in CloseCause) + (UNSPECIFIED,), "cause")

        def tup(values: list[str] | None) -> tuple[str, ...] | None:
            return tuple(values) if values else None

        return AlarmQuery(
            start=start, end=end, sites=tup([s.strip() for s in site_id.split(",") if s.strip()] if site_id else None),
            counties=tup(split_choices(county, COUNTIES, "county")),
            families=tup(split_choices(family, ("hazard", "gas", "forest", "system"), "family")),
            priorities=tup([Tier.parse(p).priority for p in priorities] if priorities else None),
            states=tup(split_choices(state, STATES, "state")), causes=tup(causes), text=q.strip() or None if q else None)

    def _found(principal: Principal, query: AlarmQuery, limit: int | None = None, offset: int = 0) -> Found:
        return search(store, query, principal.scope, name_of, site_name, limit, offset)

    @router.get("/history/alarms")
    def history(since: str | None = None, until: str | None = None,
                site_id: str | None = Query(None, max_length=4000),
                county: str | None = None, family: str | None = None, priority: str | None = None,
                state: str | None = None, cause: str | None = None, q: str | None = Query(None, max_length=200),
                limit: int = Query(50, ge=1, le=500), offset: int = Query(0, ge=0, le=10_000_000),
                principal: Principal = Depends(reader)) -> dict[str, Any]:
        """Alarms of the caller's sites raised in a period, filtered and paged, newest raised first, with a total."""
        found = _found(principal, _query(since, until, site_id, county, family, priority, state, cause, q), limit, offset)
        items = [{**a.to_json(), "site_name": site_name(a.site_id), "subject_name": name_of(a.subject)}
                 for a in found.alerts]
        return {"total": found.total, "offset": offset, "limit": limit, "items": items}

    @router.get("/history/alarms/export")
    def export(format: str = Query("csv", pattern="^(csv|xlsx)$"), lang: str = Query("zh", pattern="^(zh|en)$"),
               since: str | None = None, until: str | None = None,
               site_id: str | None = Query(None, max_length=4000),
               county: str | None = None, family: str | None = None, priority: str | None = None,
               state: str | None = None, cause: str | None = None, q: str | None = Query(None, max_length=200),
               principal: Principal = Depends(reader)) -> Response:
        """The same search as a CSV (UTF-8 with BOM) or Excel file: names, words, Beijing times."""
        query = _query(since, until, site_id, county, family, priority, state, cause, q)
        found = _found(principal, query, EXPORT_MAX + 1).alerts
        if len(found) > EXPORT_MAX:
            raise HTTPException(422, f"more than {EXPORT_MAX} alarms match; an export holds at most that: narrow the search")
        log.info("alarms_exported", format=format, rows=len(found), by=principal.name)
        stamp = datetime.fromtimestamp(clock(), CST).strftime("%Y%m%d-%H%M")
        if format == "csv":
            body, media = to_csv(found, fleet, lang), "text/csv; charset=utf-8"
        else:
            body, media = to_xlsx(found, fleet, lang), "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
        return Response(body, media_type=media, headers={
            "Content-Disposition": f'attachment; filename="liaowang-alarms-{stamp}.{format}"'})

    @router.get("/statistics")
    def statistics(month: str | None = None, since: str | None = None, until: str | None = None,
                   principal: Principal = Depends(reader)) -> dict[str, Any]:
        """Alarm KPIs (ISA-18.2 / EEMUA 191) of the caller's sites over a month (CST) or [since, until]."""
        now = clock()
        if month is not None and (since is not None or until is not None):
            raise HTTPException(422, "month: give month or since/until, not both")
        if month is None and since is None and until is None:
            month = datetime.fromtimestamp(now, CST).strftime("%Y-%m")
        if month is not None:
            start, end = month_bounds(month, now)
        else:
            start = parse_time_param(since, "since")
            end = parse_time_param(until, "until")
            end = now if end is None else end
            start = end - 30 * 86_400 if start is None else start
            if end < start:
                raise HTTPException(422, "until: before since")
        result = kpis(start, end, principal.scope)
        sites = {s: site.name for s, site in fleet.sites.items() if principal.covers(s)}
        return {**result, "month": month, "site_names": sites}

    return router

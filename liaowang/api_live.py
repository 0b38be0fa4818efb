"""The site view's live stream and the alarm detail's context (issue 14 items 5 and 3).

`live_router` builds the routes for `liaowang.api.create_app` to mount:

- ``GET /api/v1/sites/{site_id}/live`` — Server-Sent Events for one site: ``hello``, then a
  ``readings`` event with every sensor's latest value, then at most one ``readings`` event per
  `LIVE_INTERVAL_S` with the sensors whose reading or staleness changed, and the site's ``alert``
  and ``site`` events as ``/api/v1/events`` sends them. One connection gives the site view all it
  draws, so it never polls.

  Why a per-site stream and not a ``readings`` event on ``/api/v1/events``: every map page holds
  that stream, and readings arrive for thousands of sensors a second; filtering them per client
  there would wake every map client for every batch. Here only a page that shows a site pays for
  it, and the coalescing is a diff of that site's few dozen sensors against what this client was
  last sent (`LiveFrames`), sampled from ``pipeline.live`` once a second: a burst of readings costs
  one event, and a sensor going stale is noticed without a reading arriving.
- ``GET /api/v1/alerts/{alert_id}/context`` — what the alarm detail page draws beside the alert:
  its sensors' readings around the episode (from before it was raised to after it cleared), their
  setpoint ladders, the site and hazard unit names, and the response guidance (``alarm_guidance.yaml``).
- ``GET /alerts/{alert_id}`` — the alarm detail page (static ``alert.html``).

Access as everywhere (`AuthFirstRoute`): reads are ``viewer`` (anonymous under ``public_read``); a
token scoped to sites gets 403 for another site's stream or alarm, 404 first for an unknown one.
"""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass
from importlib import resources
from typing import Any, AsyncIterator, Callable

import numpy as np
import orjson
import structlog
from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, StreamingResponse

from alerting import Alert
from liaowang.auth import AuthFirstRoute, Authenticator, Principal
from foundation.domain import iso
from foundation.guidancespec import GuidanceBook
from liaowang.pipeline import Pipeline
from liaowang.sse import Resume, last_event_id

__all__ = ["CONTEXT_MAX_POINTS", "LIVE_INTERVAL_S", "LiveFrames", "SensorNow", "live_router"]

log = structlog.get_logger("api")

API = "/api/v1"
LIVE_INTERVAL_S = 1.0
"""At most one ``readings`` event per this many seconds per client: a duty-room card needs no more."""
KEEPALIVE_S = 5.0
"""A comment line this often when nothing changed, so a page sees a dead stream within seconds (its
liveness banner) and proxies keep the connection open."""
CONTEXT_MAX_POINTS = 2000
"""Points per sensor in an alarm's chart; longer episodes are reduced to each bucket's min and max."""
CONTEXT_MARGIN_S = 600.0
"""Readings shown before the raise and after the clear (at least; a fifth of the episode when longer)."""


@dataclass(frozen=True, slots=True)
class SensorNow:
    """What a card shows of one sensor at one moment."""

    sensor_id: str
    ts: float | None
    value: float | None
    quality: str | None
    stale: bool

    def to_json(self) -> dict[str, Any]:
        return {"sensor_id": self.sensor_id, "ts": iso(self.ts), "value": self.value, "quality": self.quality,
                "stale": self.stale}


class LiveFrames:
    """What one client was last sent, and what changed since (the coalescing of the live stream).

    >>> frames = LiveFrames()
    >>> a = SensorNow("A", 1.0, 5.0, "good", False)
    >>> [s.sensor_id for s in frames.changes([a])]     # first call: everything
    ['A']
    >>> frames.changes([a])                            # nothing new
    []
    >>> [s.value for s in frames.changes([SensorNow("A", 2.0, 6.0, "good", False)])]
    [6.0]
    >>> [s.stale for s in frames.changes([SensorNow("A", 2.0, 6.0, "good", True)])]  # stale without a reading
    [True]
    """

    def __init__(self) -> None:
        self._sent: dict[str, SensorNow] = {}

    def changes(self, now: list[SensorNow]) -> list[SensorNow]:
        """The sensors whose state differs from what was last sent; remembers them as sent."""
        changed = [s for s in now if self._sent.get(s.sensor_id) != s]
        for s in changed:
            self._sent[s.sensor_id] = s
        return changed


def _frame(event: str, data: Any) -> bytes:
    return b"event: " + event.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


def _reduce(ts: np.ndarray, values: np.ndarray, max_points: int) -> tuple[np.ndarray, np.ndarray]:
    """At most ``max_points`` points that keep every bucket's lowest and highest value (peaks stay visible).

    >>> t, v = _reduce(np.arange(10.0), np.array([0, 9, 1, 1, 1, 1, 1, 1, -5, 1.0]), 4)
    >>> sorted(v.tolist())
    [-5.0, 0.0, 1.0, 9.0]
    """
    if len(ts) <= max_points:
        return ts, values
    buckets = max_points // 2
    edges = np.linspace(0, len(ts), buckets + 1).astype(int)
    keep: list[int] = []
    for start, end in zip(edges[:-1], edges[1:]):
        if end > start:
            part = values[start:end]
            keep += sorted({start + int(np.argmin(part)), start + int(np.argmax(part))})
    index = np.array(keep)
    return ts[index], values[index]


def live_router(pipeline: Pipeline, auth: Authenticator, guidance: GuidanceBook,
                clock: Callable[[], float] | None = None) -> APIRouter:
    """The live-stream, alarm-context and alarm-page routes over ``pipeline``.

    Mount with ``app.include_router(live_router(pipeline, auth, load_alarm_guidance(config.folder)))``.
    ``clock`` (default ``pipeline.clock``) decides staleness and the open end of an episode.
    """
    router = APIRouter(route_class=AuthFirstRoute, tags=["live"])
    reader = auth.needs("viewer", read=True)
    fleet = pipeline.fleet
    now_of = clock or pipeline.clock
    static = resources.files("dashboards").joinpath("static")
    site_sensors: dict[str, list[str]] = {}
    for sensor in fleet.sensors.values():
        site_sensors.setdefault(sensor.site_id, []).append(sensor.id)

    def _site(principal: Principal, site_id: str) -> None:
        if site_id not in fleet.sites:
            raise HTTPException(404, f"no site {site_id}")
        if not principal.covers(site_id):
            raise HTTPException(403, f"token {principal.name} may not read site {site_id}")

    def _alert(principal: Principal, alert_id: str) -> Alert:
        alert = pipeline.alert_store.get(alert_id)
        if alert is None:
            raise HTTPException(404, f"no alert {alert_id}")
        if not (principal.scope is None or alert.site_id in principal.scope):
            raise HTTPException(403, f"token {principal.name} may not read site {alert.site_id}")
        return alert

    def _now(site_id: str) -> list[SensorNow]:
        at = now_of()
        out = []
        for sensor_id in site_sensors.get(site_id, []):
            last = pipeline.live.get(sensor_id)
            out.append(SensorNow(sensor_id, last.ts if last else None, last.value if last else None,
                                 last.quality.value if last else None,
                                 pipeline.sensor_stale(fleet.sensors[sensor_id], at)))
        return out

    @router.get(f"{API}/sites/{{site_id}}/live")
    async def site_live(site_id: str, request: Request, principal: Principal = Depends(reader)) -> StreamingResponse:
        """Server-Sent Events of one site: ``readings`` (latest value, time, quality and staleness per sensor; all
        at first, then only the changed ones, at most one event a second), ``alert`` and ``site`` events."""
        _site(principal, site_id)
        queue = pipeline.hub.subscribe({site_id})
        resume = Resume(pipeline.event_log, {site_id}, last_event_id(request))
        frames = LiveFrames()

        def readings_event() -> bytes | None:
            changed = frames.changes(_now(site_id))
            if not changed:
                return None
            return _frame("readings", {"site_id": site_id, "at": iso(now_of()),
                                       "readings": [s.to_json() for s in changed]})

        async def stream() -> AsyncIterator[bytes]:
            try:
                yield await run_in_threadpool(resume.start, {"site_id": site_id})
                while page := await run_in_threadpool(resume.next_page):
                    yield b"".join(page)
                first = readings_event()
                if first is not None:
                    yield first
                next_tick = time.monotonic() + LIVE_INTERVAL_S
                quiet_since = time.monotonic()
                while True:
                    try:
                        frame = await asyncio.wait_for(queue.get(), timeout=max(0.0, next_tick - time.monotonic()))
                    except asyncio.TimeoutError:
                        frame = b""
                    if frame is None or await request.is_disconnected():
                        return  # the hub closed (shutdown) or the page went away
                    if frame and resume.admit(frame):
                        yield frame
                        quiet_since = time.monotonic()
                    if time.monotonic() >= next_tick:
                        next_tick = time.monotonic() + LIVE_INTERVAL_S
                        update = readings_event()
                        if update is not None:
                            yield update
                            quiet_since = time.monotonic()
                        elif time.monotonic() - quiet_since >= KEEPALIVE_S:
                            yield b": keep-alive\n\n"
                            quiet_since = time.monotonic()
            finally:
                pipeline.hub.unsubscribe(queue)

        log.debug("live_stream_opened", site_id=site_id, principal=principal.name)
        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    def _subject_sensors(alert: Alert) -> list[str]:
        """The sensors an alarm is about: its subject, or the detectors of its zone (confirmation rules)."""
        if alert.subject in fleet.sensors:
            return [alert.subject]
        rule = pipeline.engine.by_id.get(alert.rule_id)
        for zone in getattr(rule, "zones", None) or []:
            if zone.id == alert.subject:
                return list(zone.sensors)
        return []

    @router.get(f"{API}/alerts/{{alert_id}}/context")
    def alert_context(alert_id: str, margin_s: float = Query(CONTEXT_MARGIN_S, ge=0, le=86_400),
                      principal: Principal = Depends(reader)) -> dict[str, Any]:
        """What the alarm detail page draws: the alarm's sensors with their setpoints and readings from
        ``margin_s`` (at least; a fifth of the episode when longer) before the raise to as long after the clear
        (or now, while it is active), the site and hazard unit, and the response guidance for its kind and level."""
        alert = _alert(principal, alert_id)
        now = now_of()
        cleared = alert.cleared_at or alert.resolved_at or alert.closed_at
        end = cleared if cleared is not None and not alert.condition_active else now
        margin = max(margin_s, 0.2 * max(0.0, end - alert.raised_at))
        start, until = alert.raised_at - margin, min(now, end + margin)
        sensors = []
        for sensor_id in _subject_sensors(alert):
            sensor = fleet.sensors[sensor_id]
            rows = pipeline.readings.recent(sensor_id, start, until, limit=100_000)
            ts = np.array([r.ts for r in reversed(rows)], dtype=float)
            values = np.array([r.value for r in reversed(rows)], dtype=float)
            ts, values = _reduce(ts, values, CONTEXT_MAX_POINTS)
            sensors.append({"id": sensor.id, "name": sensor.name, "name_en": getattr(sensor, "name_en", None),
                            "unit": sensor.unit, "quantity": sensor.quantity,
                            "family": sensor.family.value, "readings_total": len(rows),
                            "setpoints": [s.model_dump() for s in fleet.setpoints_for(sensor)],
                            "readings": [[iso(float(t)), float(v)] for t, v in zip(ts, values) if math.isfinite(v)]})
        site = fleet.sites.get(alert.site_id)
        members = _subject_sensors(alert)
        units = [u for u in (site.hazard_units if site else []) if any(s in u.sensors for s in members)]
        quantity = fleet.sensors[members[0]].quantity if members else None
        measures = guidance.measures_for(family=alert.family, quantity=quantity, level=alert.level,
                                         rule_id=alert.rule_id, kind=alert.kind)
        return {"alert_id": alert.id, "since": iso(start), "until": iso(until),
                "site": {"id": alert.site_id, "name": site.name if site else alert.site_id,
                         "name_en": getattr(site, "name_en", None), "county": site.county if site else ""},
                "hazard_units": [{"id": u.id, "name": u.name, "name_en": getattr(u, "name_en", None), "grade": u.grade}
                                 for u in units],
                "subject_name": (fleet.sensors[alert.subject].name if alert.subject in fleet.sensors else None),
                "sensors": sensors, "measures": [m.model_dump() for m in measures]}

    @router.get("/alerts/{alert_id}", include_in_schema=False)
    def alert_page(alert_id: str) -> FileResponse:
        """The alarm detail page; it loads the alarm itself (so a sign-in decides what it may see)."""
        if pipeline.alert_store.get(alert_id) is None:
            raise HTTPException(404, f"no alert {alert_id}")
        return FileResponse(str(static.joinpath("alert.html")), media_type="text/html; charset=utf-8")

    return router

"""The HTTP API (CONTRACT §4) and the one-map page, served by FastAPI over the pipeline."""

from __future__ import annotations

import asyncio
from datetime import datetime
from importlib import resources
from typing import Any, AsyncIterator

from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from prometheus_client import generate_latest
from pydantic import BaseModel, ConfigDict, Field

from alerting import STATES, AlertNotFound, LifecycleError
from alerting.lifecycle import flood_onsets
from liaowang.auth import Authenticator
from liaowang.domain import Tier, iso, parse_time
from liaowang.pipeline import Pipeline

API = "/api/v1"


class AckBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: str | None = Field(default=None, max_length=2000)


class CloseBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: str = Field(min_length=1, max_length=2000, description="why the alert is closed (消警), required")


class SuppressionBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    site_id: str | None = Field(default=None, max_length=64)
    sensor_id: str | None = Field(default=None, max_length=64)
    start: datetime = Field(description="RFC 3339 with offset")
    end: datetime = Field(description="RFC 3339 with offset, after start")
    reason: str = Field(min_length=2, max_length=2000)


class ShelveBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    until: datetime = Field(description="RFC 3339 time the shelving ends")
    reason: str = Field(min_length=1, max_length=2000)


def _parse_since(since: str | None) -> float | None:
    if since is None:
        return None
    since = since.strip().replace(" ", "+")  # an unescaped '+' of the UTC offset arrives as a space
    try:
        return float(since) if since.replace(".", "", 1).isdigit() else parse_time(since)
    except ValueError as err:
        raise HTTPException(422, f"since: {err}") from None


def _split(value: str | None, allowed: tuple[str, ...], name: str) -> list[str] | None:
    if not value:
        return None
    items = [v.strip() for v in value.split(",") if v.strip()]
    bad = [v for v in items if v not in allowed]
    if bad:
        raise HTTPException(422, f"{name}: unknown value(s) {bad}; allowed: {list(allowed)}")
    return items


def _require_known(collection: Any, key: str, noun: str) -> None:
    """404 with ``no <noun> <key>`` unless ``key`` is in ``collection``."""
    if key not in collection:
        raise HTTPException(404, f"no {noun} {key}")


def alarm_kpis_for(pipeline: Pipeline, start: float, now: float) -> dict[str, Any]:
    """KPIs over [start, now] from the stored alerts (raised times are event times)."""
    settings = pipeline.config.alerting
    alerts = [a for a in pipeline.alert_store.query(since=start, limit=1_000_000) if a.raised_at >= start]
    window = settings.flood.window_s
    per_desk: dict[str, list[float]] = {}
    for alert in alerts:
        per_desk.setdefault(alert.county or "city", []).append(alert.raised_at)
    desks = {}
    for desk, times in per_desk.items():
        times.sort()
        buckets: dict[int, int] = {}
        for t in times:
            buckets[int((t - start) // 600)] = buckets.get(int((t - start) // 600), 0) + 1
        floods = flood_onsets(times, settings.flood.alerts, window)
        desks[desk] = {"alerts": len(times), "max_per_10_min": max(buckets.values()), "floods": floods}
    counts: dict[tuple[str, str], int] = {}
    for alert in alerts:
        counts[(alert.rule_id, alert.subject)] = counts.get((alert.rule_id, alert.subject), 0) + 1
    top = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:10]
    stale = [a for a in pipeline.alerts.open_alerts() if now - a.raised_at > settings.stale_alert_s]
    return {"since": iso(start), "until": iso(now), "new_alerts": len(alerts), "desks": desks,
            "floods": sum(d["floods"] for d in desks.values()),
            "chattering_alerts": sum(1 for a in alerts if a.chattering),
            "stale_alerts": len(stale), "stale_alert_ids": [a.id for a in stale],
            "top_sources": [{"rule_id": r, "subject": s, "alerts": n} for (r, s), n in top]}


def create_app(pipeline: Pipeline) -> FastAPI:
    """The FastAPI application over a started (or startable) pipeline."""
    app = FastAPI(title="Liaowang 瞭望", version="0.1.0", description="Real-time sensor monitoring and tiered early warning")
    auth = Authenticator(pipeline.settings.auth, lambda principal, request: pipeline.audit.append(
        pipeline.clock(), principal.name, "token_used", None, None, role=principal.role,
        request=f"{request.method} {request.url.path}"))
    fleet = pipeline.fleet
    static = resources.files("dashboards").joinpath("static")

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        return JSONResponse({"detail": f"{where}: {first['msg']}" if where else first["msg"]}, status_code=422)

    # ------------------------------------------------------------------ alerts

    @app.get(f"{API}/alerts")
    def list_alerts(request: Request, state: str | None = None, tier: str | None = None, site_id: str | None = None,
                    county: str | None = None, since: str | None = None,
                    limit: int = Query(200, ge=1, le=5000)) -> list[dict[str, Any]]:
        """Alerts, newest first; ``state`` and ``tier`` take comma-separated lists."""
        auth.require(request, "viewer", read=True)
        tiers = _split(tier, tuple(t.colour for t in Tier), "tier")
        alerts = pipeline.alert_store.query(
            states=_split(state, STATES, "state"), tiers=[int(Tier.parse(t)) for t in tiers] if tiers else None,
            site_id=site_id, county=county, since=_parse_since(since), limit=limit)
        return [a.to_json() for a in alerts]

    @app.get(f"{API}/alerts/{{alert_id}}")
    def get_alert(request: Request, alert_id: str) -> dict[str, Any]:
        """One alert with its history."""
        auth.require(request, "viewer", read=True)
        alert = pipeline.alert_store.get(alert_id)
        if alert is None:
            raise HTTPException(404, f"no alert {alert_id}")
        return alert.to_json()

    def _act(request: Request, alert_id: str, role: str, action) -> dict[str, Any]:
        principal = auth.require(request, role)
        alert = pipeline.alert_store.get(alert_id)
        if alert is None:
            raise HTTPException(404, f"no alert {alert_id}")
        if not principal.may_act_on(alert.site_id):
            raise HTTPException(403, f"token {principal.name} may not act on site {alert.site_id}")
        try:
            change = action(principal.name)
        except AlertNotFound:
            raise HTTPException(404, f"no alert {alert_id}") from None
        except LifecycleError as err:
            raise HTTPException(409, str(err)) from None
        pipeline.announce([change])
        return change.alert.to_json()

    @app.post(f"{API}/alerts/{{alert_id}}/ack")
    def ack_alert(request: Request, alert_id: str, body: AckBody | None = None) -> dict[str, Any]:
        """Acknowledge (确认) an alert; role operator or above."""
        note = body.note if body else None
        return _act(request, alert_id, "operator", lambda by: pipeline.alerts.acknowledge(alert_id, by, note))

    @app.post(f"{API}/alerts/{{alert_id}}/close")
    def close_alert(request: Request, alert_id: str, body: CloseBody) -> dict[str, Any]:
        """Close (消警) a resolved alert with a note; role duty_officer or above."""
        return _act(request, alert_id, "duty_officer", lambda by: pipeline.alerts.close(alert_id, by, body.note))

    @app.post(f"{API}/alerts/{{alert_id}}/shelve")
    def shelve_alert(request: Request, alert_id: str, body: ShelveBody) -> dict[str, Any]:
        """Shelve an alert until a time, with a reason; role duty_officer or above."""
        if body.until.tzinfo is None:
            raise HTTPException(422, "until: needs a UTC offset")
        until = body.until.timestamp()
        return _act(request, alert_id, "duty_officer",
                    lambda by: pipeline.alerts.shelve(alert_id, by, until, body.reason))

    @app.get(f"{API}/alerts/{{alert_id}}/deliveries")
    def alert_deliveries(request: Request, alert_id: str) -> list[dict[str, Any]]:
        """The delivery log of an alert: every notification attempt, receiver, channel, time and outcome."""
        auth.require(request, "operator")
        if pipeline.alert_store.get(alert_id) is None:
            raise HTTPException(404, f"no alert {alert_id}")
        return pipeline.notifier.deliveries(alert_id)

    # ------------------------------------------------------------------ suppression, audit, KPIs

    @app.get(f"{API}/suppressions")
    def list_suppressions(request: Request) -> list[dict[str, Any]]:
        """Maintenance windows (configured and set through the API)."""
        auth.require(request, "viewer", read=True)
        return [w.to_json() for w in pipeline.suppressions.all()]

    @app.post(f"{API}/suppressions", status_code=201)
    def add_suppression(request: Request, body: SuppressionBody) -> dict[str, Any]:
        """Suppress a site's or a sensor's alerts by design (maintenance); duty_officer, or operator of that site."""
        principal = auth.require(request, "operator")
        if (body.site_id is None) == (body.sensor_id is None):
            raise HTTPException(422, "give site_id or sensor_id")
        if body.start.tzinfo is None or body.end.tzinfo is None:
            raise HTTPException(422, "start and end need a UTC offset")
        start, end = body.start.timestamp(), body.end.timestamp()
        if end <= start:
            raise HTTPException(422, "end must be after start")
        if body.sensor_id is not None and body.sensor_id not in fleet.sensors:
            raise HTTPException(404, f"no sensor {body.sensor_id}")
        if body.site_id is not None and body.site_id not in fleet.sites:
            raise HTTPException(404, f"no site {body.site_id}")
        site = body.site_id or fleet.sensors[body.sensor_id].site_id  # type: ignore[index]
        if not principal.may("duty_officer") and not (principal.sites and principal.may_act_on(site)):
            raise HTTPException(403, "operators may suppress only their own site; duty_officer or above otherwise")
        if not principal.may_act_on(site):
            raise HTTPException(403, f"token {principal.name} may not act on site {site}")
        window = pipeline.suppressions.add(body.site_id, body.sensor_id, start, end, body.reason, principal.name,
                                           pipeline.clock())
        pipeline.audit.append(pipeline.clock(), principal.name, "suppressed", None, body.sensor_id or body.site_id,
                              window=window.to_json())
        return window.to_json()

    @app.delete(f"{API}/suppressions/{{window_id}}")
    def cancel_suppression(request: Request, window_id: str) -> dict[str, Any]:
        """End a maintenance window set through the API; duty_officer or above."""
        principal = auth.require(request, "duty_officer")
        if not pipeline.suppressions.cancel(window_id, pipeline.clock()):
            raise HTTPException(404, f"no active window {window_id} set through the API")
        pipeline.audit.append(pipeline.clock(), principal.name, "suppression_cancelled", None, None, window_id=window_id)
        return {"id": window_id, "cancelled": True}

    @app.get(f"{API}/audit")
    def audit_export(request: Request, since: str | None = None, until: str | None = None,
                     format: str = Query("json", pattern="^(json|csv)$")) -> Response:
        """The audit trail of a period (every human action and automatic transition) as JSON or CSV."""
        auth.require(request, "duty_officer")
        body = pipeline.audit.export(format, _parse_since(since), _parse_since(until))
        media = "application/json" if format == "json" else "text/csv; charset=utf-8"
        headers = {} if format == "json" else {"Content-Disposition": "attachment; filename=liaowang-audit.csv"}
        return Response(body, media_type=media, headers=headers)

    @app.get(f"{API}/kpis")
    def alarm_kpis(request: Request, since: str | None = None) -> dict[str, Any]:
        """Alarm KPIs (ISA-18.2): new alerts per 10 min per desk, floods, chattering, stale alerts, top sources."""
        auth.require(request, "viewer", read=True)
        now = pipeline.clock()
        start = _parse_since(since)
        return alarm_kpis_for(pipeline, now - 86_400 if start is None else start, now)

    @app.get(f"{API}/whoami")
    def whoami(request: Request) -> dict[str, Any]:
        """The caller's token name, role and site scope (401 without a valid token)."""
        principal = auth.identify(request)
        if principal is None:
            raise HTTPException(401, "a bearer token is required", headers={"WWW-Authenticate": "Bearer"})
        return {"name": principal.name, "role": principal.role, "sites": list(principal.sites)}

    # ------------------------------------------------------------------ sites, sensors, map

    def _site_json(site_id: str, statuses: dict[str, dict]) -> dict[str, Any]:
        site = fleet.sites[site_id]
        status = statuses.get(site_id, {"status": "normal", "alerts": {}})
        return {**site.model_dump(), "status": status["status"], "alerts": status["alerts"],
                "sensor_count": sum(1 for s in fleet.sensors.values() if s.site_id == site_id)}

    @app.get(f"{API}/sites")
    def list_sites(request: Request) -> list[dict[str, Any]]:
        """Every site with its status and active alert counts by tier."""
        auth.require(request, "viewer", read=True)
        statuses = pipeline.statuses()
        return [_site_json(site_id, statuses) for site_id in fleet.sites]

    @app.get(f"{API}/sites/{{site_id}}")
    def get_site(request: Request, site_id: str) -> dict[str, Any]:
        """One site with its status."""
        auth.require(request, "viewer", read=True)
        _require_known(fleet.sites, site_id, "site")
        return _site_json(site_id, pipeline.statuses())

    def _sensor_json(sensor_id: str, now: float) -> dict[str, Any]:
        sensor = fleet.sensors[sensor_id]
        last = pipeline.live.get(sensor_id)
        return {
            "id": sensor.id, "site_id": sensor.site_id, "name": sensor.name, "family": sensor.family.value,
            "quantity": sensor.quantity, "unit": sensor.unit, "lon": sensor.lon, "lat": sensor.lat,
            "period_s": sensor.period_s, "last_value": last.value if last else None,
            "last_ts": iso(last.ts) if last else None, "last_quality": last.quality.value if last else None,
            "stale": pipeline.sensor_stale(sensor, now),
            "setpoints": [s.model_dump() for s in fleet.setpoints_for(sensor)],
        }

    @app.get(f"{API}/sensors")
    def list_sensors(request: Request, site_id: str | None = None, family: str | None = None) -> list[dict[str, Any]]:
        """Sensors with their last value and whether they are stale."""
        auth.require(request, "viewer", read=True)
        families = _split(family, ("hazard", "gas", "forest"), "family")
        now = pipeline.clock()
        return [_sensor_json(s.id, now) for s in fleet.sensors.values()
                if (site_id is None or s.site_id == site_id) and (families is None or s.family.value in families)]

    @app.get(f"{API}/sensors/{{sensor_id}}")
    def get_sensor(request: Request, sensor_id: str) -> dict[str, Any]:
        """One sensor."""
        auth.require(request, "viewer", read=True)
        _require_known(fleet.sensors, sensor_id, "sensor")
        return _sensor_json(sensor_id, pipeline.clock())

    @app.get(f"{API}/sensors/{{sensor_id}}/readings")
    def sensor_readings(request: Request, sensor_id: str, since: str | None = None, until: str | None = None,
                        limit: int = Query(1000, ge=1, le=100_000)) -> list[dict[str, Any]]:
        """Stored readings of one sensor, newest first."""
        auth.require(request, "viewer", read=True)
        _require_known(fleet.sensors, sensor_id, "sensor")
        rows = pipeline.readings.recent(sensor_id, _parse_since(since), _parse_since(until), limit)
        return [{"ts": iso(r.ts), "value": r.value, "quality": r.quality.value} for r in rows]

    @app.get(f"{API}/map")
    def site_map(request: Request) -> dict[str, Any]:
        """GeoJSON FeatureCollection: one Point per site with status and alert counts."""
        auth.require(request, "viewer", read=True)
        statuses = pipeline.statuses()
        now = iso(pipeline.clock())
        features = []
        for site_id, site in fleet.sites.items():
            status = statuses.get(site_id, {"status": "normal", "alerts": {}})
            features.append({
                "type": "Feature", "id": site_id,
                "geometry": {"type": "Point", "coordinates": [site.lon, site.lat]},
                "properties": {"site_id": site_id, "name": site.name, "county": site.county, "kind": site.kind,
                               "hazard_grade": site.hazard_grade, "status": status["status"],
                               "alerts": status["alerts"], "updated_at": now},
            })
        return {"type": "FeatureCollection", "features": features}

    @app.get(f"{API}/events")
    async def events(request: Request) -> StreamingResponse:
        """Server-Sent Events: ``alert`` on every alert change, ``site`` on every status change."""
        auth.require(request, "viewer", read=True)
        queue = pipeline.hub.subscribe()

        async def stream() -> AsyncIterator[bytes]:
            try:
                yield b"retry: 2000\nevent: hello\ndata: {}\n\n"
                while True:
                    try:
                        frame = await asyncio.wait_for(queue.get(), timeout=15)
                    except asyncio.TimeoutError:
                        yield b": keep-alive\n\n"
                        continue
                    if frame is None or await request.is_disconnected():
                        return
                    yield frame
            finally:
                pipeline.hub.unsubscribe(queue)

        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    # ------------------------------------------------------------------ operations

    @app.get("/healthz")
    def healthz() -> JSONResponse:
        """Liveness and readiness of the broker link and the stores (503 when not ready)."""
        health = pipeline.health()
        return JSONResponse(health, status_code=200 if health["ok"] else 503)

    @app.get("/metrics")
    def metrics() -> Response:
        """Prometheus text exposition of the pipeline's metrics."""
        return Response(generate_latest(pipeline.registry), media_type="text/plain; version=0.0.4; charset=utf-8")

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(str(static.joinpath("index.html")), media_type="text/html; charset=utf-8")

    @app.get("/sites/{site_id}", include_in_schema=False)
    def site_page(site_id: str) -> FileResponse:
        _require_known(fleet.sites, site_id, "site")
        return FileResponse(str(static.joinpath("site.html")), media_type="text/html; charset=utf-8")

    app.mount("/static", StaticFiles(directory=str(static)), name="static")
    return app

"""The HTTP API (CONTRACT §4) and the one-map page, served by FastAPI over the pipeline."""

from __future__ import annotations

import asyncio
from datetime import datetime
from importlib import resources
from typing import Any, AsyncIterator

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from prometheus_client import generate_latest
from pydantic import BaseModel, ConfigDict, Field

from alerting import STATES, Alert
from alerting.audit import document as audit_document
from alerting.model import CloseCause
from alerting.statistics import alarm_kpis
from alerting.suppress import Suppression
from liaowang.alarm_export import subject_name
from liaowang.api_history import history_router
from liaowang.api_incidents import incidents_router
from liaowang.api_people import people_router
from liaowang.api_live import live_router
from liaowang.api_risk import risk_router
from liaowang.api_ui import ui_router
from liaowang.api_warnings import warnings_router
from liaowang.auth import AuthFirstRoute, Authenticator, Principal
from foundation.domain import Tier, iso
from liaowang.commands import ERRORS as COMMAND_ERRORS
from liaowang.sse import Resume, last_event_id
from liaowang.params import body_time, parse_time_param, split_choices
from liaowang.backend import Backend
from liaowang.pipeline import Pipeline
from liaowang.users import People

API = "/api/v1"


class AckBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: str | None = Field(default=None, max_length=2000)


class CloseBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: str = Field(min_length=1, max_length=2000, description="why the alert is closed (消警), required")
    cause: str | None = Field(default=None, max_length=32, description=(
        "消警 cause category: false_alarm 误报, instrument_fault 仪表故障, process_upset 工艺波动, maintenance 检修作业, "
        "real_incident 真实险情 (English or Chinese); required unless alerting.yaml close_cause_required is false"))


class SuppressionBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    site_id: str | None = Field(default=None, max_length=64)
    sensor_id: str | None = Field(default=None, max_length=64)
    start: datetime = Field(description="RFC 3339 with offset")
    end: datetime = Field(description="RFC 3339 with offset, after start")
    reason: str = Field(min_length=2, max_length=2000)
    include_gas: bool = Field(default=False, description="a site-wide window covers the site's gas detectors only if true")


class ShelveBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    until: datetime | None = Field(default=None, description="RFC 3339 time the shelving ends (or give duration_s)")
    duration_s: float | None = Field(default=None, gt=0, le=10 * 86400, description="how long the shelf lasts")
    reason: str = Field(min_length=1, max_length=2000)


class OutOfServiceBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    sensor_id: str = Field(max_length=64)
    reason: str = Field(min_length=2, max_length=2000)
    until: datetime | None = Field(default=None, description="RFC 3339; without it, until returned to service")


def _require_known(collection: Any, key: str, noun: str) -> None:
    """404 with ``no <noun> <key>`` unless ``key`` is in ``collection``."""
    if key not in collection:
        raise HTTPException(404, f"no {noun} {key}")


def _require_scope(principal: Principal, site_id: str | None, verb: str) -> None:
    """403 unless the principal's sites cover ``site_id``; asked once the object is known to exist (404 first)."""
    if not (principal.scope is None or site_id in principal.scope):
        raise HTTPException(403, f"token {principal.name} may not {verb} site {site_id}")


def alarm_kpis_for(pipeline: Pipeline, start: float, now: float, sites: frozenset[str] | None = None,
                   end: float | None = None) -> dict[str, Any]:
    """KPIs (`alerting.statistics.alarm_kpis`) of the episodes raised in [start, end or now], of ``sites`` only
    unless None; stale alarms are those open at ``now``."""
    end = now if end is None else end
    alerts = pipeline.alert_store.raised_between(start, end, sites)
    open_alerts = [a for a in pipeline.alerts.open_alerts() if sites is None or a.site_id in sites]
    return alarm_kpis(alerts, open_alerts, pipeline.config.alerting, start, end, now,
                      lambda subject: subject_name(pipeline.fleet, subject))


def create_app(pipeline: Backend) -> FastAPI:
    """The FastAPI application over a started (or startable) pipeline, or any other `Backend` (the stateless
    ``liaowang api`` role's `ApiBackend`): the routes are the same, only where reads and actions go differs.

    Every API route names what it needs as a dependency (`reader`, `operator`, ...), checked before
    the request's body is read (`AuthFirstRoute`). A token scoped to sites sees only those sites:
    lists leave the others out, and one object of another site is a 403 (an unknown one a 404).
    """
    app = FastAPI(title="Liaowang 瞭望", version="0.1.0", description="Real-time sensor monitoring and tiered early warning")
    app.router.route_class = AuthFirstRoute
    people = People(pipeline.alert_db, pipeline.audit, pipeline.settings.auth, pipeline.clock)
    people.seed(pipeline.settings.auth.users)  # the configured users that do not exist yet (docs/people.md)
    auth = Authenticator(pipeline.settings.auth, lambda principal, request: pipeline.audit.append(
        pipeline.clock(), principal.name, "token_used", None, None, role=principal.role,
        request=f"{request.method} {request.url.path}"), people=people)
    reader = auth.needs("viewer", read=True)  # anonymous too under auth.public_read
    any_token = auth.needs("viewer")
    operator = auth.needs("operator")
    duty_officer = auth.needs("duty_officer")
    fleet = pipeline.fleet
    static = resources.files("dashboards").joinpath("static")

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        return JSONResponse({"detail": f"{where}: {first['msg']}" if where else first["msg"]}, status_code=422)

    # ------------------------------------------------------------------ alerts

    def _query_alerts(principal: Principal, site_id: str | None, limit: int, **filters: Any) -> list[Alert]:
        """The store's query within the principal's sites: one query per site, merged newest first."""
        scope = principal.scope
        if scope is None:
            return pipeline.alert_store.query(site_id=site_id, limit=limit, **filters)
        sites = [site_id] if site_id else sorted(scope)
        found = [a for site in sites if site in scope
                 for a in pipeline.alert_store.query(site_id=site, limit=limit, **filters)]
        return sorted(found, key=lambda a: (-a.updated_at, a.id))[:limit]  # the store's order

    def _alert(principal: Principal, alert_id: str, verb: str) -> Alert:
        alert = pipeline.alert_store.get(alert_id)
        if alert is None:
            raise HTTPException(404, f"no alert {alert_id}")
        _require_scope(principal, alert.site_id, verb)
        return alert

    @app.get(f"{API}/alerts")
    def list_alerts(state: str | None = None, tier: str | None = None, site_id: str | None = None,
                    county: str | None = None, since: str | None = None,
                    limit: int = Query(200, ge=1, le=5000), principal: Principal = Depends(reader)) -> list[dict[str, Any]]:
        """Alerts of the caller's sites, newest first; ``state`` and ``tier`` take comma-separated lists."""
        tiers = split_choices(tier, tuple(t.colour for t in Tier), "tier")
        alerts = _query_alerts(
            principal, site_id, limit, states=split_choices(state, STATES, "state"),
            tiers=[int(Tier.parse(t)) for t in tiers] if tiers else None, county=county,
            since=parse_time_param(since, "since"))
        return [a.to_json() for a in alerts]

    @app.get(f"{API}/alerts/{{alert_id}}")
    def get_alert(alert_id: str, principal: Principal = Depends(reader)) -> dict[str, Any]:
        """One alert with its history."""
        return _alert(principal, alert_id, "read").to_json()

    def _act(principal: Principal, alert_id: str, action: str, **fields: Any) -> dict[str, Any]:
        """Run a person's action on one alert as a command to its owner (`liaowang.commands`): 404 unknown, 403
        not theirs or not permitted, 422 breaks configuration, 409 not allowed in the alert's state, 503 when
        the alarm store cannot write or no owner answers (retry)."""
        alert = _alert(principal, alert_id, "act on")
        reply = command(principal, alert.site_id, action, alert_id=alert_id, **fields)
        return reply.get("alert") or alert.to_json()

    def command(principal: Principal, site_id: str | None, action: str, **fields: Any) -> dict[str, Any]:
        """Send a command on behalf of ``principal``; its error reply becomes the matching HTTP error."""
        reply = pipeline.command({"action": action, "site_id": site_id, "by": principal.name, "role": principal.role,
                                  **fields})
        if not reply["ok"]:
            raise HTTPException(COMMAND_ERRORS.get(reply["error"], 500), reply["detail"])
        return reply

    @app.post(f"{API}/alerts/{{alert_id}}/ack")
    def ack_alert(alert_id: str, body: AckBody | None = None, principal: Principal = Depends(operator)) -> dict[str, Any]:
        """Acknowledge (确认) an alert; role operator or above."""
        return _act(principal, alert_id, "acknowledge", note=body.note if body else None)

    def _require_cause(body: CloseBody) -> None:
        if body.cause is None and pipeline.config.alerting.close_cause_required:
            raise HTTPException(422, "a close cause is required (消警原因): " + ", ".join(
                f"{c.value} ({c.zh})" for c in CloseCause))

    @app.post(f"{API}/alerts/{{alert_id}}/close")
    def close_alert(alert_id: str, body: CloseBody, principal: Principal = Depends(duty_officer)) -> dict[str, Any]:
        """Close (消警) a resolved alert with a note and a cause category; role duty_officer or above."""
        _require_cause(body)
        return _act(principal, alert_id, "close", note=body.note, cause=body.cause)

    @app.post(f"{API}/alerts/{{alert_id}}/shelve")
    def shelve_alert(alert_id: str, body: ShelveBody, principal: Principal = Depends(duty_officer)) -> dict[str, Any]:
        """Shelve an alarm for ``duration_s`` or until ``until`` (at most alerting.yaml shelving.max_s), with a
        reason; role duty_officer or above (urgent alarms: shelving.protected_role)."""
        if (body.until is None) == (body.duration_s is None):
            raise HTTPException(422, "give until or duration_s")
        until = body_time(body.until, "until") if body.until is not None else pipeline.clock() + body.duration_s
        return _act(principal, alert_id, "shelve", until=until, reason=body.reason)

    @app.post(f"{API}/alerts/{{alert_id}}/unshelve")
    def unshelve_alert(alert_id: str, principal: Principal = Depends(duty_officer)) -> dict[str, Any]:
        """End an alarm's shelf now; role duty_officer or above."""
        return _act(principal, alert_id, "unshelve")

    @app.get(f"{API}/shelves")
    def list_shelves(principal: Principal = Depends(reader)) -> list[dict[str, Any]]:
        """The shelved alarms of the caller's sites: what, until when, by whom and why."""
        return [a.to_json() for a in pipeline.alerts.shelved() if principal.scope is None or a.site_id in principal.scope]

    @app.get(f"{API}/out-of-service")
    def list_out_of_service(principal: Principal = Depends(reader)) -> list[dict[str, Any]]:
        """Sensors out of service (configured and set through the API) of the caller's sites."""
        return [e.to_json() for e in pipeline.out_of_service.all()
                if e.sensor_id in fleet.sensors and (principal.scope is None or
                                                     fleet.sensors[e.sensor_id].site_id in principal.scope)]

    @app.post(f"{API}/out-of-service", status_code=201)
    def take_out_of_service(body: OutOfServiceBody, principal: Principal = Depends(duty_officer)) -> dict[str, Any]:
        """Take a sensor out of service with a reason (and an end): nothing is raised for it; audited."""
        _require_known(fleet.sensors, body.sensor_id, "sensor")
        _require_scope(principal, fleet.sensors[body.sensor_id].site_id, "act on")
        until = body_time(body.until, "until") if body.until is not None else None
        return command(principal, fleet.sensors[body.sensor_id].site_id, "take_out_of_service",
                       sensor_id=body.sensor_id, reason=body.reason, until=until)["entry"]

    @app.delete(f"{API}/out-of-service/{{sensor_id}}")
    def return_to_service(sensor_id: str, principal: Principal = Depends(duty_officer)) -> dict[str, Any]:
        """Return a sensor taken out of service through the API; audited."""
        _require_known(fleet.sensors, sensor_id, "sensor")
        _require_scope(principal, fleet.sensors[sensor_id].site_id, "act on")
        if not command(principal, fleet.sensors[sensor_id].site_id, "return_to_service", sensor_id=sensor_id)["done"]:
            raise HTTPException(404, f"sensor {sensor_id} was not taken out of service through the API")
        return {"sensor_id": sensor_id, "in_service": True}

    @app.get(f"{API}/alerts/{{alert_id}}/deliveries")
    def alert_deliveries(alert_id: str, principal: Principal = Depends(operator)) -> list[dict[str, Any]]:
        """The delivery log of an alert: every notification attempt, receiver, channel, time and outcome."""
        _alert(principal, alert_id, "read")
        return pipeline.notifier.deliveries(alert_id)

    # ------------------------------------------------------------------ suppression, audit, KPIs

    def _window_site(window: Suppression) -> str | None:
        sensor = fleet.sensors.get(window.sensor_id) if window.sensor_id else None
        return window.site_id or (sensor.site_id if sensor else None)

    @app.get(f"{API}/suppressions")
    def list_suppressions(principal: Principal = Depends(reader)) -> list[dict[str, Any]]:
        """Maintenance windows (configured and set through the API) of the caller's sites."""
        return [w.to_json() for w in pipeline.suppressions.all()
                if principal.scope is None or _window_site(w) in principal.scope]

    @app.post(f"{API}/suppressions", status_code=201)
    def add_suppression(body: SuppressionBody, principal: Principal = Depends(operator)) -> dict[str, Any]:
        """Suppress a site's or a sensor's alerts by design (maintenance); duty_officer, or operator of that site."""
        if (body.site_id is None) == (body.sensor_id is None):
            raise HTTPException(422, "give site_id or sensor_id")
        start, end = body_time(body.start, "start"), body_time(body.end, "end")
        if end <= start:
            raise HTTPException(422, "end must be after start")
        if body.sensor_id is not None and body.sensor_id not in fleet.sensors:
            raise HTTPException(404, f"no sensor {body.sensor_id}")
        if body.site_id is not None and body.site_id not in fleet.sites:
            raise HTTPException(404, f"no site {body.site_id}")
        site = body.site_id or fleet.sensors[body.sensor_id].site_id  # type: ignore[index]
        if not principal.may("duty_officer") and not (principal.sites and principal.covers(site)):
            raise HTTPException(403, "operators may suppress only their own site; duty_officer or above otherwise")
        _require_scope(principal, site, "act on")
        return command(principal, site, "suppress", window={
            "site_id": body.site_id, "sensor_id": body.sensor_id, "start": start, "end": end, "reason": body.reason,
            "include_gas": body.include_gas})["window"]

    @app.delete(f"{API}/suppressions/{{window_id}}")
    def cancel_suppression(window_id: str, principal: Principal = Depends(duty_officer)) -> dict[str, Any]:
        """End a maintenance window set through the API; duty_officer or above, of the window's site."""
        window = next((w for w in pipeline.suppressions.all() if w.id == window_id), None)
        if window is None:
            raise HTTPException(404, f"no active window {window_id} set through the API")
        _require_scope(principal, _window_site(window), "act on")
        try:
            return command(principal, _window_site(window), "cancel_suppression", window_id=window_id)["window"]
        except HTTPException as err:
            if err.status_code == 404:
                raise HTTPException(404, f"no active window {window_id} set through the API") from None
            raise

    def _audit_site(record: dict[str, Any], alert_sites: dict[str, str | None]) -> str | None:
        """The site an audit record is about: its alert's, else its subject's (a site or a sensor), else None."""
        if record["alert_id"]:
            if record["alert_id"] not in alert_sites:
                alert = pipeline.alert_store.get(record["alert_id"])
                alert_sites[record["alert_id"]] = alert.site_id if alert else None
            return alert_sites[record["alert_id"]]
        subject = record["subject"]
        sensor = fleet.sensors.get(subject) if subject else None
        return sensor.site_id if sensor else subject if subject in fleet.sites else None

    @app.get(f"{API}/audit")
    def audit_export(since: str | None = None, until: str | None = None,
                     format: str = Query("json", pattern="^(json|csv)$"),
                     principal: Principal = Depends(duty_officer)) -> Response:
        """The audit trail of a period (every human action and automatic transition) as JSON or CSV.

        A token scoped to sites gets the records about its sites and its own actions.
        """
        start, end = parse_time_param(since, "since"), parse_time_param(until, "until")
        if principal.scope is None:
            body = pipeline.audit.export(format, start, end)
        else:
            alert_sites: dict[str, str | None] = {}
            body = audit_document([r for r in pipeline.audit.records(start, end) if r["actor"] == principal.name
                                    or _audit_site(r, alert_sites) in principal.scope], format)
        media = "application/json" if format == "json" else "text/csv; charset=utf-8"
        headers = {} if format == "json" else {"Content-Disposition": "attachment; filename=liaowang-audit.csv"}
        return Response(body, media_type=media, headers=headers)

    @app.get(f"{API}/kpis")
    def alarm_kpis(since: str | None = None, principal: Principal = Depends(reader)) -> dict[str, Any]:
        """Alarm KPIs (ISA-18.2) of the caller's sites: new alerts per 10 min per desk, floods, chattering,
        stale alerts, top sources, closed alerts by 消警 cause."""
        now = pipeline.clock()
        start = parse_time_param(since, "since")
        return alarm_kpis_for(pipeline, now - 86_400 if start is None else start, now, principal.scope)

    @app.get(f"{API}/whoami")
    def whoami(principal: Principal = Depends(any_token)) -> dict[str, Any]:
        """The caller's name, role and site scope, its display name and kind (user or token); 401 without one."""
        return {"name": principal.name, "role": principal.role, "sites": list(principal.sites),
                "display_name": principal.display_name or principal.name, "kind": principal.kind}

    # ------------------------------------------------------------------ sites, sensors, map

    words = pipeline.alerts.messages  # English names of sites, sensors and counties (alerting/messages.py)

    def _site_json(site_id: str, statuses: dict[str, dict]) -> dict[str, Any]:
        site = fleet.sites[site_id]
        status = statuses.get(site_id, {"status": "normal", "alerts": {}})
        return {**site.model_dump(), "name_en": words.site_name(site_id)["en"],
                "county_en": words.wording.county(site.county), "status": status["status"], "alerts": status["alerts"],
                "sensor_count": sum(1 for s in fleet.sensors.values() if s.site_id == site_id)}

    @app.get(f"{API}/sites")
    def list_sites(principal: Principal = Depends(reader)) -> list[dict[str, Any]]:
        """The caller's sites with their status and active alert counts by tier."""
        statuses = pipeline.statuses()
        return [_site_json(site_id, statuses) for site_id in fleet.sites if principal.covers(site_id)]

    @app.get(f"{API}/sites/{{site_id}}")
    def get_site(site_id: str, principal: Principal = Depends(reader)) -> dict[str, Any]:
        """One site with its status."""
        _require_known(fleet.sites, site_id, "site")
        _require_scope(principal, site_id, "read")
        return _site_json(site_id, pipeline.statuses())

    def _sensor_json(sensor_id: str, now: float) -> dict[str, Any]:
        sensor = fleet.sensors[sensor_id]
        last = pipeline.live.get(sensor_id)
        return {
            "id": sensor.id, "site_id": sensor.site_id, "name": sensor.name,
            "name_en": words.sensor_name(sensor_id)["en"], "family": sensor.family.value,
            "quantity": sensor.quantity, "unit": sensor.unit, "lon": sensor.lon, "lat": sensor.lat,
            "period_s": sensor.period_s, "last_value": last.value if last else None,
            "last_ts": iso(last.ts) if last else None, "last_quality": last.quality.value if last else None,
            "stale": pipeline.sensor_stale(sensor, now),
            "setpoints": [s.model_dump() for s in fleet.setpoints_for(sensor)],
        }

    def _sensor(principal: Principal, sensor_id: str) -> None:
        _require_known(fleet.sensors, sensor_id, "sensor")
        _require_scope(principal, fleet.sensors[sensor_id].site_id, "read")

    @app.get(f"{API}/sensors")
    def list_sensors(site_id: str | None = None, family: str | None = None,
                     principal: Principal = Depends(reader)) -> list[dict[str, Any]]:
        """Sensors of the caller's sites with their last value and whether they are stale."""
        families = split_choices(family, ("hazard", "gas", "forest"), "family")
        now = pipeline.clock()
        return [_sensor_json(s.id, now) for s in fleet.sensors.values()
                if (site_id is None or s.site_id == site_id) and (families is None or s.family.value in families)
                and principal.covers(s.site_id)]

    @app.get(f"{API}/sensors/{{sensor_id}}")
    def get_sensor(sensor_id: str, principal: Principal = Depends(reader)) -> dict[str, Any]:
        """One sensor."""
        _sensor(principal, sensor_id)
        return _sensor_json(sensor_id, pipeline.clock())

    @app.get(f"{API}/sensors/{{sensor_id}}/readings")
    def sensor_readings(sensor_id: str, since: str | None = None, until: str | None = None,
                        limit: int = Query(1000, ge=1, le=100_000),
                        principal: Principal = Depends(reader)) -> list[dict[str, Any]]:
        """Stored readings of one sensor, newest first."""
        _sensor(principal, sensor_id)
        rows = pipeline.readings.recent(sensor_id, parse_time_param(since, "since"), parse_time_param(until, "until"),
                                        limit)
        return [{"ts": iso(r.ts), "value": r.value, "quality": r.quality.value} for r in rows]

    @app.get(f"{API}/map")
    def site_map(principal: Principal = Depends(reader)) -> dict[str, Any]:
        """GeoJSON FeatureCollection: one Point per site of the caller's, with status and alert counts."""
        statuses = pipeline.statuses()
        now = iso(pipeline.clock())
        features = []
        for site_id, site in fleet.sites.items():
            if not principal.covers(site_id):
                continue
            status = statuses.get(site_id, {"status": "normal", "alerts": {}})
            features.append({
                "type": "Feature", "id": site_id,
                "geometry": {"type": "Point", "coordinates": [site.lon, site.lat]},
                "properties": {"site_id": site_id, "name": site.name, "name_en": words.site_name(site_id)["en"],
                               "county": site.county, "county_en": words.wording.county(site.county), "kind": site.kind,
                               "hazard_grade": site.hazard_grade, "status": status["status"],
                               "alerts": status["alerts"], "updated_at": now},
            })
        return {"type": "FeatureCollection", "features": features}

    @app.get(f"{API}/events")
    async def events(request: Request, principal: Principal = Depends(reader)) -> StreamingResponse:
        """Server-Sent Events of the caller's sites: ``alert`` on every alert change, ``site`` on every status change,
        each with ``id: <seq>``; a reconnect with ``Last-Event-ID`` (or ``?last_event_id=``) first gets every event
        after it (or a ``reset`` event when that is older than the kept window: reload), then the live ones."""
        queue = pipeline.hub.subscribe(principal.scope)  # before reading the log: nothing falls between the two
        resume = Resume(pipeline.event_log, principal.scope, last_event_id(request))

        async def stream() -> AsyncIterator[bytes]:
            try:
                yield await run_in_threadpool(resume.start, {})
                while page := await run_in_threadpool(resume.next_page):
                    yield b"".join(page)
                checked = asyncio.get_running_loop().time()
                while True:
                    try:
                        frame = await asyncio.wait_for(queue.get(), timeout=15)
                    except asyncio.TimeoutError:
                        frame = b": keep-alive\n\n"
                    if frame is None or await request.is_disconnected():
                        return
                    if not resume.admit(frame):
                        continue  # already sent from the log
                    if principal.session is not None and asyncio.get_running_loop().time() - checked >= 15:
                        checked = asyncio.get_running_loop().time()
                        if not await run_in_threadpool(auth.still_signed_in, principal):
                            return  # signed out or expired (a person's stream): the page's next request says so
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

    @app.get("/metrics", dependencies=[Depends(auth.needs_metrics())])
    def metrics() -> Response:
        """Prometheus text exposition of the pipeline's metrics; open under ``public_read``, else the metrics
        token or a token of every site (`Authenticator.require_metrics`)."""
        return Response(generate_latest(pipeline.registry), media_type="text/plain; version=0.0.4; charset=utf-8")

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(str(static.joinpath("index.html")), media_type="text/html; charset=utf-8")

    @app.get("/sites/{site_id}", include_in_schema=False)
    def site_page(site_id: str) -> FileResponse:
        _require_known(fleet.sites, site_id, "site")
        return FileResponse(str(static.joinpath("site.html")), media_type="text/html; charset=utf-8")

    @app.get("/history", include_in_schema=False)
    def history_page() -> FileResponse:
        return FileResponse(str(static.joinpath("history.html")), media_type="text/html; charset=utf-8")

    @app.get("/stats", include_in_schema=False)
    def stats_page() -> FileResponse:
        return FileResponse(str(static.joinpath("stats.html")), media_type="text/html; charset=utf-8")

    app.include_router(warnings_router(pipeline.warnings, auth, fleet, pipeline.clock))
    app.include_router(risk_router(pipeline.risk, auth, fleet, pipeline.clock))
    app.include_router(incidents_router(pipeline.incidents, auth, pipeline.clock))
    app.include_router(history_router(pipeline.alert_store, auth, fleet, pipeline.clock, lambda start, end, sites:
                                      alarm_kpis_for(pipeline, start, pipeline.clock(), sites, end)))
    app.include_router(people_router(people, auth, fleet))
    app.include_router(ui_router(pipeline, auth))
    app.include_router(live_router(pipeline, auth, pipeline.config.guidance))
    app.mount("/static", StaticFiles(directory=str(static)), name="static")
    return app

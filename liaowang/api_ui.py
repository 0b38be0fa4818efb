"""What the duty-room pages need besides the core API: their settings, the data's liveness, bulk acknowledge.

`ui_router` builds an `APIRouter` for `liaowang.api.create_app` to mount. Like every route there,
each names what it needs (`Authenticator.needs`) and is checked before the body is read
(`AuthFirstRoute`).

- ``GET /api/v1/ui-settings`` (reads): the limits a dialog must respect before the server says no
  (the longest shelf, whether a 消警 cause or an acknowledgement note is required) and the age
  after which the map calls its data stale.
- ``GET /api/v1/liveness`` (reads): the server's time and the event time of the newest reading of
  the caller's sites, so a screen can show how old its data are and turn red when they stop.
- ``POST /api/v1/alerts/ack`` (operator): acknowledge many alarms with one note. Each id is judged
  on its own, with the status a single ``POST /alerts/{id}/ack`` would have answered (404 unknown,
  403 another site, 409 not in a state to acknowledge, 422 a required note missing, 503 the store
  cannot write); one failure never stops the others, and the answer lists every id's outcome.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from liaowang.auth import AuthFirstRoute, Authenticator, Principal
from foundation.domain import iso
from liaowang.commands import ERRORS as COMMAND_ERRORS
from liaowang.pipeline import Pipeline

__all__ = ["ui_router", "stale_after_s"]

API = "/api/v1"
AlertId = Annotated[str, StringConstraints(min_length=1, max_length=200)]
BULK_MAX = 500
"""The most ids one bulk request takes: a flood the map can list (it asks for 500 open alerts)."""


class BulkAckBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ids: list[AlertId] = Field(min_length=1, max_length=BULK_MAX, description="alert ids to acknowledge")
    note: str | None = Field(default=None, max_length=2000)


def stale_after_s(periods: list[float]) -> float:
    """How old the newest reading may be before a screen calls the data stale: three periods of the
    fastest sensor, and never under 30 s (a batch gateway may hold readings that long).

    >>> stale_after_s([2.0, 5.0, 10.0])
    30.0
    >>> stale_after_s([60.0, 300.0])
    180.0
    >>> stale_after_s([])
    30.0
    """
    return max(30.0, 3 * min(periods)) if periods else 30.0


def ui_router(pipeline: Pipeline, auth: Authenticator) -> APIRouter:
    """The duty-room routes over ``pipeline``.

    Mount with ``app.include_router(ui_router(pipeline, auth))``.
    """
    router = APIRouter(prefix=API, route_class=AuthFirstRoute, tags=["ui"])
    reader = auth.needs("viewer", read=True)
    operator = auth.needs("operator")
    fleet = pipeline.fleet
    stale_s = stale_after_s([s.period_s for s in fleet.sensors.values()])

    @router.get("/ui-settings")
    def ui_settings(principal: Principal = Depends(reader)) -> dict[str, Any]:
        """Limits the pages' dialogs respect (alerting.yaml) and the data-staleness threshold."""
        settings = pipeline.config.alerting
        return {"shelving": {"max_s": settings.shelving.max_s,
                             "protected_tiers": [t.colour for t in settings.shelving.protected_tiers],
                             "protected_role": settings.shelving.protected_role},
                "close_cause_required": settings.close_cause_required,
                "ack_note_required": settings.ack_note_required,
                "stale_data_s": stale_s, "timezone": "Asia/Shanghai"}

    @router.get("/liveness")
    def liveness(principal: Principal = Depends(reader)) -> dict[str, Any]:
        """The server's time and the newest reading's event time among the caller's sites (null: none yet)."""
        now = pipeline.clock()
        newest = max((last.ts for s in fleet.sensors.values() if principal.covers(s.site_id)
                      and (last := pipeline.live.get(s.id)) is not None), default=None)
        age = None if newest is None else max(0.0, now - newest)
        return {"now": iso(now), "newest_reading_at": iso(newest) if newest is not None else None,
                "age_s": age, "stale_after_s": stale_s, "stale": age is None or age > stale_s}

    @router.post("/alerts/ack")
    def bulk_ack(body: BulkAckBody, principal: Principal = Depends(operator)) -> dict[str, Any]:
        """Acknowledge every alert of ``ids`` with one note; each id's outcome is reported on its own."""
        results = [_ack_one(principal, alert_id, body.note) for alert_id in dict.fromkeys(body.ids)]
        done = sum(1 for r in results if r["ok"])
        return {"done": done, "failed": len(results) - done, "results": results}

    def _ack_one(principal: Principal, alert_id: str, note: str | None) -> dict[str, Any]:
        alert = pipeline.alert_store.get(alert_id)
        if alert is None:
            return _failed(alert_id, 404, f"no alert {alert_id}")
        if not (principal.scope is None or alert.site_id in principal.scope):
            return _failed(alert_id, 403, f"token {principal.name} may not act on site {alert.site_id}")
        reply = pipeline.command({"action": "acknowledge", "alert_id": alert_id, "site_id": alert.site_id,
                                  "by": principal.name, "role": principal.role, "note": note})
        if not reply["ok"]:
            return _failed(alert_id, COMMAND_ERRORS.get(reply["error"], 500), reply["detail"])
        after = reply.get("alert") or alert.to_json()
        return {"id": alert_id, "ok": True, "status": 200, "state": after["state"], "alert": after}

    return router


def _failed(alert_id: str, status: int, error: str) -> dict[str, Any]:
    return {"id": alert_id, "ok": False, "status": status, "error": error}

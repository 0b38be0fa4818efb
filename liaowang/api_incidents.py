"""The forest fire incidents API (docs/incidents.md): list, read, and the steps 核查/报告/扑救/扑灭.

`incidents_router` builds an `APIRouter` for `liaowang.api.create_app` to mount, with the warnings
API's auth pattern (`AuthFirstRoute`, `Authenticator.needs`): reads need a viewer, steps a
duty_officer; a token scoped to sites sees and steps its sites' incidents only (lists leave the
others out, one incident of another site is a 403, an unknown one a 404, checked first). Each step
is recorded under the token's name, stamped by ``clock``. Errors: 404 unknown incident, 409 the
incident's state does not allow the step, 422 bad input, 503 the store cannot write now.
"""

from __future__ import annotations

import sqlite3
from typing import Annotated, Any, Callable, Literal

from fastapi import APIRouter, Depends, HTTPException, Query
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from earlywarning.incidents import Incident, IncidentDesk, IncidentNotFound, IncidentState, StepNotAllowed, Verdict
from liaowang.auth import AuthFirstRoute, Authenticator, Principal
from foundation.domain import iso
from liaowang.params import split_choices

__all__ = ["incidents_router"]

API = "/api/v1"
Note = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]


class StepBody(BaseModel):
    """One step of an incident: ``check`` needs a verdict, ``extinguish`` the burned area in hectares."""

    model_config = ConfigDict(extra="forbid")
    step: Literal["check", "report", "fight", "extinguish"]
    verdict: Verdict | None = Field(default=None, description="check: real_fire, agricultural_burning (农事用火), false_alarm")
    burned_ha: float | None = Field(default=None, ge=0, description="extinguish: burned forest area, ha")
    note: Note | None = None


def _json(incident: Incident) -> dict[str, Any]:
    """An incident as the API shows it: times in RFC 3339 (+08:00), as every other resource (CONTRACT §4)."""
    data = incident.to_json()
    data["opened_at"] = iso(data["opened_at"])
    for step in data["history"]:
        step["at"] = iso(step["at"])
    return data


def incidents_router(desk: IncidentDesk, auth: Authenticator, clock: Callable[[], float]) -> APIRouter:
    """The ``/api/v1/incidents`` routes over ``desk``; ``clock`` stamps people's steps.

    Mount with ``app.include_router(incidents_router(incident_desk, auth, pipeline.clock))``.
    """
    router = APIRouter(prefix=API, route_class=AuthFirstRoute, tags=["incidents"])
    reader = auth.needs("viewer", read=True)
    duty_officer = auth.needs("duty_officer")

    def _incident(principal: Principal, incident_id: str, verb: str) -> Incident:
        try:
            incident = desk.get(incident_id)
        except IncidentNotFound:
            raise HTTPException(404, f"no incident {incident_id}") from None
        scope = principal.scope
        if scope is not None and incident.site_id not in scope:
            raise HTTPException(403, f"token {principal.name} may not {verb} incidents of {incident.site_id}")
        return incident

    @router.get("/incidents")
    def list_incidents(state: str | None = None, site_id: str | None = None, limit: int = Query(200, ge=1, le=5000),
                       principal: Principal = Depends(reader)) -> list[dict[str, Any]]:
        """Incidents of the caller's sites, newest first; ``state`` takes a comma-separated list."""
        states = split_choices(state, tuple(s.value for s in IncidentState), "state")
        sites = principal.listing(site_id)
        found = desk.query([IncidentState(s) for s in states] if states else None, sites, limit)
        return [_json(i) for i in found]

    @router.get("/incidents/{incident_id}")
    def get_incident(incident_id: str, principal: Principal = Depends(reader)) -> dict[str, Any]:
        """One incident with its steps (who, when, verdict, burned area and grade)."""
        return _json(_incident(principal, incident_id, "read"))

    @router.post("/incidents/{incident_id}/steps")
    def step_incident(incident_id: str, body: StepBody, principal: Principal = Depends(duty_officer)
                      ) -> dict[str, Any]:
        """核查 (check), 报告 (report), 扑救 (fight) or 扑灭 (extinguish) — duty_officer."""
        _incident(principal, incident_id, "step")
        by, at = principal.name, clock()
        try:
            if body.step == "check":
                if body.verdict is None:
                    raise HTTPException(422, "check needs a verdict")
                after = desk.check(incident_id, by, body.verdict, body.note, at)
            elif body.step == "extinguish":
                if body.burned_ha is None:
                    raise HTTPException(422, "extinguish needs burned_ha")
                after = desk.extinguish(incident_id, by, body.burned_ha, body.note, at)
            else:
                after = getattr(desk, body.step)(incident_id, by, body.note, at)
        except StepNotAllowed as err:
            raise HTTPException(409, str(err)) from None
        except sqlite3.Error as err:
            raise HTTPException(503, f"the incident store cannot write now: {err}") from None
        return _json(after)

    return router

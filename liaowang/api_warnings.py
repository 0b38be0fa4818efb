"""The warnings API (docs/warnings.md): list, read, propose, verify/reject, issue, adjust, lift, documents.

`warnings_router` builds an `APIRouter` for `liaowang.api.create_app` to mount. Like every route
there, each names what it needs (`Authenticator.needs`) and is checked before the body is read
(`AuthFirstRoute`): 401/403 whatever was sent, 422 only for an authorised caller. A token scoped to
sites sees and acts on its sites' warnings only: lists leave the others out, one warning of another
site is a 403 (an unknown one a 404, checked first); warnings of no site are for unscoped tokens.
Errors: 404 unknown warning or subject, 409 the warning's state does not allow the step, 422 bad
input (no reason, the same level, a level the category lacks), 503 the store cannot write now.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime
from typing import Annotated, Any, Callable, Literal

import orjson
from fastapi import APIRouter, Depends, HTTPException, Query, Response
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from earlywarning import (Area, EarlyWarning, InvalidWarning, NotAllowed, Origin, Proposal, RiskGrade, SubjectKind,
                          SubjectRef, WarningChange, WarningDesk, WarningLevel, WarningNotFound, WarningState, cap_xml)
from liaowang.auth import AuthFirstRoute, Authenticator, Principal
from foundation.config import Fleet
from liaowang.params import body_time, split_choices
from foundation.warningspec import Circle, Measure

__all__ = ["warnings_router"]

API = "/api/v1"
Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=2, max_length=500)]


class SubjectBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["enterprise", "hazard_unit", "forest_zone"]
    id: str = Field(min_length=2, max_length=64)
    site_id: str | None = Field(default=None, max_length=64, description="the enterprise of a hazard unit")


class AreaBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    desc: Text
    circle: Circle | None = None
    polygon: list[tuple[float, float]] | None = Field(default=None, min_length=3, max_length=500,
                                                      description="[[lon, lat], …]")

    @model_validator(mode="after")
    def _one_shape(self) -> "AreaBody":
        if (self.circle is None) == (self.polygon is None):
            raise ValueError("give circle or polygon")
        if self.polygon is not None and any(not (-180 <= x <= 180 and -90 <= y <= 90) for x, y in self.polygon):
            raise ValueError("polygon points are [lon, lat] in degrees")
        return self


class ProposeBody(BaseModel):
    """A person's proposal (duty_officer); it still needs verifying (研判) before it can be issued."""

    model_config = ConfigDict(extra="forbid")
    subject: SubjectBody
    category: str = Field(max_length=64, description="a key of warnings.yaml categories, e.g. 事故灾难/危险化学品")
    level: WarningLevel = Field(description="I…IV (Ⅰ…Ⅳ, or the colour)")
    reason: Reason
    hazard: str | None = Field(default=None, max_length=64, description="gas.toxic_release, forest.fire_danger …")
    alarm_ids: list[str] = Field(default=[], max_length=200)
    risk_grade: RiskGrade | None = None
    watch: list[Text] = Field(default=[], max_length=20, description="what to watch, besides the configured guidance")
    measures: list[Text] = Field(default=[], max_length=20, description="measures, besides the configured guidance")
    area: AreaBody | None = None
    onset: datetime | None = Field(default=None, description="RFC 3339 with offset; default: when issued")
    expires: datetime | None = None


class ReasonBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: Reason


class IssueBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: str | None = Field(default=None, max_length=2000)
    expires: datetime | None = Field(default=None, description="RFC 3339 with offset")


class AdjustBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    level: WarningLevel
    reason: Reason


def warnings_router(desk: WarningDesk, auth: Authenticator, fleet: Fleet, clock: Callable[[], float]) -> APIRouter:
    """The ``/api/v1/warnings`` routes over ``desk``; ``clock`` stamps people's steps.

    Mount with ``app.include_router(warnings_router(desk, auth, pipeline.fleet, pipeline.clock))``.
    """
    router = APIRouter(prefix=API, route_class=AuthFirstRoute, tags=["warnings"])
    reader = auth.needs("viewer", read=True)
    duty_officer = auth.needs("duty_officer")

    def _scope(principal: Principal, warning: EarlyWarning, verb: str) -> None:
        scope = principal.scope
        if scope is not None and warning.site_id not in scope:
            where = warning.site_id or "no site"
            raise HTTPException(403, f"token {principal.name} may not {verb} warnings of {where}")

    def _warning(principal: Principal, warning_id: str, verb: str) -> EarlyWarning:
        try:
            warning = desk.get(warning_id)
        except WarningNotFound:
            raise HTTPException(404, f"no warning {warning_id}") from None
        _scope(principal, warning, verb)
        return warning

    def _run(step: Callable[[], WarningChange]) -> WarningChange:
        try:
            return step()
        except WarningNotFound as err:
            raise HTTPException(404, str(err)) from None
        except InvalidWarning as err:
            raise HTTPException(422, str(err)) from None
        except NotAllowed as err:
            raise HTTPException(409, str(err)) from None
        except sqlite3.Error as err:
            raise HTTPException(503, f"the warning store cannot write now: {err}") from None

    @router.get("/warnings")
    def list_warnings(state: str | None = None, level: str | None = None, subject: str | None = None,
                      category: str | None = None, site_id: str | None = None,
                      limit: int = Query(200, ge=1, le=5000),
                      principal: Principal = Depends(reader)) -> list[dict[str, Any]]:
        """Warnings of the caller's sites, newest first; ``state`` and ``level`` take comma-separated lists
        (levels as I…IV), ``subject`` a subject id (or kind:id), ``category`` a key or a prefix (事故灾难)."""
        states = split_choices(state, tuple(s.value for s in WarningState), "state")
        levels = split_choices(level, tuple(v.value for v in WarningLevel), "level")
        sites = principal.listing(site_id)
        found = desk.query([WarningState(s) for s in states] if states else None,
                           [WarningLevel(v) for v in levels] if levels else None, subject, category, sites, limit)
        return [w.to_json() for w in found]

    @router.get("/warnings/{warning_id}")
    def get_warning(warning_id: str, principal: Principal = Depends(reader)) -> dict[str, Any]:
        """One warning with its history (art. 64 fields, evidence, who did what, when and why)."""
        return _warning(principal, warning_id, "read").to_json()

    @router.get("/warnings/{warning_id}/document")
    def warning_document(warning_id: str, format: str = Query("json", pattern="^(json|xml)$"),
                         principal: Principal = Depends(reader)) -> Response:
        """The latest published document (GB/T 35965.1 / CAP 1.2) as JSON or XML; 409 before it is issued."""
        _warning(principal, warning_id, "read")
        try:
            publication = desk.document(warning_id)
        except NotAllowed as err:
            raise HTTPException(409, str(err)) from None
        if format == "xml":
            return Response(cap_xml(publication.document), media_type="application/xml; charset=utf-8")
        return Response(orjson.dumps(publication.document), media_type="application/json")

    @router.post("/warnings", status_code=201)
    def propose_warning(body: ProposeBody, response: Response,
                        principal: Principal = Depends(duty_officer)) -> dict[str, Any]:
        """A person proposes a warning (duty_officer); an open one of the same subject and category is updated
        instead (200). It still has to be verified (研判) before it can be issued."""
        if body.subject.kind != "hazard_unit" and body.subject.site_id is not None:
            raise HTTPException(422, "subject.site_id is only for a hazard unit")
        ref = SubjectRef(SubjectKind(body.subject.kind), body.subject.id, body.subject.site_id)
        try:
            subject = desk.resolve(ref)
        except WarningNotFound as err:
            raise HTTPException(404, str(err)) from None
        except InvalidWarning as err:
            raise HTTPException(422, str(err)) from None
        if principal.scope is not None and subject.site_id not in principal.scope:
            where = subject.site_id or "subjects of no site"
            raise HTTPException(403, f"token {principal.name} may not act on {where}")
        area = None
        if body.area is not None:
            area = Area(body.area.desc, body.area.circle, tuple(body.area.polygon) if body.area.polygon else None)
        own = f"值班员 {principal.name} (proposal)"
        proposal = Proposal(
            subject=ref, category=body.category, level=body.level, by=principal.name, origin=Origin.PERSON,
            reason=body.reason, hazard=body.hazard, alarm_ids=tuple(body.alarm_ids), risk_grade=body.risk_grade,
            watch=tuple(Measure(text=t, source=own) for t in body.watch),
            measures=tuple(Measure(text=t, source=own) for t in body.measures), area=area,
            onset=body_time(body.onset, "onset") if body.onset is not None else None,
            expires=body_time(body.expires, "expires") if body.expires is not None else None)
        change = _run(lambda: desk.propose(proposal, at=clock()))
        if not change.created:
            response.status_code = 200
        return change.warning.to_json()

    @router.post("/warnings/{warning_id}/verify")
    def verify_warning(warning_id: str, body: ReasonBody, principal: Principal = Depends(duty_officer)
                       ) -> dict[str, Any]:
        """研判/核实: the proposal is warranted (duty_officer; a reason is required)."""
        _warning(principal, warning_id, "act on")
        return _run(lambda: desk.verify(warning_id, principal.name, body.reason, at=clock())).warning.to_json()

    @router.post("/warnings/{warning_id}/reject")
    def reject_warning(warning_id: str, body: ReasonBody, principal: Principal = Depends(duty_officer)
                       ) -> dict[str, Any]:
        """研判: the proposal is not warranted (duty_officer; a reason is required); final, never published."""
        _warning(principal, warning_id, "act on")
        return _run(lambda: desk.reject(warning_id, principal.name, body.reason, at=clock())).warning.to_json()

    @router.post("/warnings/{warning_id}/issue")
    def issue_warning(warning_id: str, body: IssueBody | None = None, principal: Principal = Depends(duty_officer)
                      ) -> dict[str, Any]:
        """Publish a verified warning (duty_officer): MQTT, receivers, the standard document."""
        _warning(principal, warning_id, "act on")
        expires = body_time(body.expires, "expires") if body and body.expires is not None else None
        note = body.note if body else None
        return _run(lambda: desk.issue(warning_id, principal.name, at=clock(), note=note,
                                       expires=expires)).warning.to_json()

    @router.post("/warnings/{warning_id}/adjust")
    def adjust_warning(warning_id: str, body: AdjustBody, principal: Principal = Depends(duty_officer)
                       ) -> dict[str, Any]:
        """Raise or lower an issued warning and republish it (art. 70; duty_officer; a reason is required)."""
        _warning(principal, warning_id, "act on")
        return _run(lambda: desk.adjust(warning_id, principal.name, body.level, body.reason,
                                        at=clock())).warning.to_json()

    @router.post("/warnings/{warning_id}/lift")
    def lift_warning(warning_id: str, body: ReasonBody, principal: Principal = Depends(duty_officer)
                     ) -> dict[str, Any]:
        """解除 (art. 70; duty_officer; a reason is required): a Cancel document; the retained MQTT message clears."""
        _warning(principal, warning_id, "act on")
        return _run(lambda: desk.lift(warning_id, principal.name, body.reason, at=clock())).warning.to_json()

    return router

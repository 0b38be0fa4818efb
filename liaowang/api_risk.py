"""The risk API (docs/risk.md): dynamic risk grades, operating states, daily commitments, hazard units.

`risk_router` builds an `APIRouter` for `liaowang.api.create_app` to mount. As on every route there,
each names what it needs (`Authenticator.needs`) and is checked before the body is read
(`AuthFirstRoute`): 401/403 whatever was sent, 422 only for an authorised caller. Reads need a
viewer (anonymous under ``public_read``) and show the caller's sites only; writes need an operator
of that site (or anyone above, a duty officer say) — a token scoped to sites acts on those sites only.
Errors: 404 unknown site, unit, entry or commitment (checked before the scope: 403), 409 an entry
already withdrawn or over, a commitment for the day already uploaded; 422 bad input; 503 the store
cannot write now.
"""

from __future__ import annotations

import sqlite3
from datetime import date as Date
from datetime import datetime
from typing import Annotated, Any, Callable, Literal

from fastapi import APIRouter, Depends, HTTPException, Query
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from earlywarning.operating import (CommitmentDraft, Devices, EntryConflict, EntryNotFound, InvalidEntry,
                                    OperationDraft)
from earlywarning.risk import Assessment, SiteRisk
from earlywarning.riskmonitor import RiskMonitor
from liaowang.auth import AuthFirstRoute, Authenticator, Principal
from foundation.config import Fleet
from foundation.domain import iso
from liaowang.params import body_time, split_choices
from foundation.riskspec import OperatingKind

__all__ = ["risk_router"]

API = "/api/v1"
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
Id = Annotated[str, StringConstraints(min_length=1, max_length=64)]
GRADES = ("major", "significant", "general", "low")


class OperatingStateBody(BaseModel):
    """One 开停车, 检修 or 特殊作业 (GB 30871) at a site, or at one of its hazard units; it raises risk while it lasts."""

    model_config = ConfigDict(extra="forbid")
    site_id: Id
    unit_id: Id | None = Field(default=None, description="a hazard unit of the site; none: the whole site")
    kind: OperatingKind = Field(description="startup, shutdown, maintenance, hot_work, confined_space, blind_plate, "
                                            "work_at_height, lifting, temporary_power, excavation, road_closure "
                                            "(or 开车, 停车, 检修, 动火作业 …)")
    starts: datetime = Field(alias="from", description="RFC 3339 with offset")
    ends: datetime = Field(alias="until", description="RFC 3339 with offset")
    note: str | None = Field(default=None, max_length=2000)
    permit: str | None = Field(default=None, max_length=64, description="the work permit (作业票) number")


class OperationBody(BaseModel):
    """An operation declared in a commitment; without from/until it covers the commitment's whole day."""

    model_config = ConfigDict(extra="forbid")
    kind: OperatingKind
    unit_id: Id | None = None
    starts: datetime | None = Field(default=None, alias="from")
    ends: datetime | None = Field(default=None, alias="until")
    note: str | None = Field(default=None, max_length=2000)
    permit: str | None = Field(default=None, max_length=64)

    @model_validator(mode="after")
    def _both_or_neither(self) -> "OperationBody":
        if (self.starts is None) != (self.ends is None):
            raise ValueError("give both from and until, or neither (the whole day)")
        return self


class DevicesBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    running: int = Field(default=0, ge=0, le=10_000, description="装置 running")
    stopped: int = Field(default=0, ge=0, le=10_000, description="装置 stopped (停产)")
    maintenance: int = Field(default=0, ge=0, le=10_000, description="装置 under maintenance (检修)")


class CommitmentBody(BaseModel):
    """The daily 安全风险研判与承诺公告: who commits, for which day, what they declare (docs/risk.md)."""

    model_config = ConfigDict(extra="forbid")
    site_id: Id
    date: Date = Field(description="the local day it covers, YYYY-MM-DD (yesterday, today or tomorrow)")
    committed_by: Name = Field(description="承诺人, normally the 主要负责人")
    role: Literal["main", "technical", "operational"] = "main"
    statement: Annotated[str, StringConstraints(strip_whitespace=True, min_length=4, max_length=4000)]
    risks_controlled: bool = Field(description="whether the enterprise declares its risks under control")
    devices: DevicesBody = DevicesBody()
    trial_production: bool = False
    operations: list[OperationBody] = Field(default=[], max_length=200)
    amends: Id | None = Field(default=None, description="the commitment of the same day this one replaces")
    note: str | None = Field(default=None, max_length=2000)


def risk_router(monitor: RiskMonitor, auth: Authenticator, fleet: Fleet, clock: Callable[[], float]) -> APIRouter:
    """The ``/api/v1`` risk, operating-state, commitment and hazard-unit routes over ``monitor``.

    Mount with ``app.include_router(risk_router(risk_monitor, auth, pipeline.fleet, pipeline.clock))``.
    """
    router = APIRouter(prefix=API, route_class=AuthFirstRoute, tags=["risk"])
    reader = auth.needs("viewer", read=True)
    operator = auth.needs("operator")
    states = monitor.states

    def _site(principal: Principal, site_id: str, verb: str) -> None:
        site = fleet.sites.get(site_id)
        if site is None:
            raise HTTPException(404, f"no site {site_id}")
        if not principal.covers(site_id):
            raise HTTPException(403, f"token {principal.name} may not {verb} {site_id}")

    def _run(step: Callable[[], Any]) -> Any:
        try:
            return step()
        except EntryNotFound as err:
            raise HTTPException(404, str(err)) from None
        except InvalidEntry as err:
            raise HTTPException(422, str(err)) from None
        except EntryConflict as err:
            raise HTTPException(409, str(err)) from None
        except sqlite3.Error as err:
            raise HTTPException(503, f"the store cannot write now: {err}") from None

    def _summary(a: Assessment) -> dict[str, Any]:
        return {"grade": a.grade.value, "grade_zh": a.grade.zh, "colour": a.colour, "score": a.score, "at": iso(a.at)}

    def _risk_json(risk: SiteRisk) -> dict[str, Any]:
        site = fleet.sites[risk.site_id]
        out = risk.to_json()
        out.update(site_id=site.id, county=site.county, lon=site.lon, lat=site.lat,
                   since=_since(risk.enterprise))
        for unit in out["units"]:
            unit["since"] = _since_key(f"hazard_unit:{unit['id']}")
        return out

    def _since(a: Assessment) -> str | None:
        return _since_key(a.key)

    def _since_key(key: str) -> str | None:
        return iso(monitor.since(key))

    # ------------------------------------------------------------------ risk grades

    @router.get("/risk")
    def list_risk(grade: str | None = None, site_id: str | None = None,
                  principal: Principal = Depends(reader)) -> list[dict[str, Any]]:
        """Risk grades of the caller's graded sites — the enterprise and its hazard units, each with the factors
        (rule, points, detail, source, certainty) that made it; ``grade`` a comma list of major, significant,
        general, low (the enterprise's)."""
        grades = split_choices(grade, GRADES, "grade")
        risks = monitor.assess(clock())
        return [_risk_json(r) for sid, r in risks.items() if principal.covers(sid)
                and (site_id is None or sid == site_id) and (not grades or r.enterprise.grade.value in grades)]

    @router.get("/risk/{site_id}")
    def get_risk(site_id: str, principal: Principal = Depends(reader)) -> dict[str, Any]:
        """One enterprise's risk grade with its units and factors (404: no such site, or not graded)."""
        _site(principal, site_id, "read")
        risk = monitor.assess(clock()).get(site_id)
        if risk is None:
            raise HTTPException(404, f"site {site_id} is not risk-graded (risk.yaml site_kinds, sites)")
        return _risk_json(risk)

    # ------------------------------------------------------------------ operating states

    @router.get("/operating-states")
    def list_operating_states(site_id: str | None = None, unit_id: str | None = None,
                              active: bool | None = Query(None, description="only those raising risk now (true)"),
                              limit: int = Query(500, ge=1, le=5000),
                              principal: Principal = Depends(reader)) -> list[dict[str, Any]]:
        """Registered 开停车, 检修 and 特殊作业 of the caller's sites, latest start first."""
        now = clock()
        scope = principal.scope
        sites = [site_id] if site_id is not None else (sorted(scope) if scope is not None else None)
        if sites is not None and scope is not None:
            sites = [s for s in sites if s in scope]
        found = states.query(sites, unit_id, now if active else None, limit=limit)
        if active is False:
            found = [e for e in found if not e.active(now)]
        return [e.to_json(now) for e in found]

    @router.post("/operating-states", status_code=201)
    def register_operating_state(body: OperatingStateBody, principal: Principal = Depends(operator)
                                 ) -> dict[str, Any]:
        """Register 开停车, 检修 or a 特殊作业 (operator of the site or above). It raises the risk grade while it lasts;
        it never silences an alarm."""
        _site(principal, body.site_id, "act on")
        starts, ends = body_time(body.starts, "from"), body_time(body.ends, "until")
        now = clock()
        entry = _run(lambda: states.register(body.site_id, body.kind, starts, ends, principal.name, now,
                                             body.unit_id, body.note, body.permit))
        return entry.to_json(now)

    @router.delete("/operating-states/{entry_id}")
    def withdraw_operating_state(entry_id: str, reason: str | None = Query(None, max_length=2000),
                                 principal: Principal = Depends(operator)) -> dict[str, Any]:
        """End an entry now (operator of its site or above); 409 when it is withdrawn or over already."""
        entry = _run(lambda: states.get(entry_id))
        _site(principal, entry.site_id, "act on")
        now = clock()
        return _run(lambda: states.withdraw(entry_id, principal.name, now, reason)).to_json(now)

    # ------------------------------------------------------------------ commitments

    @router.post("/commitments", status_code=201)
    def upload_commitment(body: CommitmentBody, principal: Principal = Depends(operator)) -> dict[str, Any]:
        """The daily 安全风险研判与承诺 (operator of the site or above): stored with who and when; its operations are
        registered as operating states in the same transaction. 409 when the day has one (send ``amends``)."""
        _site(principal, body.site_id, "act on")
        operations = tuple(OperationDraft(op.kind, op.unit_id,
                                          body_time(op.starts, f"operations[{i}].from") if op.starts else None,
                                          body_time(op.ends, f"operations[{i}].until") if op.ends else None,
                                          op.note, op.permit) for i, op in enumerate(body.operations))
        draft = CommitmentDraft(site_id=body.site_id, date=body.date.isoformat(), committed_by=body.committed_by,
                                statement=body.statement, risks_controlled=body.risks_controlled,
                                devices=Devices(body.devices.running, body.devices.stopped, body.devices.maintenance),
                                trial_production=body.trial_production, operations=operations, role=body.role,
                                amends=body.amends, note=body.note)
        return _run(lambda: states.commit(draft, principal.name, clock())).to_json()

    @router.get("/commitments")
    def list_commitments(site_id: str | None = None, date: Date | None = None,
                         limit: int = Query(200, ge=1, le=5000),
                         principal: Principal = Depends(reader)) -> list[dict[str, Any]]:
        """Uploaded commitments of the caller's sites, newest first (superseded ones name their successor)."""
        sites = principal.listing(site_id)
        return [c.to_json() for c in states.commitments(sites, date.isoformat() if date else None, limit=limit)]

    # ------------------------------------------------------------------ hazard units

    def _unit_risks() -> dict[str, Assessment]:
        return {u.id: u for r in monitor.assess(clock()).values() for u in r.units}

    @router.get("/hazard-units")
    def list_hazard_units(site_id: str | None = None, principal: Principal = Depends(reader)) -> list[dict[str, Any]]:
        """The major hazard sources (生产/储存单元) of the caller's sites with grade, R, substances, processes, sensors
        and current risk grade (their 包保责任人 are on each unit's own page)."""
        risks = _unit_risks()
        out = []
        for sid, site in fleet.sites.items():
            if not principal.covers(sid) or (site_id is not None and sid != site_id):
                continue
            for unit in site.hazard_units:
                risk = risks.get(unit.id)
                out.append({**unit.to_json(sid), "site_name": site.name, "county": site.county,
                            "risk": _summary(risk) if risk else None})
        return out

    @router.get("/hazard-units/{unit_id}")
    def get_hazard_unit(unit_id: str, principal: Principal = Depends(reader)) -> dict[str, Any]:
        """One hazard unit with its 包保责任人 (主要/技术/操作负责人, names and phones) and its risk grade with factors."""
        unit = fleet.hazard_unit(unit_id)
        if unit is None:
            raise HTTPException(404, f"no hazard unit {unit_id}")
        site_id = fleet.hazards.site_of[unit_id]
        _site(principal, site_id, "read")
        risk = _unit_risks().get(unit_id)
        site = fleet.sites[site_id]
        return {**unit.to_json(site_id, with_persons=True), "site_name": site.name, "county": site.county,
                "risk": risk.to_json() if risk else None, "risk_since": _since_key(f"hazard_unit:{unit_id}")}

    return router

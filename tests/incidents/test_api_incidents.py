"""The incidents API over a minimal app mounting `incidents_router`: steps for duty_officer, site-scoped reads."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from alerting.audit import AuditLog
from alerting.db import AlertDB
from earlywarning.incidents import IncidentDesk
from liaowang.api_incidents import incidents_router
from liaowang.scenario import FakeClock
from tests.routers import bearer, router_client

T0 = 1_795_564_800.0
TOKENS = {"viewer": ("viewer", []), "operator": ("operator", []), "duty": ("duty_officer", []),
          "gtlc-viewer": ("viewer", ["LC-GTLC"]), "gtlc-duty": ("duty_officer", ["LC-GTLC"])}


@pytest.fixture
def desk():
    db = AlertDB(":memory:")
    return IncidentDesk(db, AuditLog(db), FakeClock(T0 + 60))


@pytest.fixture
def client(desk):
    return router_client(lambda auth: incidents_router(desk, auth, desk._clock), TOKENS)


def fire(desk, station="LC-DEHH-WS1", site="LC-DEHH"):
    return desk.open_from_alarm(SimpleNamespace(id=f"A-{station}", rule_id="forest.fire_detected", subject=station,
                                                site_id=site, raised_at=T0, message="发现火情", tier="red"))


def test_a_duty_officer_walks_an_incident_to_extinguished_over_http(client, desk):
    incident = fire(desk)
    url = f"/api/v1/incidents/{incident.id}/steps"
    for body in ({"step": "check", "verdict": "real_fire", "note": "视频确认"}, {"step": "report"}, {"step": "fight"},
                 {"step": "extinguish", "burned_ha": 120}):
        response = client.post(url, json=body, headers=bearer("duty"))
        assert response.status_code == 200, response.text
    got = client.get(f"/api/v1/incidents/{incident.id}", headers=bearer("viewer")).json()
    assert (got["state"], got["grade"], got["open"]) == ("extinguished", "重大", False)
    assert [(s["step"], s["by"]) for s in got["history"]][1:] == [
        ("check", "duty"), ("report", "duty"), ("fight", "duty"), ("extinguish", "duty")]


def test_roles_scope_and_errors(client, desk):
    dehh, gtlc = fire(desk), fire(desk, "LC-GTLC-WS2", "LC-GTLC")
    url = f"/api/v1/incidents/{dehh.id}/steps"
    assert client.post(url, json={"step": "report"}).status_code == 401
    assert client.post(url, json={"step": "report"}, headers=bearer("operator")).status_code == 403
    assert client.post(url, json={"step": "report"}, headers=bearer("gtlc-duty")).status_code == 403
    assert client.post(url, json={"step": "report"}, headers=bearer("duty")).status_code == 409  # not checked yet
    assert client.post(url, json={"step": "check"}, headers=bearer("duty")).status_code == 422    # no verdict
    assert client.post(url, json={"step": "nap"}, headers=bearer("duty")).status_code == 422
    assert client.post("/api/v1/incidents/nope/steps", json={"step": "report"},
                       headers=bearer("duty")).status_code == 404
    assert client.get(f"/api/v1/incidents/{dehh.id}", headers=bearer("gtlc-viewer")).status_code == 403
    assert [i["id"] for i in client.get("/api/v1/incidents", headers=bearer("gtlc-viewer")).json()] == [gtlc.id]
    assert len(client.get("/api/v1/incidents?state=reported", headers=bearer("viewer")).json()) == 2
    assert client.get("/api/v1/incidents?state=burning", headers=bearer("viewer")).status_code == 422

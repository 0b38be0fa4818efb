"""The warnings API over a minimal app that mounts `warnings_router`: roles, site scope, 401/403/404/409/422.

Tokens: viewer, operator and duty_officer for every site; a viewer and a duty_officer scoped to LC-XFHG.
Reads need a token (``public_read`` off) unless a test says otherwise.
"""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from earlywarning import problems, xml_problems
from liaowang.api_warnings import warnings_router
from tests.earlywarning.support import FOREST, HAZCHEM, T0, Room
from tests.routers import bearer, router_client

TOKENS = {"viewer": ("viewer", []), "operator": ("operator", []), "duty": ("duty_officer", []),
          "xfhg-viewer": ("viewer", ["LC-XFHG"]), "xfhg-duty": ("duty_officer", ["LC-XFHG"])}
PROPOSAL = {"subject": {"kind": "enterprise", "id": "LC-LUXI"}, "category": HAZCHEM, "level": "II",
            "reason": "一级重大危险源反复报警", "hazard": "gas.toxic_release", "alarm_ids": ["A1"],
            "risk_grade": "significant"}


def client_for(room: Room, public_read: bool = False) -> TestClient:
    return router_client(lambda auth: warnings_router(room.desk, auth, room.fleet, room.clock), TOKENS, public_read)


@pytest.fixture
def room(fleet) -> Room:
    return Room(fleet)


@pytest.fixture
def client(room: Room) -> TestClient:
    return client_for(room)


def propose(client: TestClient, who: str = "duty", **changes) -> dict:
    response = client.post("/api/v1/warnings", json={**PROPOSAL, **changes}, headers=bearer(who))
    assert response.status_code == 201, response.text
    return response.json()


def test_the_lifecycle_over_http(client: TestClient, room: Room) -> None:
    """Propose, verify, issue, raise, lift; the documents validate in JSON and XML; a second proposal
    for the same subject and category updates the first (200)."""
    w = propose(client)
    assert (w["state"], w["level"], w["origin"], w["proposed_by"]) == ("proposed", "II", "person", "duty")
    assert w["issuer"]["name"] == "聊城市应急管理局" and w["measures"][0]["text"] == "立即寻查释放点"
    again = client.post("/api/v1/warnings", json={**PROPOSAL, "level": "I", "alarm_ids": ["A2"]},
                        headers=bearer("duty"))
    assert again.status_code == 200 and again.json()["id"] == w["id"] and again.json()["level"] == "I"
    url = f"/api/v1/warnings/{w['id']}"
    assert client.get(f"{url}/document", headers=bearer("viewer")).status_code == 409  # not published yet

    room.later(60)
    verified = client.post(f"{url}/verify", json={"reason": "视频核实"}, headers=bearer("duty")).json()
    assert verified["state"] == "verified" and verified["verify_reason"] == "视频核实"
    issued = client.post(f"{url}/issue", headers=bearer("duty")).json()
    assert issued["state"] == "issued" and issued["issued_by"] == "duty" and issued["issued_at"]
    document = client.get(f"{url}/document", headers=bearer("viewer"))
    assert document.headers["content-type"] == "application/json" and problems(document.json()) == []
    assert document.json()["msgType"] == "Alert" and document.json()["info"][0]["severity"] == "Extreme"

    lowered = client.post(f"{url}/adjust", json={"level": "orange", "reason": "浓度回落"}, headers=bearer("duty"))
    assert lowered.json()["level"] == "II" and lowered.json()["state"] == "adjusted"
    xml = client.get(f"{url}/document?format=xml", headers=bearer("viewer"))
    assert xml.headers["content-type"].startswith("application/xml") and xml_problems(xml.text) == []
    assert "<msgType>Update</msgType>" in xml.text and "<severity>Severe</severity>" in xml.text

    lifted = client.post(f"{url}/lift", json={"reason": "已处置"}, headers=bearer("duty")).json()
    assert lifted["state"] == "lifted" and lifted["lift_reason"] == "已处置"
    assert client.get(f"{url}/document", headers=bearer("viewer")).json()["msgType"] == "Cancel"
    assert [h["event"] for h in client.get(url, headers=bearer("viewer")).json()["history"]] == [
        "proposed", "updated", "verified", "issued", "adjusted", "lifted"]


def test_authentication_comes_before_the_body(client: TestClient) -> None:
    """401 without a token and 403 with too low a role, whatever was sent; 422 only for a duty officer."""
    garbage = {"subject": 5}
    assert client.post("/api/v1/warnings", json=garbage).status_code == 401
    assert client.post("/api/v1/warnings", json=garbage, headers={"Authorization": "Bearer nope"}).status_code == 401
    assert client.post("/api/v1/warnings", json=garbage, headers=bearer("operator")).status_code == 403
    assert client.post("/api/v1/warnings", json=garbage, headers=bearer("duty")).status_code == 422
    assert client.post("/api/v1/warnings/W-x/verify", json={}, headers=bearer("viewer")).status_code == 403
    assert client.get("/api/v1/warnings").status_code == 401


@pytest.mark.parametrize("action, body", [("verify", {"reason": "r"}), ("reject", {"reason": "r"}), ("issue", None),
                                          ("adjust", {"level": "I", "reason": "r"}), ("lift", {"reason": "r"})])
def test_every_step_needs_a_duty_officer(client: TestClient, action: str, body: dict | None) -> None:
    w = propose(client)
    for who in ("viewer", "operator"):
        response = client.post(f"/api/v1/warnings/{w['id']}/{action}", json=body, headers=bearer(who))
        assert response.status_code == 403, (who, response.text)


@pytest.mark.parametrize("body", [None, {}, {"reason": ""}, {"reason": "   "}, {"reason": "r", "extra": 1}])
@pytest.mark.parametrize("action", ["verify", "reject"])
def test_verify_and_reject_require_a_reason(client: TestClient, action: str, body) -> None:
    w = propose(client)
    response = client.post(f"/api/v1/warnings/{w['id']}/{action}", json=body, headers=bearer("duty"))
    assert response.status_code == 422, response.text
    assert client.get(f"/api/v1/warnings/{w['id']}", headers=bearer("viewer")).json()["state"] == "proposed"


def test_unknown_warnings_are_404(client: TestClient) -> None:
    for method, path, body in [("GET", "/api/v1/warnings/W-nope", None),
                               ("GET", "/api/v1/warnings/W-nope/document", None),
                               ("POST", "/api/v1/warnings/W-nope/verify", {"reason": "r"}),
                               ("POST", "/api/v1/warnings/W-nope/lift", {"reason": "r"})]:
        response = client.request(method, path, json=body, headers=bearer("duty"))
        assert response.status_code == 404 and response.json()["detail"] == "no warning W-nope"
    nowhere = {**PROPOSAL, "subject": {"kind": "enterprise", "id": "LC-NOPE"}}
    unknown_site = client.post("/api/v1/warnings", json=nowhere, headers=bearer("duty"))
    assert unknown_site.status_code == 404 and "no site LC-NOPE" in unknown_site.json()["detail"]


def test_steps_the_state_does_not_allow_are_409(client: TestClient) -> None:
    w = propose(client)
    url = f"/api/v1/warnings/{w['id']}"
    assert client.post(f"{url}/issue", headers=bearer("duty")).status_code == 409  # not verified
    assert client.post(f"{url}/lift", json={"reason": "r"}, headers=bearer("duty")).status_code == 409
    assert client.post(f"{url}/reject", json={"reason": "误报"}, headers=bearer("duty")).status_code == 200
    for action, body in [("verify", {"reason": "r"}), ("issue", None), ("reject", {"reason": "r"})]:
        response = client.post(f"{url}/{action}", json=body, headers=bearer("duty"))
        assert response.status_code == 409 and "rejected" in response.json()["detail"]


@pytest.mark.parametrize("changes, where", [
    ({"level": "V"}, "level"),
    ({"category": "事故灾难/核"}, "unknown category"),
    ({"category": FOREST, "subject": {"kind": "forest_zone", "id": "LC-DEHH"}, "level": "IV"}, "no level IV"),
    ({"subject": {"kind": "hazard_unit", "id": "T101"}}, "site_id"),
    ({"subject": {"kind": "enterprise", "id": "LC-LUXI", "site_id": "LC-LUXI"}}, "only for a hazard unit"),
    ({"reason": " "}, "reason"),
    ({"onset": "2026-11-25T08:00:00"}, "onset"),
    ({"area": {"desc": "厂区", "circle": {"lon": 116, "lat": 36.4, "radius_km": 1}, "polygon": [[1, 2]] * 3}}, "area"),
    ({"risk_grade": "huge"}, "risk_grade"),
])
def test_bad_proposals_are_422(client: TestClient, changes: dict, where: str) -> None:
    response = client.post("/api/v1/warnings", json={**PROPOSAL, **changes}, headers=bearer("duty"))
    assert response.status_code == 422, response.text
    assert where in str(response.json()["detail"])


def test_bad_adjustments_and_filters_are_422(client: TestClient) -> None:
    w = propose(client)
    url = f"/api/v1/warnings/{w['id']}"
    client.post(f"{url}/verify", json={"reason": "r"}, headers=bearer("duty"))
    client.post(f"{url}/issue", json={}, headers=bearer("duty"))
    assert client.post(f"{url}/adjust", json={"level": "II", "reason": "同级"}, headers=bearer("duty")).status_code == 422
    assert client.post(f"{url}/adjust", json={"level": "I"}, headers=bearer("duty")).status_code == 422
    assert client.get("/api/v1/warnings?state=open", headers=bearer("viewer")).status_code == 422
    assert client.get("/api/v1/warnings?level=red", headers=bearer("viewer")).status_code == 422
    assert client.get(f"{url}/document?format=pdf", headers=bearer("viewer")).status_code == 422


def test_an_issue_may_set_when_the_warning_expires(client: TestClient) -> None:
    w = propose(client)
    url = f"/api/v1/warnings/{w['id']}"
    client.post(f"{url}/verify", json={"reason": "r"}, headers=bearer("duty"))
    early = client.post(f"{url}/issue", json={"expires": "2026-11-25T07:00:00+08:00"}, headers=bearer("duty"))
    assert early.status_code == 422 and "expires" in early.json()["detail"]
    issued = client.post(f"{url}/issue", json={"expires": "2026-11-26T08:00:00+08:00", "note": "先发布橙色"},
                         headers=bearer("duty"))
    assert issued.status_code == 200 and issued.json()["expires"] == "2026-11-26T08:00:00.000+08:00"
    assert client.get(f"{url}/document", headers=bearer("viewer")).json()["info"][0]["expires"] == \
        "2026-11-26T08:00:00+08:00"


def test_site_scope(client: TestClient) -> None:
    """A token scoped to LC-XFHG sees and acts on LC-XFHG's warnings only; 404 before 403."""
    luxi = propose(client)
    xfhg = propose(client, subject={"kind": "enterprise", "id": "LC-XFHG"})
    seen = client.get("/api/v1/warnings", headers=bearer("xfhg-viewer")).json()
    assert [w["id"] for w in seen] == [xfhg["id"]]
    assert client.get("/api/v1/warnings?site_id=LC-LUXI", headers=bearer("xfhg-viewer")).json() == []
    assert client.get(f"/api/v1/warnings/{luxi['id']}", headers=bearer("xfhg-viewer")).status_code == 403
    assert client.get(f"/api/v1/warnings/{luxi['id']}/document", headers=bearer("xfhg-viewer")).status_code == 403
    assert client.get("/api/v1/warnings/W-nope", headers=bearer("xfhg-viewer")).status_code == 404
    assert client.post(f"/api/v1/warnings/{luxi['id']}/verify", json={"reason": "r"},
                       headers=bearer("xfhg-duty")).status_code == 403
    assert client.post(f"/api/v1/warnings/{xfhg['id']}/verify", json={"reason": "r"},
                       headers=bearer("xfhg-duty")).status_code == 200
    assert client.post("/api/v1/warnings", json={**PROPOSAL, "category": "事故灾难/燃气"},
                       headers=bearer("xfhg-duty")).status_code == 403
    propose(client, "xfhg-duty", subject={"kind": "hazard_unit", "id": "V-201", "site_id": "LC-XFHG"})
    assert len(client.get("/api/v1/warnings", headers=bearer("viewer")).json()) == 3


def test_list_filters(client: TestClient, room: Room) -> None:
    luxi = propose(client)
    room.later(1)
    forest = propose(client, subject={"kind": "forest_zone", "id": "LC-GTLC-Z1"}, category=FOREST, level="III",
                     hazard="forest.fire_danger")
    room.later(1)
    client.post(f"/api/v1/warnings/{luxi['id']}/verify", json={"reason": "r"}, headers=bearer("duty"))

    def ids(query: str) -> list[str]:
        response = client.get(f"/api/v1/warnings{query}", headers=bearer("viewer"))
        assert response.status_code == 200, response.text
        return [w["id"] for w in response.json()]

    assert ids("") == [luxi["id"], forest["id"]]  # newest change first
    assert ids("?state=proposed") == [forest["id"]] and ids("?state=proposed,verified&level=II") == [luxi["id"]]
    assert ids("?subject=LC-GTLC-Z1") == [forest["id"]] == ids("?subject=forest_zone:LC-GTLC-Z1")
    assert ids("?category=自然灾害") == [forest["id"]] and ids(f"?category={HAZCHEM}") == [luxi["id"]]
    assert ids("?site_id=LC-GTLC") == [forest["id"]] and ids("?limit=1") == [luxi["id"]]


def test_anonymous_reads_under_public_read(room: Room) -> None:
    client = client_for(room, public_read=True)
    assert client.get("/api/v1/warnings").status_code == 200
    assert client.post("/api/v1/warnings", json=PROPOSAL).status_code == 401


def test_people_steps_are_stamped_by_the_injected_clock(client: TestClient, room: Room) -> None:
    room.clock.now = T0 + 3600
    w = propose(client)
    assert w["proposed_at"] == "2026-11-25T09:00:00.000+08:00"


def test_the_router_has_an_openapi_schema(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/api/v1/warnings", "/api/v1/warnings/{warning_id}", "/api/v1/warnings/{warning_id}/document",
            "/api/v1/warnings/{warning_id}/verify", "/api/v1/warnings/{warning_id}/reject",
            "/api/v1/warnings/{warning_id}/issue", "/api/v1/warnings/{warning_id}/adjust",
            "/api/v1/warnings/{warning_id}/lift"} <= set(paths)

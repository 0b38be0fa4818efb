"""The risk API over a minimal app that mounts `risk_router`: roles, site scope, 401/403/404/409/422, no 5xx.

Tokens: viewer, operator and duty_officer for every site; a viewer and an operator scoped to LC-XFPVC.
Reads need a token (``public_read`` off) unless a test says otherwise.
"""

from __future__ import annotations

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings

from liaowang.api_risk import risk_router
from tests.risk.support import SITE, T0, TANKS, Room, alarm
from tests.routers import bearer, router_client

TOKENS = {"viewer": ("viewer", []), "operator": ("operator", []), "duty": ("duty_officer", []),
          "xfpvc-viewer": ("viewer", [SITE]), "xfpvc-operator": ("operator", [SITE])}
WORK = {"site_id": SITE, "unit_id": TANKS, "kind": "hot_work", "from": "2026-11-25T08:00:00+08:00",
        "until": "2026-11-25T16:00:00+08:00", "note": "T101 管线动火", "permit": "DH-20261125-01"}
COMMITMENT = {"site_id": SITE, "date": "2026-11-25", "committed_by": "演示·信发聚氯乙烯主要负责人",
              "statement": "今天我公司已进行安全风险研判，各项安全风险防控措施已落实到位，我承诺所有生产装置处于安全运行状态",
              "risks_controlled": True, "devices": {"running": 2, "stopped": 0, "maintenance": 1},
              "operations": [{"kind": "动火作业", "unit_id": TANKS, "from": "2026-11-25T08:00:00+08:00",
                              "until": "2026-11-25T12:00:00+08:00", "permit": "DH-01"},
                             {"kind": "maintenance", "unit_id": "LC-XFPVC-U2"}]}


def client_for(room: Room, public_read: bool = False) -> TestClient:
    return router_client(lambda auth: risk_router(room.monitor, auth, room.fleet, room.clock), TOKENS, public_read)


@pytest.fixture
def room(fleet) -> Room:
    return Room(fleet)


@pytest.fixture
def client(room: Room) -> TestClient:
    return client_for(room)


def test_risk_grades_with_their_factors_and_issue_13s_check_over_http(client: TestClient, room: Room) -> None:
    """Registered 动火 and two unacknowledged alarms move 信发聚氯乙烯 from yellow to orange in GET /risk."""
    rest = client.get(f"/api/v1/risk/{SITE}", headers=bearer("viewer")).json()
    assert (rest["grade"], rest["colour"], rest["score"], rest["county"]) == ("general", "yellow", 50, "茌平区")
    assert [u["id"] for u in rest["units"]] == [TANKS, "LC-XFPVC-U2"]
    created = client.post("/api/v1/operating-states", json=WORK, headers=bearer("xfpvc-operator"))
    assert created.status_code == 201, created.text
    e = created.json()
    assert (e["kind"], e["kind_zh"], e["special_work"], e["by"], e["active"]) == ("hot_work", "动火作业", True,
                                                                                  "xfpvc-operator", True)
    room.alarms[:] = [alarm("A1", "LC-XFPVC-T101-PT", "high", T0), alarm("A2", "LC-XFPVC-T102-PT", "high", T0)]
    room.later(700)
    risk = client.get(f"/api/v1/risk/{SITE}", headers=bearer("viewer")).json()
    assert (risk["grade"], risk["grade_zh"], risk["colour"], risk["score"]) == ("significant", "较大风险", "orange", 81)
    assert risk["alarm_ids"] == ["A1", "A2"] and risk["entry_ids"] == [e["id"]]
    factors = {f["rule"]: f for g in risk["groups"] for f in g["factors"]}
    assert factors["operating.hot_work"]["detail"] == "动火作业 1 项" and factors["operating.hot_work"]["certainty"] == "U"
    listed = client.get("/api/v1/risk?grade=significant,major", headers=bearer("viewer")).json()
    assert [r["site_id"] for r in listed] == [SITE]
    with_since = client.get("/api/v1/risk", headers=bearer("viewer")).json()
    assert len(with_since) == 6 and all("since" in r for r in with_since)
    room.monitor.tick()
    assert client.get(f"/api/v1/risk/{SITE}", headers=bearer("viewer")).json()["since"] == "2026-11-25T08:11:40.000+08:00"


def test_reads_are_scoped_to_the_tokens_sites(client: TestClient) -> None:
    assert [r["site_id"] for r in client.get("/api/v1/risk", headers=bearer("xfpvc-viewer")).json()] == [SITE]
    assert client.get("/api/v1/risk/LC-LUXI", headers=bearer("xfpvc-viewer")).status_code == 403
    assert client.get("/api/v1/risk/LC-NOPE", headers=bearer("xfpvc-viewer")).status_code == 404  # unknown first
    assert client.get("/api/v1/risk/LC-DEHH", headers=bearer("viewer")).status_code == 404       # a forest: not graded
    units = client.get("/api/v1/hazard-units", headers=bearer("xfpvc-viewer")).json()
    assert [u["id"] for u in units] == [TANKS, "LC-XFPVC-U2"] and all("responsible" not in u for u in units)
    assert all(u["name_en"] and u["name_en"].isascii() for u in units)  # the site view's EN names its units
    assert client.get("/api/v1/hazard-units/LC-LUXI-U1", headers=bearer("xfpvc-viewer")).status_code == 403
    assert client.get("/api/v1/risk?grade=purple", headers=bearer("viewer")).status_code == 422


def test_reads_need_a_token_unless_public_read(room: Room) -> None:
    closed, open_ = client_for(room), client_for(room, public_read=True)
    for path in ("/api/v1/risk", f"/api/v1/risk/{SITE}", "/api/v1/operating-states", "/api/v1/commitments",
                 "/api/v1/hazard-units", f"/api/v1/hazard-units/{TANKS}"):
        assert closed.get(path).status_code == 401, path
        assert open_.get(path).status_code == 200, path


def test_a_hazard_unit_with_its_three_responsible_persons_and_risk(client: TestClient) -> None:
    unit = client.get(f"/api/v1/hazard-units/{TANKS}", headers=bearer("viewer")).json()
    assert (unit["name"], unit["kind_zh"], unit["grade"], unit["r"], unit["s"], unit["site_name"]) == (
        "氯乙烯储罐区", "储存单元", 1, 150, 50, "信发聚氯乙烯")
    assert [(p["role_zh"], p["phone"]) for p in unit["responsible"]] == [
        ("主要负责人", "138-0000-0031"), ("技术负责人", "138-0000-0032"), ("操作负责人", "138-0000-0033")]
    assert unit["substances"][0]["cas"] == "75-01-4" and unit["risk"]["grade"] == "low"
    listed = client.get("/api/v1/hazard-units?site_id=LC-LUXI", headers=bearer("viewer")).json()
    assert [(u["id"], u["risk"]["colour"]) for u in listed] == [("LC-LUXI-U1", "yellow"), ("LC-LUXI-U2", "blue")]
    assert client.get("/api/v1/hazard-units/LC-NOPE-U1", headers=bearer("viewer")).status_code == 404


def test_writes_need_an_operator_of_the_site(client: TestClient) -> None:
    assert client.post("/api/v1/operating-states", json=WORK).status_code == 401
    assert client.post("/api/v1/operating-states", content=b"{broken", headers=bearer(None)).status_code == 401
    assert client.post("/api/v1/operating-states", content=b"{broken", headers=bearer("viewer")).status_code == 403
    assert client.post("/api/v1/operating-states", json=WORK, headers=bearer("xfpvc-viewer")).status_code == 403
    luxi = {**WORK, "site_id": "LC-LUXI", "unit_id": "LC-LUXI-U1"}
    assert client.post("/api/v1/operating-states", json=luxi, headers=bearer("xfpvc-operator")).status_code == 403
    assert client.post("/api/v1/operating-states", json=luxi, headers=bearer("duty")).status_code == 201
    assert client.post("/api/v1/commitments", json={**COMMITMENT, "site_id": "LC-LUXI", "operations": []},
                       headers=bearer("xfpvc-operator")).status_code == 403


@pytest.mark.parametrize("changes, status, text", [
    ({"site_id": "LC-NOPE"}, 404, "no site"),
    ({"unit_id": "LC-NOPE-U9"}, 404, "no hazard unit"),
    ({"unit_id": "LC-LUXI-U1"}, 422, "belongs to LC-LUXI"),
    ({"site_id": "LC-GTLC", "unit_id": None}, 422, "not risk-graded"),
    ({"kind": "welding"}, 422, "kind"),
    ({"until": "2026-11-25T07:00:00+08:00"}, 422, "after from"),
    ({"until": "2026-12-25T07:00:00+08:00"}, 422, "at most"),
    ({"from": "2026-11-25T08:00:00"}, 422, "UTC offset"),
    ({"colour": "red"}, 422, "colour"),
])
def test_a_bad_operating_state_is_refused(client: TestClient, changes, status, text) -> None:
    response = client.post("/api/v1/operating-states", json={**WORK, **changes}, headers=bearer("operator"))
    assert response.status_code == status and text in response.text, response.text


def test_list_and_withdraw_operating_states(client: TestClient, room: Room) -> None:
    first = client.post("/api/v1/operating-states", json=WORK, headers=bearer("operator")).json()
    luxi = client.post("/api/v1/operating-states", json={**WORK, "site_id": "LC-LUXI", "unit_id": None,
                                                         "kind": "开车"}, headers=bearer("operator")).json()
    assert luxi["kind"] == "startup"
    mine = client.get("/api/v1/operating-states", headers=bearer("xfpvc-viewer")).json()
    assert [e["id"] for e in mine] == [first["id"]]
    assert len(client.get("/api/v1/operating-states?active=true", headers=bearer("viewer")).json()) == 2
    assert client.get("/api/v1/operating-states?active=false", headers=bearer("viewer")).json() == []
    url = f"/api/v1/operating-states/{luxi['id']}"
    assert client.delete(url, headers=bearer("xfpvc-operator")).status_code == 403
    room.later(60)
    gone = client.delete(f"{url}?reason=开车完成", headers=bearer("operator"))
    assert gone.status_code == 200 and gone.json()["withdraw_reason"] == "开车完成" and not gone.json()["active"]
    assert client.delete(url, headers=bearer("operator")).status_code == 409
    assert client.delete("/api/v1/operating-states/OS-nope", headers=bearer("operator")).status_code == 404
    assert [e["id"] for e in client.get("/api/v1/operating-states?active=false",
                                        headers=bearer("viewer")).json()] == [luxi["id"]]


def test_the_daily_commitment_upload(client: TestClient, room: Room) -> None:
    response = client.post("/api/v1/commitments", json=COMMITMENT, headers=bearer("xfpvc-operator"))
    assert response.status_code == 201, response.text
    c = response.json()
    assert (c["id"], c["uploaded_by"], c["operations"], c["devices"]["maintenance"]) == (
        f"C20261125-{SITE}-1", "xfpvc-operator", {"hot_work": 1, "maintenance": 1}, 1)
    entries = client.get(f"/api/v1/operating-states?site_id={SITE}", headers=bearer("viewer")).json()
    assert {e["origin"] for e in entries} == {f"commitment:{c['id']}"} and len(entries) == 2
    again = client.post("/api/v1/commitments", json=COMMITMENT, headers=bearer("xfpvc-operator"))
    assert again.status_code == 409 and "amends" in again.text
    amended = client.post("/api/v1/commitments", json={**COMMITMENT, "amends": c["id"], "operations": []},
                          headers=bearer("xfpvc-operator"))
    assert amended.status_code == 201 and amended.json()["amends"] == c["id"]
    listed = client.get("/api/v1/commitments?date=2026-11-25", headers=bearer("viewer")).json()
    assert [(x["id"], x["superseded_by"]) for x in listed] == [(amended.json()["id"], None),
                                                              (c["id"], amended.json()["id"])]
    assert client.get("/api/v1/commitments", headers=bearer("xfpvc-viewer")).json()[0]["site_id"] == SITE


@pytest.mark.parametrize("changes, status", [
    ({"statement": "  "}, 422), ({"risks_controlled": None}, 422), ({"date": "2026-12-25"}, 422),
    ({"date": "tomorrow"}, 422), ({"operations": [{"kind": "hot_work", "from": "2026-11-25T08:00:00+08:00"}]}, 422),
    ({"amends": "C20261125-LC-XFPVC-7"}, 404), ({"site_id": "LC-NOPE"}, 404), ({"role": "boss"}, 422),
    ({"devices": {"running": -1}}, 422),
])
def test_a_bad_commitment_is_refused(client: TestClient, changes, status) -> None:
    body = {**COMMITMENT, **changes}
    if changes.get("risks_controlled", 0) is None:
        body.pop("risks_controlled")
    assert client.post("/api/v1/commitments", json=body, headers=bearer("operator")).status_code == status


def test_schemathesis_finds_no_server_error(client: TestClient) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", client.app)
    failures, tried = [], []
    for result in schema.get_all_operations():
        operation = result.ok()

        @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
        @given(case=operation.as_strategy())
        def run(case):
            tried.append(case.path)
            response = case.call(headers={"Authorization": "Bearer token-duty"})
            if response.status_code >= 500:
                failures.append((case.method, case.path, response.status_code, response.text[:200]))

        run()
    assert failures == []
    assert len(set(tried)) == 7 and len(tried) >= 100

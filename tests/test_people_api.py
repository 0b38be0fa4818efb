"""People over HTTP: sign-in and sign-out, the session cookie and its CSRF guard, expiry, lockout, the
site-scoped plant operator (鲁西集团's `luxi-operator`) who sees and acts on its plant only — lists,
objects and the event stream — and user administration. The demo configuration's users and
passwords (README) are used as shipped.
"""

from __future__ import annotations

import orjson
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from liaowang.api import create_app
from liaowang.auth import CSRF_HEADER, SESSION_COOKIE
from foundation.config import DEMO_PASSWORDS, LockoutSettings, SessionSettings
from liaowang.pipeline import Pipeline
from tests.test_authz import bearer, leak

CSRF = {CSRF_HEADER: "1"}


@pytest.fixture
def site(tmp_path, demo_config, alerts_db_target):
    """A pipeline on a fake clock with an orange alert at LC-LUXI and one at LC-XFHG; short lockout and sessions.
    Its people and alarms in alerts.db, then in PostgreSQL (``storage.database_url``)."""
    now = [1_800_000_000.0]
    auth = demo_config.settings.auth.model_copy(update={
        "sessions": SessionSettings(idle_s=600, absolute_s=3600),
        "lockout": LockoutSettings(failures=3, address_failures=50, window_s=60, lock_s=120)})
    update: dict = {"auth": auth}
    if isinstance(alerts_db_target, str):
        update["storage"] = demo_config.settings.storage.model_copy(
            update={"database_url": SecretStr(alerts_db_target)})
    config = demo_config.model_copy(update={"settings": demo_config.settings.model_copy(update=update)})
    pipeline = Pipeline(config, tmp_path / "data")
    leak(pipeline, "LC-LUXI-GD-01", "LC-LUXI")
    leak(pipeline, "LC-XFHG-GD-01", "LC-XFHG")
    pipeline.clock = lambda: now[0]  # after the leaks (they use the wall clock): the sessions' time is ours
    app = create_app(pipeline)
    alerts = {a["site_id"]: a["id"] for a in TestClient(app).get("/api/v1/alerts").json()}
    yield app, pipeline, alerts, now
    pipeline.stop()


def sign_in(app, name: str, password: str | None = None, **extra) -> TestClient:
    client = TestClient(app)
    response = client.post("/api/v1/session", json={"name": name, "password": password or DEMO_PASSWORDS[name],
                                                    **extra})
    assert response.status_code == 200, response.text
    return client


def test_a_person_signs_in_with_a_cookie_that_scripts_cannot_read(site):
    app, pipeline, _, _ = site
    client = TestClient(app)
    response = client.post("/api/v1/session", json={"name": "duty", "password": "demo-duty-pass"})
    assert response.status_code == 200
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{SESSION_COOKIE}=lws_") and "HttpOnly" in cookie and "SameSite=strict" in cookie
    assert "token" not in response.json()
    me = client.get("/api/v1/session").json()
    assert me == {**me, "name": "duty", "display_name": "市局值班员", "role": "duty_officer", "sites": [],
                  "kind": "user"}
    assert me["expires_at"] < me["absolute_expires_at"]
    assert client.get("/api/v1/whoami").json()["display_name"] == "市局值班员"
    assert ("duty", "sign_in") in [(r["actor"], r["action"]) for r in pipeline.audit.records()]


def test_a_script_signs_in_for_a_bearer_secret(site):
    app, _, _, _ = site
    response = TestClient(app).post("/api/v1/session", json={"name": "admin", "password": "demo-admin-pass",
                                                             "bearer": True})
    assert "set-cookie" not in response.headers
    token = response.json()["token"]
    assert TestClient(app).get("/api/v1/users", headers=bearer(token)).status_code == 200


def test_wrong_passwords_unknown_names_and_disabled_users_are_refused_and_audited(site):
    app, pipeline, _, _ = site
    client = TestClient(app)
    wrong = client.post("/api/v1/session", json={"name": "duty", "password": "not-it"})
    unknown = client.post("/api/v1/session", json={"name": "nobody", "password": "not-it"})
    assert wrong.status_code == unknown.status_code == 401 and wrong.json() == unknown.json()
    assert SESSION_COOKIE not in client.cookies
    admin = sign_in(app, "admin")
    assert admin.patch("/api/v1/users/luxi-operator", json={"disabled": True}, headers=CSRF).status_code == 200
    disabled = client.post("/api/v1/session", json={"name": "luxi-operator", "password": "demo-luxi-pass"})
    assert disabled.status_code == 403 and "disabled" in disabled.json()["detail"]
    failed = [(r["actor"], r["detail"]["reason"]) for r in pipeline.audit.records() if r["action"] == "sign_in_failed"]
    assert failed == [("duty", "wrong"), ("nobody", "wrong"), ("luxi-operator", "disabled")]


def test_failed_sign_ins_lock_the_name_for_a_while(site):
    app, pipeline, _, now = site
    client = TestClient(app)
    for _ in range(3):
        assert client.post("/api/v1/session", json={"name": "duty", "password": "guess"}).status_code == 401
    locked = client.post("/api/v1/session", json={"name": "duty", "password": "demo-duty-pass"})
    assert locked.status_code == 429 and locked.headers["retry-after"] == "120"
    assert client.post("/api/v1/session", json={"name": "admin", "password": "demo-admin-pass"}).status_code == 200
    now[0] += 120
    assert client.post("/api/v1/session", json={"name": "duty", "password": "demo-duty-pass"}).status_code == 200
    assert [r["action"] for r in pipeline.audit.records() if r["actor"] == "duty"][-2:] == ["sign_in_locked", "sign_in"]


def test_sign_out_ends_the_session_for_its_cookie_and_its_secret(site):
    app, pipeline, _, _ = site
    client = sign_in(app, "duty")
    stolen = client.cookies[SESSION_COOKIE]
    response = client.delete("/api/v1/session", headers=CSRF)
    assert response.status_code == 200 and 'liaowang_session=""' in response.headers["set-cookie"]
    assert client.get("/api/v1/session").status_code == 401
    assert TestClient(app).get("/api/v1/whoami", headers=bearer(stolen)).status_code == 401
    replayed = TestClient(app, cookies={SESSION_COOKIE: stolen}).get("/api/v1/alerts")
    assert replayed.status_code == 401 and "Max-Age=0" in replayed.headers["set-cookie"]  # the stale cookie is cleared
    assert ("duty", "sign_out") in [(r["actor"], r["action"]) for r in pipeline.audit.records()]


def test_sessions_end_after_idle_time_and_after_the_absolute_limit(site):
    app, _, _, now = site
    idle = sign_in(app, "duty")
    now[0] += 599
    assert idle.get("/api/v1/session").status_code == 200  # used: the idle time starts again
    now[0] += 599
    assert idle.get("/api/v1/session").status_code == 200
    now[0] += 600
    assert idle.get("/api/v1/session").status_code == 401
    busy = sign_in(app, "duty")
    for _ in range(6):  # used every 9 minutes, yet the hour after sign-in is the end
        now[0] += 540
        assert busy.get("/api/v1/session").status_code == 200
    now[0] += 540
    assert busy.get("/api/v1/session").status_code == 401


def test_a_cookie_alone_cannot_change_anything_without_the_request_header(site):
    """CSRF guard: a cross-site form could send the cookie (were SameSite ignored) but not a custom header."""
    app, pipeline, alerts, _ = site
    client = sign_in(app, "duty")
    forged = client.post(f"/api/v1/alerts/{alerts['LC-LUXI']}/ack", json={"note": "forged"})
    assert forged.status_code == 403 and CSRF_HEADER in forged.json()["detail"]
    assert client.post(f"/api/v1/alerts/{alerts['LC-LUXI']}/ack", json={"note": "收到"}, headers=CSRF).status_code == 200


def test_the_plant_operator_sees_and_acts_on_its_plant_only_under_its_name(site):
    app, pipeline, alerts, _ = site
    luxi = sign_in(app, "luxi-operator")
    assert {a["site_id"] for a in luxi.get("/api/v1/alerts").json()} == {"LC-LUXI"}
    assert [s["id"] for s in luxi.get("/api/v1/sites").json()] == ["LC-LUXI"]
    assert {f["id"] for f in luxi.get("/api/v1/map").json()["features"]} == {"LC-LUXI"}
    assert {s["site_id"] for s in luxi.get("/api/v1/sensors").json()} == {"LC-LUXI"}
    assert luxi.get(f"/api/v1/alerts/{alerts['LC-XFHG']}").status_code == 403
    assert luxi.post(f"/api/v1/alerts/{alerts['LC-XFHG']}/ack", json={}, headers=CSRF).status_code == 403
    acked = luxi.post(f"/api/v1/alerts/{alerts['LC-LUXI']}/ack", json={"note": "现场确认"}, headers=CSRF).json()
    assert acked["acknowledged_by"] == "luxi-operator"
    assert luxi.post(f"/api/v1/alerts/{alerts['LC-LUXI']}/shelve", json={"duration_s": 60, "reason": "x"},
                     headers=CSRF).status_code == 403  # an operator: shelving is the duty officer's
    assert ("luxi-operator", "acknowledged") in [(r["actor"], r["action"]) for r in pipeline.audit.records()]


def test_the_event_stream_of_a_cookie_signed_plant_operator_carries_its_plant_only(site):
    """EventSource sends no headers: the cookie alone signs the stream, and it carries LC-LUXI's events only."""
    app, pipeline, _, _ = site
    luxi = sign_in(app, "luxi-operator")
    received = []
    with luxi.stream("GET", "/api/v1/events") as response:
        assert response.status_code == 200
        lines = response.iter_lines()
        assert [next(lines) for _ in range(5)] == ["retry: 2000", f"id: {pipeline.event_log.head()}", "event: hello", "data: {}", ""]
        leak(pipeline, "LC-XFHG-GD-02", "LC-XFHG")  # first: had it been sent, it would come before LC-LUXI's
        leak(pipeline, "LC-LUXI-GD-02", "LC-LUXI")
        event = None
        for line in lines:
            if line.startswith("event: "):
                event = line.removeprefix("event: ")
            elif line.startswith("data: "):
                data = orjson.loads(line.removeprefix("data: "))
                received.append((event, data["site_id"]))
                if event == "alert" and data.get("subject") == "LC-LUXI-GD-02":
                    break
        pipeline.hub.close_all()
    assert received and {s for _, s in received} == {"LC-LUXI"}
    assert [a["subject"] for a in TestClient(app).get("/api/v1/alerts?site_id=LC-XFHG").json()].count("LC-XFHG-GD-02") == 1


def test_changing_ones_own_password_ends_ones_other_sessions(site):
    app, _, _, _ = site
    here, there = sign_in(app, "duty"), sign_in(app, "duty")
    wrong = here.post("/api/v1/session/password", json={"current": "nope", "new": "a-new-duty-pass"}, headers=CSRF)
    assert wrong.status_code == 403
    assert here.post("/api/v1/session/password", json={"current": "demo-duty-pass", "new": "short"},
                     headers=CSRF).status_code == 422
    assert here.post("/api/v1/session/password", json={"current": "demo-duty-pass", "new": "a-new-duty-pass"},
                     headers=CSRF).status_code == 200
    assert here.get("/api/v1/session").status_code == 200 and there.get("/api/v1/session").status_code == 401
    assert TestClient(app).post("/api/v1/session", json={"name": "duty", "password": "demo-duty-pass"}).status_code == 401
    sign_in(app, "duty", "a-new-duty-pass")
    token = TestClient(app).post("/api/v1/session/password", json={"current": "x", "new": "y" * 12},
                                 headers=bearer("demo-duty"))
    assert token.status_code == 400  # a service token has no password


def test_an_admin_manages_users_and_changes_apply_at_once(site):
    app, pipeline, alerts, _ = site
    admin = sign_in(app, "admin")
    body = {"name": "xfhg-wang", "display_name": "王工", "role": "viewer", "sites": ["LC-XFHG"],
            "password": "wang-first-pass"}
    created = admin.post("/api/v1/users", json=body, headers=CSRF)
    assert created.status_code == 201 and "password" not in str(created.json())
    assert admin.post("/api/v1/users", json=body, headers=CSRF).status_code == 409
    assert admin.post("/api/v1/users", json={**body, "name": "x2", "sites": ["LC-NOPE"]}, headers=CSRF).status_code == 422
    assert admin.post("/api/v1/users", json={**body, "name": "x3", "password": "short"}, headers=CSRF).status_code == 422
    wang = sign_in(app, "xfhg-wang", "wang-first-pass")
    assert wang.post(f"/api/v1/alerts/{alerts['LC-XFHG']}/ack", json={}, headers=CSRF).status_code == 403  # viewer
    assert admin.patch("/api/v1/users/xfhg-wang", json={"role": "operator"}, headers=CSRF).json()["role"] == "operator"
    assert wang.post(f"/api/v1/alerts/{alerts['LC-XFHG']}/ack", json={}, headers=CSRF).status_code == 200
    assert admin.post("/api/v1/users/xfhg-wang/password", json={"password": "wang-second-pass"},
                      headers=CSRF).status_code == 200
    assert wang.get("/api/v1/session").status_code == 401  # a reset ends the sessions
    assert admin.patch("/api/v1/users/admin", json={"disabled": True}, headers=CSRF).status_code == 409  # the last one
    assert admin.get("/api/v1/users/nobody").status_code == 404
    assert {u["name"] for u in admin.get("/api/v1/users").json()} == {"admin", "duty", "luxi-operator", "xfhg-wang"}
    assert sign_in(app, "luxi-operator").get("/api/v1/users").status_code == 403
    actions = [(r["actor"], r["action"], r["subject"]) for r in pipeline.audit.records()]
    assert {("admin", "user_created", "xfhg-wang"), ("admin", "user_changed", "xfhg-wang"),
            ("admin", "password_reset", "xfhg-wang")} <= set(actions)


def test_a_site_scoped_admin_cannot_manage_users(site):
    app, _, _, _ = site
    admin = sign_in(app, "admin")
    admin.post("/api/v1/users", json={"name": "luxi-admin", "display_name": "鲁西管理员", "role": "admin",
                                      "sites": ["LC-LUXI"], "password": "luxi-admin-pass"}, headers=CSRF)
    scoped = sign_in(app, "luxi-admin", "luxi-admin-pass")
    assert scoped.get("/api/v1/users").status_code == 403
    assert scoped.post("/api/v1/users/duty/password", json={"password": "taken-over-pass"},
                       headers=CSRF).status_code == 403


def test_the_configured_users_are_seeded_once_and_the_store_owns_them_after(site, demo_config):
    app, pipeline, _, _ = site
    admin = sign_in(app, "admin")
    admin.patch("/api/v1/users/duty", json={"display_name": "值班长"}, headers=CSRF)
    create_app(pipeline)  # a restart over the same data dir: seeding does not overwrite the change
    assert admin.get("/api/v1/users/duty").json()["display_name"] == "值班长"


def test_demo_passwords_are_recognised_so_the_server_stays_on_loopback(demo_config):
    assert demo_config.settings.auth.holds_demo_users()
    auth = demo_config.settings.auth.model_copy(update={"users": []})
    assert not auth.holds_demo_users()

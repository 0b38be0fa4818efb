"""The duty-room routes (liaowang/api_ui.py): the pages' settings, the data's liveness, bulk acknowledge."""

from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient

from liaowang.api import create_app
from liaowang.api_ui import BULK_MAX
from foundation.config import TokenEntry, hash_token
from foundation.domain import Reading
from liaowang.pipeline import Pipeline
from tests.test_authz import bearer, leak


@pytest.fixture
def desk(tmp_path, demo_config):
    """A pipeline with an alert at LC-LUXI and one at LC-XFHG, and a token scoped to LC-XFHG."""
    scoped = TokenEntry(name="xfhg-operator", sha256=hash_token("t-xfhg"), role="operator", sites=["LC-XFHG"])
    auth = demo_config.settings.auth.model_copy(update={"tokens": [*demo_config.settings.auth.tokens, scoped]})
    config = demo_config.model_copy(update={"settings": demo_config.settings.model_copy(update={"auth": auth})})
    pipeline = Pipeline(config, tmp_path / "data")
    leak(pipeline, "LC-LUXI-GD-01", "LC-LUXI")
    leak(pipeline, "LC-XFHG-GD-01", "LC-XFHG")
    client = TestClient(create_app(pipeline))
    alerts = {a["site_id"]: a["id"] for a in client.get("/api/v1/alerts").json()}
    yield client, alerts, pipeline
    pipeline.stop()


def test_ui_settings_give_the_configured_shelving_maximum(desk):
    client, _, pipeline = desk
    body = client.get("/api/v1/ui-settings").json()
    assert body["shelving"]["max_s"] == pipeline.config.alerting.shelving.max_s
    assert body["close_cause_required"] is pipeline.config.alerting.close_cause_required
    assert body["stale_data_s"] >= 30


def test_liveness_gives_the_newest_reading_of_the_callers_sites(desk):
    client, _, pipeline = desk
    now = time.time()
    pipeline.live.update(pipeline.fleet.batch([Reading("LC-LUXI-GD-02", "LC-LUXI", now - 7, 1.0),
                                               Reading("LC-XFHG-GD-02", "LC-XFHG", now - 100, 1.0)]))
    body = client.get("/api/v1/liveness").json()
    assert 7 <= body["age_s"] < 12 and body["stale"] is False
    assert body["newest_reading_at"].endswith("+08:00")
    scoped = client.get("/api/v1/liveness", headers=bearer("t-xfhg")).json()  # LC-XFHG only: its own newest
    assert 100 <= scoped["age_s"] < 105


def test_liveness_says_stale_past_the_threshold(desk):
    client, _, pipeline = desk
    threshold = client.get("/api/v1/ui-settings").json()["stale_data_s"]
    pipeline.live.update(pipeline.fleet.batch([Reading("LC-LUXI-GD-02", "LC-LUXI", time.time() - threshold - 5, 1.0)]))
    body = client.get("/api/v1/liveness").json()
    assert body["stale"] is True and body["age_s"] > threshold


def test_liveness_says_stale_when_no_reading_was_ever_seen(tmp_path, demo_config):
    pipeline = Pipeline(demo_config, tmp_path / "data")
    try:
        body = TestClient(create_app(pipeline)).get("/api/v1/liveness").json()
        assert body == {**body, "newest_reading_at": None, "age_s": None, "stale": True}
    finally:
        pipeline.stop()


def test_bulk_ack_reports_each_id_and_one_failure_never_stops_the_others(desk):
    client, alerts, pipeline = desk
    ids = [alerts["LC-LUXI"], "no-such-alert", alerts["LC-XFHG"]]
    answer = client.post("/api/v1/alerts/ack", json={"ids": ids, "note": "值班确认"}, headers=bearer("demo-operator"))
    assert answer.status_code == 200
    body = answer.json()
    assert (body["done"], body["failed"]) == (2, 1)
    outcome = {r["id"]: (r["ok"], r["status"]) for r in body["results"]}
    assert outcome == {alerts["LC-LUXI"]: (True, 200), "no-such-alert": (False, 404), alerts["LC-XFHG"]: (True, 200)}
    for site in ("LC-LUXI", "LC-XFHG"):
        stored = pipeline.alert_store.get(alerts[site])
        assert (stored.state, stored.acknowledged_by, stored.ack_note) == ("acknowledged", "demo-operator", "值班确认")
    again = client.post("/api/v1/alerts/ack", json={"ids": [alerts["LC-LUXI"]]}, headers=bearer("demo-operator")).json()
    assert again["results"][0]["status"] == 409  # already acknowledged: what the single ack answers too
    single = client.post(f"/api/v1/alerts/{alerts['LC-LUXI']}/ack", json={}, headers=bearer("demo-operator"))
    assert single.status_code == 409


def test_bulk_ack_by_a_site_scoped_operator_acts_only_on_its_site(desk):
    client, alerts, pipeline = desk
    body = client.post("/api/v1/alerts/ack", json={"ids": [alerts["LC-LUXI"], alerts["LC-XFHG"]]},
                       headers=bearer("t-xfhg")).json()
    outcome = {r["id"]: r["status"] for r in body["results"]}
    assert outcome == {alerts["LC-LUXI"]: 403, alerts["LC-XFHG"]: 200}
    assert pipeline.alert_store.get(alerts["LC-LUXI"]).state == "active"


def test_bulk_ack_refuses_bad_bodies_only_to_an_operator(desk):
    client, alerts, _ = desk
    assert client.post("/api/v1/alerts/ack", json={"ids": []}).status_code == 401
    assert client.post("/api/v1/alerts/ack", json={"ids": []}, headers=bearer("demo-viewer")).status_code == 403
    for bad in ({"ids": []}, {"ids": ["x"] * (BULK_MAX + 1)}, {"ids": [alerts["LC-LUXI"]], "extra": 1}, {"note": "x"}):
        assert client.post("/api/v1/alerts/ack", json=bad, headers=bearer("demo-operator")).status_code == 422, bad


def test_bulk_ack_of_the_same_id_twice_acknowledges_once(desk):
    client, alerts, pipeline = desk
    body = client.post("/api/v1/alerts/ack", json={"ids": [alerts["LC-LUXI"]] * 2}, headers=bearer("demo-operator")).json()
    assert [r["status"] for r in body["results"]] == [200]
    history = [h["event"] for h in pipeline.alert_store.get(alerts["LC-LUXI"]).to_json()["history"]]
    assert history.count("acknowledged") == 1

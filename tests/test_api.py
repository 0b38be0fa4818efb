"""The HTTP API of CONTRACT §4 over a real pipeline with SQLite stores (no broker needed here)."""

from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient

from liaowang.api import create_app
from liaowang.domain import Reading
from liaowang.pipeline import Pipeline

DUTY = {"Authorization": "Bearer demo-duty"}
OPERATOR = {"Authorization": "Bearer demo-operator"}
VIEWER = {"Authorization": "Bearer demo-viewer"}


def ingest(pipeline: Pipeline, readings: list[Reading]) -> None:
    """What the ingest worker does with a decoded batch."""
    batch = pipeline.fleet.batch(readings)
    pipeline.readings.write(batch)
    pipeline.live.update(batch)
    pipeline.handle_batch(batch)
    pipeline.flush_rules(everything=True)  # what the ticker does once the readings' lateness has passed


@pytest.fixture
def pipeline(tmp_path, demo_config):
    p = Pipeline(demo_config, tmp_path / "data")
    yield p
    p.alert_store.close()


@pytest.fixture
def client(pipeline):
    return TestClient(create_app(pipeline))


@pytest.fixture
def leak(pipeline):
    now = time.time()
    ingest(pipeline, [Reading("LC-LUXI-GD-01", "LC-LUXI", now - 4 + i, v) for i, v in enumerate([5, 25, 45])])
    return now


def test_alerts_list_shows_the_escalated_episode_with_history(client, leak):
    [alert] = client.get("/api/v1/alerts").json()
    assert alert["tier"] == "orange" and alert["state"] == "active" and alert["subject"] == "LC-LUXI-GD-01"
    assert [h["event"] for h in alert["history"]] == ["raised", "escalated"]
    assert client.get(f"/api/v1/alerts/{alert['id']}").json()["id"] == alert["id"]


def test_alert_filters_and_bad_filters(client, leak):
    assert len(client.get("/api/v1/alerts?tier=orange,red&county=东昌府区").json()) == 1
    assert client.get("/api/v1/alerts?site_id=LC-XFHG").json() == []
    assert client.get("/api/v1/alerts?state=active&since=2020-01-01T00:00:00+08:00").status_code == 200
    for bad in ("state=burning", "tier=purple", "since=yesterday", "limit=0"):
        response = client.get(f"/api/v1/alerts?{bad}")
        assert response.status_code == 422 and "detail" in response.json(), bad


def test_unknown_ids_are_404(client):
    assert client.get("/api/v1/alerts/nope").status_code == 404
    assert client.get("/api/v1/sites/nope").status_code == 404
    assert client.get("/api/v1/sensors/nope").status_code == 404
    assert client.post("/api/v1/alerts/nope/ack", headers=OPERATOR, json={}).status_code == 404


def test_write_endpoints_need_a_token_and_the_right_role(client, leak):
    alert_id = client.get("/api/v1/alerts").json()[0]["id"]
    assert client.post(f"/api/v1/alerts/{alert_id}/ack", json={}).status_code == 401
    assert client.post(f"/api/v1/alerts/{alert_id}/ack", headers={"Authorization": "Bearer wrong"}, json={}).status_code == 401
    assert client.post(f"/api/v1/alerts/{alert_id}/ack", headers=VIEWER, json={}).status_code == 403
    assert client.post(f"/api/v1/alerts/{alert_id}/close", headers=OPERATOR, json={"note": "x"}).status_code == 403
    acked = client.post(f"/api/v1/alerts/{alert_id}/ack", headers=OPERATOR, json={"note": "去现场"})
    assert acked.status_code == 200 and acked.json()["state"] == "acknowledged"
    assert acked.json()["acknowledged_by"] == "demo-operator"
    assert client.post(f"/api/v1/alerts/{alert_id}/ack", headers=OPERATOR, json={}).status_code == 409


def test_close_needs_resolution_and_a_note(client, pipeline, leak):
    alert_id = client.get("/api/v1/alerts").json()[0]["id"]
    assert client.post(f"/api/v1/alerts/{alert_id}/close", headers=DUTY, json={"note": "ok"}).status_code == 409
    # back to normal, and held there past the gas pack's 10 s off-delay (config/rules.yaml)
    ingest(pipeline, [Reading("LC-LUXI-GD-01", "LC-LUXI", leak + t, 2.0) for t in (1, 6, 11)])
    latched = client.get(f"/api/v1/alerts/{alert_id}").json()
    assert latched["latched"] and latched["state"] == "active"  # orange latches until a person acknowledges
    assert client.post(f"/api/v1/alerts/{alert_id}/close", headers=DUTY, json={"note": "ok"}).status_code == 409
    acked = client.post(f"/api/v1/alerts/{alert_id}/ack", headers=DUTY, json={})
    assert acked.json()["state"] == "resolved"
    assert client.post(f"/api/v1/alerts/{alert_id}/close", headers=DUTY, json={}).status_code == 422
    closed = client.post(f"/api/v1/alerts/{alert_id}/close", headers=DUTY, json={"note": "阀门已关闭"})
    assert closed.status_code == 200 and closed.json()["state"] == "closed"


def test_shelve_validates_its_body(client, leak):
    alert_id = client.get("/api/v1/alerts").json()[0]["id"]
    assert client.post(f"/api/v1/alerts/{alert_id}/shelve", headers=DUTY, json={"reason": "x"}).status_code == 422
    bad_time = client.post(f"/api/v1/alerts/{alert_id}/shelve", headers=DUTY, json={"until": "soon", "reason": "x"})
    assert bad_time.status_code == 422
    ok = client.post(f"/api/v1/alerts/{alert_id}/shelve", headers=DUTY,
                     json={"until": "2099-01-01T00:00:00+08:00", "reason": "标定"})
    assert ok.status_code == 200 and ok.json()["state"] == "shelved"


def test_sites_and_map_show_status_by_tier(client, leak):
    site = client.get("/api/v1/sites/LC-LUXI").json()
    assert site["status"] == "orange" and site["alerts"]["orange"] == 1
    geo = client.get("/api/v1/map").json()
    assert geo["type"] == "FeatureCollection" and len(geo["features"]) == 15
    luxi = next(f for f in geo["features"] if f["properties"]["site_id"] == "LC-LUXI")
    assert luxi["geometry"]["coordinates"] == [116.06, 36.47]
    assert luxi["properties"]["status"] == "orange" and luxi["properties"]["county"] == "东昌府区"


def test_sensors_show_last_value_staleness_and_readings(client, leak):
    sensor = client.get("/api/v1/sensors/LC-LUXI-GD-01").json()
    assert sensor["last_value"] == 45 and sensor["stale"] is False and sensor["unit"] == "%LEL"
    assert client.get("/api/v1/sensors/LC-LUXI-GD-02").json()["stale"] in (True, False)
    gas = client.get("/api/v1/sensors?site_id=LC-LUXI&family=gas").json()
    assert gas and all(s["family"] == "gas" and s["site_id"] == "LC-LUXI" for s in gas)
    readings = client.get("/api/v1/sensors/LC-LUXI-GD-01/readings?limit=2").json()
    assert [r["value"] for r in readings] == [45, 25]


def test_reads_need_a_token_when_public_read_is_off(tmp_path, demo_config):
    settings = demo_config.settings.model_copy(
        update={"auth": demo_config.settings.auth.model_copy(update={"public_read": False})})
    pipeline = Pipeline(demo_config.model_copy(update={"settings": settings}), tmp_path / "d")
    client = TestClient(create_app(pipeline))
    assert client.get("/api/v1/alerts").status_code == 401
    assert client.get("/api/v1/alerts", headers=VIEWER).status_code == 200
    assert client.get("/api/v1/whoami", headers=DUTY).json()["role"] == "duty_officer"


def test_metrics_and_healthz(client, leak):
    text = client.get("/metrics").text
    assert 'liaowang_alert_changes_total{event="raised"} 1.0' in text
    health = client.get("/healthz")
    assert health.status_code == 503 and health.json()["checks"]["broker"] is False  # never connected here


def test_the_map_page_and_its_assets_are_served_locally(client):
    page = client.get("/")
    assert page.status_code == 200 and "应急管理一张图" in page.text
    assert "http://" not in page.text and "https://" not in page.text
    for asset in ("/static/vendor/echarts.min.js", "/static/app.js", "/static/app.css", "/static/data/liaocheng.geojson"):
        assert client.get(asset).status_code == 200, asset


def test_a_filling_spool_raises_and_clears_a_pipeline_health_alert(client, pipeline):
    pipeline.handle_spool_health("influx_v2", 0.83, True)
    [alert] = client.get("/api/v1/alerts?state=active").json()
    assert (alert["rule_id"], alert["tier"], alert["family"], alert["site_id"]) == (
        "pipeline.spool", "orange", "system", "_system")
    pipeline.handle_spool_health("influx_v2", 0.5, False)
    assert client.get(f"/api/v1/alerts/{alert['id']}").json()["latched"]  # orange: held for a person
    client.post(f"/api/v1/alerts/{alert['id']}/ack", headers=DUTY, json={})
    assert client.get(f"/api/v1/alerts/{alert['id']}").json()["state"] == "resolved"
    assert client.get("/api/v1/sites/LC-LUXI").json()["status"] in ("normal", "offline")

"""The HTTP API of CONTRACT §4 over a real pipeline with SQLite stores (no broker needed here)."""

from __future__ import annotations

import time
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from liaowang.api import create_app
from foundation.config import TokenEntry, hash_token
from foundation.domain import Reading
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
def pipeline(tmp_path, demo_config, alerts_db_target):
    """The pipeline with its alarms in alerts.db, then in PostgreSQL (``storage.database_url``)."""
    config = demo_config
    if isinstance(alerts_db_target, str):
        storage = demo_config.settings.storage.model_copy(update={"database_url": SecretStr(alerts_db_target)})
        config = demo_config.model_copy(update={"settings": demo_config.settings.model_copy(update={"storage": storage})})
    p = Pipeline(config, tmp_path / "data")
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
    assert client.post(f"/api/v1/alerts/{alert_id}/close", headers=DUTY, json={"note": "ok", "cause": "false_alarm"}).status_code == 409
    # back to normal, and held there past the gas pack's 10 s off-delay (config/rules.yaml)
    ingest(pipeline, [Reading("LC-LUXI-GD-01", "LC-LUXI", leak + t, 2.0) for t in (1, 6, 11)])
    latched = client.get(f"/api/v1/alerts/{alert_id}").json()
    assert latched["latched"] and latched["state"] == "active"  # orange latches until a person acknowledges
    assert client.post(f"/api/v1/alerts/{alert_id}/close", headers=DUTY, json={"note": "ok", "cause": "false_alarm"}).status_code == 409
    acked = client.post(f"/api/v1/alerts/{alert_id}/ack", headers=DUTY, json={})
    assert acked.json()["state"] == "resolved"
    assert client.post(f"/api/v1/alerts/{alert_id}/close", headers=DUTY, json={}).status_code == 422
    closed = client.post(f"/api/v1/alerts/{alert_id}/close", headers=DUTY, json={"note": "阀门已关闭", "cause": "真实险情"})
    assert closed.status_code == 200 and closed.json()["state"] == "closed"


def test_shelve_validates_its_body(client, leak):
    alert_id = client.get("/api/v1/alerts").json()[0]["id"]
    assert client.post(f"/api/v1/alerts/{alert_id}/shelve", headers=DUTY, json={"reason": "x"}).status_code == 422
    bad_time = client.post(f"/api/v1/alerts/{alert_id}/shelve", headers=DUTY, json={"until": "soon", "reason": "x"})
    assert bad_time.status_code == 422
    too_long = client.post(f"/api/v1/alerts/{alert_id}/shelve", headers=DUTY,
                           json={"until": "2099-01-01T00:00:00+08:00", "reason": "标定"})
    assert too_long.status_code == 422 and "at most" in too_long.json()["detail"]  # one shift at most
    ok = client.post(f"/api/v1/alerts/{alert_id}/shelve", headers=DUTY, json={"duration_s": 3600, "reason": "标定"})
    assert ok.status_code == 200 and ok.json()["state"] == "shelved" and ok.json()["shelved_by"] == "demo-duty"
    assert [a["id"] for a in client.get("/api/v1/shelves").json()] == [alert_id]
    back = client.post(f"/api/v1/alerts/{alert_id}/unshelve", headers=DUTY)
    assert back.status_code == 200 and back.json()["state"] == "active" and client.get("/api/v1/shelves").json() == []


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


@pytest.fixture
def private(tmp_path, demo_config):
    """A client of a server without public reads, with a metrics token and a viewer scoped to LC-XFHG."""
    scoped = TokenEntry(name="xfhg-viewer", sha256=hash_token("t-xfhg-viewer"), role="viewer", sites=["LC-XFHG"])
    auth = demo_config.settings.auth.model_copy(update={
        "public_read": False, "metrics_token_sha256": hash_token("t-metrics"),
        "tokens": [*demo_config.settings.auth.tokens, scoped]})
    settings = demo_config.settings.model_copy(update={"auth": auth})
    pipeline = Pipeline(demo_config.model_copy(update={"settings": settings}), tmp_path / "d")
    yield TestClient(create_app(pipeline))
    pipeline.alert_store.close()


def test_reads_need_a_token_when_public_read_is_off(private):
    assert private.get("/api/v1/alerts").status_code == 401
    assert private.get("/api/v1/alerts", headers=VIEWER).status_code == 200
    assert private.get("/api/v1/whoami", headers=DUTY).json()["role"] == "duty_officer"


def test_a_bad_query_without_a_token_is_401_not_422(private):
    """Authentication comes before parameter validation: an anonymous caller learns nothing about the parameters."""
    for query in ("limit=0", "since=yesterday", "state=burning", "since=1e400"):
        assert private.get(f"/api/v1/alerts?{query}").status_code == 401, query
        assert private.get(f"/api/v1/alerts?{query}", headers=VIEWER).status_code == 422, query


def test_metrics_follow_the_read_policy(private):
    """Without public reads /metrics needs the metrics token or a token of every site; the metrics token opens
    nothing else."""
    assert private.get("/metrics").status_code == 401
    assert private.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert private.get("/metrics", headers={"Authorization": "Bearer t-xfhg-viewer"}).status_code == 403
    for headers in (VIEWER, DUTY, {"Authorization": "Bearer t-metrics"}):
        response = private.get("/metrics", headers=headers)
        assert response.status_code == 200 and "liaowang_alerts_open" in response.text
    assert private.get("/api/v1/alerts", headers={"Authorization": "Bearer t-metrics"}).status_code == 401
    assert private.get("/healthz").status_code in (200, 503)  # liveness stays open for the orchestrator


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


TIME_PARAMETERS = ["/api/v1/alerts?since=", "/api/v1/sensors/LC-LUXI-GD-01/readings?since=",
                   "/api/v1/sensors/LC-LUXI-GD-01/readings?until=", "/api/v1/audit?since=", "/api/v1/audit?until=",
                   "/api/v1/kpis?since="]
BAD_TIMES = ["1e400", "99999999999999999999", "1e308", "9" * 400, "nan", "inf", "-inf", "-5", "-1e400", "yesterday",
             "0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00", "2026-01-01T00:00:00+25:00",
             "2026-01-01T00:00:00", "٣", "1_000", "\x00"]


@pytest.mark.parametrize("bad", BAD_TIMES)
def test_every_time_parameter_refuses_bad_times_with_422(client, bad):
    """Issue 11: huge, infinite, NaN, negative and out-of-range times gave 500s; now a 422 naming the parameter."""
    for prefix in TIME_PARAMETERS:
        response = client.get(prefix + quote(bad), headers=DUTY)
        name = prefix.rsplit("?", 1)[1].removesuffix("=")
        assert response.status_code == 422, (prefix, bad, response.status_code)
        assert response.json()["detail"].startswith(f"{name}: "), (prefix, bad, response.json())


@pytest.mark.parametrize("good", ["1795564800", "1795564800.5", "1.7955648e9", "2026-11-25T08:00:00+08:00",
                                  "2026-11-25T00:00:00Z", "2026-11-25 08:00:00+08:00", "1970-01-01T00:00:00Z"])
def test_every_time_parameter_takes_rfc3339_and_epoch_seconds(client, good):
    for prefix in TIME_PARAMETERS:
        response = client.get(prefix + good.replace("+", "%2B"), headers=DUTY)
        assert response.status_code == 200, (prefix, good, response.text)


def test_bad_limits_and_formats_are_422(client):
    for query in ("limit=" + "9" * 400, "limit=" + "9" * 5000, "limit=1e400", "limit=nan", "limit=-1", "limit=x"):
        for prefix in ("/api/v1/alerts?", "/api/v1/sensors/LC-LUXI-GD-01/readings?"):
            assert client.get(prefix + query, headers=DUTY).status_code == 422, (prefix, query)
    assert client.get("/api/v1/audit?format=xml", headers=DUTY).status_code == 422


def test_body_times_out_of_range_are_422(client, leak):
    alert_id = client.get("/api/v1/alerts").json()[0]["id"]
    for until in ("0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00", 1e20, "2026-01-01T00:00:00"):
        response = client.post(f"/api/v1/alerts/{alert_id}/shelve", headers=DUTY, json={"until": until, "reason": "x"})
        assert response.status_code == 422 and response.json()["detail"].startswith("until"), (until, response.text)
    for start, end in (("0001-01-01T00:00:00+14:00", "2030-01-01T00:00:00Z"),
                       ("2029-01-01T00:00:00Z", "9999-12-31T23:59:59-14:00")):
        response = client.post("/api/v1/suppressions", headers=DUTY,
                               json={"site_id": "LC-LUXI", "start": start, "end": end, "reason": "检修"})
        assert response.status_code == 422, (start, end, response.text)


def test_close_needs_a_cause_category_and_kpis_count_by_cause(client, pipeline, leak):
    """消警 carries a cause (误报/仪表故障/工艺波动/检修作业/真实险情); KPIs count closed alerts by cause."""
    alert_id = client.get("/api/v1/alerts").json()[0]["id"]
    ingest(pipeline, [Reading("LC-LUXI-GD-01", "LC-LUXI", leak + t, 2.0) for t in (1, 6, 11)])
    client.post(f"/api/v1/alerts/{alert_id}/ack", headers=DUTY, json={})
    missing = client.post(f"/api/v1/alerts/{alert_id}/close", headers=DUTY, json={"note": "复测正常"})
    assert missing.status_code == 422 and "cause" in missing.json()["detail"]
    unknown = client.post(f"/api/v1/alerts/{alert_id}/close", headers=DUTY, json={"note": "复测正常", "cause": "其他"})
    assert unknown.status_code in (400, 422)
    closed = client.post(f"/api/v1/alerts/{alert_id}/close", headers=DUTY, json={"note": "复测正常", "cause": "误报"})
    assert closed.status_code == 200
    assert (closed.json()["close_cause"], closed.json()["close_cause_zh"]) == ("false_alarm", "误报")
    kpis = client.get("/api/v1/kpis?since=2020-01-01T00:00:00%2B08:00", headers=DUTY).json()
    assert kpis["closed_by_cause"]["false_alarm"] == 1 and kpis["closed_by_cause_zh"]["误报"] == 1
    assert set(kpis["closed_by_cause"]) >= {"false_alarm", "instrument_fault", "process_upset", "maintenance", "real_incident"}

"""Alarm texts end to end: the API serves every alert's title and text in both languages, and the
shipped scenarios, run through the real pipeline, store only readable texts."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from alerting import AlertStore
from alerting.db import AlertDB
from alerting.messages import Rendered
from liaowang.api import create_app
from foundation.domain import Reading
from liaowang.pipeline import Pipeline
from liaowang.scenario import load_scenario, run_scenario
from foundation.wording import CJK
from tests.alerting.test_messages import assert_readable

SCENARIOS = Path(__file__).resolve().parent.parent / "scenarios"


@pytest.fixture
def pipeline(tmp_path, demo_config):
    p = Pipeline(demo_config, tmp_path / "data")
    yield p
    p.alert_store.close()


def test_the_api_serves_title_and_text_in_both_languages(pipeline):
    client = TestClient(create_app(pipeline))
    now = time.time()
    batch = pipeline.fleet.batch([Reading("LC-LUXI-GD-01", "LC-LUXI", now - 4 + i, v) for i, v in enumerate([5, 25, 45])])
    pipeline.readings.write(batch)
    pipeline.handle_batch(batch)
    pipeline.flush_rules(everything=True)
    pipeline.handle_spool_health("influx_v2", 0.83, True)
    alerts = {a["rule_id"]: a for a in client.get("/api/v1/alerts").json()}
    gas = alerts["gas.combustible_gas.threshold"]
    assert gas["title"] == {"zh": "鲁西集团 液氨储罐区 可燃气体探测器01",
                            "en": "Luxi Group, liquid ammonia tank farm: combustible gas detector 01"}
    assert gas["text"]["en"] == ("High priority: Luxi Group, combustible gas detector 01 at 45.0 %LEL, "
                                 "reached the level 2 setpoint 40.0 %LEL")
    assert gas["message"] and gas["raise_text"]["zh"].startswith("中报警")
    assert [h["text"]["en"].split(":")[0] for h in gas["history"]] == ["Medium priority", "High priority"]
    assert client.get(f"/api/v1/alerts/{gas['id']}").json()["text"] == gas["text"]
    spool = alerts["pipeline.spool"]
    assert spool["text"]["en"] == ("High priority: Liaowang sink influx_v2 local spool 83 % full: "
                                   "the database is unavailable, data are kept locally")
    for alert in alerts.values():
        assert_readable(Rendered(alert["title"], alert["text"]), {alert["subject"], alert["site_id"]})
    assert (gas["county"], gas["county_en"], spool["county_en"]) == ("东昌府区", "Dongchangfu District", "")


def test_sites_sensors_and_the_map_give_english_names_for_the_en_switch(pipeline):
    client = TestClient(create_app(pipeline))
    site = client.get("/api/v1/sites/LC-LUXI").json()
    assert (site["name_en"], site["county_en"]) == ("Luxi Group", "Dongchangfu District")
    sensor = client.get("/api/v1/sensors/LC-LUXI-GD-01").json()
    assert (sensor["name"], sensor["name_en"]) == ("可燃气体探测器01", "combustible gas detector 01")
    features = client.get("/api/v1/map").json()["features"]
    assert all(f["properties"]["name_en"] and f["properties"]["county_en"] for f in features)
    assert not any(CJK.search(f["properties"]["name_en"] + f["properties"]["county_en"]) for f in features)
    sensors = client.get("/api/v1/sensors").json()
    assert len(sensors) == len(pipeline.fleet.sensors) and not any(CJK.search(s["name_en"]) for s in sensors)


@pytest.mark.parametrize("name", ["gas-leak-confirmed", "gateway-offline", "drift-out-of-range", "stuck-transmitter",
                                  "tank-overfill", "runaway-reaction", "sensor-dropout"])
def test_a_shipped_scenario_stores_only_readable_texts(name, demo_config, tmp_path):
    """Every alert and every history entry the real rules and lifecycle produce reads in both languages."""
    outcome = run_scenario(load_scenario(SCENARIOS / f"{name}.yaml"), demo_config, name, data_dir=tmp_path)
    assert outcome.passed
    alerts = AlertStore(AlertDB(tmp_path / "data" / "alerts.db")).query(limit=1000)
    assert alerts
    fleet = demo_config.fleet
    for alert in alerts:
        ids = {alert.subject, alert.site_id} | {s for s in fleet.sensors if fleet.sensors[s].site_id == alert.site_id}
        assert alert.title is not None and alert.text is not None, alert.rule_id
        assert_readable(Rendered(alert.title, alert.text), ids)
        for entry in alert.history:
            if entry.message is not None:  # rule-driven entries carry the signal's text
                assert entry.text is not None, (alert.rule_id, entry.event)
                assert_readable(Rendered(alert.title, entry.text), ids)

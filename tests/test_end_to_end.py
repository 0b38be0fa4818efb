"""End to end over a real MQTT broker (mosquitto in CI): readings in, alerts out, dead letters."""

from __future__ import annotations

import threading
import time

import orjson
import pytest
from fastapi.testclient import TestClient

from liaowang.api import create_app
from liaowang.pipeline import Pipeline
from simulators import run_simulator

from .conftest import Subscriber, config_for, publisher, start_test_broker, wait_until


@pytest.fixture
def running(broker, tmp_path, demo_config):
    host, port = broker
    pipeline = Pipeline(config_for(demo_config, port), tmp_path / "data")
    pipeline.start()
    assert pipeline.ingest.wait_connected(10)
    yield pipeline, TestClient(create_app(pipeline)), (host, port)
    pipeline.stop()


def publish(client, topic: str, payload: bytes | str) -> None:
    client.publish(topic, payload, qos=1).wait_for_publish(5)


def test_a_second_level_gas_reading_raises_an_orange_alert_published_on_mqtt(running):
    pipeline, api, (host, port) = running
    alerts_out = Subscriber(host, port, "liaowang/v1/alerts/#")
    status_out = Subscriber(host, port, "liaowang/v1/site-status/LC-LUXI")
    pub = publisher(host, port)
    publish(pub, "liaowang/v1/readings/LC-LUXI/LC-LUXI-GD-03",
            orjson.dumps({"sensor_id": "LC-LUXI-GD-03", "ts": time.time(), "value": 60, "unit": "%LEL"}))
    alerts = wait_until(lambda: api.get("/api/v1/alerts?site_id=LC-LUXI").json())
    assert [(a["subject"], a["tier"], a["state"]) for a in alerts] == [("LC-LUXI-GD-03", "orange", "active")]
    announced = wait_until(alerts_out.json)
    assert announced[0]["event"] == "raised" and announced[0]["id"] == alerts[0]["id"]
    assert wait_until(lambda: [s for s in status_out.json() if s["status"] == "orange"])
    alerts_out.close(), status_out.close(), pub.disconnect()


def test_bad_payloads_become_dead_letters_and_the_pipeline_carries_on(running):
    pipeline, api, (host, port) = running
    letters = Subscriber(host, port, "liaowang/v1/deadletter")
    pub = publisher(host, port)
    publish(pub, "liaowang/v1/readings/LC-LUXI/LC-LUXI-GD-03", "not json")
    publish(pub, "liaowang/v1/readings/LC-LUXI/NOPE", orjson.dumps({"sensor_id": "NOPE", "ts": time.time(), "value": 1}))
    publish(pub, "liaowang/v1/readings/LC-LUXI/LC-LUXI-GD-04",
            orjson.dumps({"ts": time.time(), "value": 25, "unit": "%LEL"}))
    got = wait_until(lambda: len(letters.json()) >= 2 and letters.json())
    assert sorted(letter["reason"] for letter in got) == ["not_json", "unknown_sensor"]
    assert got[0]["topic"].startswith("liaowang/v1/readings/LC-LUXI/")
    assert wait_until(lambda: api.get("/api/v1/alerts?site_id=LC-LUXI").json())[0]["subject"] == "LC-LUXI-GD-04"
    metrics = api.get("/metrics").text
    assert 'liaowang_ingest_rejected_total{reason="not_json"} 1.0' in metrics
    assert 'liaowang_ingest_rejected_total{reason="unknown_sensor"} 1.0' in metrics
    letters.close(), pub.disconnect()


def test_readings_published_while_ingest_is_down_arrive_after_restart(broker, tmp_path, demo_config):
    host, port = broker
    config = config_for(demo_config, port)
    first = Pipeline(config, tmp_path / "data")
    first.start()
    assert first.ingest.wait_connected(10)
    first.stop()  # the broker keeps the persistent session and queues QoS 1 messages
    pub = publisher(host, port)
    now = time.time()
    for i in range(200):
        publish(pub, "liaowang/v1/readings/LC-XFHG/LC-XFHG-T101-LT",
                orjson.dumps({"ts": now - 200 + i, "value": 5.0 + i / 1000}))
    second = Pipeline(config, tmp_path / "data")
    second.start()
    try:
        assert wait_until(lambda: second.readings.count() == 200)
    finally:
        second.stop()
        pub.disconnect()


def test_a_gateway_last_will_marks_its_site_offline(running):
    pipeline, api, (host, port) = running
    pub = publisher(host, port)
    publish(pub, "liaowang/v1/status/LC-GTLC", b'{"state": "offline"}')
    assert wait_until(lambda: api.get("/api/v1/sites/LC-GTLC").json()["status"] == "offline")
    assert api.get("/api/v1/sensors/LC-GTLC-WS1-TA").json()["stale"] is True
    publish(pub, "liaowang/v1/status/LC-GTLC", b'{"state": "online"}')
    wait_until(lambda: not pipeline.engine.stale.gateway_offline("LC-GTLC"))
    pub.disconnect()


def test_the_simulated_fleet_raises_alerts_of_all_three_families(running):
    pipeline, api, (host, port) = running
    stop = threading.Event()
    published = run_simulator(pipeline.fleet, pipeline.settings.mqtt, speed=0, duration_s=70, stop=stop)
    assert wait_until(lambda: pipeline.readings.count() == published, timeout=30)
    families = {a["family"] for a in wait_until(lambda: api.get("/api/v1/alerts").json())}
    wait_until(lambda: {a["family"] for a in api.get("/api/v1/alerts").json()} == {"gas", "hazard", "forest"})
    tiers = {(a["subject"], a["tier"]) for a in api.get("/api/v1/alerts").json()}
    assert ("LC-LUXI-GD-01", "orange") in tiers
    assert ("LC-XFPVC-T101-TT", "red") in tiers  # grade-1 source: temperature HH is urgent
    assert ("LC-DEHH-WS1-FL", "orange") in tiers  # a flame detector alone is high ...
    assert ("LC-DEHH-WS1", "red") in tiers        # ... the station's fire, confirmed by a second signal, urgent
    assert ("LC-LUXI-combustible-gas-Z1", "orange") in tiers  # two detectors agreeing at the first level: high
    assert families
    # the station's detected fire opened its incident (火情), to be checked (核查) by a person
    incidents = wait_until(lambda: api.get("/api/v1/incidents").json())
    assert [i["site_id"] for i in incidents] == ["LC-DEHH"] and incidents[0]["state"] == "reported"
    assert incidents[0]["opened_at"].endswith("+08:00")  # times in RFC 3339, as every resource


def test_the_embedded_amqtt_broker_carries_the_same_flow(tmp_path, demo_config):
    broker = start_test_broker("amqtt", tmp_path / "amqtt")
    port = broker.port
    pipeline = Pipeline(config_for(demo_config, port), tmp_path / "data")
    try:
        pipeline.start()
        assert pipeline.ingest.wait_connected(10)
        pub = publisher("127.0.0.1", port)
        publish(pub, "liaowang/v1/readings/LC-SXHG",
                orjson.dumps({"site_id": "LC-SXHG", "readings": [
                    {"sensor_id": "LC-SXHG-GD-01", "ts": time.time(), "value": 22},
                    {"sensor_id": "LC-SXHG-GD-02", "ts": "garbage", "value": 22}]}))
        alerts = wait_until(lambda: pipeline.alert_store.query())
        assert [(a.subject, a.tier.colour) for a in alerts] == [("LC-SXHG-GD-01", "yellow")]
        pub.disconnect()
    finally:
        pipeline.stop()
        broker.running.stop()


def test_a_malformed_gateway_status_is_dead_lettered(running):
    pipeline, api, (host, port) = running
    letters = Subscriber(host, port, "liaowang/v1/deadletter")
    pub = publisher(host, port)
    publish(pub, "liaowang/v1/status/LC-GTLC", b'{"state": "sleepy"}')
    assert wait_until(letters.json)[0]["reason"] == "bad_status"
    assert not pipeline.engine.stale.gateway_offline("LC-GTLC")
    letters.close(), pub.disconnect()

"""Stages that fail are seen and recovered; a batch downstream keeps failing on is dead-lettered, not lost.

Real broker, real pipeline. The faults are injected at two seams (named test doubles): a batch
observer that raises stands for a bug in the rules or alerting, and a live-value update that
raises once stands for a bug that kills the store stage outright.
"""

from __future__ import annotations

import time

import orjson
import pytest
from fastapi.testclient import TestClient

from liaowang.api import create_app
from liaowang.pipeline import Pipeline

from .conftest import Subscriber, config_for, publisher, wait_until


@pytest.fixture
def running(broker, tmp_path, demo_config):
    host, port = broker
    pipeline = Pipeline(config_for(demo_config, port), tmp_path / "data")
    pipeline.start()
    assert pipeline.ingest.wait_connected(10)
    yield pipeline, TestClient(create_app(pipeline)), (host, port)
    pipeline.stop()


def reading(sensor: str, value: float, ts: float | None = None) -> bytes:
    return orjson.dumps({"sensor_id": sensor, "ts": ts or time.time(), "value": value})


def test_a_batch_the_rules_keep_failing_on_is_dead_lettered_alarmed_and_ingest_goes_on(running):
    pipeline, api, (host, port) = running
    letters = Subscriber(host, port, "liaowang/v1/deadletter")
    pub = publisher(host, port)
    failures = []

    def broken_observer(batch) -> None:  # test double: a bug downstream of ingest
        failures.append(len(batch))
        raise ValueError("a bug in evaluation")

    pipeline.add_batch_observer(broken_observer)
    pub.publish("liaowang/v1/readings/LC-LUXI/LC-LUXI-GD-03", reading("LC-LUXI-GD-03", 3.0), qos=1).wait_for_publish(5)
    dead = wait_until(lambda: [d for d in letters.json() if d["reason"] == "evaluation_failed"], timeout=20)
    assert dead[0]["topic"] == "liaowang/v1/readings/LC-LUXI/LC-LUXI-GD-03" and "ValueError" in dead[0]["detail"]
    assert len(failures) == 3, "tried three times, then given up"
    system = wait_until(lambda: [a for a in api.get("/api/v1/alerts?site_id=_system").json()
                                 if a["rule_id"] == "system.evaluation"])
    assert system[0]["tier"] == "red" and "evaluation_failed" in system[0]["message"]
    assert pipeline.readings.recent("LC-LUXI-GD-03"), "the reading itself is stored"

    pipeline._observers.remove(broken_observer)
    pub.publish("liaowang/v1/readings/LC-LUXI/LC-LUXI-GD-04", reading("LC-LUXI-GD-04", 60.0), qos=1).wait_for_publish(5)
    alerts = wait_until(lambda: [a for a in api.get("/api/v1/alerts?site_id=LC-LUXI").json()
                                 if a["subject"] == "LC-LUXI-GD-04"], timeout=20)
    assert alerts[0]["tier"] == "orange", "ingest and the rules go on after the failed batch"
    letters.close(), pub.disconnect()


def test_a_dead_store_stage_turns_health_red_raises_an_alarm_restarts_and_loses_nothing(running):
    pipeline, api, (host, port) = running
    pub = publisher(host, port)
    real_update = pipeline.live.update
    calls = []

    def dies_once(batch) -> None:  # test double: a bug that kills the store stage once
        calls.append(len(batch))
        if len(calls) == 1:
            raise RuntimeError("the store stage died")
        real_update(batch)

    pipeline.live.update = dies_once  # type: ignore[method-assign]
    ts = time.time()
    pub.publish("liaowang/v1/readings/LC-LUXI/LC-LUXI-GD-03", reading("LC-LUXI-GD-03", 60.0, ts),
                qos=1).wait_for_publish(5)
    down = wait_until(lambda: (r := api.get("/healthz")).status_code == 503 and r.json(), timeout=10)
    assert down["status"] == "failing" and down["stages"]["ingest-store"]["state"] == "failed"
    assert any("ingest-store" in p and "the store stage died" in p for p in down["problems"])
    stage_alarm = wait_until(lambda: [a for a in pipeline.alert_store.query(site_id="_system")
                                      if a.rule_id == "system.stage"], timeout=10)
    assert stage_alarm[0].tier.colour == "orange" and stage_alarm[0].subject == "stage:ingest-store"
    # Restarted; the broker redelivers the unacknowledged message; it is evaluated once.
    wait_until(lambda: pipeline.supervisor.status("ingest-store").restarts == 1 and
               api.get("/healthz").status_code == 200, timeout=20)
    alerts = wait_until(lambda: [a for a in api.get("/api/v1/alerts?site_id=LC-LUXI").json()
                                 if a["subject"] == "LC-LUXI-GD-03"], timeout=20)
    assert [a["tier"] for a in alerts] == ["orange"]
    assert [r.ts for r in pipeline.readings.recent("LC-LUXI-GD-03")] == [pytest.approx(ts, abs=1e-6)]
    assert pipeline.ingest.running()
    pub.disconnect()

"""Poison messages through a real broker (issue 11): each is dead-lettered on
``liaowang/v1/deadletter`` with its reason, the good reading published after it is stored, and
both ingest stages stay alive without a restart.

Before the fix one ~500-byte message (a batch element a few hundred levels deep, a deep field,
a deep payload) raised out of the decoder and the ingest thread died; unacknowledged, the same
message came back after a restart and killed it again. A retained one did so on every start.
"""

from __future__ import annotations

import time

import orjson
import pytest

from liaowang.pipeline import Pipeline
from liaowang.supervise import StageState

from .conftest import Subscriber, config_for, publisher, wait_until

DEADLETTER = "liaowang/v1/deadletter"
SENSOR_TOPIC = "liaowang/v1/readings/LC-LUXI/LC-LUXI-GD-01"
BATCH_TOPIC = "liaowang/v1/readings/LC-LUXI"


def deep(levels: int, inner: bytes = b"1") -> bytes:
    return b"[" * levels + inner + b"]" * levels


def reading(value: float, **fields) -> bytes:
    return orjson.dumps({"ts": time.time() - 1, "value": value, **fields})


GOOD_ELEMENT = b'{"sensor_id": "LC-LUXI-GD-02", "ts": %.3f, "value": 2.0}'

POISON = {
    # (topic, payload, reason, readings it still carries)
    "a ~500-byte batch element 260 levels deep": (
        BATCH_TOPIC, lambda: b'{"readings": [' + deep(260) + b"]}", "bad_shape", 0),
    "the same element beside a good one": (
        BATCH_TOPIC, lambda: b'{"readings": [' + GOOD_ELEMENT % (time.time() - 1) + b", " + deep(260) + b"]}",
        "bad_shape", 1),
    "a whole payload 5,000 arrays deep": (SENSOR_TOPIC, lambda: deep(5000), "too_deep", 0),
    "a whole payload 3,000 objects deep": (SENSOR_TOPIC, lambda: b'{"a":' * 3000 + b"1" + b"}" * 3000, "too_deep", 0),
    "a unit 1,000 levels deep": (SENSOR_TOPIC, lambda: reading(1.0)[:-1] + b', "unit": ' + deep(1000) + b"}",
                                 "unit_mismatch", 0),
    "a value 1,000 levels deep": (SENSOR_TOPIC, lambda: b'{"ts": %.3f, "value": %s}' % (time.time() - 1, deep(1000)),
                                  "bad_value", 0),
    "1e308 m/s, infinite in km/h": ("liaowang/v1/readings/LC-DEHH/LC-DEHH-WS1-WS",
                                    lambda: reading(1e308, unit="m/s"), "bad_value", 0),
}


def ingest_healthy(pipeline: Pipeline) -> bool:
    """Both ingest stages alive, and neither ever raised (the supervisor would have restarted it)."""
    stages = {s.name: s for s in pipeline.supervisor.statuses().values() if s.name.startswith("ingest")}
    return pipeline.ingest.running() and sorted(stages) == ["ingest-decode", "ingest-store"] \
        and all(s.state is StageState.RUNNING and s.restarts == 0 and s.last_error is None for s in stages.values())


def publish(client, topic: str, payload: bytes, retain: bool = False) -> None:
    assert client.publish(topic, payload, qos=1, retain=retain).wait_for_publish(10) is None


def letters_for(letters: Subscriber, topic: str) -> list[dict]:
    return [letter for letter in letters.json() if letter["topic"] == topic and letter["reason"] != "late"]


@pytest.mark.parametrize("name", list(POISON))
def test_a_poison_message_is_dead_lettered_and_ingest_goes_on(broker, tmp_path, demo_config, name):
    topic, make, reason, carried = POISON[name]
    host, port = broker
    letters = Subscriber(host, port, DEADLETTER)
    pipeline = Pipeline(config_for(demo_config, port), tmp_path / "data")
    pipeline.start()
    pub = publisher(host, port)
    try:
        assert pipeline.ingest.wait_connected(10)
        payload = make()
        publish(pub, topic, payload)
        publish(pub, "liaowang/v1/readings/LC-LUXI/LC-LUXI-GD-03", reading(1.5))
        [letter] = wait_until(lambda: letters_for(letters, topic))
        assert letter["reason"] == reason, letter
        assert len(letter["detail"]) < 300
        assert letter["payload"] == payload[:1024].decode()
        assert wait_until(lambda: pipeline.readings.count() == 1 + carried)
        assert [r.value for r in pipeline.readings.recent("LC-LUXI-GD-03")] == [1.5]
        assert ingest_healthy(pipeline)
    finally:
        pub.disconnect()
        letters.close()
        pipeline.stop()


def test_a_deep_element_too_deep_to_re_serialise_is_dead_lettered_with_its_whole_message(broker, tmp_path, demo_config):
    host, port = broker
    letters = Subscriber(host, port, DEADLETTER)
    pipeline = Pipeline(config_for(demo_config, port), tmp_path / "data")
    pipeline.start()
    pub = publisher(host, port)
    try:
        assert pipeline.ingest.wait_connected(10)
        payload = b'{"readings": [' + deep(300) + b"]}"
        publish(pub, BATCH_TOPIC, payload)
        [letter] = wait_until(lambda: letters_for(letters, BATCH_TOPIC))
        assert letter["payload"] == payload.decode() and "whole message" in letter["detail"]
        assert ingest_healthy(pipeline)
    finally:
        pub.disconnect()
        letters.close()
        pipeline.stop()


def test_a_retained_poison_message_is_dead_lettered_once_and_ingest_goes_on(broker, tmp_path, demo_config):
    """A retained message reaches ingest on every subscription: it must not kill every start."""
    host, port = broker
    poison_topic = "liaowang/v1/readings/LC-XFHG"
    poison = b'{"site_id": "LC-XFHG", "readings": [' + deep(300) + b"]}"
    pub = publisher(host, port)
    publish(pub, poison_topic, poison, retain=True)
    letters = Subscriber(host, port, DEADLETTER)
    pipeline = Pipeline(config_for(demo_config, port), tmp_path / "data")
    pipeline.start()
    try:
        assert pipeline.ingest.wait_connected(10)
        [letter] = wait_until(lambda: letters_for(letters, poison_topic))
        assert letter["reason"] == "bad_shape" and letter["payload"] == poison.decode()
        publish(pub, "liaowang/v1/readings/LC-XFHG/LC-XFHG-GD-01", reading(2.5))
        assert wait_until(lambda: pipeline.readings.count() == 1)
        assert [r.value for r in pipeline.readings.recent("LC-XFHG-GD-01")] == [2.5]
        assert letters_for(letters, poison_topic) == [letter] and ingest_healthy(pipeline)
    finally:
        publish(pub, poison_topic, b"", retain=True)  # clear it
        pub.disconnect()
        letters.close()
        pipeline.stop()


def test_a_reading_with_a_deep_unnamed_field_is_stored(broker, tmp_path, demo_config):
    """Fields the contract does not name are ignored, however deep (below the parser's 1,024 levels)."""
    host, port = broker
    pipeline = Pipeline(config_for(demo_config, port), tmp_path / "data")
    pipeline.start()
    pub = publisher(host, port)
    try:
        assert pipeline.ingest.wait_connected(10)
        publish(pub, SENSOR_TOPIC, reading(3.5)[:-1] + b', "extra": ' + deep(1000) + b"}")
        assert wait_until(lambda: pipeline.readings.count() == 1)
        assert [r.value for r in pipeline.readings.recent("LC-LUXI-GD-01")] == [3.5]
        assert ingest_healthy(pipeline)
    finally:
        pub.disconnect()
        pipeline.stop()

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
from foundation.supervise import StageState

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
    """Every ingest stage alive (the receiver's too, when paho runs in a child process), and none ever raised
    (the supervisor would have restarted it)."""
    stages = {s.name: s for s in pipeline.supervisor.statuses().values() if s.name.startswith("ingest")}
    return pipeline.ingest.running() and sorted(stages) in (["ingest-decode", "ingest-store"],
                                                           ["ingest-decode", "ingest-receive", "ingest-store"]) \
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


def test_a_batch_of_hundreds_of_junk_elements_publishes_a_bounded_number_of_dead_letters(broker, tmp_path, demo_config):
    """300 bad elements in one message: the first 100 dead-lettered one by one, one letter counting the
    rest; the metric counts all 300 (a 256 KB batch would otherwise publish ~128,000 QoS 1 letters)."""
    host, port = broker
    pipeline = Pipeline(config_for(demo_config, port), tmp_path / "data")
    pipeline.start()
    letters = Subscriber(host, port, DEADLETTER)
    pub = publisher(host, port)
    try:
        assert pipeline.ingest.wait_connected(10)
        publish(pub, BATCH_TOPIC, b'{"readings": [' + b",".join([b"0"] * 300) + b"]}")
        got = wait_until(lambda: len(letters.json()) >= 101 and letters.json(), timeout=20)
        time.sleep(0.5)
        assert len(letters.json()) == 101
        assert "200 more elements" in got[-1]["detail"] and all(g["reason"] == "bad_shape" for g in got)
        counted = pipeline.registry.get_sample_value("liaowang_ingest_rejected_total", {"reason": "bad_shape"})
        assert counted == 300
    finally:
        letters.close(), pub.disconnect()
        pipeline.stop()


def test_a_topic_that_is_not_utf8_never_reaches_paho_s_loop_as_an_exception(tmp_path, demo_config):
    """paho re-raises a callback's exception out of its network loop (the thread dies, ingest goes deaf);
    a topic with invalid UTF-8 makes paho's ``msg.topic`` raise, so ingest must not touch it that way."""
    import paho.mqtt.client as mqtt

    pipeline = Pipeline(demo_config, tmp_path / "data")  # not started: the callback alone is under test
    try:
        message = mqtt.MQTTMessage(mid=7, topic=b"liaowang/v1/readings/LC-LUXI/\xff\xfe")
        message.payload, message.qos = b'{"value": 1}', 1
        pipeline.ingest._on_message(None, None, message)  # noqa: SLF001 - paho's callback, called as paho would
        [queued] = pipeline.ingest._queue.get_nowait()  # noqa: SLF001
        assert queued.mid == 7 and "\ufffd" in queued.topic
        decoded = pipeline.ingest._decode([queued])  # noqa: SLF001
        assert [r.reason for r in decoded.rejections] in (["unknown_sensor"], ["bad_topic"], ["sensor_mismatch"])
    finally:
        pipeline.stop()

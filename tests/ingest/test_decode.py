"""Decoding per CONTRACT §1: every bad input gets its reason; good readings survive next to bad ones."""

from __future__ import annotations

import sys

import orjson
import pytest

from ingest.decode import Decoder
from foundation.domain import Quality

NOW = 1_795_564_800.0
TOPIC = "liaowang/v1/readings/LC-LUXI/LC-LUXI-GD-01"


@pytest.fixture
def decoder(demo_config):
    return Decoder(demo_config.fleet, demo_config.settings.ingest, clock=lambda: NOW)


def one(**fields) -> bytes:
    body = {"sensor_id": "LC-LUXI-GD-01", "ts": NOW, "value": 3.5, "unit": "%LEL", **fields}
    return orjson.dumps({k: v for k, v in body.items() if v is not ...})


def test_a_good_reading_with_rfc3339_time_decodes(decoder):
    readings, rejections = decoder.decode(TOPIC, one(ts="2026-11-25T08:00:00.250+08:00", quality="uncertain"))
    assert rejections == []
    [r] = readings
    assert (r.sensor_id, r.site_id, r.value, r.quality) == ("LC-LUXI-GD-01", "LC-LUXI", 3.5, Quality.UNCERTAIN)
    assert r.ts == NOW + 0.25


def test_sensor_id_may_come_from_the_topic_alone(decoder):
    readings, _ = decoder.decode(TOPIC, b'{"ts": 1795564800, "value": 1}')
    assert readings[0].sensor_id == "LC-LUXI-GD-01"


@pytest.mark.parametrize("topic, payload, reason", [
    (TOPIC, b"not json", "not_json"),
    (TOPIC, b'{"sensor_id": "LC-LUXI-GD-01", "ts": 1795564800, "value": 1', "not_json"),
    (TOPIC, b"[1, 2]", "bad_shape"),
    (TOPIC, one(sensor_id=...), None),
    ("liaowang/v1/readings/LC-LUXI/NOPE", one(sensor_id="NOPE"), "unknown_sensor"),
    ("liaowang/v1/readings/LC-LUXI/LC-LUXI-GD-02", one(), "sensor_mismatch"),
    ("liaowang/v1/readings/LC-XFHG/LC-LUXI-GD-01", one(), "site_mismatch"),
    (TOPIC, one(value="12"), "bad_value"),
    (TOPIC, one(value=True), "bad_value"),
    (TOPIC, one(value=None), "bad_value"),
    (TOPIC, b'{"sensor_id": "LC-LUXI-GD-01", "ts": 1795564800, "value": NaN}', "not_json"),
    (TOPIC, b'{"sensor_id": "LC-LUXI-GD-01", "ts": 1795564800, "value": 1e999}', "not_json"),
    (TOPIC, one(ts="yesterday"), "bad_timestamp"),
    (TOPIC, one(ts="2026-11-25T08:00:00"), "bad_timestamp"),
    (TOPIC, one(ts=12), "bad_timestamp"),
    (TOPIC, one(ts=NOW + 3600), "future_timestamp"),
    (TOPIC, one(unit="ppm"), "unit_mismatch"),
    (TOPIC, one(quality="excellent"), "bad_quality"),
    ("liaowang/v1/readings", one(), "bad_topic"),
    ("liaowang/v1/readings/LC-LUXI/LC-LUXI-GD-01/extra", one(), "bad_topic"),
    (TOPIC, b"{" + b" " * 300_000 + b"}", "oversized"),
])
def test_each_bad_input_is_rejected_with_its_reason(decoder, topic, payload, reason):
    readings, rejections = decoder.decode(topic, payload)
    if reason is None:
        assert len(readings) == 1 and rejections == []
        return
    assert readings == []
    assert [r.reason for r in rejections] == [reason]
    assert rejections[0].topic == topic


def test_a_batch_keeps_its_good_elements_and_rejects_each_bad_one(decoder):
    batch = {"site_id": "LC-LUXI", "readings": [
        {"sensor_id": "LC-LUXI-GD-01", "ts": NOW, "value": 1.0},
        {"sensor_id": "LC-LUXI-GD-02", "ts": NOW, "value": "x"},
        {"sensor_id": "LC-XFHG-GD-01", "ts": NOW, "value": 1.0},
        "junk",
        {"sensor_id": "LC-LUXI-T101-TT", "ts": NOW, "value": 30.0, "unit": "℃"},
    ]}
    readings, rejections = decoder.decode("liaowang/v1/readings/LC-LUXI", orjson.dumps(batch))
    assert [r.sensor_id for r in readings] == ["LC-LUXI-GD-01", "LC-LUXI-T101-TT"]
    assert [r.reason for r in rejections] == ["bad_value", "site_mismatch", "bad_shape"]


def test_known_unit_conversions_are_applied(decoder):
    readings, _ = decoder.decode("liaowang/v1/readings/LC-LUXI/LC-LUXI-T101-PT",
                                 orjson.dumps({"ts": NOW, "value": 850, "unit": "kPa"}))
    assert readings[0].value == pytest.approx(0.85)


def test_a_batch_whose_site_differs_from_its_topic_is_rejected(decoder):
    batch = {"site_id": "LC-XFHG", "readings": [{"sensor_id": "LC-LUXI-GD-01", "ts": NOW, "value": 1.0}]}
    readings, rejections = decoder.decode("liaowang/v1/readings/LC-LUXI", orjson.dumps(batch))
    assert readings == [] and rejections[0].reason == "site_mismatch"


# ---------------------------------------------------------------- hostile input (issue 11)

BATCH_TOPIC = "liaowang/v1/readings/LC-LUXI"
GOOD = b'{"sensor_id": "LC-LUXI-GD-01", "ts": 1795564800, "value": 1}'


def nested(depth: int, inner: bytes = b"1") -> bytes:
    return b"[" * depth + inner + b"]" * depth


def field(name: str, raw: bytes) -> bytes:
    return b'{"sensor_id": "LC-LUXI-GD-01", "ts": 1795564800, "value": 1, "%s": %s}' % (name.encode(), raw)


@pytest.mark.parametrize("payload, reason", [
    (nested(3000), "too_deep"),
    (b'{"a":' * 3000 + b"1" + b"}" * 3000, "too_deep"),
    (field("value", nested(1000)), "bad_value"),        # str() of this list raises RecursionError
    (field("unit", nested(1000)), "unit_mismatch"),
    (field("quality", nested(1000)), "bad_quality"),
    (field("ts", nested(1000)), "bad_timestamp"),
    (field("sensor_id", nested(1000)), "bad_shape"),
    (field("value", nested(3000)), "too_deep"),
    (field("extra", nested(3000)), "too_deep"),
    (nested(1000), "bad_shape"),
], ids=["array-3000", "object-3000", "value-1000", "unit-1000", "quality-1000", "ts-1000", "sensor_id-1000",
        "value-3000", "unknown-field-3000", "array-1000"])
def test_deeply_nested_payloads_get_a_reason_instead_of_raising(decoder, payload, reason):
    readings, rejections = decoder.decode(TOPIC, payload)
    assert readings == [] and [r.reason for r in rejections] == [reason]
    assert len(rejections[0].detail) < 300


def test_an_unknown_field_nested_below_the_parser_limit_is_ignored(decoder):
    """msgspec raises RecursionError on it (fast path); the slow path takes the reading."""
    readings, rejections = decoder.decode(TOPIC, field("extra", nested(1000)))
    assert rejections == [] and [r.value for r in readings] == [1.0]


def test_a_deep_batch_element_is_dead_lettered_with_the_whole_message_and_its_neighbours_kept(decoder):
    """300 levels (600 bytes) is past what orjson can re-serialise for the element's own dead letter."""
    payload = b'{"site_id": "LC-LUXI", "readings": [' + GOOD + b", " + nested(300) + b", " + GOOD + b"]}"
    readings, rejections = decoder.decode(BATCH_TOPIC, payload)
    assert len(readings) == 2
    [rejection] = rejections
    assert rejection.reason == "bad_shape" and rejection.payload == payload
    assert "whole message" in rejection.detail


def test_a_shallow_bad_batch_element_is_still_dead_lettered_on_its_own(decoder):
    payload = b'{"readings": [' + GOOD + b", " + nested(3) + b"]}"
    _, [rejection] = decoder.decode(BATCH_TOPIC, payload)
    assert rejection.payload == b"[[[1]]]" and "whole message" not in rejection.detail


@pytest.mark.parametrize("value", [1e308, -1e308])
def test_a_unit_conversion_that_overflows_is_a_bad_value(decoder, value):
    readings, rejections = decoder.decode("liaowang/v1/readings/LC-DEHH/LC-DEHH-WS1-WS",
                                          orjson.dumps({"ts": NOW, "value": value, "unit": "m/s"}))
    assert readings == [] and [r.reason for r in rejections] == ["bad_value"]


def test_an_unexpected_exception_becomes_one_decode_failed_rejection(decoder, monkeypatch):
    def broken(*args):
        raise ZeroDivisionError("boom")
    monkeypatch.setattr(decoder, "_decode_fast", broken)
    readings, [rejection] = decoder.decode(TOPIC, one())
    assert readings == [] and rejection.reason == "decode_failed"
    assert "ZeroDivisionError" in rejection.detail and "boom" not in rejection.detail


def test_an_exception_on_one_batch_element_fails_that_element_only(decoder, monkeypatch):
    real = decoder._decode_one

    def flaky(out, site, sensor, item):
        if item.get("value") == 2:
            out.sensor.append(0)  # half a row, then a failure: the row must not survive
            raise RuntimeError
        return real(out, site, sensor, item)
    monkeypatch.setattr(decoder, "_decode_one", flaky)
    batch = {"readings": [{"sensor_id": "LC-LUXI-GD-01", "ts": NOW, "value": v, "unit": "ppm" if v == 3 else "%LEL"}
                          for v in (1, 2, 3)]}
    readings, rejections = decoder.decode(BATCH_TOPIC, orjson.dumps(batch))
    assert [r.value for r in readings] == [1.0]
    assert [r.reason for r in rejections] == ["decode_failed", "unit_mismatch"]


@pytest.mark.parametrize("topic", [
    "", "liaowang/v1/readings/", "liaowang/v1/readings//", "liaowang/v1/readings/a/b/c", "liaowang/v1/readings/a/b/",
    "liaowang/v1/readings/" + "/" * 100_000, "liaowang/v1/readings/#", "liaowang/v1/readings/LC-LUXI/+",
    "liaowang/v1/readings/LC-LUXI/LC-LUXI-GD-01\x00", "liaowang/v1/readings/LC-LUXI/\ud800",
    "liaowang/v1/readings/LC-LUXI/" + "x" * 70_000 + "/",
])
def test_odd_topics_are_bad_topics(decoder, topic):
    """Empty pieces, too many pieces, wildcards, U+0000 and lone surrogates: no MQTT topic name we serve."""
    readings, rejections = decoder.decode(topic, one())
    assert readings == [] and [r.reason for r in rejections] == ["bad_topic"]


@pytest.mark.parametrize("topic, reason", [
    ("liaowang/v1/readings/" + "x" * 70_000, "bad_shape"),  # a batch topic: the reading names no sensor
    ("liaowang/v1/readings/站点/传感器", "unknown_sensor"),
    ("liaowang/v1/readings/LC-LUXI/" + "x" * 70_000, "unknown_sensor"),
])
def test_long_and_unicode_topics_are_judged_like_any_other(decoder, topic, reason):
    readings, rejections = decoder.decode(topic, b'{"ts": 1795564800, "value": 1}')
    assert readings == [] and [r.reason for r in rejections] == [reason]
    assert len(rejections[0].detail) < 300


def test_long_topics_are_not_cached(decoder):
    for i in range(50):
        decoder.decode(f"liaowang/v1/readings/LC-LUXI/{i}{'x' * 60_000}", one())
    assert len(decoder._topics) == 0


@pytest.mark.parametrize("payload", [
    b'{"sensor_id": "LC-LUXI-GD-01", "ts": 1795564800, "value": 1, "note": "\xff"}',
    b'{"sensor_id": "LC-LUXI-GD-01", "ts": 1795564800, "value": 1, "\x80": 1}',
])
def test_invalid_utf8_anywhere_is_not_json_even_in_a_field_nobody_reads(decoder, payload):
    """msgspec (the fast path) skips unknown fields without checking them; the verdict must not depend on the path."""
    readings, rejections = decoder.decode(TOPIC, payload)
    assert readings == [] and [r.reason for r in rejections] == ["not_json"]


def test_fields_the_contract_does_not_name_are_ignored(decoder):
    single = b'{"ts": 1795564800, "value": 1, "gateway": {"seq": 7, "fw": [1, 2]}}'
    batch = b'{"gw": "A", "readings": [{"sensor_id": "LC-LUXI-GD-01", "ts": 1795564800, "value": 2, "seq": [1]}]}'
    assert [r.value for r in decoder.decode(TOPIC, single)[0]] == [1.0]
    assert [r.value for r in decoder.decode(BATCH_TOPIC, batch)[0]] == [2.0]


@pytest.mark.parametrize("extra, reason", [(b"1e400", "not_json"), (b"9" * 400, "not_json"), (b'"\xff"', "not_json"),
                                           (nested(1030), "too_deep")])
@pytest.mark.parametrize("unit", [b'"%LEL"', b'"ppm"'], ids=["fast path", "slow path"])
def test_an_unnamed_field_gets_the_same_verdict_on_either_path_and_any_recursion_limit(decoder, extra, reason, unit):
    """msgspec skips unnamed fields unchecked, and as deep as the recursion limit allows (hypothesis raises it)."""
    payload = b'{"ts": 1795564800, "value": 1, "unit": %s, "extra": %s}' % (unit, extra)
    limit = sys.getrecursionlimit()
    for raised in (limit, 20_000):
        sys.setrecursionlimit(raised)
        try:
            readings, rejections = decoder.decode(TOPIC, payload)
        finally:
            sys.setrecursionlimit(limit)
        assert readings == [] and [r.reason for r in rejections] == [reason]

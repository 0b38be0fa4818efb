"""Decoding per CONTRACT §1: every bad input gets its reason; good readings survive next to bad ones."""

from __future__ import annotations

import orjson
import pytest

from ingest.decode import Decoder
from liaowang.domain import Quality

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

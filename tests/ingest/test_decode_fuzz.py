"""Property tests of the decoder and its topic parser (issue 11: nothing stops silently).

For any bytes and any topic, `Decoder.decode_into` never raises and accounts for every message:
on a sensor topic one outcome (a reading or a rejection); for a well-formed batch object one
outcome per element; for anything else exactly one rejection. Generated payloads go where the
attacks went: nesting up to a few thousand levels around every field, around batch elements and
around the whole payload; numbers at and past a double's range; NaN and Infinity literals;
invalid UTF-8; duplicate keys; mixed batches; arbitrary bytes. A reference model checks that a
well-formed reading of a registered sensor comes out exactly as it went in.

Runs a modest number of examples by default; ``HYPOTHESIS_PROFILE=long`` runs many more.
"""

from __future__ import annotations

import math
import os
from datetime import datetime, timedelta, timezone

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest.decode import EARLIEST_TS, READINGS_PREFIX, REASONS, BatchBuilder, Decoder
from foundation.domain import Quality

NOW = 1_795_564_800.0  # the decoder's wall clock: 2026-11-25T00:00:00Z
SKEW = 300.0

settings.register_profile("long", max_examples=5_000, deadline=None)
_LONG = os.environ.get("HYPOTHESIS_PROFILE") == "long"
FUZZ = settings(settings.get_profile("long") if _LONG else settings(max_examples=120), deadline=None,
                database=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                                      HealthCheck.large_base_example, HealthCheck.filter_too_much])
MODEL = settings(FUZZ, max_examples=5_000 if _LONG else 80)


@pytest.fixture(scope="module")
def decoder(demo_config):
    assert demo_config.settings.ingest.future_skew_s == SKEW
    return Decoder(demo_config.fleet, demo_config.settings.ingest, clock=lambda: NOW)


# ---------------------------------------------------------------- payload text, built as bytes
# orjson.dumps cannot write past 254 levels, so hostile JSON is assembled as text.

SITE = "LC-LUXI"
SENSORS = ["LC-LUXI-GD-01", "LC-LUXI-GD-02", "LC-LUXI-T101-PT", "LC-LUXI-T101-TT", "LC-XFHG-GD-01", "NOPE", ""]
ODD_NUMBERS = [b"1e308", b"-1e308", b"1.7976931348623157e308", b"5e-324", b"-5e-324", b"-0.0", b"0", b"-0",
               b"1e-400", b"18446744073709551615", b"18446744073709551616", b"-9223372036854775809", b"1.0E+2"]
NOT_JSON_NUMBERS = [b"1e309", b"-1e400", b"1.8e308", b"01", b"1.", b".5", b"+1", b"NaN", b"-NaN", b"Infinity",
                    b"-Infinity", b"nan", b"inf", b"0x10"]
DEPTHS = st.one_of(st.integers(0, 4), st.sampled_from([253, 254, 255, 256, 300, 500, 998, 999, 1000, 1021, 1022, 1023,
                                                       1024, 1025, 2000, 3000]), st.integers(0, 1100))


def _text(value: str) -> bytes:
    return orjson.dumps(value)


def nest(inner: bytes, depth: int, kind: str) -> bytes:
    """``inner`` inside ``depth`` arrays or single-key objects."""
    if kind == "[":
        return b"[" * depth + inner + b"]" * depth
    return b'{"k":' * depth + inner + b"}" * depth


scalars = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False).map(orjson.dumps),  # 1e308, 5e-324, -0.0 among them
    st.integers(-2**64, 2**64).map(lambda i: str(i).encode()),
    st.integers(10**100, 10**400).map(lambda i: str(i).encode()),  # hundreds of digits
    st.sampled_from(ODD_NUMBERS),
    st.sampled_from(NOT_JSON_NUMBERS),
    st.sampled_from([b"true", b"false", b"null", b'""', b"[]", b"{}", b'"\\ud800"', b'"\\u0000"', b'"\\ud83d\\ude00"']),
    st.text(max_size=12).map(_text),
)
hostile = st.builds(nest, scalars, DEPTHS, st.sampled_from("[{"))
# Valid JSON that is never a reading, nested up to just inside the parser's limit within a batch.
poison = st.builds(nest, st.sampled_from([b"1", b"null", b'"x"', b"[]", b"{}", b"true"]), st.integers(0, 1020),
                   st.sampled_from("[{"))

PLAUSIBLE = {
    "sensor_id": st.sampled_from(SENSORS).map(_text),
    "ts": st.one_of(st.floats(NOW - 86_400, NOW + 2 * SKEW).map(orjson.dumps),
                    st.sampled_from([b"946684799", b"1795564800", b'"2026-11-25T08:00:00+08:00"', b'"2026-11-25T00:00:00Z"',
                                     b'"2026-11-25T08:00:00"', b'"yesterday"', b'"9999-12-31T23:59:59-14:00"',
                                     b'"0001-01-01T00:00:00+14:00"'])),
    "value": st.one_of(st.floats(allow_nan=False, allow_infinity=False).map(orjson.dumps),
                       st.integers(-2**63, 2**64 - 1).map(lambda i: str(i).encode()), st.sampled_from(ODD_NUMBERS)),
    "unit": st.sampled_from(["%LEL", "MPa", "kPa", "°C", "℃", "ppm"]).map(_text),
    "quality": st.sampled_from(["good", "uncertain", "bad", "excellent"]).map(_text),
}
KEYS = [*PLAUSIBLE, "site_id", "extra"]


@st.composite
def reading_objects(draw) -> bytes:
    """A reading object, mostly plausible: some fields hostile, missing, repeated or unnamed."""
    fields = [(key, draw(PLAUSIBLE[key])) for key in PLAUSIBLE if draw(st.integers(0, 9)) < (9 if key in
              ("sensor_id", "ts", "value") else 4)]
    for key in draw(st.lists(st.sampled_from(KEYS), max_size=3)):  # a key drawn twice is a duplicate
        fields.append((key, draw(st.one_of(hostile, PLAUSIBLE.get(key, hostile)))))
    fields = draw(st.permutations(fields))
    return b"{" + b",".join(_text(key) + b":" + raw for key, raw in fields) + b"}"


elements = st.one_of(reading_objects(), reading_objects(), hostile)


@st.composite
def batches(draw) -> bytes:
    members = [b'"readings":[' + b",".join(draw(st.lists(elements, max_size=6))) + b"]"]
    if draw(st.booleans()):
        members.append(b'"site_id":' + draw(st.one_of(st.sampled_from([SITE, "LC-XFHG"]).map(_text), hostile)))
    if draw(st.booleans()):
        members.append(b'"extra":' + draw(hostile))
    return b"{" + b",".join(draw(st.permutations(members))) + b"}"


@st.composite
def damaged(draw, payloads: st.SearchStrategy[bytes]) -> bytes:
    """A payload, maybe nested whole, maybe cut short, maybe with a byte that is not UTF-8."""
    payload = draw(payloads)
    how = draw(st.sampled_from(["as is", "as is", "as is", "nest", "cut", "bad utf-8"]))
    if how == "nest":
        payload = nest(payload, draw(DEPTHS), draw(st.sampled_from("[{")))
    elif how == "cut" and payload:
        payload = payload[:draw(st.integers(0, len(payload) - 1))]
    elif how == "bad utf-8":
        at = draw(st.integers(0, len(payload)))
        payload = payload[:at] + draw(st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\x00"])) + payload[at:]
    return payload


payloads = st.one_of(damaged(reading_objects()), damaged(batches()), damaged(hostile), st.binary(max_size=300))
topics = st.one_of(
    st.sampled_from([f"{READINGS_PREFIX}{SITE}/{sensor}" for sensor in SENSORS[:4]]),
    st.sampled_from([f"{READINGS_PREFIX}{SITE}", f"{READINGS_PREFIX}LC-XFHG", f"{READINGS_PREFIX}LC-XFHG/LC-XFHG-GD-01"]),
    st.text(max_size=40),
)


# ---------------------------------------------------------------- the accounting oracle

def expected_outcomes(decoder: Decoder, topic: str, payload: bytes) -> int | None:
    """How many outcomes (readings + rejections) the message must give; None: exactly one."""
    parts = decoder._topic_parts(topic)
    if parts is None or len(payload) > decoder._settings.max_payload_bytes:
        return None
    try:
        body = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return None
    if type(body) is not dict or "readings" not in body or type(body["readings"]) is not list:
        return None
    if body.get("site_id", parts[0]) != parts[0]:
        return None  # the whole batch is site_mismatch
    # A batch body is judged element by element on a sensor topic too (its sensor is not enforced).
    return len(body["readings"])


def check_accounting(decoder: Decoder, topic: str, payload: bytes) -> tuple[int, list]:
    out = BatchBuilder(decoder._fleet)
    rejections = decoder.decode_into(out, topic, payload)  # must not raise
    readings = len(out)
    assert len(out.sensor) == len(out.ts) == len(out.value) == len(out.quality)
    expected = expected_outcomes(decoder, topic, payload)
    if expected is None:
        assert (readings, len(rejections)) in ((1, 0), (0, 1)), (readings, [r.reason for r in rejections])
    else:
        assert readings + len(rejections) == expected, (readings, [r.reason for r in rejections])
    for rejection in rejections:
        assert rejection.reason in REASONS and rejection.reason != "decode_failed", rejection.detail
        assert rejection.topic == topic and type(rejection.payload) is bytes
        assert type(rejection.detail) is str and len(rejection.detail) < 400
        orjson.dumps({"reason": rejection.reason, "detail": rejection.detail})  # a dead letter can be written
    if readings:
        values = out.build()
        assert all(math.isfinite(v) for v in values.value)
        assert all(EARLIEST_TS <= t <= NOW + SKEW for t in values.ts)
    return readings, rejections


@FUZZ
@given(topic=topics, payload=payloads)
def test_any_message_is_accounted_for_and_never_raises(decoder, topic, payload):
    check_accounting(decoder, topic, payload)


@FUZZ
@given(payload=st.binary(max_size=2_000))
def test_arbitrary_bytes_on_a_sensor_topic_give_exactly_one_outcome(decoder, payload):
    check_accounting(decoder, f"{READINGS_PREFIX}LC-LUXI/LC-LUXI-GD-01", payload)


@FUZZ
@given(payload=damaged(batches()))
def test_a_batch_accounts_for_every_element(decoder, payload):
    check_accounting(decoder, f"{READINGS_PREFIX}LC-LUXI", payload)


@FUZZ
@given(topic=st.one_of(
    st.text(st.characters(exclude_categories=()), max_size=80),  # lone surrogates too
    st.lists(st.one_of(st.sampled_from(["", "+", "#", "\x00", "LC-LUXI", "LC-LUXI-GD-01", "站点", "a" * 300]),
                       st.text(max_size=6)), max_size=6).map(lambda ps: READINGS_PREFIX + "/".join(ps)),
    st.integers(0, 70_000).map(lambda n: READINGS_PREFIX + "/" * n),
))
def test_the_topic_parser_returns_the_topic_pieces_or_none(decoder, topic):
    parts = decoder._topic_parts(topic)
    if parts is not None:
        site, sensor = parts
        assert site and "/" not in site and (sensor is None or (sensor and "/" not in sensor))
        assert READINGS_PREFIX + site + ("" if sensor is None else "/" + sensor) == topic
        assert not any(c in topic for c in "+#\x00")
    readings, rejections = decoder.decode(topic, b'{"sensor_id": "LC-LUXI-GD-01", "ts": 1795564800, "value": 1}')
    assert len(readings) + len(rejections) == 1


# ---------------------------------------------------------------- the reference model


@st.composite
def readings_of(draw, fleet, site: str | None = None) -> tuple[dict, dict]:
    """(the JSON object sent, the reading expected) for a well-formed reading of a registered sensor."""
    sensors = [s for s in fleet.sensors.values() if site is None or s.site_id == site]
    sensor = draw(st.sampled_from(sensors))
    value = draw(st.one_of(st.floats(allow_nan=False, allow_infinity=False), st.integers(-2**63, 2**64 - 1)))
    if draw(st.booleans()):
        ts = draw(st.one_of(st.floats(EARLIEST_TS, NOW + SKEW), st.integers(int(EARLIEST_TS) + 1, int(NOW))))
        sent_ts, want_ts = ts, float(ts)
    else:  # RFC 3339 with an offset, to the microsecond
        micros = draw(st.integers(int(EARLIEST_TS) * 10**6, int(NOW + SKEW) * 10**6))
        offset = timezone(timedelta(minutes=draw(st.sampled_from([0, 480, -300, 330, 840, -720]))))
        moment = (datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(microseconds=micros)).astimezone(offset)
        sent_ts = moment.isoformat().replace("+00:00", draw(st.sampled_from(["+00:00", "Z"])))
        want_ts = micros / 10**6
    body: dict = {"ts": sent_ts, "value": value}
    quality = draw(st.sampled_from([None, "good", "uncertain", "bad"]))
    if quality is not None:
        body["quality"] = quality
    if draw(st.booleans()):
        body["unit"] = sensor.unit
    if draw(st.integers(0, 3)) == 0:  # a field the contract does not name: ignored
        body["gateway"] = {"seq": draw(st.integers(0, 10**6)), "fw": [1, 2]}
    body["sensor_id"] = sensor.id
    want = {"sensor_id": sensor.id, "site_id": sensor.site_id, "ts": want_ts, "value": float(value),
            "quality": Quality(quality or "good")}
    return body, want


def as_expected(reading) -> dict:
    return {"sensor_id": reading.sensor_id, "site_id": reading.site_id, "ts": reading.ts, "value": reading.value,
            "quality": reading.quality}


@MODEL
@given(data=st.data())
def test_a_well_formed_single_reading_comes_out_as_it_went_in(decoder, fleet, data):
    body, want = data.draw(readings_of(fleet))
    if data.draw(st.booleans()):
        del body["sensor_id"]  # the topic names the sensor
    readings, rejections = decoder.decode(f"{READINGS_PREFIX}{want['site_id']}/{want['sensor_id']}", orjson.dumps(body))
    assert rejections == []
    assert [as_expected(r) for r in readings] == [want]


@MODEL
@given(data=st.data())
def test_a_batch_keeps_its_good_readings_in_order_among_poison(decoder, fleet, data):
    site = data.draw(st.sampled_from(sorted({s.site_id for s in fleet.sensors.values()})))
    good = data.draw(st.lists(readings_of(fleet, site), max_size=8))
    bad = data.draw(st.lists(poison, max_size=4))
    texts = [orjson.dumps(body) for body, _ in good] + bad
    order = data.draw(st.permutations(range(len(texts))))
    members = [b'"readings":[' + b",".join(texts[i] for i in order) + b"]"]
    if data.draw(st.booleans()):
        members.append(b'"site_id":' + _text(site))
    readings, rejections = decoder.decode(f"{READINGS_PREFIX}{site}", b"{" + b",".join(members) + b"}")
    assert [as_expected(r) for r in readings] == [good[i][1] for i in order if i < len(good)]
    assert [r.reason for r in rejections] == ["bad_shape"] * len(bad)


# -- the columnar path for batches against the per-reading path (the reference) ---------------------

def _element(fleet_sensors, site_sensors):
    """One batch element: mostly good readings of the topic's site, sometimes one the columnar path must refuse."""
    good_ts = st.floats(NOW - 86_400, NOW + 100, allow_nan=False)
    return st.fixed_dictionaries(
        {"sensor_id": st.sampled_from(site_sensors) | st.sampled_from(fleet_sensors) | st.just("NO-SUCH-SENSOR"),
         "ts": good_ts | st.just(NOW + 10_000) | st.just(100.0)
         | good_ts.map(lambda t: datetime.fromtimestamp(t, timezone.utc).isoformat()),
         "value": st.floats(-1e6, 1e6, allow_nan=False) | st.integers(-1000, 1000)},
        optional={"quality": st.sampled_from(["good", "uncertain", "bad"]), "unit": st.sampled_from(["%LEL", "ppm", "m"])})


@MODEL
@given(data=st.data())
def test_a_batch_decoded_in_columns_says_exactly_what_the_reading_by_reading_path_says(decoder, fleet, data):
    """Batches of 8 or more readings take the columnar path; any verdict (readings, their order, rejections)
    equals the per-reading path's on the same bytes."""
    import ingest.decode as decode_module

    site = data.draw(st.sampled_from(sorted({s.site_id for s in fleet.sensors.values()})))
    site_sensors = sorted(s.id for s in fleet.sensors.values() if s.site_id == site)
    clean = st.fixed_dictionaries({"sensor_id": st.sampled_from(site_sensors),
                                   "ts": st.floats(NOW - 86_400, NOW + 100, allow_nan=False),
                                   "value": st.floats(-1e6, 1e6, allow_nan=False) | st.integers(-1000, 1000)},
                                  optional={"quality": st.sampled_from(["good", "uncertain", "bad"])})
    element = clean if data.draw(st.booleans()) else _element(sorted(fleet.sensors), site_sensors)
    items = data.draw(st.lists(element, min_size=8, max_size=40))
    payload = orjson.dumps({"site_id": site, "readings": items})
    topic = f"{READINGS_PREFIX}{site}"

    def run() -> tuple:
        out = BatchBuilder(fleet)
        rejections = decoder.decode_into(out, topic, payload)
        built = out.build()
        return (built.sensor.tolist(), built.ts.tolist(), built.value.tolist(), built.quality.tolist(),
                [(r.reason, r.payload) for r in rejections])

    columns = run()
    threshold = decode_module._COLUMNS_FROM
    decode_module._COLUMNS_FROM = 10**9  # the reference: every reading one by one
    try:
        assert run() == columns
    finally:
        decode_module._COLUMNS_FROM = threshold


def test_a_clean_batch_is_decoded_in_columns(decoder, fleet):
    """A well-formed batch of 8 or more readings goes through the columnar path (no per-reading rows)."""
    site = "LC-LUXI"
    sensors = sorted(s.id for s in fleet.sensors.values() if s.site_id == site)
    items = [{"sensor_id": sensors[i % len(sensors)], "ts": NOW - 100 + i, "value": i} for i in range(10)]
    out = BatchBuilder(fleet)
    assert decoder.decode_into(out, f"{READINGS_PREFIX}{site}", orjson.dumps({"readings": items})) == []
    assert len(out) == 10 and out.ts == []  # the rows came as columns, not appended one by one
    assert out.build().value.tolist() == [float(i) for i in range(10)]

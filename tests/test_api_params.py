"""Properties of the API's own parameter parsing (`liaowang.params`): whatever a client sends as a
time, the answer is a time the rest of the API can use, or a 422 naming the parameter — never a
500 (issue 11: ``since=1e400`` and friends).
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone

import pytest
from fastapi import HTTPException
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from liaowang.api import create_app
from foundation.domain import iso
from liaowang.params import EARLIEST, LATEST, body_time, parse_time_param
from liaowang.pipeline import Pipeline

# any offset Python can hold, not only the ones of real time zones: ±23:59:59.999999
# RFC 3339 offsets are whole minutes (time-numoffset = ("+" / "-") time-hour ":" time-minute)
offsets = st.integers(min_value=-24 * 60 + 1, max_value=24 * 60 - 1).map(lambda m: timezone(timedelta(minutes=m)))
moments = st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59), timezones=offsets)

numbers = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.floats(allow_nan=True, allow_infinity=True).map(str),
    st.integers(min_value=-(10**400), max_value=10**400).map(str),  # ints with up to 400 digits
    st.from_regex(r"\A[+-]?[0-9]{0,400}(\.[0-9]{0,20})?([eE][+-]?[0-9]{1,5})?\Z"),
    st.sampled_from(["nan", "NaN", "inf", "-inf", "Infinity", "1e400", "-1e400", "1e308", "99999999999999999999"]),
)
rfc3339 = st.one_of(
    moments.map(lambda m: m.isoformat()),
    moments.map(lambda m: m.isoformat().replace("+", " ")),  # an unescaped '+' arrives as a space
    st.builds(lambda m, sign, hh, mm: m.replace(tzinfo=None).isoformat() + f"{sign}{hh:02d}:{mm:02d}",
              moments, st.sampled_from("+- "), st.integers(0, 99), st.integers(0, 99)),  # odd offsets: +99:99
    st.builds(lambda m: m.replace(tzinfo=None).isoformat() + "Z", moments),
)
time_text = st.one_of(st.text(), numbers, rfc3339)


def outcome(call, name: str) -> float | None:
    """The call's value, or None for a 422 that names the parameter; anything else raised fails the property."""
    try:
        return call()
    except HTTPException as err:
        assert err.status_code == 422 and err.detail.startswith(f"{name}: "), (err.status_code, err.detail)
        return None


@settings(max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=time_text, name=st.sampled_from(["since", "until"]))
@example(text="0001-01-01T00:00:00+14:00", name="since")
@example(text="9999-12-31T23:59:59-14:00", name="until")
@example(text="9" * 400, name="since")
@example(text="\x00", name="since")
def test_a_time_parameter_is_a_usable_time_or_a_422(text, name):
    ts = outcome(lambda: parse_time_param(text, name), name)
    if ts is not None:
        assert math.isfinite(ts) and EARLIEST <= ts < LATEST
        assert iso(ts)  # what the API may do with it next: write it back in +08:00


@settings(max_examples=500, deadline=None)
@given(moment=moments)
def test_a_time_in_range_reads_back_to_the_same_instant(moment):
    """Both spellings of an in-range time, RFC 3339 and epoch seconds, give the instant they name."""
    try:
        expected = moment.timestamp()
    except OverflowError:  # before year 1 in UTC
        return
    if not EARLIEST <= expected < LATEST:
        assert outcome(lambda: parse_time_param(moment.isoformat(), "since"), "since") is None
        return
    assert parse_time_param(moment.isoformat(), "since") == expected
    assert parse_time_param(repr(expected), "since") == expected


@settings(max_examples=500, deadline=None)
@given(moment=st.one_of(moments, st.datetimes()), name=st.sampled_from(["until", "start", "end"]))
def test_a_body_time_is_a_usable_time_or_a_422(moment, name):
    """Bodies' datetimes (pydantic parses them) with any offset, or none."""
    ts = outcome(lambda: body_time(moment, name), name)
    if ts is not None:
        assert moment.tzinfo is not None and EARLIEST <= ts < LATEST and iso(ts)


def test_absent_is_none():
    assert parse_time_param(None, "since") is None


@pytest.fixture
def client(tmp_path, demo_config):
    pipeline = Pipeline(demo_config, tmp_path / "data")
    yield TestClient(create_app(pipeline), raise_server_exceptions=False)
    pipeline.alert_store.close()


@pytest.mark.parametrize("path, name", [
    ("/api/v1/alerts", "since"), ("/api/v1/sensors/LC-LUXI-GD-01/readings", "since"),
    ("/api/v1/sensors/LC-LUXI-GD-01/readings", "until"), ("/api/v1/audit", "since"), ("/api/v1/audit", "until"),
    ("/api/v1/kpis", "since"), ("/api/v1/history/alarms", "since"), ("/api/v1/history/alarms", "until"),
    ("/api/v1/history/alarms/export", "since"), ("/api/v1/statistics", "since"), ("/api/v1/statistics", "until")])
def test_no_time_parameter_value_gives_a_server_error(client, path, name):
    """The same property through HTTP, where the time goes on to SQLite, the KPI windows and iso()."""

    @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
    @given(text=st.one_of(numbers, rfc3339, st.text(max_size=40)))
    @example(text="99999999999999999999")
    def run(text):
        response = client.get(path, params={name: text}, headers={"Authorization": "Bearer demo-duty"})
        assert response.status_code in (200, 422), (text, response.status_code, response.text[:200])

    run()

"""The site view's live stream and the alarm detail's context (liaowang/api_live.py, issue 14 items 5 and 3).

The stream sends a site's readings (all at first, then only what changed, coalesced to one event a
second) and that site's alert events, to a token that may read the site; the context gives the
readings around an alarm's episode with its sensors' setpoints and the configured response measures.
"""

from __future__ import annotations

import time

import numpy as np
import orjson
import pytest
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st

from liaowang.api import create_app
from liaowang.api_live import CONTEXT_MAX_POINTS, LiveFrames, SensorNow, _reduce
from foundation.config import TokenEntry, hash_token
from foundation.domain import Reading
from foundation.guidancespec import GuidanceError, load_alarm_guidance
from liaowang.pipeline import Pipeline
from tests.conftest import CONFIG_DIR

SCOPED = "t-xfhg-viewer"


def bearer(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


def feed(pipeline: Pipeline, sensor_id: str, values: list[float], start: float) -> None:
    """Readings one second apart from ``start``, as ingest hands them on: stored, live, evaluated."""
    site = pipeline.fleet.sensors[sensor_id].site_id
    batch = pipeline.fleet.batch([Reading(sensor_id, site, start + i, v) for i, v in enumerate(values)])
    pipeline.readings.write(batch)
    pipeline.live.update(batch)
    pipeline.handle_batch(batch)
    pipeline.flush_rules(everything=True)


@pytest.fixture
def app(tmp_path, demo_config):
    entry = TokenEntry(name="xfhg-viewer", sha256=hash_token(SCOPED), role="viewer", sites=["LC-XFHG"])
    auth = demo_config.settings.auth.model_copy(update={"tokens": [*demo_config.settings.auth.tokens, entry]})
    config = demo_config.model_copy(update={"settings": demo_config.settings.model_copy(update={"auth": auth})})
    pipeline = Pipeline(config, tmp_path / "data")
    yield TestClient(create_app(pipeline)), pipeline
    pipeline.stop()


def events(lines, until) -> list[tuple[str, dict]]:
    """SSE events read from ``lines`` until ``until(received)`` holds."""
    received, event = [], None
    for line in lines:
        if line.startswith("event: "):
            event = line.removeprefix("event: ")
        elif line.startswith("data: "):
            received.append((event, orjson.loads(line.removeprefix("data: "))))
            if until(received):
                return received
    raise AssertionError(f"the stream ended after {received}")


def test_the_live_stream_sends_every_sensor_then_only_changes_and_the_sites_alerts(app):
    client, pipeline = app
    sensors = {s.id for s in pipeline.fleet.sensors.values() if s.site_id == "LC-XFHG"}
    now = time.time()
    feed(pipeline, "LC-XFHG-GD-01", [3.0], now - 5)
    with client.stream("GET", "/api/v1/sites/LC-XFHG/live", headers=bearer(SCOPED)) as response:
        assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
        lines = response.iter_lines()
        first = events(lines, lambda got: got[-1][0] == "readings")
        assert first[0] == ("hello", {"site_id": "LC-XFHG"})
        snapshot = {r["sensor_id"]: r for r in first[-1][1]["readings"]}
        assert set(snapshot) == sensors
        assert snapshot["LC-XFHG-GD-01"]["value"] == 3.0 and snapshot["LC-XFHG-GD-02"]["value"] is None

        feed(pipeline, "LC-LUXI-GD-01", [5, 25, 45], now - 3)   # another site: nothing of it arrives
        feed(pipeline, "LC-XFHG-GD-01", [5, 25, 45], now - 3)   # a leak here: readings and its alert
        got = events(lines, lambda got: any(e == "readings" for e, _ in got) and any(e == "alert" for e, _ in got))
        changed = [r for e, d in got if e == "readings" for r in d["readings"]]
        assert {r["sensor_id"] for r in changed} == {"LC-XFHG-GD-01"}   # only what changed
        assert changed[-1]["value"] == 45.0
        assert {d["site_id"] for _, d in got} == {"LC-XFHG"}
        pipeline.hub.close_all()  # shutdown ends the stream


def test_the_live_stream_is_scope_checked_before_it_opens(app):
    client, _ = app
    assert client.get("/api/v1/sites/LC-LUXI/live", headers=bearer(SCOPED)).status_code == 403
    assert client.get("/api/v1/sites/nope/live", headers=bearer(SCOPED)).status_code == 404
    assert client.get("/api/v1/sites/LC-XFHG/live", headers=bearer("bad")).status_code == 401


def test_an_alarms_context_holds_its_readings_setpoints_and_measures(app):
    client, pipeline = app
    now = time.time()
    feed(pipeline, "LC-LUXI-GD-01", [5, 25, 45, 45, 10, 5], now - 60)
    [alert] = [a for a in client.get("/api/v1/alerts").json() if a["subject"] == "LC-LUXI-GD-01"]
    context = client.get(f"/api/v1/alerts/{alert['id']}/context").json()
    [sensor] = context["sensors"]
    assert sensor["name"] == "可燃气体探测器01" and sensor["unit"] == "%LEL"
    assert [v for _, v in sensor["readings"]] == [5, 25, 45, 45, 10, 5]
    assert {(s["level"], s["set"]) for s in sensor["setpoints"]} == {("level1", 20.0), ("level2", 40.0)}
    assert context["site"]["name"] == "鲁西集团" and context["hazard_units"][0]["name"] == "液氨储罐区"
    assert "立即寻查释放点" in [m["zh"] for m in context["measures"]]  # GBZ/T 223 for a second-level gas alarm
    assert all(m["en"] and m["source"] for m in context["measures"])
    assert client.get(f"/api/v1/alerts/{alert['id']}/context", headers=bearer(SCOPED)).status_code == 403
    assert client.get("/api/v1/alerts/nope/context", headers=bearer(SCOPED)).status_code == 404
    assert client.get(f"/alerts/{alert['id']}").headers["content-type"].startswith("text/html")
    assert client.get("/alerts/nope").status_code == 404


def test_a_zone_alarms_context_charts_every_detector_of_the_zone(app):
    client, pipeline = app
    now = time.time()
    body = [Reading(s, "LC-LUXI", now - 3 + i, v) for s in ("LC-LUXI-GD-01", "LC-LUXI-GD-02")
            for i, v in enumerate([5, 45, 45])]
    batch = pipeline.fleet.batch(body)
    pipeline.readings.write(batch)
    pipeline.handle_batch(batch)
    pipeline.flush_rules(everything=True)
    [zone] = [a for a in client.get("/api/v1/alerts").json() if a["kind"] == "confirmation"]
    context = client.get(f"/api/v1/alerts/{zone['id']}/context").json()
    assert {s["id"] for s in context["sensors"]} >= {"LC-LUXI-GD-01", "LC-LUXI-GD-02"}
    assert context["subject_name"] is None  # a zone is not a sensor


def test_a_long_episode_is_reduced_keeping_its_peak(app):
    client, pipeline = app
    now = time.time()
    values = [5.0] * 3000 + [45.0] + [5.0] * 3000
    feed(pipeline, "LC-LUXI-GD-03", values, now - len(values) - 10)
    [alert] = [a for a in client.get("/api/v1/alerts").json() if a["subject"] == "LC-LUXI-GD-03"]
    [sensor] = client.get(f"/api/v1/alerts/{alert['id']}/context").json()["sensors"]
    assert len(sensor["readings"]) <= CONTEXT_MAX_POINTS and max(v for _, v in sensor["readings"]) == 45.0


snapshots = st.lists(st.lists(st.tuples(st.sampled_from("ABC"), st.integers(0, 3), st.booleans()), max_size=3),
                     max_size=12)


@settings(max_examples=200, deadline=None)
@given(snapshots)
def test_live_frames_sent_so_far_always_rebuild_the_latest_state(steps):
    """Reference model: a client applying every change it was sent holds exactly the latest state of each
    sensor, and a repeated state sends nothing."""
    frames, client_view, truth = LiveFrames(), {}, {}
    for step in steps:
        now = [SensorNow(s, float(ts), float(ts), "good", stale) for s, ts, stale in dict((s, (s, ts, stale))
                                                                                         for s, ts, stale in step).values()]
        for s in now:
            truth[s.sensor_id] = s
        for s in frames.changes(now):
            client_view[s.sensor_id] = s
        assert client_view == truth
        assert frames.changes(now) == []


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=400), st.integers(4, 50))
def test_reduction_keeps_the_extremes_and_the_order(values, max_points):
    ts, v = _reduce(np.arange(len(values), dtype=float), np.array(values), max_points)
    assert len(v) <= max_points
    assert v.max() == max(values) and v.min() == min(values)
    assert list(ts) == sorted(ts)


def test_the_shipped_guidance_loads_and_a_bad_key_is_named(tmp_path):
    book = load_alarm_guidance(CONFIG_DIR)
    for quantity in ("combustible_gas", "h2s", "nh3", "co", "cl2"):
        measures = book.measures_for(family="gas", quantity=quantity, level="level2", rule_id="x", kind="threshold")
        assert "立即寻查释放点" in [m.zh for m in measures], quantity
    assert load_alarm_guidance(tmp_path).guidance == ()  # no file, no guidance
    (tmp_path / "alarm_guidance.yaml").write_text("guidance:\n  - match: {levls: [HH]}\n    measures: []\n")
    with pytest.raises(GuidanceError, match=r"alarm_guidance.yaml: guidance.0.match.levls"):
        load_alarm_guidance(tmp_path)

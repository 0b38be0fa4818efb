"""A restart neither re-raises nor forgets an alert: rule state snapshots plus re-running stored readings.

Orange alerts latch (alerting.yaml defaults), so the episode ends in ``returned``, waiting for a
person. The pipeline here is the production one (SQLite stores, rule engine, alert manager) on a fake
clock; the "crash" abandons it without `stop()` (no final snapshot), as kill -9 would.
"""

from __future__ import annotations

from foundation.domain import Reading
from liaowang.pipeline import Pipeline
from liaowang.scenario import FakeClock

T0 = 1_795_564_800.0


def leak(t: float) -> float:
    return max(0.5, min(60.0, t - 20.0)) if t < 90 else max(0.5, 60 - (t - 90) * 2)


def feed(pipeline: Pipeline, clock: FakeClock, start: float, stop: float) -> None:
    """What the ingest worker does, one reading every 2 s, with the clock following event time."""
    t = start
    while t < stop:
        clock.now = T0 + t
        batch = pipeline.fleet.batch([Reading("LC-LUXI-GD-01", "LC-LUXI", T0 + t, leak(t))])
        pipeline.readings.write(batch)
        pipeline.handle_batch(batch)
        t += 2


def crash(pipeline: Pipeline) -> None:
    pipeline.alert_store.close()
    pipeline.snapshots.close()


def history(pipeline: Pipeline) -> list[tuple[str, str, float]]:
    [alert] = pipeline.alert_store.query()
    return [(h.event, h.tier.colour, round(h.at - T0, 3)) for h in alert.history]


def test_restart_after_a_crash_neither_re_raises_nor_forgets(tmp_path, demo_config):
    data = tmp_path / "data"
    clock = FakeClock(T0)
    first = Pipeline(demo_config, data, clock)
    feed(first, clock, 0, 50)          # level1 raised at +40
    first.snapshot()                   # the periodic snapshot, at +48
    feed(first, clock, 50, 70)         # level2 at +60 (after the snapshot): escalated, stored
    crash(first)

    second = Pipeline(demo_config, data, clock)  # restores the +48 snapshot and re-runs readings since
    assert len(second.alert_store.query()) == 1
    assert history(second) == [("raised", "yellow", 40.0), ("escalated", "orange", 60.0)]
    feed(second, clock, 70, 200)
    second.flush_rules(everything=True)
    assert len(second.alert_store.query()) == 1  # the same episode, never a second alert
    assert history(second) == [("raised", "yellow", 40.0), ("escalated", "orange", 60.0), ("returned", "orange", 122.0)]
    second.stop()


def test_clean_stop_snapshots_and_a_restart_continues_the_episode(tmp_path, demo_config):
    data = tmp_path / "data"
    clock = FakeClock(T0)
    first = Pipeline(demo_config, data, clock)
    feed(first, clock, 0, 100)
    first.stop()                       # snapshot on shutdown (held readings are re-run from the store)
    second = Pipeline(demo_config, data, clock)
    feed(second, clock, 100, 200)
    second.flush_rules(everything=True)
    assert history(second) == [("raised", "yellow", 40.0), ("escalated", "orange", 60.0), ("returned", "orange", 122.0)]
    second.stop()


def test_a_whole_episode_after_the_snapshot_is_not_raised_again(tmp_path, demo_config):
    data = tmp_path / "data"
    clock = FakeClock(T0)
    first = Pipeline(demo_config, data, clock)
    feed(first, clock, 0, 30)
    first.snapshot()                   # before the leak
    feed(first, clock, 30, 200)        # raised, escalated and resolved after the snapshot
    first.flush_rules(everything=True)
    crash(first)
    second = Pipeline(demo_config, data, clock)  # re-runs +30…+198: the rules see the whole episode again
    assert second.recovery["rerun_readings"] >= 80
    assert second.recovery["alert_changes"] == 0  # nothing announced twice
    assert len(second.alert_store.query()) == 1
    assert history(second) == [("raised", "yellow", 40.0), ("escalated", "orange", 60.0), ("returned", "orange", 122.0)]
    [latched] = second.alerts.open_alerts()  # orange latches: it waits for a person, as before the crash
    assert latched.latched and latched.state == "active"
    second.stop()

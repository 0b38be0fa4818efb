"""The contract every rule kind keeps (issue 4 §6), run over each kind of the demo rule book:

- replay equivalence: in order, shuffled within the lateness, and in one big batch → the same signals;
- snapshot round-trip: stopping halfway, restoring and re-running the stored readings → the same signals;
- NaN values and `bad` quality change nothing;
- duplicates change nothing; readings older than the lateness are counted late and change nothing.
"""

from __future__ import annotations

import math
import random

import pytest

from foundation.domain import Quality, Reading
from tests.rules.feeds import deliver, engine_for, key, restart, series, shuffled_within

DAY = 86_400.0


def gas_leak(fleet):
    leak = lambda t: max(0.5, min(60.0, t - 20.0)) if t < 90 else max(0.5, 60 - (t - 90) * 2)  # noqa: E731
    return series(fleet, "LC-LUXI-GD-01", 0, 160, 2, leak)


def two_detectors(fleet):
    return (series(fleet, "LC-LUXI-GD-01", 0, 200, 2, lambda t: max(0.5, min(30.0, t - 20.0)) if t < 120 else 0.5)
            + series(fleet, "LC-LUXI-GD-02", 0, 200, 2, lambda t: max(0.5, min(30.0, t - 30.0)) if t < 140 else 0.5))


def tank_ramp(fleet):
    rng = random.Random(4)
    return series(fleet, "LC-XFPVC-T101-TT", 0, 2400, 5,
                  lambda t: 25 + max(0.0, t - 600) / 60 - (max(0.0, t - 1800) / 30) + rng.gauss(0, 0.05))


def frozen(fleet):
    rng = random.Random(5)
    return series(fleet, "LC-QLQY-T101-TT", 0, 3600, 5,
                  lambda t: 24.37 if 900 <= t < 2400 else 24 + rng.gauss(0, 0.15))


def out_of_range(fleet):
    return series(fleet, "LC-XFPVC-T101-PT", 0, 120, 2, lambda t: 3.0 if 40 <= t < 80 else 0.4)


def over_range(fleet):
    """Above the span of a gas detector: a 超量程 alarm, not a fault (rules/fault.py)."""
    return series(fleet, "LC-LUXI-GD-02", 0, 120, 2, lambda t: 130.0 if 40 <= t < 80 else 1.0)


def long_bypass(fleet):
    """An interlock bypassed for 4.5 h (the held rule's hold is 4 h), then back in service."""
    return series(fleet, "LC-XFPVC-U1-ILB", 0, 5 * 3600, 10, lambda t: 1.0 if 60 <= t < 60 + 4.5 * 3600 else 0.0)


def weather(fleet, days: int, station: str = "LC-DEHH-WS1", rain_day: int | None = None):
    """Hourly weather readings, hot and dry (danger rises day by day)."""
    out = []
    for quantity, f in (("TA", lambda t: 28 + 6 * math.sin(2 * math.pi * ((t / 3600 + 8) % 24 - 9) / 24)),
                        ("RH", lambda t: 22 - 8 * math.sin(2 * math.pi * ((t / 3600 + 8) % 24 - 9) / 24)),
                        ("WS", lambda t: 25.0),
                        ("RN", lambda t: 12.0 if rain_day is not None and int(t // DAY) == rain_day else 0.0)):
        out += series(fleet, f"{station}-{quantity}", 0, days * DAY, 3600, f)
    return out


def ignition(fleet):
    fire_at = 2 * DAY + 6 * 3600  # day 3, 14:00 CST
    smoke = series(fleet, "LC-DEHH-WS1-SM", fire_at - 600, fire_at + 1200, 30,
                   lambda t: 0.3 if t < fire_at or t > fire_at + 900 else min(30.0, 0.3 + (t - fire_at) / 20))
    return weather(fleet, 3) + smoke


CASES = {
    "threshold": (("threshold.gas",), gas_leak),
    "rate_of_change": (("hazard.temperature.rate.major",), tank_ramp),
    "predictive": (("hazard.temperature.predict_hh",), tank_ramp),
    "stuck": (("hazard.stuck",), frozen),
    "out_of_range": (("sensor.out_of_range",), out_of_range),
    "over_range": (("sensor.out_of_range",), over_range),
    "held": (("hazard.interlock_bypass.long",), long_bypass),
    "confirmation": (("threshold.gas", "gas.confirmed_leak"), two_detectors),
    "fire_danger": (("forest.danger",), lambda fleet: weather(fleet, 4, rain_day=2)),
    "fire_detection": (("threshold.forest", "forest.danger", "forest.fire_detected"), ignition),
}


@pytest.fixture(params=sorted(CASES))
def case(request, demo_config):
    rule_ids, build = CASES[request.param]
    readings = sorted(build(demo_config.fleet), key=lambda r: r.ts)
    return request.param, rule_ids, readings


def reference(demo_config, rule_ids, readings):
    return [key(s) for s in deliver(engine_for(demo_config, *rule_ids), readings, demo_config.fleet)]


def test_each_feed_makes_its_rule_speak(demo_config, case):
    kind, rule_ids, readings = case
    signals = [s for s in deliver(engine_for(demo_config, *rule_ids), readings, demo_config.fleet) if s.kind == kind]
    assert any(s.tier is not None for s in signals), f"{kind}: the feed must raise the rule under test"
    assert signals[-1].tier is None or kind == "fire_danger", f"{kind}: the feed should also clear the condition"


def test_replay_equivalence_in_order_shuffled_and_one_batch(demo_config, case):
    _, rule_ids, readings = case
    fleet = demo_config.fleet
    in_order = reference(demo_config, rule_ids, readings)
    lateness = 15.0  # wider than the feeds' periods, so a sensor's own readings really swap places
    for seed in (1, 2):
        engine = engine_for(demo_config, *rule_ids, lateness_s=lateness, max_hold_s=2 * lateness)
        shuffled = deliver(engine, shuffled_within(readings, lateness, seed), fleet, batch=5)
        assert [key(s) for s in shuffled] == in_order
        assert engine.late_readings == 0  # every reading was placed, none dropped
    one_batch = engine_for(demo_config, *rule_ids).evaluate(fleet.batch(list(reversed(readings))))
    assert [key(s) for s in one_batch] == in_order


def test_snapshot_round_trip(demo_config, case, tmp_path):
    _, rule_ids, readings = case
    fleet = demo_config.fleet
    uninterrupted = reference(demo_config, rule_ids, readings)
    for fraction in (0.3, 0.6):
        split = int(len(readings) * fraction)
        first = engine_for(demo_config, *rule_ids)
        before = deliver(first, readings[:split], fleet)  # the final flush releases everything delivered
        second, recovered = restart(first, demo_config, tmp_path / f"rules-{fraction}.db", readings[:split], *rule_ids)
        after = deliver(second, readings[split:], fleet)
        assert recovered == []  # everything stored before the snapshot had been evaluated
        assert [key(s) for s in before + after] == uninterrupted


def test_snapshot_mid_hold_recovers_held_readings_from_the_store(demo_config, case, tmp_path):
    _, rule_ids, readings = case
    fleet = demo_config.fleet
    uninterrupted = reference(demo_config, rule_ids, readings)
    split = len(readings) // 2
    first = engine_for(demo_config, *rule_ids)
    before = []
    for i in range(0, split, 7):  # no final flush: readings inside the lateness are still held at the "crash"
        chunk = readings[i:min(i + 7, split)]
        before += first.submit(fleet.batch(chunk), max(r.ts for r in chunk)).signals
    second, recovered = restart(first, demo_config, tmp_path / "rules.db", readings[:split], *rule_ids)
    after = deliver(second, readings[split:], fleet)
    assert [key(s) for s in before + recovered + after] == uninterrupted


def test_snapshot_mid_hold_on_postgresql_per_partition(demo_config, case, pg_url):
    """The same recovery with the snapshot in PostgreSQL (`PartitionSnapshotStore`, fenced as a worker writes it)."""
    from alerting.db import AlertDB
    from rules.snapshot import PartitionSnapshotStore

    _, rule_ids, readings = case
    fleet = demo_config.fleet
    uninterrupted = reference(demo_config, rule_ids, readings)
    split = len(readings) // 2
    first = engine_for(demo_config, *rule_ids)
    before = []
    for i in range(0, split, 7):
        chunk = readings[i:min(i + 7, split)]
        before += first.submit(fleet.batch(chunk), max(r.ts for r in chunk)).signals
    db = AlertDB(pg_url)
    second, recovered = restart(first, demo_config, PartitionSnapshotStore(db.fence(5, 1), 5), readings[:split],
                                *rule_ids)
    db.close()
    after = deliver(second, readings[split:], fleet)
    assert [key(s) for s in before + recovered + after] == uninterrupted


def test_nan_and_bad_quality_change_nothing(demo_config, case):
    _, rule_ids, readings = case
    noisy = []
    for r in readings:
        noisy.append(r)
        noisy.append(Reading(r.sensor_id, r.site_id, r.ts + 0.25, 1e6, Quality.BAD))
        noisy.append(Reading(r.sensor_id, r.site_id, r.ts + 0.5, float("nan")))
    assert reference(demo_config, rule_ids, noisy) == reference(demo_config, rule_ids, readings)


def test_duplicates_change_nothing_and_too_late_readings_are_counted(demo_config, case):
    _, rule_ids, readings = case
    fleet = demo_config.fleet
    expected = reference(demo_config, rule_ids, readings)
    rng = random.Random(9)
    arrival = []
    for r in readings:
        arrival.append(r)
        if rng.random() < 0.2:
            arrival.append(r)  # a redelivery
    engine = engine_for(demo_config, *rule_ids)
    assert [key(s) for s in deliver(engine, arrival, fleet)] == expected
    assert engine.late_readings == 0 and engine.duplicate_readings > 0
    # replayed well beyond the lateness, old readings change nothing and are counted as late
    stale_copies = [Reading(r.sensor_id, r.site_id, r.ts - 0.5, -1e3) for r in readings[: len(readings) // 2]]
    engine = engine_for(demo_config, *rule_ids)
    assert [key(s) for s in deliver(engine, readings + stale_copies, fleet)] == expected
    assert engine.late_readings == len(stale_copies)


def test_a_long_silent_sensor_does_not_pull_recovery_back(demo_config):
    fleet = demo_config.fleet
    engine = engine_for(demo_config, "threshold.gas")
    old = series(fleet, "LC-LUXI-GD-02", 0, 10, 2, lambda t: 1.0)            # heard once, a day ago
    recent = series(fleet, "LC-LUXI-GD-01", 86_400, 86_500, 2, lambda t: 1.0)
    deliver(engine, old + recent, fleet)
    assert engine.resume_point() == max(r.ts for r in recent)

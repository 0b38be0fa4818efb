"""Scenario tests of the default rule packs: a feed on a fake clock, the exact alert sequence with times.

Times are seconds after T0 (2026-11-25 08:00 CST). Each expected sequence is worked out by hand
from config/rules.yaml and config/setpoints.yaml (the comments show the arithmetic), or, for the
window fits, by an independent numpy.polyfit oracle.
"""

from __future__ import annotations

import math
import random

import numpy as np

from foundation.domain import Reading
from tests.rules.feeds import T0, Alerts, deliver, engine_for, series
from tests.rules.test_contract_battery import DAY, weather


def run_pack(demo_config, tmp_path, readings, checks=()):
    """Every rule of the demo book over ``readings``; ``checks`` are (seconds, ) stale checks in between."""
    fleet = demo_config.fleet
    engine = engine_for(demo_config)
    alerts = Alerts(tmp_path / "alerts.db", fleet)
    readings = sorted(readings, key=lambda r: r.ts)
    marks = sorted(checks)
    for reading in readings:
        while marks and T0 + marks[0] < reading.ts:
            alerts.apply(engine.flush(T0 + marks[0], everything=True).signals + engine.check(T0 + marks.pop(0)))
        alerts.apply(engine.submit(fleet.batch([reading]), reading.ts).signals)
    alerts.apply(engine.flush(float("inf"), everything=True).signals)
    for mark in marks:
        alerts.apply(engine.check(T0 + mark))
    return alerts


def test_gas_leak_rises_through_both_levels_and_clears_after_the_off_delay(demo_config, tmp_path):
    fleet = demo_config.fleet

    def leak(t: float) -> float:  # 1 %LEL/s from +20 s, hold 60, then down 2 %LEL/s from +90 s
        return max(0.5, min(60.0, t - 20.0)) if t < 90 else max(0.5, 60 - (t - 90) * 2)

    feed = series(fleet, "LC-LUXI-GD-01", 0, 200, 2, leak) + series(fleet, "LC-LUXI-GD-02", 0, 200, 2, lambda t: 0.5)
    log = run_pack(demo_config, tmp_path, feed).log
    rule = "gas.combustible_gas.threshold"
    assert log == [
        ("raised", rule, "LC-LUXI-GD-01", "yellow", 40.0),      # 20 %LEL (level1) at +40 s
        ("escalated", rule, "LC-LUXI-GD-01", "orange", 60.0),   # 40 %LEL (level2) at +60 s
        # down through 36 (level2 reset) at +102 and 18 (level1 reset) at +112: the 10 s off-delay
        # restarts on the way down, so it clears once, 10 s after +112, without a de-escalation step
        ("resolved", rule, "LC-LUXI-GD-01", "orange", 122.0),
    ]  # and one detector alone at level2 confirms nothing


def test_two_neighbouring_detectors_confirm_a_leak(demo_config, tmp_path):
    fleet = demo_config.fleet
    feed = (series(fleet, "LC-LUXI-GD-01", 0, 200, 2, lambda t: max(0.5, min(30.0, t - 20.0)) if t < 120 else 0.5)
            + series(fleet, "LC-LUXI-GD-02", 0, 200, 2, lambda t: max(0.5, min(30.0, t - 30.0)) if t < 140 else 0.5))
    log = run_pack(demo_config, tmp_path, feed).log
    rule, zone = "gas.combustible_gas.threshold", "LC-LUXI-combustible-gas-Z1"
    assert log == [
        ("raised", rule, "LC-LUXI-GD-01", "yellow", 40.0),
        ("raised", rule, "LC-LUXI-GD-02", "yellow", 50.0),
        ("raised", "gas.confirmed_leak", zone, "orange", 50.0),  # two of the zone at level1: confirmed, high
        ("resolved", rule, "LC-LUXI-GD-01", "yellow", 130.0),   # back at +120, plus the 10 s off-delay
        ("resolved", "gas.confirmed_leak", zone, "orange", 130.0),
        ("resolved", rule, "LC-LUXI-GD-02", "yellow", 150.0),
    ]


def test_two_detectors_at_the_second_level_make_the_confirmed_leak_urgent(demo_config, tmp_path):
    """The zone is one alert climbing the ladder: level1 agreement high, level2 agreement urgent."""
    fleet = demo_config.fleet
    feed = (series(fleet, "LC-LUXI-GD-01", 0, 200, 2, lambda t: max(0.5, min(45.0, t - 20.0)) if t < 120 else 0.5)
            + series(fleet, "LC-LUXI-GD-02", 0, 200, 2, lambda t: max(0.5, min(45.0, t - 30.0)) if t < 140 else 0.5))
    log = run_pack(demo_config, tmp_path, feed).log
    rule, zone = "gas.combustible_gas.threshold", "LC-LUXI-combustible-gas-Z1"
    assert log == [
        ("raised", rule, "LC-LUXI-GD-01", "yellow", 40.0),       # 20 %LEL at +40
        ("raised", rule, "LC-LUXI-GD-02", "yellow", 50.0),
        ("raised", "gas.confirmed_leak", zone, "orange", 50.0),   # two at level1
        ("escalated", rule, "LC-LUXI-GD-01", "orange", 60.0),     # 40 %LEL at +60
        ("escalated", rule, "LC-LUXI-GD-02", "orange", 70.0),
        ("escalated", "gas.confirmed_leak", zone, "red", 70.0),   # two at level2: urgent
        ("resolved", rule, "LC-LUXI-GD-01", "orange", 130.0),     # GD-01 clean at +120, 10 s off-delay
        ("resolved", "gas.confirmed_leak", zone, "red", 130.0),   # one detector left: no agreement at any level
        ("resolved", rule, "LC-LUXI-GD-02", "orange", 150.0),
    ]


def oracle_window(times: np.ndarray, values: np.ndarray, t: float, width: float):
    """Slope, fitted value and slope standard error over (t - width, t] by numpy.polyfit."""
    inside = (times > t - width) & (times <= t)
    x, y = times[inside] - t, values[inside]
    if len(x) < 5 or x.max() - x.min() < 0.5 * width:
        return None
    slope, fitted = np.polyfit(x, y, 1)
    residual = y - (slope * x + fitted)
    sxx = ((x - x.mean()) ** 2).sum()
    return slope, fitted, math.sqrt((residual ** 2).sum() / (len(x) - 2) / sxx)


def test_tank_temperature_ramp_is_caught_by_rate_and_prediction_before_hh(demo_config, tmp_path):
    fleet = demo_config.fleet
    ramp = lambda t: 25 + max(0.0, t - 600) / 40  # noqa: E731 - 1.5 °C/min from +600 s (a cooling failure)
    feed = series(fleet, "LC-XFPVC-T101-TT", 0, 1800, 5, ramp)
    times = np.array([r.ts - T0 for r in feed])
    values = np.array([r.value for r in feed])
    rate_at = predict_at = None
    for t in times:
        fit = oracle_window(times, values, t, 120)
        if fit is None:
            continue
        slope, fitted, stderr = fit
        if rate_at is None and slope * 60 >= 0.5:      # hazard.temperature.rate.major: yellow at 0.5 °C/min
            rate_at = t
        if predict_at is None and slope > 0 and slope >= 4 * stderr and (50 - fitted) / slope <= 600:
            predict_at = t                              # predicted to reach HH 50 °C within 10 min
    assert rate_at is not None and predict_at is not None
    log = run_pack(demo_config, tmp_path, feed).log
    site_rules = [(e, r, tier, at) for e, r, s, tier, at in log]
    assert site_rules == [
        ("raised", "hazard.temperature.rate.major", "yellow", float(rate_at)),
        ("raised", "hazard.temperature.predict_hh", "yellow", float(predict_at)),
        ("raised", "hazard.temperature.threshold", "yellow", 1200.0),   # H 40 °C at +1200 s (grade 1: H → yellow)
        ("escalated", "hazard.temperature.threshold", "red", 1600.0),   # HH 50 °C at +1600 s (grade 1: HH → red)
    ]
    assert rate_at < predict_at < 1200  # both warn before even H is crossed


def test_prediction_stays_quiet_on_noise_around_a_flat_level_near_the_setpoint(demo_config, tmp_path):
    rng = random.Random(11)
    feed = series(demo_config.fleet, "LC-XFPVC-T101-TT", 0, 7200, 5, lambda t: 48 + rng.gauss(0, 0.3))
    log = run_pack(demo_config, tmp_path, feed).log
    assert [entry[1] for entry in log] == ["hazard.temperature.threshold"]  # H, standing; nothing predicted


def test_a_sensor_going_silent_keeps_its_alert_marked_as_source_lost(demo_config, tmp_path):
    fleet = demo_config.fleet
    feed = (series(fleet, "LC-LUXI-GD-01", 0, 20, 2, lambda t: 25.0)       # level1, then silence
            + series(fleet, "LC-LUXI-GD-01", 60, 90, 2, lambda t: 1.0))     # back, and normal
    alerts = run_pack(demo_config, tmp_path, feed, checks=[30])
    threshold = "gas.combustible_gas.threshold"
    assert [entry for entry in alerts.log if entry[2] == "LC-LUXI-GD-01"] == [
        ("raised", threshold, "LC-LUXI-GD-01", "yellow", 0.0),
        ("raised", "sensor.stale", "LC-LUXI-GD-01", "yellow", 30.0),       # 3 periods of 2 s passed since +18
        ("source_lost", threshold, "LC-LUXI-GD-01", "yellow", 30.0),       # the gas alert stays, marked
        ("resolved", "sensor.stale", "LC-LUXI-GD-01", "yellow", 60.0),
        ("source_restored", threshold, "LC-LUXI-GD-01", "yellow", 60.0),
        ("resolved", threshold, "LC-LUXI-GD-01", "yellow", 70.0),          # normal from +60, 10 s off-delay
    ]


def test_a_value_flapping_around_a_setpoint_gives_one_alert(demo_config, tmp_path):
    # 齐鲁漆业 is a grade-4 source: H (40, reset 38) must hold 10 s; H at a major hazard source is medium
    feed = series(demo_config.fleet, "LC-QLQY-T101-TT", 0, 640, 5,
                  lambda t: 30.0 if t >= 600 else (40.5 if int(t / 5) % 2 == 0 else 39.5))
    log = run_pack(demo_config, tmp_path, feed).log
    assert log == [
        ("raised", "hazard.temperature.threshold", "LC-QLQY-T101-TT", "yellow", 10.0),    # 40.5 at 0 held to +10
        ("resolved", "hazard.temperature.threshold", "LC-QLQY-T101-TT", "yellow", 610.0),  # 30 at +600, off-delay 10 s
    ]


def test_fire_ignition_under_high_danger_outranks_the_danger(demo_config, tmp_path):
    fleet = demo_config.fleet
    fire_at = 2 * DAY + 6 * 3600
    smoke = series(fleet, "LC-DEHH-WS1-SM", fire_at - 600, fire_at + 1200, 30,
                   lambda t: 0.3 if t < fire_at else min(30.0, 0.3 + (t - fire_at) / 20))
    flame = series(fleet, "LC-DEHH-WS1-FL", fire_at - 600, fire_at + 1200, 30,
                   lambda t: 0.9 if t >= fire_at + 600 else 0.0)
    log = run_pack(demo_config, tmp_path, weather(fleet, 3) + smoke + flame).log
    close = 12 * 3600  # 20:00 CST closes the LY/T 1172 day
    # smoke reaches 8 %obs/m (fire_suspected) when 0.3 + (t - fire_at)/20 >= 8: at fire_at + 154, read at +180
    assert log == [
        # day 1 (08:00-20:00 CST): max 34 °C → A 20; 14:00 RH 22 − 8·sin 75° = 14.3 % → B 20; 1st dry day → C 5;
        # 25 km/h = 6.9 m/s, Beaufort 4 → D 20; E 0: 65 → 三级, medium (and so the detection below is high)
        ("raised", "forest.danger", "LC-DEHH-WS1", "yellow", float(close)),
        ("raised", "forest.smoke.threshold", "LC-DEHH-WS1-SM", "orange", fire_at + 180),
        ("raised", "forest.fire_detected", "LC-DEHH-WS1", "orange", fire_at + 180),  # one signal: high, unconfirmed
        ("raised", "forest.flame.threshold", "LC-DEHH-WS1-FL", "orange", fire_at + 600.0),  # a flame alone: high
        ("escalated", "forest.fire_detected", "LC-DEHH-WS1", "red", fire_at + 600.0),  # smoke and flame agree: urgent
    ]


def test_late_readings_are_counted_not_evaluated(demo_config):
    fleet = demo_config.fleet
    engine = engine_for(demo_config, "threshold.gas")
    on_time = series(fleet, "LC-LUXI-GD-01", 0, 20, 2, lambda t: 1.0)
    deliver(engine, on_time, fleet)
    late = Reading("LC-LUXI-GD-01", "LC-LUXI", T0 + 5, 90.0)  # a level2 value, arriving long after +18
    result = engine.submit(fleet.batch([late]), T0 + 20)
    assert result.signals == [] and len(result.late) == 1 and engine.late_readings == 1

"""FireDangerRule: daily aggregates in event time feed LY/T 1172-95 (the default) or the FWI (``index: fwi``).

Times are seconds after T0 (2026-11-25 08:00 CST = 00:00 UTC); an LY/T 1172 day closes at 20:00 CST
(T0 + 12 h), an FWI day at noon (T0 + 4 h). Month 11: E is 0 in the demo pack ([U]).
"""

from __future__ import annotations

import pytest

from foundation.rulespec import RuleBook
from rules.engine import RuleEngine
from rules.fire import DangerWarning
from tests.rules.feeds import T0, deliver, engine_for, series
from tests.rules.test_contract_battery import DAY, weather

CLOSE = 12 * 3600.0
STATION = "LC-DEHH-WS1"


def _spec(demo_config, **update):
    spec = next(r for r in demo_config.rules.rules if r.id == "forest.danger")
    return spec.model_copy(update=update)


def _engine(demo_config, spec) -> RuleEngine:
    return RuleEngine(demo_config.fleet, RuleBook(rules=[spec]), demo_config.settings.rules, start=T0)


def _day(fleet, *, ta, rh, ws, rn=lambda t: 0.0, days=1, period=60.0):
    out = []
    for q, f in (("TA", ta), ("RH", rh), ("WS", ws), ("RN", rn)):
        out += series(fleet, f"{STATION}-{q}", 0, days * DAY, period, f)
    return out


def test_default_index_is_lyt1172_and_scores_one_hand_worked_day(demo_config):
    """One day, 08:00-20:00 CST, readings every minute:

    temperature 10 °C, 19 °C from 13:00 to 15:00 (+5 h … +7 h) → max 19 → A = 12 (15-20 row);
    RH 70 %, 40 % from 13:30 to 14:00 inclusive and 20 % from 16:00 → the 14:00 value 40 → B = 12
    (35-44 row; the minimum 20 would give 20: the 14:00 value wins);
    no rain → the 1st dry day → C = 5;
    wind 10 km/h, 40 km/h in the ten minutes (+2 h, +2 h 10 min] → 10-min mean 40 km/h = 11.1 m/s,
    Beaufort 6 → D = 30 (a single gust minute would not move the 10-min max: see the next test);
    E = 0. I = 12 + 12 + 5 + 30 = 59 → 三级 (51-72): medium, and a yellow warning proposal.
    """
    fleet = demo_config.fleet
    feed = _day(fleet, ta=lambda t: 19.0 if 5 * 3600 <= t <= 7 * 3600 else 10.0,
                rh=lambda t: 20.0 if t >= 8 * 3600 else 40.0 if 5.5 * 3600 <= t <= 6 * 3600 else 70.0,
                ws=lambda t: 40.0 if 2 * 3600 < t <= 2 * 3600 + 600 else 10.0)
    feed = [r for r in feed if r.ts - T0 <= CLOSE + 90]
    engine = engine_for(demo_config, "forest.danger")
    warnings: list[DangerWarning] = []
    engine.by_id["forest.danger"].propose_warning = warnings.append
    signals = deliver(engine, sorted(feed, key=lambda r: r.ts), fleet)
    assert [(s.value, s.level, s.tier.colour, s.ts) for s in signals] == [(59.0, "三级", "yellow", T0 + CLOSE)]
    assert "14 时相对湿度 40 %" in signals[0].message and "(6 级)" in signals[0].message
    assert [(w.zone, w.colour, w.level) for w in warnings] == [("LC-DEHH", "yellow", "三级")]


def test_min_rh_stands_in_without_a_14_oclock_value_and_a_gust_minute_is_averaged_away(demo_config):
    """No RH reading in the half hour to 14:00 (RH only 08:00-12:00, min 30 %) → B from the minimum: 16.

    Wind 10 km/h with one 60 km/h minute: the 10-min mean is (60 + 9·10)/10 = 15 km/h = 4.2 m/s,
    Beaufort 3 → D = 15. Max 26 °C → A = 20; 1st dry day C = 5. I = 20 + 16 + 5 + 15 = 56 → 三级.
    """
    fleet = demo_config.fleet
    feed = _day(fleet, ta=lambda t: 26.0, rh=lambda t: 30.0, ws=lambda t: 60.0 if t == 3 * 3600 else 10.0)
    feed = [r for r in feed if not (r.sensor_id.endswith("RH") and r.ts - T0 > 4 * 3600)]
    feed = [r for r in feed if r.ts - T0 <= CLOSE + 90]
    signals = deliver(engine_for(demo_config, "forest.danger"), sorted(feed, key=lambda r: r.ts), fleet)
    assert [s.value for s in signals] == [56.0]
    assert "最小相对湿度 30 %" in signals[0].message


def test_dry_days_count_up_and_rain_resets_them(demo_config):
    """Four days of the battery's hot dry weather, 12 mm/h of rain from T0+2 d to T0+3 d (08:00 to 08:00 CST).

    Every day scores A 20 (max 34 °C), B 20 (14:00 RH 14.3 %), D 20 (25 km/h, Beaufort 4), so I = 60 + C.
    Days close at 20:00 CST (T0 + 12 h + k·d): day 1 the 1st dry day, C 5 → 65; day 2 C 10 → 70;
    day 3 (T0+1d+12h, T0+2d+12h] holds 12 h of rain → C 0 → 60; day 4 (T0+2d+12h, T0+3d+12h] holds the
    other 12 h → C 0 → 60. All 三级: one class, so one warning proposal, on day 1.
    """
    fleet = demo_config.fleet
    engine = engine_for(demo_config, "forest.danger")
    warnings: list[DangerWarning] = []
    engine.by_id["forest.danger"].propose_warning = warnings.append
    signals = deliver(engine, sorted(weather(fleet, 4, rain_day=2), key=lambda r: r.ts), fleet)
    assert [s.value for s in signals] == [65.0, 70.0, 60.0, 60.0]
    assert len(warnings) == 1 and warnings[0].colour == "yellow"


def test_no_warning_and_no_alarm_at_levels_one_and_two(demo_config):
    """Cool and humid: max 8 °C → A 4; 14:00 RH 80 % → B 0; 1st dry day C 5; calm 3 km/h = 0.8 m/s,
    Beaufort 1 → D 5. I = 14 → 一级: nothing raised, nothing proposed."""
    fleet = demo_config.fleet
    feed = [r for r in _day(fleet, ta=lambda t: 8.0, rh=lambda t: 80.0, ws=lambda t: 3.0) if r.ts - T0 <= CLOSE + 90]
    engine = engine_for(demo_config, "forest.danger")
    warnings: list[DangerWarning] = []
    engine.by_id["forest.danger"].propose_warning = warnings.append
    assert deliver(engine, sorted(feed, key=lambda r: r.ts), fleet) == []
    rule = engine.by_id["forest.danger"]
    assert rule.value[rule.stations.index(STATION)] == 14.0 and warnings == []


def test_five_levels_map_to_medium_medium_high_and_warnings_yellow_orange_red(demo_config):
    """The pack: 三级/四级 medium, 五级 high, never urgent; warnings only for 三–五级."""
    spec = _spec(demo_config)
    assert [(c.name, c.min, c.tier.colour if c.tier else None) for c in spec.classes] == [
        ("一级", 0, None), ("二级", 26, None), ("三级", 51, "yellow"), ("四级", 73, "yellow"), ("五级", 91, "orange")]
    assert spec.warnings == {"三级": "yellow", "四级": "orange", "五级": "red"}


def test_a_failing_warning_callable_does_not_stop_the_danger_alarm(demo_config):
    fleet = demo_config.fleet
    engine = engine_for(demo_config, "forest.danger")

    def broken(_: DangerWarning) -> None:
        raise RuntimeError("desk down")

    engine.by_id["forest.danger"].propose_warning = broken
    signals = deliver(engine, sorted(weather(fleet, 1), key=lambda r: r.ts), fleet)
    assert [s.value for s in signals] == [65.0]


FWI_CLASSES = [
    {"name": "very_low", "min": 0, "source": "EFFIS (DOMAIN.md [C])"},
    {"name": "low", "min": 5.2, "source": "EFFIS (DOMAIN.md [C])"},
    {"name": "moderate", "min": 11.2, "source": "EFFIS (DOMAIN.md [C])"},
    {"name": "high", "min": 21.3, "tier": "blue", "source": "EFFIS (DOMAIN.md [C])"},
    {"name": "very_high", "min": 38, "tier": "yellow", "source": "EFFIS (DOMAIN.md [C])"},
    {"name": "extreme", "min": 50, "tier": "orange", "source": "EFFIS (DOMAIN.md [C])"},
]


def test_fwi_stays_selectable_and_follows_the_fwi_system_day_by_day(demo_config):
    from foundation.rulespec import FireDangerSpec
    from rules.fwi import FwiState, fwi_day

    fleet = demo_config.fleet
    data = _spec(demo_config).model_dump(exclude_none=True)
    data.update(index="fwi", classes=FWI_CLASSES, warnings={}, phenology={})
    engine = _engine(demo_config, FireDangerSpec.model_validate(data))
    readings = weather(fleet, 4, rain_day=2)
    signals = deliver(engine, sorted(readings, key=lambda r: r.ts), fleet)
    state, expected = FwiState(), []
    for day in range(4):
        noon = day * DAY + 4 * 3600
        last = {q: max((r for r in readings if r.sensor_id.endswith(q) and r.ts - T0 <= noon), key=lambda r: r.ts).value
                for q in ("TA", "RH", "WS")}
        rain = sum(r.value for r in readings if r.sensor_id.endswith("RN") and noon - DAY < r.ts - T0 <= noon)
        result = fwi_day(state, month=11, temp=last["TA"], rh=last["RH"], wind=last["WS"], rain=rain)
        state = result.state
        expected.append(round(result.fwi, 2))
    rule = engine.by_id["forest.danger"]
    assert round(float(rule.value[rule.stations.index(STATION)]), 2) == expected[-1]
    # days 1-2 are class high (an alarm, low); day 3 moderate clears it; day 4 (low class) has nothing to say
    assert [s.value for s in signals] == [expected[0], expected[1], expected[2]]
    assert [s.tier.colour if s.tier else None for s in signals] == ["blue", "blue", None]
    assert all(s.ts == T0 + 4 * 3600 + d * DAY for d, s in enumerate(signals))


def test_a_dry_week_climbs_three_four_five_with_yellow_orange_red_proposals(demo_config):
    """The battery's hot dry days, no rain: I = 60 + 5·n on the n-th dry day → 65, 70 (三级), 75, 80, 85, 90
    (四级), 95 (五级). Alarms: medium from day 1, high on day 7. Warnings: one per class entered —
    yellow on day 1, orange on day 3, red on day 7."""
    fleet = demo_config.fleet
    engine = engine_for(demo_config, "forest.danger")
    warnings: list[DangerWarning] = []
    engine.by_id["forest.danger"].propose_warning = warnings.append
    signals = deliver(engine, sorted(weather(fleet, 7), key=lambda r: r.ts), fleet)
    assert [s.value for s in signals] == [65.0, 70.0, 75.0, 80.0, 85.0, 90.0, 95.0]
    assert [s.tier.colour for s in signals] == ["yellow"] * 6 + ["orange"]
    assert [(w.colour, w.level, w.ts) for w in warnings] == [
        ("yellow", "三级", T0 + CLOSE), ("orange", "四级", T0 + CLOSE + 2 * DAY), ("red", "五级", T0 + CLOSE + 6 * DAY)]


@pytest.mark.parametrize(("update", "error"), [({"warnings": {"六级": "red"}}, "unknown classes"),
                                               ({"phenology": {13: 5}}, "months must be 1-12")])
def test_the_spec_refuses_unknown_warning_classes_and_months(demo_config, update, error):
    from foundation.rulespec import FireDangerSpec

    data = {**_spec(demo_config).model_dump(exclude_none=True), **update}
    with pytest.raises(ValueError, match=error):
        FireDangerSpec.model_validate(data)

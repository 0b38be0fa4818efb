"""The alarm statistics' arithmetic (alerting/statistics.py): worked examples, then properties against
naive reference implementations (numpy's percentile, a point-by-point flood count, plain counting)."""

from __future__ import annotations

from collections import Counter
from datetime import datetime

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alerting.statistics import alarm_kpis, day_of, flood_intervals, interval_union, percentile
from foundation.alertspec import AlertingSettings, Flood
from foundation.domain import CST, Tier
from tests.alerting.episodes import T0, episode, november

SETTINGS = AlertingSettings(flood=Flood(alerts=2, window_s=600))
"""A flood is more than 2 new alarms in 10 minutes at one desk (small, so examples stay short)."""


def at(day: int, hour: int, minute: int = 0) -> float:
    return datetime(2026, 11, day, hour, minute, tzinfo=CST).timestamp()


def test_percentiles_interpolate_between_ranks_like_excel():
    assert percentile([60, 120, 180, 600], 50) == 150
    assert percentile([60, 120, 180, 600], 90) == pytest.approx(474)  # rank 2.7: 70 % of the way from 180 to 600
    assert percentile([42], 90) == 42 and percentile([], 50) is None


def test_time_to_acknowledge_and_to_close_by_peak_priority():
    """An orange alarm that peaked red counts as urgent; never-acknowledged ones are not in the acknowledge figures."""
    alerts = [episode("LC-LUXI", "LC-LUXI-GD-01", at(3, 8), Tier.RED, ack_after=60, close_after=600, cause="false_alarm"),
              episode("LC-LUXI", "LC-LUXI-GD-02", at(3, 9), Tier.ORANGE, peak=Tier.RED, ack_after=180),
              episode("LC-LUXI", "LC-LUXI-GD-03", at(3, 10), Tier.RED),
              episode("LC-LUXI", "LC-LUXI-GD-01", at(3, 11), Tier.BLUE, close_after=7200)]
    kpis = alarm_kpis(alerts, [], SETTINGS, at(1, 0), at(30, 0), at(30, 0))
    assert kpis["time_to_ack"]["urgent"] == {"count": 2, "median_s": 120.0, "p90_s": pytest.approx(168)}
    assert kpis["time_to_ack"]["low"] == {"count": 0, "median_s": None, "p90_s": None}
    assert kpis["time_to_close"]["urgent"]["median_s"] == 600 and kpis["time_to_close"]["low"]["median_s"] == 7200
    assert kpis["by_priority"] == {"low": 1, "medium": 0, "high": 0, "urgent": 3}


def test_days_are_beijing_days():
    """23:59 and 00:01 Beijing time are two days, although both fall on the same UTC day."""
    alerts = [episode("LC-LUXI", "LC-LUXI-GD-01", at(3, 23, 59), Tier.RED),
              episode("LC-XFHG", "LC-XFHG-GD-01", at(4, 0, 1), Tier.BLUE, county="茌平区"),
              episode("LC-XFHG", "LC-XFHG-GD-02", at(4, 0, 2), Tier.BLUE, county="茌平区", family="hazard")]
    days = alarm_kpis(alerts, [], SETTINGS, at(1, 0), at(30, 0), at(30, 0))["per_day"]
    assert days == {"2026-11-03": {"county": {"东昌府区": 1}, "family": {"gas": 1}, "priority": {"urgent": 1}},
                    "2026-11-04": {"county": {"茌平区": 2}, "family": {"gas": 1, "hazard": 1}, "priority": {"low": 2}}}


def test_flood_share_counts_the_time_a_desk_holds_more_than_its_limit():
    """Three raises at 08:00, 08:01, 08:02 at one desk: over the limit of 2 from 08:02 until the first leaves at 08:10."""
    times = [at(5, 8, m) for m in (0, 1, 2)]
    alerts = [episode("LC-LUXI", f"LC-LUXI-GD-0{i + 1}", t) for i, t in enumerate(times)]
    kpis = alarm_kpis(alerts, [], SETTINGS, at(5, 8), at(5, 9), at(5, 9))
    assert kpis["desks"]["东昌府区"]["flood_s"] == 8 * 60 and kpis["flood_s"] == 8 * 60
    assert kpis["flood_share"] == 8 / 60 and kpis["floods"] == 1
    # another desk flooding 08:05–08:13 overlaps: the city is in flood from 08:02 to 08:13
    other = [episode("LC-XFHG", f"LC-XFHG-GD-0{i + 1}", at(5, 8, m), county="茌平区") for i, m in enumerate((3, 4, 5))]
    both = alarm_kpis(alerts + other, [], SETTINGS, at(5, 8), at(5, 9), at(5, 9))
    assert both["desks"]["茌平区"]["flood_s"] == 8 * 60 and both["flood_s"] == 11 * 60


def test_bad_actors_stale_alarms_chattering_and_causes():
    alerts = [episode("LC-LUXI", "LC-LUXI-GD-01", at(6, h)) for h in range(5)]
    alerts += [episode("LC-LUXI", "LC-LUXI-GD-02", at(6, h), chattering=True) for h in range(5, 8)]
    alerts += [episode("LC-LUXI", "LC-LUXI-GD-03", at(6, 9), close_after=60, cause="maintenance"),
               episode("LC-LUXI", "LC-LUXI-GD-04", at(6, 10), close_after=60)]
    stale = episode("LC-LUXI", "LC-LUXI-GD-05", at(1, 0), open_=True)
    fresh = episode("LC-LUXI", "LC-LUXI-GD-06", at(7, 0), open_=True)
    kpis = alarm_kpis(alerts, [stale, fresh], SETTINGS, at(6, 0), at(7, 12), at(7, 12), name_of=lambda s: "探测器" + s[-2:])
    assert [(t["subject"], t["alerts"], t["name"]) for t in kpis["top_sources"][:2]] == [
        ("LC-LUXI-GD-01", 5, "探测器01"), ("LC-LUXI-GD-02", 3, "探测器02")]
    assert kpis["chattering_alerts"] == 3 and kpis["chattering_sources"][0]["subject"] == "LC-LUXI-GD-02"
    assert kpis["stale_alert_ids"] == [stale.id] and kpis["stale"][0]["open_s"] == at(7, 12) - at(1, 0)
    assert kpis["closed_by_cause"]["maintenance"] == 1 and kpis["closed_by_cause"]["unspecified"] == 1
    assert kpis["closed_by_cause_zh"]["检修作业"] == 1


def test_the_november_month_in_numbers():
    """The fixture month the API and browser tests use: 60 episodes, 15 per priority, 18 closed."""
    kpis = alarm_kpis(november(), [], AlertingSettings(), at(1, 0), at(30, 23, 59), at(30, 23, 59))
    assert kpis["new_alerts"] == 60 and set(kpis["by_priority"].values()) == {15}
    assert kpis["by_county"] == {"东昌府区": 20, "东阿县": 20, "茌平区": 20}
    assert sum(kpis["closed_by_cause"].values()) == 18 and kpis["closed_by_cause"]["unspecified"] == 3
    assert sum(sum(d["priority"].values()) for d in kpis["per_day"].values()) == 60
    assert kpis["flood_s"] == 0 and kpis["floods"] == 0


# ---------------------------------------------------------------------------------------- properties

samples = st.lists(st.floats(min_value=0, max_value=1e6, allow_nan=False), min_size=1, max_size=40)


@given(samples, st.floats(min_value=0, max_value=100))
def test_percentile_agrees_with_numpy(values, q):
    assert np.isclose(percentile(values, q), np.percentile(values, q), rtol=1e-9, atol=1e-6)


def naive_flood_seconds(times: list[float], limit: int, window: float, start: float, end: float) -> float:
    """Cut [start, end] at every time the count can change and count the raises in each piece's middle by brute force."""
    cuts = sorted({start, end} | {t for t in times if start < t < end} | {t + window for t in times if start < t + window < end})
    total = 0.0
    for low, high in zip(cuts, cuts[1:]):
        middle = (low + high) / 2
        if sum(1 for r in times if r <= middle < r + window) > limit:
            total += high - low
    return total


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(0, 3600), max_size=30), st.integers(1, 4), st.integers(1, 900),
       st.integers(0, 1800), st.integers(0, 3600))
def test_flood_time_agrees_with_a_point_by_point_count(times, limit, window, start, length):
    stretches = flood_intervals(sorted(times), limit, window, start, start + length)
    assert all(a < b <= c < d for (a, b), (c, d) in zip(stretches, stretches[1:]))  # sorted, disjoint
    assert all(start <= a < b <= start + length for a, b in stretches)
    measured = sum(b - a for a, b in stretches)
    assert np.isclose(measured, naive_flood_seconds(times, limit, window, start, start + length))


@given(st.lists(st.tuples(st.integers(0, 100), st.integers(0, 50)), max_size=20))
def test_interval_union_covers_exactly_the_same_points(pieces):
    stretches = [(a, a + n) for a, n in pieces if n > 0]
    union = interval_union(stretches)
    for point in np.arange(0, 151, 0.5):
        assert any(a <= point < b for a, b in stretches) == any(a <= point < b for a, b in union)


episodes = st.lists(st.builds(
    lambda site, minute, tier, ack, close, family: episode(
        site, f"{site}-GD-01", T0 + minute * 60, Tier(tier), family=family,
        county={"LC-LUXI": "东昌府区", "LC-XFHG": "茌平区"}[site], ack_after=ack, close_after=close),
    st.sampled_from(["LC-LUXI", "LC-XFHG"]), st.integers(0, 60 * 24 * 10), st.integers(1, 4),
    st.none() | st.integers(0, 7200), st.none() | st.integers(0, 86400), st.sampled_from(["gas", "hazard"])),
    max_size=40)


@settings(max_examples=150, deadline=None)
@given(episodes, st.integers(0, 60 * 24 * 5), st.integers(0, 60 * 24 * 5))
def test_counts_and_durations_agree_with_plain_counting(alerts, offset, length):
    start = T0 + offset * 60
    end = start + length * 60
    kpis = alarm_kpis(alerts, [], AlertingSettings(), start, end, end)
    inside = [a for a in alerts if start <= a.raised_at <= end]
    assert kpis["new_alerts"] == len(inside)
    assert kpis["by_priority"] == {p: sum(1 for a in inside if a.peak_tier.priority == p)
                                   for p in ("low", "medium", "high", "urgent")}
    cells = Counter((day_of(a.raised_at), a.county, a.family, a.peak_tier.priority) for a in inside)
    for day, groups in kpis["per_day"].items():
        for county, n in groups["county"].items():
            assert n == sum(v for (d, c, _, _), v in cells.items() if d == day and c == county)
        assert sum(groups["family"].values()) == sum(groups["priority"].values()) == sum(groups["county"].values())
    for priority, figures in kpis["time_to_ack"].items():
        spans = [a.acknowledged_at - a.raised_at for a in inside
                 if a.acknowledged_at is not None and a.peak_tier.priority == priority]
        assert figures["count"] == len(spans)
        if spans:
            assert np.isclose(figures["median_s"], np.median(spans)) and np.isclose(figures["p90_s"], np.percentile(spans, 90))
    assert sum(kpis["closed_by_cause"].values()) == sum(1 for a in inside if a.closed_at is not None)
    assert sum(t["alerts"] for t in kpis["top_sources"]) == len(inside)  # two subjects at most: all in the top ten

"""LY/T 1172-95's points table and levels, worked by hand (DOMAIN.md "Forest fire", docs/domain.md)."""

from __future__ import annotations

import pytest

from rules.lyt1172 import beaufort, lyt1172_level, lyt1172_points


@pytest.mark.parametrize(("temp", "points"), [(-3, 0), (5.0, 0), (5.1, 4), (10, 4), (12, 8), (15.1, 12),
                                              (20, 12), (24.9, 16), (25, 16), (25.1, 20), (38, 20)])
def test_a_max_temperature_rows_take_the_lower_row_on_an_edge(temp, points):
    """A: ≤5 → 0, 5-10 → 4, 10-15 → 8, 15-20 → 12, 20-25 → 16, > 25 → 20 (B, C, D held at 0: RH 90, 0 days, calm)."""
    assert lyt1172_points(temp_max=temp, rh=90, dry_days=0, wind_kmh=0, phenology=0) == points


@pytest.mark.parametrize(("rh", "points"), [(100, 0), (65, 0), (64.5, 4), (55, 4), (54, 8), (45, 8), (44, 12),
                                            (35, 12), (34, 16), (25, 16), (24, 20), (3, 20)])
def test_b_relative_humidity_rows(rh, points):
    """B: ≥65 → 0, 55-64 → 4, 45-54 → 8, 35-44 → 12, 25-34 → 16, ≤24 → 20 (64.5 % reads as the 55-64 row)."""
    assert lyt1172_points(temp_max=0, rh=rh, dry_days=0, wind_kmh=0, phenology=0) == points


def test_c_dry_days_score_five_each_up_to_ten():
    """C: 0, 5, …, 50 for 0 … 10 days; 15 days still 50."""
    assert [lyt1172_points(temp_max=0, rh=90, dry_days=n, wind_kmh=0, phenology=0) for n in (0, 1, 4, 10, 15)] == [
        0, 5, 20, 50, 50]


def test_d_wind_force_from_km_h_by_beaufort():
    """Beaufort limits in m/s (0.3, 1.6, 3.4, 5.5, 8.0, 10.8, 13.9, 17.2): 19.8 km/h = 5.5 m/s is force 4,
    19.7 km/h = 5.47 m/s force 3; 62 km/h = 17.2 m/s force 8 → D 40; 100 km/h is capped at 8 (the table's last row)."""
    assert [beaufort(k) for k in (0, 1.0, 5.8, 19.7, 19.8, 61.9, 62.0, 100)] == [0, 0, 2, 3, 4, 7, 8, 8]
    assert [lyt1172_points(temp_max=0, rh=90, dry_days=0, wind_kmh=k, phenology=0) for k in (19.8, 62.0, 100)] == [
        20, 40, 40]


def test_a_fifth_level_day_worked_by_hand():
    """Liaocheng spring: max 27 °C → 20; RH 18 % → 20; 9th dry day → 45; 30 km/h = 8.3 m/s, Beaufort 5 → 25;
    E 5 (a hypothetical April correction) → 20 + 20 + 45 + 25 − 5 = 105 → 五级 (≥ 91)."""
    value = lyt1172_points(temp_max=27, rh=18, dry_days=9, wind_kmh=30, phenology=5)
    assert value == 105 and lyt1172_level(value) == 5


def test_level_edges():
    """≤25 一级, 26-50 二级, 51-72 三级, 73-90 四级, ≥91 五级."""
    assert [lyt1172_level(v) for v in (0, 25, 26, 50, 51, 72, 73, 90, 91, 140)] == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]

"""LY/T 1172-95 forest fire danger index: points for a day's weather, five levels 一级 … 五级.

The index is a sum of points (DOMAIN.md "Forest fire" [S], docs/domain.md)::

    I = A(daily max temperature) + B(14:00 RH, else the day's minimum RH)
        + C(consecutive dry days) + D(max wind force) − E(phenology, per month)

    A  max temp °C   ≤5  5–10  10–15  15–20  20–25  >25         → 0  4  8 12 16 20
    B  RH %          ≥65 55–64 45–54  35–44  25–34  ≤24         → 0  4  8 12 16 20
    C  dry days      0, 1, …, ≥10                               → 0, 5, …, 50
    D  wind force    Beaufort 0 … ≥8 (from the 10-min mean wind) → 0, 5, …, 40

    level  一级 ≤25 · 二级 26–50 · 三级 51–72 · 四级 73–90 · 五级 ≥91

Class edges: a value on an edge takes the lower class (temperature 10.0 °C scores 4, 10.1 °C
scores 8); relative humidity is read against whole-percent rows, so 64.5 % is in 55–64.

A worked day: max 18 °C (12) + RH 40 % at 14:00 (12) + the 4th dry day (20) + 10-min mean wind
20 km/h = 5.6 m/s, Beaufort 4 (20) − E 0 = 64 → 三级:

>>> lyt1172_points(temp_max=18, rh=40, dry_days=4, wind_kmh=20, phenology=0)
64.0
>>> lyt1172_level(64.0)
3
"""

from __future__ import annotations

import numpy as np

__all__ = ["beaufort", "lyt1172_level", "lyt1172_points", "LEVEL_NAMES"]

_TEMP_EDGES = np.array([5.0, 10.0, 15.0, 20.0, 25.0])        # upper edges, inclusive
_RH_ROWS = np.array([65.0, 55.0, 45.0, 35.0, 25.0])          # lower edges of 0, 4, 8, 12, 16 points
# Beaufort lower limits in m/s for force 1 … 8 (WMO; force 8 is 17.2–20.7 m/s)
_BEAUFORT_MS = np.array([0.3, 1.6, 3.4, 5.5, 8.0, 10.8, 13.9, 17.2])
_LEVEL_MIN = np.array([26.0, 51.0, 73.0, 91.0])             # 二级 … 五级

LEVEL_NAMES = {1: "一级 低", 2: "二级 较低", 3: "三级 较高", 4: "四级 高", 5: "五级 极高"}


def beaufort(wind_kmh: float) -> int:
    """Beaufort force of a 10-min mean wind in km/h, capped at 8 (LY/T 1172's last wind row).

    >>> beaufort(20.0), beaufort(0.5), beaufort(80.0)
    (4, 0, 8)
    """
    return int(np.searchsorted(_BEAUFORT_MS, wind_kmh / 3.6, side="right"))


def lyt1172_points(*, temp_max: float, rh: float, dry_days: int, wind_kmh: float, phenology: float) -> float:
    """A + B + C + D − E for one day (see the module docstring for the table)."""
    a = 4.0 * int(np.searchsorted(_TEMP_EDGES, temp_max, side="left"))
    b = 4.0 * int(np.count_nonzero(np.floor(rh) < _RH_ROWS))
    c = 5.0 * min(max(int(dry_days), 0), 10)
    d = 5.0 * min(beaufort(wind_kmh), 8)
    return a + b + c + d - float(phenology)


def lyt1172_level(points: float) -> int:
    """The danger level 1 … 5 of an index value (一级 ≤ 25 … 五级 ≥ 91).

    >>> [lyt1172_level(v) for v in (25, 26, 50, 51, 72, 73, 90, 91)]
    [1, 2, 2, 3, 3, 4, 4, 5]
    """
    return 1 + int(np.searchsorted(_LEVEL_MIN, points, side="right"))

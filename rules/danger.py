"""Daily fire-danger indices for `rules.fire.FireDangerRule`: one station's day in, the value and carried codes out.

A `DangerDay` holds the daily aggregates the rule accumulates in event time; a `DangerIndex` turns
one day and yesterday's codes into the day's value and today's codes. `DANGER_INDICES` maps a spec's
``index`` to a factory: ``lyt1172`` (LY/T 1172-95, the default, rules/lyt1172.py) and ``fwi``
(the Canadian FWI, rules/fwi.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date as Date
from typing import Callable, Protocol

from foundation.rulespec import FireDangerSpec
from rules.fwi import FwiState, fwi_day
from rules.lyt1172 import beaufort, lyt1172_points

__all__ = ["DANGER_INDICES", "DangerDay", "DangerIndex", "FwiIndex", "Lyt1172Index"]

_NAN = float("nan")


@dataclass(frozen=True, slots=True)
class DangerDay:
    """One station's danger day, accumulated in event time; NaN where the day had no reading.

    ``temp``/``rh``/``wind`` are the last readings at or before the close (FWI's noon values);
    ``rh_14`` the 14:00 RH; ``wind_10min_max`` the largest 10-minute mean wind (km/h); ``rain`` mm.
    """

    date: Date
    temp: float = _NAN
    rh: float = _NAN
    wind: float = _NAN
    rain: float = 0.0
    temp_max: float = _NAN
    temp_min: float = _NAN
    rh_min: float = _NAN
    rh_14: float = _NAN
    wind_10min_max: float = _NAN

    @property
    def month(self) -> int:
        return self.date.month


class DangerIndex(Protocol):
    """A daily fire-danger index: carried codes and one `DangerDay` in, the value and new codes out."""

    close_hour: int   # CST hour that closes the day
    unit: str

    def start(self) -> tuple[float, ...]:
        """The codes before the first day."""
        ...

    def missing(self, day: DangerDay) -> list[str]:
        """Inputs the day lacks (empty: the index can be computed)."""
        ...

    def day(self, codes: tuple[float, ...], day: DangerDay) -> tuple[float, tuple[float, ...]]:
        """Return (index value, codes to carry to tomorrow)."""
        ...

    def describe(self, day: DangerDay, codes: tuple[float, ...]) -> str:
        """The inputs, for the alarm message (``codes``: after the day)."""
        ...


def _lacking(**values: float) -> list[str]:
    return [name for name, v in values.items() if math.isnan(v)]


class FwiIndex:
    """The Canadian Fire Weather Index; codes are (FFMC, DMC, DC); noon temperature, RH, wind, 24 h rain."""

    close_hour = 12
    unit = "FWI"

    def __init__(self, spec: FireDangerSpec) -> None:
        self._start = (spec.start_ffmc, spec.start_dmc, spec.start_dc)

    def start(self) -> tuple[float, ...]:
        return self._start

    def missing(self, day: DangerDay) -> list[str]:
        return _lacking(temperature=day.temp, relative_humidity=day.rh, wind_speed=day.wind)

    def day(self, codes: tuple[float, ...], day: DangerDay) -> tuple[float, tuple[float, ...]]:
        """One FWI day (see `rules.fwi.fwi_day`)."""
        result = fwi_day(FwiState(*codes), month=day.month, temp=day.temp, rh=day.rh, wind=day.wind, rain=day.rain)
        return result.fwi, (result.ffmc, result.dmc, result.dc)

    def describe(self, day: DangerDay, codes: tuple[float, ...]) -> str:
        return (f"正午气温 {day.temp:g} °C, 相对湿度 {day.rh:g} %, 风速 {day.wind:g} km/h, "
                f"24 小时降水 {day.rain:g} mm")


class Lyt1172Index:
    """LY/T 1172-95: A(max temp) + B(14:00 RH, else min RH) + C(dry days) + D(max wind force) − E(month).

    Codes are (consecutive dry days,): a day with rain below ``dry_day_rain_mm`` adds one, a wet day
    resets it to 0, and C scores today's count.
    """

    close_hour = 20
    unit = "分"

    def __init__(self, spec: FireDangerSpec) -> None:
        self.dry_below = spec.dry_day_rain_mm
        self.phenology = dict(spec.phenology)

    def start(self) -> tuple[float, ...]:
        return (0.0,)

    def missing(self, day: DangerDay) -> list[str]:
        rh = day.rh_14 if not math.isnan(day.rh_14) else day.rh_min
        return _lacking(temperature=day.temp_max, relative_humidity=rh, wind_speed=day.wind_10min_max)

    def day(self, codes: tuple[float, ...], day: DangerDay) -> tuple[float, tuple[float, ...]]:
        dry = codes[0] + 1.0 if day.rain < self.dry_below else 0.0
        rh = day.rh_14 if not math.isnan(day.rh_14) else day.rh_min
        value = lyt1172_points(temp_max=day.temp_max, rh=rh, dry_days=int(dry), wind_kmh=day.wind_10min_max,
                               phenology=self.phenology.get(day.month, 0.0))
        return value, (dry,)

    def describe(self, day: DangerDay, codes: tuple[float, ...]) -> str:
        rh = (f"14 时相对湿度 {day.rh_14:g} %" if not math.isnan(day.rh_14)
              else f"最小相对湿度 {day.rh_min:g} % (无 14 时值)")
        return (f"最高气温 {day.temp_max:g} °C, {rh}, 连续无降水 {int(codes[0])} 天, "
                f"最大 10 分钟平均风速 {day.wind_10min_max:g} km/h ({beaufort(day.wind_10min_max)} 级), "
                f"24 小时降水 {day.rain:g} mm")


DANGER_INDICES: dict[str, Callable[[FireDangerSpec], DangerIndex]] = {"lyt1172": Lyt1172Index, "fwi": FwiIndex}

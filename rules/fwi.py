"""The Canadian Forest Fire Weather Index (FWI) System, one day at a time.

Equations of Van Wagner & Pickett (1985), "Equations and FORTRAN program for the Canadian Forest
Fire Weather Index System", Forestry Technical Report 33. Inputs are noon weather: temperature
(°C), relative humidity (%), 10 m wind (km/h) and rain over the last 24 h (mm); the three
moisture codes carry over from one day to the next. Day-length factors are the standard ones
(about 46°N); they are parameters, so a station can use latitude-adjusted tables.

Pure functions on floats: the rule that uses them (daily per forest station) keeps the state.

>>> day = fwi_day(FwiState(), month=4, temp=17, rh=42, wind=25, rain=0)
>>> round(day.ffmc, 1), round(day.dmc, 1), round(day.dc, 1), round(day.fwi, 1)
(87.7, 8.5, 19.0, 10.1)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

DMC_DAY_LENGTH = (6.5, 7.5, 9.0, 12.8, 13.9, 13.9, 12.4, 10.9, 9.4, 8.0, 7.0, 6.0)
"""Effective day length for the DMC, January to December (about 46°N)."""
DC_DAY_LENGTH = (-1.6, -1.6, -1.6, 0.9, 3.8, 5.8, 6.4, 5.0, 2.4, 0.4, -1.6, -1.6)
"""Day-length adjustment for the DC, January to December (about 46°N)."""


@dataclass(frozen=True, slots=True)
class FwiState:
    """The moisture codes carried from day to day; the defaults are the standard start-up values."""

    ffmc: float = 85.0
    dmc: float = 6.0
    dc: float = 15.0


@dataclass(frozen=True, slots=True)
class FwiDay:
    """One day's codes and indices."""

    ffmc: float
    dmc: float
    dc: float
    isi: float
    bui: float
    fwi: float
    dsr: float

    @property
    def state(self) -> FwiState:
        """The codes to start the next day from."""
        return FwiState(self.ffmc, self.dmc, self.dc)


FFMC_SCALE_1985 = 147.2
"""The moisture-to-FFMC constant of the 1985 FORTRAN program (its published table uses it)."""
FFMC_SCALE_EXACT = 250.0 * 59.5 / 101.0
"""147.27723…: the exact constant, as in Natural Resources Canada's later code (R package cffdrs)."""


def ffmc(previous: float, temp: float, rh: float, wind: float, rain: float, scale: float = FFMC_SCALE_1985) -> float:
    """Fine Fuel Moisture Code."""
    mo = scale * (101.0 - previous) / (59.5 + previous)
    if rain > 0.5:
        rf = rain - 0.5
        wetting = 42.5 * rf * math.exp(-100.0 / (251.0 - mo)) * (1.0 - math.exp(-6.93 / rf))
        if mo > 150.0:
            wetting += 0.0015 * (mo - 150.0) ** 2 * math.sqrt(rf)
        mo = min(mo + wetting, 250.0)
    ed = 0.942 * rh ** 0.679 + 11.0 * math.exp((rh - 100.0) / 10.0) + 0.18 * (21.1 - temp) * (1.0 - math.exp(-0.115 * rh))
    if mo > ed:  # drying
        ko = 0.424 * (1.0 - (rh / 100.0) ** 1.7) + 0.0694 * math.sqrt(wind) * (1.0 - (rh / 100.0) ** 8)
        kd = ko * 0.581 * math.exp(0.0365 * temp)
        m = ed + (mo - ed) * 10.0 ** (-kd)
    else:
        ew = 0.618 * rh ** 0.753 + 10.0 * math.exp((rh - 100.0) / 10.0) + 0.18 * (21.1 - temp) * (1.0 - math.exp(-0.115 * rh))
        if mo < ew:  # wetting by humidity
            k1 = (0.424 * (1.0 - ((100.0 - rh) / 100.0) ** 1.7)
                  + 0.0694 * math.sqrt(wind) * (1.0 - ((100.0 - rh) / 100.0) ** 8))
            kw = k1 * 0.581 * math.exp(0.0365 * temp)
            m = ew - (ew - mo) * 10.0 ** (-kw)
        else:
            m = mo
    return min(max(59.5 * (250.0 - m) / (scale + m), 0.0), 101.0)


def dmc(previous: float, temp: float, rh: float, rain: float, month: int,
        day_length: tuple[float, ...] = DMC_DAY_LENGTH) -> float:
    """Duff Moisture Code."""
    temp = max(temp, -1.1)
    k = 1.894 * (temp + 1.1) * (100.0 - rh) * day_length[month - 1] * 1e-6
    if rain > 1.5:
        rw = 0.92 * rain - 1.27
        # The 1985 program's form (as the original FORTRAN, cffdrs and xclim compute it), not the later
        # GFWED one, 20 + exp(5.6348 - P/43.43), which drifts by up to 0.17 in DMC over a season.
        wmi = 20.0 + 280.0 / math.exp(0.023 * previous)
        if previous <= 33.0:
            b = 100.0 / (0.5 + 0.3 * previous)
        elif previous <= 65.0:
            b = 14.0 - 1.3 * math.log(previous)
        else:
            b = 6.2 * math.log(previous) - 17.2
        wmr = wmi + 1000.0 * rw / (48.77 + b * rw)
        pr = max(43.43 * (5.6348 - math.log(wmr - 20.0)), 0.0)
    else:
        pr = previous
    return max(pr + 100.0 * k, 0.0)


def dc(previous: float, temp: float, rain: float, month: int, day_length: tuple[float, ...] = DC_DAY_LENGTH) -> float:
    """Drought Code."""
    temp = max(temp, -2.8)
    pe = max((0.36 * (temp + 2.8) + day_length[month - 1]) / 2.0, 0.0)
    if rain > 2.8:
        rd = 0.83 * rain - 1.27
        qr = 800.0 * math.exp(-previous / 400.0) + 3.937 * rd
        previous = max(400.0 * math.log(800.0 / qr), 0.0)
    return previous + pe


def isi(ffmc_value: float, wind: float, scale: float = FFMC_SCALE_1985) -> float:
    """Initial Spread Index."""
    mo = scale * (101.0 - ffmc_value) / (59.5 + ffmc_value)
    ff = 19.115 * math.exp(-0.1386 * mo) * (1.0 + mo ** 5.31 / 4.93e7)
    return ff * math.exp(0.05039 * wind)


def bui(dmc_value: float, dc_value: float) -> float:
    """Buildup Index."""
    if dmc_value == 0.0 and dc_value == 0.0:
        return 0.0
    if dmc_value <= 0.4 * dc_value:
        value = 0.8 * dmc_value * dc_value / (dmc_value + 0.4 * dc_value)
    else:
        value = dmc_value - (1.0 - 0.8 * dc_value / (dmc_value + 0.4 * dc_value)) * (0.92 + (0.0114 * dmc_value) ** 1.7)
    return max(value, 0.0)


def fwi(isi_value: float, bui_value: float) -> float:
    """Fire Weather Index."""
    if bui_value <= 80.0:
        bb = 0.1 * isi_value * (0.626 * bui_value ** 0.809 + 2.0)
    else:
        bb = 0.1 * isi_value * (1000.0 / (25.0 + 108.64 * math.exp(-0.023 * bui_value)))
    return bb if bb <= 1.0 else math.exp(2.72 * (0.434 * math.log(bb)) ** 0.647)


def fwi_day(state: FwiState, *, month: int, temp: float, rh: float, wind: float, rain: float,
            ffmc_scale: float = FFMC_SCALE_1985) -> FwiDay:
    """One day of the FWI System from yesterday's codes and today's noon weather.

    ``ffmc_scale`` picks the FFMC constant: the 1985 program's 147.2 (default; matches the
    published table) or `FFMC_SCALE_EXACT` (matches cffdrs to the fourth decimal).
    """
    rh = min(max(rh, 0.0), 100.0)
    f = ffmc(state.ffmc, temp, rh, wind, rain, ffmc_scale)
    d = dmc(state.dmc, temp, rh, rain, month)
    c = dc(state.dc, temp, rain, month)
    i = isi(f, wind, ffmc_scale)
    b = bui(d, c)
    w = fwi(i, b)
    return FwiDay(f, d, c, i, b, w, 0.0272 * w ** 1.77)

"""Plausible sensor values for the three families, deterministic in (seed, sensor, event time).

Each quantity has a baseline (noise, daily cycles, process behaviour); incidents add on top.
Noise comes from a generator seeded by (seed, sensor, whole second), so the same seed and the
same event times give byte-identical feeds whatever the speed of the run.
"""

from __future__ import annotations

import math
import random
import zlib
from typing import Callable

from foundation.config import Sensor
from foundation.domain import CST

DAY = 86_400.0


def noise(seed: int, sensor_id: str, t: float) -> random.Random:
    """A generator fixed by (seed, sensor, millisecond of event time)."""
    return random.Random((seed << 48) ^ (zlib.crc32(sensor_id.encode()) << 20) ^ int(t * 1000))


def _phase(sensor_id: str) -> float:
    return (zlib.crc32(sensor_id.encode()) % 1000) / 1000 * 2 * math.pi


def _local_hour(t: float) -> float:
    return ((t + CST.utcoffset(None).total_seconds()) % DAY) / 3600.0


def baseline(sensor: Sensor, t: float, seed: int) -> float:
    """The value a healthy sensor reads at event time ``t`` with nothing going on."""
    rng = noise(seed, sensor.id, t)
    phase = _phase(sensor.id)
    hour = _local_hour(t)
    daily = math.sin(2 * math.pi * (hour - 9) / 24)  # peaks mid-afternoon
    q = sensor.quantity
    if q == "combustible_gas":
        return round(0.4 + abs(rng.gauss(0, 0.4)), 2)
    if q in ("h2s", "nh3", "co"):
        return round(1.0 + abs(rng.gauss(0, 0.5)), 2)
    if q == "o2":  # fresh air: 20.9 %VOL
        return round(20.9 + rng.gauss(0, 0.05), 2)
    if q in ("interlock_bypass", "esd_state"):  # 0/1 states: in service, not tripped
        return 0.0
    if q == "cl2":
        return round(0.05 + abs(rng.gauss(0, 0.03)), 3)
    if q == "tank_level":  # fill and draw-off cycle of about two hours
        capacity = sensor.capacity or 12.0
        return round(capacity * (0.5 + 0.25 * math.sin(2 * math.pi * t / 7200 + phase)) + rng.gauss(0, 0.01), 3)
    if q == "temperature" and sensor.family.value == "hazard":
        return round(24 + 3 * daily + rng.gauss(0, 0.15), 2)
    if q == "pressure" and sensor.site_id.endswith("RQ"):
        return round(0.38 + rng.gauss(0, 0.005), 3)
    if q == "pressure":  # closed vessel: pressure follows temperature (ideal gas)
        temp = 24 + 3 * daily
        return round(0.5 * (temp + 273.15) / 297.15 + rng.gauss(0, 0.004), 4)
    if q == "flow":
        return round(max(0.0, 60 + 25 * math.sin(2 * math.pi * t / 1800 + phase) + rng.gauss(0, 1.0)), 2)
    if q == "temperature":  # forest air temperature, daily cycle
        return round(14 + 8 * daily + rng.gauss(0, 0.3), 1)
    if q == "relative_humidity":  # moves opposite to temperature
        return round(min(100.0, max(5.0, 50 - 22 * daily + rng.gauss(0, 1.5))), 1)
    if q == "wind_speed":
        return round(max(0.0, 12 + 6 * math.sin(2 * math.pi * t / 5400 + phase) + rng.gauss(0, 2)), 1)
    if q == "rain":
        return 0.0
    if q == "smoke":
        return round(0.2 + abs(rng.gauss(0, 0.2)), 2)
    if q == "flame":
        return round(abs(rng.gauss(0, 0.02)), 3)
    return round(rng.gauss(0, 1), 3)


def ramp(t: float, start: float, rise_s: float, hold_s: float, fall_s: float, peak: float) -> float:
    """A trapezoid: 0 before ``start``, rising to ``peak``, holding, then falling back to 0.

    >>> [ramp(t, 10, 10, 5, 10, 100) for t in (5, 15, 22, 30, 40)]
    [0.0, 50.0, 100.0, 50.0, 0.0]
    """
    x = t - start
    if x <= 0 or x >= rise_s + hold_s + fall_s:
        return 0.0
    if x < rise_s:
        return peak * x / rise_s
    if x < rise_s + hold_s:
        return float(peak)
    return peak * (1 - (x - rise_s - hold_s) / fall_s)


Effect = Callable[[float], float]

"""Rule engine benchmark: evaluations per second with 10,000 sensors and the default rule packs.

Batches of 1,000 readings go through `RuleEngine.submit` (the production path: reorder buffer,
then every rule) on one core. Side by side, in the same run, a plain-Python loop applies the
same threshold ladders (deadband and delays) one reading at a time: the baseline.

    .venv/bin/python bench/rules_bench.py [--batches 1000] [--write]

``--write`` records the run in docs/BENCHMARKS.md (section ``rules``).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from common import machine, now_utc, write_section  # noqa: E402
from foundation.config import Fleet, Sensor, Site, load_config  # noqa: E402
from foundation.domain import BAD_CODE, ReadingBatch  # noqa: E402
from foundation.rulespec import RuleBook, ThresholdSpec  # noqa: E402
from rules import RuleEngine  # noqa: E402
from rules.ladder import climb  # noqa: E402

T0 = 1_795_564_800.0
PLANT = [("gas", "combustible_gas", "%LEL", "gas.combustible.point", 1.0, 0.4)] * 40 + \
        [("hazard", "temperature", "°C", "hazard.temperature.storage", 25.0, 0.15)] * 20 + \
        [("hazard", "pressure", "MPa", "hazard.pressure.storage", 0.5, 0.004)] * 20 + \
        [("hazard", "tank_level", "m", "hazard.tank_level.12m", 6.0, 0.01)] * 20
FOREST = [("forest", "temperature", "°C", None, 15.0, 0.3), ("forest", "relative_humidity", "%", None, 40.0, 1.5),
          ("forest", "wind_speed", "km/h", None, 12.0, 2.0), ("forest", "rain", "mm", None, 0.0, 0.0),
          ("forest", "smoke", "%obs/m", "forest.smoke", 0.3, 0.1), ("forest", "flame", "signal", "forest.flame", 0.02, 0.01)]


def bench_fleet() -> tuple[Fleet, np.ndarray, np.ndarray]:
    """94 plants × 100 sensors and 10 forests × 10 stations × 6 sensors: 10,000 sensors; their base and noise."""
    demo = load_config(ROOT / "config")
    sites, sensors, base, noise = {}, {}, [], []
    grades = [1, 2, 3, 4, None]
    for s in range(94):
        site_id = f"B-P{s:03d}"
        sites[site_id] = Site(id=site_id, name=site_id, county="东昌府区", kind="enterprise", lon=116.0 + s * 1e-3,
                              lat=36.4, hazard_grade=grades[s % 5])
        for k, (family, quantity, unit, profile, b, n) in enumerate(PLANT):
            sid = f"{site_id}-S{k:03d}"
            sensors[sid] = Sensor(id=sid, site_id=site_id, name=sid, family=family, quantity=quantity, unit=unit,
                                  lon=116.0 + s * 1e-3 + k * 1e-5, lat=36.4, period_s=10, profile=profile)
            base.append(b)
            noise.append(n)
    for s in range(10):
        site_id = f"B-F{s:03d}"
        sites[site_id] = Site(id=site_id, name=site_id, county="东阿县", kind="forest", lon=116.2, lat=36.2)
        for station in range(10):
            for family, quantity, unit, profile, b, n in FOREST:
                sid = f"{site_id}-WS{station}-{quantity[:2].upper()}"
                sensors[sid] = Sensor(id=sid, site_id=site_id, name=sid, family=family, quantity=quantity, unit=unit,
                                      lon=116.2, lat=36.2, period_s=10, profile=profile)
                base.append(b)
                noise.append(n)
    fleet = Fleet(sites=sites, sensors=sensors, profiles=demo.fleet.profiles, tiers=demo.fleet.tiers)
    return fleet, np.array(base), np.array(noise)


def batches(fleet: Fleet, base: np.ndarray, noise: np.ndarray, count: int, size: int = 1000) -> list[ReadingBatch]:
    """Every sensor every 10 s, in batches of ``size``; 1 % of sensors ramp through their ladders."""
    rng = np.random.default_rng(42)
    n = len(fleet.sensor_ids)
    ramping = rng.random(n) < 0.01
    peak = base.copy()  # a ramping sensor climbs to 1.2 × its top high setpoint and back every 5 minutes
    for i, sensor_id in enumerate(fleet.sensor_ids):
        highs = [r.set for r in fleet.setpoints_for(fleet.sensors[sensor_id]) if r.direction == "high"]
        if highs:
            peak[i] = 1.2 * highs[-1]
    out = []
    for b in range(count):
        index = np.arange(b * size, (b + 1) * size)
        sensor = (index % n).astype(np.int32)
        ts = T0 + (index // n) * 10.0 + (index % n) * (10.0 / n)
        value = base[sensor] + rng.normal(0, 1, size) * noise[sensor]
        phase = ((ts - T0) % 300) / 300
        triangle = 1 - np.abs(2 * phase - 1)
        value = np.where(ramping[sensor], value + (peak[sensor] - base[sensor]) * triangle, value)
        quality = np.where(rng.random(size) < 0.001, BAD_CODE, 0).astype(np.int8)
        out.append(ReadingBatch(sensor, ts, value, quality, fleet.sensor_ids, fleet.sensor_sites))
    return out


def run_engine(fleet: Fleet, book: RuleBook, feed: list[ReadingBatch], settings) -> tuple[float, int]:
    """Seconds to submit every batch (the clock at each batch's newest reading); signals raised."""
    engine = RuleEngine(fleet, book, settings, start=T0)  # built before the clock starts, as at start-up
    signals = 0
    started = time.perf_counter()
    for batch in feed:
        signals += len(engine.submit(batch, float(batch.ts[-1])).signals)
    signals += len(engine.flush(float("inf"), everything=True).signals)
    return time.perf_counter() - started, signals


def plain_loop(fleet: Fleet, book: RuleBook, feed: list[ReadingBatch]) -> tuple[float, int]:
    """The baseline: the same threshold ladders, one reading at a time, in plain Python."""
    engine = RuleEngine(fleet, book)  # only to borrow the ladders it built from the specs
    ladders = [None] * len(fleet.sensor_ids)
    for rule in engine.thresholds:
        for i, ladder in enumerate(rule.bank.ladders):
            if ladder is not None:
                ladders[i] = ladder
    state: dict[int, list] = {}
    signals = 0
    rows = [(b.sensor.tolist(), b.ts.tolist(), b.value.tolist(), b.quality.tolist()) for b in feed]
    started = time.perf_counter()
    for sensors, times, values, qualities in rows:
        for s, t, v, q in zip(sensors, times, values, qualities):
            ladder = ladders[s]
            if ladder is None or q == BAD_CODE or v != v:
                continue
            st = state.get(s)
            if st is None:
                st = state[s] = [0, 0, 0, 0, None, float("-inf")]  # high, low, shown, pending, since, last
            if t <= st[5]:
                continue
            st[5] = t
            st[0] = high = climb(st[0], ladder.highs, v, True)
            st[1] = low = climb(st[1], ladder.lows, v, False)
            target = high if high else -low
            if target == st[2]:
                st[3], st[4] = 0, None
                continue
            if target != st[3] or st[4] is None:
                st[3], st[4] = target, t
            before, after = ladder.rung(st[2]), ladder.rung(target)
            worse = after is not None and (before is None or abs(target) > abs(st[2]) or (target > 0) != (st[2] > 0))
            delay = after.on_delay if worse else before.off_delay
            if t - st[4] >= delay:
                st[2], st[3], st[4] = target, 0, None
                signals += 1
    return time.perf_counter() - started, signals


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=1000)
    parser.add_argument("--write", action="store_true", help="record the run in docs/BENCHMARKS.md")
    args = parser.parse_args()
    demo = load_config(ROOT / "config")
    settings = demo.settings.rules
    fleet, base, noise = bench_fleet()
    feed = batches(fleet, base, noise, args.batches)
    readings = sum(len(b) for b in feed)
    specs = demo.rules.rules
    threshold_book = RuleBook(rules=[s for s in specs if isinstance(s, ThresholdSpec)])
    trend_book = RuleBook(rules=[s for s in specs if s.kind in ("rate_of_change", "predictive")])
    full_engine = RuleEngine(fleet, demo.rules, settings)
    threshold_rows = sum(int(np.count_nonzero(r.bank.has[np.concatenate([b.sensor for b in feed])]))
                         for r in full_engine.thresholds)
    all_sensors = np.concatenate([b.sensor for b in feed])
    trend_rows = sum(int(np.count_nonzero(full_engine.by_id[s.id].compact[all_sensors] >= 0)) for s in trend_book.rules)

    plain_s, plain_signals = plain_loop(fleet, threshold_book, feed)
    threshold_s, threshold_signals = run_engine(fleet, threshold_book, feed, settings)
    trend_s, trend_signals = run_engine(fleet, trend_book, feed, settings)
    full_s, full_signals = run_engine(fleet, demo.rules, feed, settings)
    assert plain_signals == threshold_signals, (plain_signals, threshold_signals)

    lines = [
        f"Run {now_utc()} on {machine()}; one process, numpy on one thread.",
        f"`.venv/bin/python bench/rules_bench.py --batches {args.batches} --write`: {len(fleet.sensor_ids):,} sensors "
        f"(94 plants, 100 forest stations), default rule packs, {len(feed):,} batches of 1,000 readings "
        f"({readings:,} readings, 1 % of sensors ramping through their ladders, 0.1 % bad quality).",
        "",
        "| what | evaluations | seconds | evaluations/s | target |",
        "|---|---:|---:|---:|---|",
        f"| plain-Python loop, threshold ladders (baseline) | {threshold_rows:,} | {plain_s:.2f} | "
        f"{threshold_rows / plain_s:,.0f} | |",
        f"| engine, threshold packs | {threshold_rows:,} | {threshold_s:.2f} | {threshold_rows / threshold_s:,.0f} | "
        f"≥ 1,000,000; ≥ 10 × baseline (here {plain_s / threshold_s:.1f} ×) |",
        f"| engine, rate-of-change + predictive packs | {trend_rows:,} | {trend_s:.2f} | {trend_rows / trend_s:,.0f} | "
        "≥ 200,000 |",
        f"| engine, every default pack (readings) | {readings:,} | {full_s:.2f} | {readings / full_s:,.0f} | |",
        "",
        f"Signals: baseline {plain_signals:,}, threshold engine {threshold_signals:,} (equal, checked), "
        f"trend {trend_signals:,}, all packs {full_signals:,}.",
    ]
    text = "\n".join(lines)
    print(text)
    if args.write:
        write_section(ROOT / "docs" / "BENCHMARKS.md", "rules", "## Rule engine\n\n" + text)


if __name__ == "__main__":
    main()

"""Ingest benchmark (issue 3): throughput against a bare paho subscriber, latency, memory.

Run:  .venv/bin/python bench/ingest_bench.py            (prints the table)
      .venv/bin/python bench/ingest_bench.py --write    (also updates docs/BENCHMARKS.md)

Method. A persistent QoS 1 session is created, then N messages are preloaded into the broker
by four publisher processes while nobody is connected; the subscriber then connects and drains
them, and we time the drain. The same broker and the same messages serve (a) a bare paho
subscriber that only counts and (b) Liaowang's ingest with SQLite storage and the rule engine,
so (b)/(a) isolates what ingest costs on top of the client's own ceiling. Latency: a paced
publisher sends 5,000 single readings/s stamped with the send time; the pipeline records
store-completion time minus that stamp. Memory: a child process loads a 100,000-sensor fleet and
ingests two readings of every sensor.
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import (ROOT, create_session, drop_session, login, machine, now_utc, preload, rss_mb,  # noqa: E402
                          start_broker, write_section)
from bench.common import client as own_client  # noqa: E402
from foundation.config import load_config  # noqa: E402
from liaowang.pipeline import Pipeline  # noqa: E402

NORMAL = {"combustible_gas": 1.0, "h2s": 1.0, "nh3": 1.0, "co": 1.0, "cl2": 0.1, "tank_level": 6.0,
          "temperature": 25.0, "pressure": 0.38, "flow": 60.0, "relative_humidity": 50.0, "wind_speed": 10.0,
          "rain": 0.0, "smoke": 0.2, "flame": 0.01}


def single_messages(fleet, n: int, base: float) -> list[tuple[str, bytes]]:
    sensors = list(fleet.sensors.values())
    out = []
    for i in range(n):
        s = sensors[i % len(sensors)]
        out.append((f"liaowang/v1/readings/{s.site_id}/{s.id}",
                    orjson.dumps({"sensor_id": s.id, "ts": base + i // len(sensors), "value": NORMAL[s.quantity] + (i % 7) * 0.01})))
    return out


def batch_messages(fleet, n_messages: int, per_message: int, base: float) -> list[tuple[str, bytes]]:
    by_site: dict[str, list] = {}
    for s in fleet.sensors.values():
        by_site.setdefault(s.site_id, []).append(s)
    sites = list(by_site)
    out, tick = [], 0
    for m in range(n_messages):
        site = sites[m % len(sites)]
        sensors = by_site[site]
        readings = []
        for k in range(per_message):
            s = sensors[k % len(sensors)]
            readings.append({"sensor_id": s.id, "ts": base + tick + k // len(sensors) * 0.001, "value": NORMAL[s.quantity]})
        if m % len(sites) == len(sites) - 1:
            tick += 1
        out.append((f"liaowang/v1/readings/{site}", orjson.dumps({"site_id": site, "readings": readings})))
    return out


def bare_drain(port: int, client_id: str, expected: int) -> float:
    """Seconds for a bare paho subscriber (counting only) to drain ``expected`` queued messages."""
    count = 0
    done = threading.Event()
    first: list[float] = []

    def on_message(client, userdata, msg):
        nonlocal count
        if not first:
            first.append(time.perf_counter())
        count += 1
        if count >= expected:
            done.set()

    client = own_client(client_id, clean_session=False)
    client.on_message = on_message
    t0 = time.perf_counter()
    client.connect("127.0.0.1", port)
    client.loop_start()
    done.wait(600)
    elapsed = time.perf_counter() - t0
    client.disconnect()
    client.loop_stop()
    return elapsed


def ingest_drain(config, port: int, client_id: str, expected_readings: int, data_dir: Path) -> float:
    """Seconds for Liaowang's ingest (SQLite + rules) to store and evaluate the queued readings."""
    mqtt_settings = config.settings.mqtt.model_copy(update={"port": port, "client_id": client_id, **login()})
    cfg = config.model_copy(update={"settings": config.settings.model_copy(update={"mqtt": mqtt_settings})})
    pipeline = Pipeline(cfg, data_dir)
    t0 = time.perf_counter()
    pipeline.start()
    while (pipeline.registry.get_sample_value("liaowang_ingest_readings_accepted_total") or 0) < expected_readings:
        time.sleep(0.01)
    elapsed = time.perf_counter() - t0
    pipeline.stop()
    return elapsed


def throughput(config, port: int, messages, readings_per_message: int, label: str) -> dict:
    n = len(messages)
    create_session(port, f"bare-{label}")
    create_session(port, f"ingest-{label}")
    t_pub = preload(port, messages)
    bare = bare_drain(port, f"bare-{label}", n)
    drop_session(port, f"bare-{label}")
    ingest = ingest_drain(config, port, f"ingest-{label}", n * readings_per_message, Path(tempfile.mkdtemp()))
    drop_session(port, f"ingest-{label}")
    return {"label": label, "messages": n, "readings": n * readings_per_message, "publish_s": t_pub,
            "bare_msgs": n / bare, "ingest_msgs": n / ingest, "ingest_readings": n * readings_per_message / ingest}


def in_process(config, messages, readings_per_message: int, per_batch: int) -> dict:
    """The pipeline without MQTT: decode, SQLite, rules on pre-received messages, one batch at a time.

    Side by side: ``orjson.loads`` of the same payloads, the floor of any JSON ingest in Python.
    """
    from ingest.service import _Message

    pipeline = Pipeline(config, Path(tempfile.mkdtemp()))
    pipeline.ingest._client.ack = lambda mid, qos: 0  # no broker here: nothing to acknowledge to
    items = [_Message(topic, payload, i + 1, 1, 0) for i, (topic, payload) in enumerate(messages)]
    t0 = time.perf_counter()
    for i in range(0, len(items), per_batch):
        pipeline.ingest._process(items[i:i + per_batch])
    pipeline_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    for _, payload in messages:
        orjson.loads(payload)
    parse_s = time.perf_counter() - t0
    pipeline.alert_store.close()
    n = len(messages) * readings_per_message
    return {"pipeline": n / pipeline_s, "parse_only": n / parse_s}


def _paced_publisher(port: int, rate: int, seconds: float, sensors: list[tuple[str, str]]) -> None:
    client = own_client(f"paced-{time.time_ns()}")
    client.max_queued_messages_set(0)
    client.connect("127.0.0.1", port)
    client.loop_start()
    start = time.perf_counter()
    sent, slot = 0, 0.01
    while time.perf_counter() - start < seconds:
        due = int((time.perf_counter() - start) * rate)
        while sent < due:
            site, sensor = sensors[sent % len(sensors)]
            client.publish(f"liaowang/v1/readings/{site}/{sensor}",
                           orjson.dumps({"ts": time.time(), "value": 1.0 + (sent % 5) * 0.01}), qos=1)
            sent += 1
        time.sleep(slot)
    time.sleep(2)
    client.disconnect()
    client.loop_stop()


def latency(config, port: int, rate: int = 5000, seconds: float = 20.0) -> dict:
    mqtt_settings = config.settings.mqtt.model_copy(update={"port": port, "client_id": "latency-ingest", **login()})
    cfg = config.model_copy(update={"settings": config.settings.model_copy(update={"mqtt": mqtt_settings})})
    pipeline = Pipeline(cfg, Path(tempfile.mkdtemp()))
    samples: list[float] = []
    pipeline.add_batch_observer(lambda batch: samples.extend((time.time() - batch.ts).tolist()))
    pipeline.start()
    pipeline.ingest.wait_connected(10)
    sensors = [(s.site_id, s.id) for s in config.fleet.sensors.values() if s.quantity == "combustible_gas"]
    publisher = multiprocessing.Process(target=_paced_publisher, args=(port, rate, seconds, sensors))
    publisher.start()
    publisher.join()
    time.sleep(1)
    pipeline.stop()
    samples = sorted(samples[int(len(samples) * 0.05):])  # drop the first 5 % (connection warm-up)
    q = statistics.quantiles(samples, n=100)
    return {"rate": rate, "count": len(samples), "achieved": len(samples) / (seconds * 0.95),
            "p50_ms": q[49] * 1000, "p95_ms": q[94] * 1000, "p99_ms": q[98] * 1000, "max_ms": samples[-1] * 1000}


def quiet_stale(config):
    """The benchmark feeds only some sensors, with old timestamps: keep the stale rule from
    raising a fault for every silent sensor mid-measurement (threshold rules stay on)."""
    rules = config.settings.rules.model_copy(update={"stale_periods": 1e9})
    return config.model_copy(update={"settings": config.settings.model_copy(update={"rules": rules})})


def rss_child(port: int) -> None:
    """Child process: load a 100,000-sensor fleet, ingest two readings of each, print RSS figures."""
    import json

    from foundation.config import Fleet, Sensor, Site

    demo = quiet_stale(load_config(ROOT / "config"))
    baseline = rss_mb()
    sites, sensors = {}, {}
    profiles = [("gas", "combustible_gas", "%LEL", "gas.combustible.point"), ("hazard", "temperature", "°C",
                "hazard.temperature.storage"), ("hazard", "tank_level", "m", "hazard.tank_level.12m"),
                ("hazard", "pressure", "MPa", "hazard.pressure.storage")]
    for s in range(1000):
        site_id = f"B-{s:04d}"
        sites[site_id] = Site(id=site_id, name=f"site {s}", county="东昌府区", kind="enterprise", lon=116.0, lat=36.4)
        for k in range(100):
            family, quantity, unit, profile = profiles[k % 4]
            sid = f"{site_id}-S{k:03d}"
            sensors[sid] = Sensor(id=sid, site_id=site_id, name=sid, family=family, quantity=quantity, unit=unit,
                                  lon=116.0, lat=36.4, period_s=10, profile=profile)
    fleet = Fleet(sites=sites, sensors=sensors, profiles=demo.fleet.profiles, tiers=demo.fleet.tiers)
    after_fleet = rss_mb()
    mqtt_settings = demo.settings.mqtt.model_copy(update={"port": port, "client_id": "rss-ingest", **login()})
    config = demo.model_copy(update={"fleet": fleet, "settings": demo.settings.model_copy(update={"mqtt": mqtt_settings})})
    pipeline = Pipeline(config, Path(tempfile.mkdtemp()))
    pipeline.start()
    pipeline.ingest.wait_connected(10)
    client = own_client("rss-pub")
    client.max_queued_messages_set(0)
    client.connect("127.0.0.1", port)
    client.loop_start()
    from foundation.mqttclient import BoundedPublisher

    out = BoundedPublisher(client, 1000)
    now = time.time() - 30
    for round_ in range(2):
        for site_id in sites:
            readings = [{"sensor_id": f"{site_id}-S{k:03d}", "ts": now + round_ * 10, "value": (1.0, 25.0, 6.0, 0.5)[k % 4]}
                        for k in range(100)]
            out.publish(f"liaowang/v1/readings/{site_id}", orjson.dumps({"site_id": site_id, "readings": readings}))
    out.flush(300)
    while (pipeline.registry.get_sample_value("liaowang_ingest_readings_accepted_total") or 0) < 200_000:
        time.sleep(0.05)
    time.sleep(1)
    loaded = rss_mb()
    pipeline.stop()
    print(json.dumps({"baseline_mb": baseline, "after_fleet_mb": after_fleet, "after_ingest_mb": loaded,
                      "sensors": len(sensors)}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="update docs/BENCHMARKS.md")
    parser.add_argument("--single", type=int, default=200_000, help="single-reading messages")
    parser.add_argument("--batches", type=int, default=10_000, help="messages of 100 readings")
    parser.add_argument("--rss-child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rss_child:
        rss_child(args.rss_child)
        return

    from foundation.logs import configure_logging
    configure_logging("warning")
    config = quiet_stale(load_config(ROOT / "config"))
    broker, port = start_broker()
    try:
        base = time.time() - 20 * 86400
        print("single-reading messages …", flush=True)
        single = throughput(config, port, single_messages(config.fleet, args.single, base), 1, "single")
        print(single, flush=True)
        print("100-reading batches …", flush=True)
        batched = throughput(config, port, batch_messages(config.fleet, args.batches, 100, base + 10 * 86400), 100, "batch")
        print(batched, flush=True)
        print("in process (no MQTT) …", flush=True)
        proc_single = in_process(config, single_messages(config.fleet, 100_000, base - 86400), 1, 2000)
        proc_batch = in_process(config, batch_messages(config.fleet, 2_000, 100, base - 2 * 86400), 100, 20)
        print(proc_single, proc_batch, flush=True)
        print("latency at 5,000 readings/s …", flush=True)
        lat = latency(config, port)
        print(lat, flush=True)
        print("RSS with 100,000 sensors …", flush=True)
        child = subprocess.run([sys.executable, __file__, "--rss-child", str(port)], capture_output=True, text=True)
        rss = orjson.loads(child.stdout.strip().splitlines()[-1])
        print(rss, flush=True)
    finally:
        broker.stop()

    ratio = single["ingest_msgs"] / single["bare_msgs"]
    table = f"""## Ingest (issue 3)

Command: `.venv/bin/python bench/ingest_bench.py --write` · {now_utc()} · {machine()}

QoS 1, messages preloaded into a persistent session by 4 publisher processes, then drained (see the
script's docstring). (a) and (b) ran on the same broker with the same messages in the same run.

| measure | result | target | met |
| --- | --- | --- | --- |
| (a) bare paho subscriber, single-reading messages | {single['bare_msgs']:,.0f} msg/s | — (the client's ceiling) | |
| (b) Liaowang ingest (SQLite + rules), single-reading messages | {single['ingest_msgs']:,.0f} msg/s = {ratio:.2f} × (a) | ≥ 0.9 × (a) | {'yes' if ratio >= 0.9 else 'no'} |
| (a) bare paho subscriber, 100-reading batches | {batched['bare_msgs']:,.0f} msg/s | — | |
| (b) Liaowang ingest, 100-reading batches | {batched['ingest_readings']:,.0f} readings/s | ≥ 300,000 readings/s | {'yes' if batched['ingest_readings'] >= 300_000 else 'no'} |
| publish → stored latency at {lat['rate']:,} readings/s ({lat['count']:,} samples) | p50 {lat['p50_ms']:.1f} ms · p95 {lat['p95_ms']:.1f} ms · p99 {lat['p99_ms']:.1f} ms · max {lat['max_ms']:.1f} ms | p99 ≤ 50 ms | {'yes' if lat['p99_ms'] <= 50 else 'no'} |
| RSS with {rss['sensors']:,} sensors after ingesting 2 readings of each | {rss['after_ingest_mb']:.0f} MB (imports {rss['baseline_mb']:.0f} MB, + fleet {rss['after_fleet_mb'] - rss['baseline_mb']:.0f} MB) | ≤ 200 MB | {'yes' if rss['after_ingest_mb'] <= 200 else 'no'} |

The same code without MQTT (pre-received messages handed straight to the decode → SQLite → rules
path, 2,000 per micro-batch), beside parsing the same payloads with `orjson.loads` alone:

| in process | Liaowang pipeline | orjson.loads only |
| --- | --- | --- |
| single-reading messages | {proc_single['pipeline']:,.0f} readings/s | {proc_single['parse_only']:,.0f} readings/s |
| 100-reading batches | {proc_batch['pipeline']:,.0f} readings/s | {proc_batch['parse_only']:,.0f} readings/s |

Preloading took {single['publish_s']:.1f} s for {single['messages']:,} single messages and {batched['publish_s']:.1f} s for {batched['messages']:,} batches.
"""
    print(table)
    if args.write:
        write_section(ROOT / "docs" / "BENCHMARKS.md", "ingest", table)


if __name__ == "__main__":
    main()

"""Issue 15 item 5's two other figures: publish → alarm visible in the API, and RSS with 100,000 sensors.

Run:  .venv/bin/python bench/hotpath.py               (both; prints the table)
      .venv/bin/python bench/hotpath.py --write       (also updates docs/BENCHMARKS.md)
      .venv/bin/python bench/hotpath.py --quick       (smoke test: 4 s of feed, 2,000 sites' worth of nothing)

Latency. One mosquitto (Liaowang's embedded configuration). A paced publisher process sends
single readings at QoS 1 at ``--rate`` readings/s for ``--seconds``, round-robin over every sensor
of the demo fleet, each stamped with the wall time it was sent (``ts``): quiet values, except that
each combustible-gas sensor reads 60 %LEL for one reading every ``SPIKE_PERIOD_S`` seconds, the
sensors' spikes spread evenly over the period (alarm changes arrive one by one: each spike raises,
each return clears after the rule's off-delay). Consumers, one after the other, with the same feed:

- baseline: a bare paho subscriber that, for every reading, takes its arrival time minus ``ts``
  (the broker's and the client's share of any latency; no storage, no rules);
- Liaowang: ``liaowang run --no-simulators`` as a user runs it (its own process, its HTTP API,
  readings in SQLite, rules, alerting), with a client on ``GET /api/v1/events`` (SSE, the map's
  live stream, token ``demo-viewer``); for every ``alert`` event, its arrival time minus the
  alert's ``updated_at`` (the event time of the reading that changed it, = that reading's publish
  time). The first 2 s are warm-up and left out.

RSS with 100,000 sensors. A child process builds a generated fleet (1,000 sites × 100 sensors:
combustible gas, temperature, tank level, pressure, with the demo's profiles), the `Pipeline` of
``liaowang run`` and its HTTP app (`create_app`, not served), ingests two readings of every sensor
(200,000 readings in 2,000 batches), and reports its resident set (``VmRSS`` and the peak
``VmHWM``) plus the receiver child's (ingest/receiver.py). Beside it, the same with the demo fleet
(198 sensors): what the fleet itself costs.

This replaces bench/ingest_bench.py's latency and RSS rows (that script is retired: it preloaded
with four parallel publishers, which reorders the feed, and its quiet feed was not quiet).
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import ROOT, drop_session, free_port, login, machine, now_utc, start_broker, write_section  # noqa: E402
from bench.common import client as own_client  # noqa: E402

SPIKE_PERIOD_S = 15.0
"""Each gas sensor spikes once in this period, the sensors' spikes spread evenly over it: alarm changes arrive
one by one, not all at once, and a period longer than the gas rule's 10 s off-delay lets every alarm clear
before its sensor spikes again (each spike raises, each clear resolves: two changes per spike)."""
NORMAL = {"combustible_gas": 1.0, "h2s": 1.0, "nh3": 1.0, "co": 1.0, "cl2": 0.1, "tank_level": 6.0,
          "temperature": 25.0, "pressure": 0.38, "flow": 60.0, "relative_humidity": 50.0, "wind_speed": 10.0,
          "rain": 0.0, "smoke": 0.2, "flame": 0.01, "o2": 20.9, "esd_state": 0.0, "interlock_bypass": 0.0}
WARM_UP_S = 2.0


def _quantiles(samples: list[float]) -> dict:
    samples = sorted(samples)
    if len(samples) < 2:
        return {"count": len(samples)}
    q = statistics.quantiles(samples, n=100)
    return {"count": len(samples), "p50_ms": q[49] * 1000, "p95_ms": q[94] * 1000, "p99_ms": q[98] * 1000,
            "max_ms": samples[-1] * 1000}


# -- the paced feed --------------------------------------------------------------------------------

def _sensors() -> list[tuple[str, str, str]]:
    from foundation.config import load_config

    fleet = load_config(ROOT / "config").fleet
    return [(s.site_id, s.id, s.quantity) for s in sorted(fleet.sensors.values(), key=lambda s: s.id)]


def paced_publisher(port: int, rate: int, seconds: float, sensors: list[tuple[str, str, str]]) -> None:
    """Publish ``rate`` single readings a second for ``seconds`` (QoS 1, flow-controlled), stamped with send time."""
    from foundation.mqttclient import BoundedPublisher

    pub = own_client(f"hotpath-pub-{time.time_ns()}")
    pub.max_queued_messages_set(0)
    pub.connect("127.0.0.1", port)
    pub.loop_start()
    out = BoundedPublisher(pub, max_outstanding=2000)
    start, sent, n = time.perf_counter(), 0, len(sensors)
    gas = [i for i, (_, _, quantity) in enumerate(sensors) if quantity == "combustible_gas"]
    period = max(1, round(SPIKE_PERIOD_S * rate / n))  # in laps of the fleet
    offset = {i: period - 1 - k * period // len(gas) for k, i in enumerate(gas)}  # none spikes in the first lap
    while (elapsed := time.perf_counter() - start) < seconds:
        due = int(elapsed * rate)
        while sent < due:
            position = sent % n
            site, sensor, quantity = sensors[position]
            lap = sent // n
            spike = position in offset and lap % period == offset[position]
            value = 60.0 if spike else NORMAL[quantity]
            out.publish(f"liaowang/v1/readings/{site}/{sensor}",
                        orjson.dumps({"sensor_id": sensor, "ts": time.time(), "value": value}), qos=1)
            sent += 1
        time.sleep(0.002)
    out.flush(60)
    pub.disconnect()
    pub.loop_stop()
    print(json.dumps({"sent": sent, "seconds": time.perf_counter() - start}), flush=True)


def _publish(port: int, rate: int, seconds: float) -> dict:
    done = subprocess.run([sys.executable, __file__, "--publisher", str(port), "--rate", str(rate),
                           "--seconds", str(seconds)], capture_output=True, text=True, timeout=seconds + 120)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if not lines:
        raise RuntimeError(f"publisher failed: {done.stderr[-2000:]}")
    return json.loads(lines[-1])


# -- baseline: a bare subscriber's publish → receive latency ---------------------------------------

def bare_latency(port: int, rate: int, seconds: float) -> dict:
    samples: list[float] = []
    first = [0.0]
    ready = threading.Event()
    sub = own_client(f"hotpath-bare-{time.time_ns()}")

    def on_message(client, userdata, msg):
        now = time.time()
        ts = orjson.loads(msg.payload)["ts"]
        if not first[0]:
            first[0] = ts
        if ts - first[0] >= WARM_UP_S:
            samples.append(now - ts)

    sub.on_message = on_message
    sub.on_subscribe = lambda *_: ready.set()
    sub.on_connect = lambda client, *_: client.subscribe("liaowang/v1/readings/#", qos=1)
    sub.connect("127.0.0.1", port)
    sub.loop_start()
    ready.wait(10)
    sent = _publish(port, rate, seconds)
    time.sleep(1)
    sub.disconnect()
    sub.loop_stop()
    return {"sent": sent["sent"], "received": len(samples), **_quantiles(samples)}


# -- Liaowang: publish → alarm on the API's SSE stream ---------------------------------------------

def _process_rss(pid: int, children: bool = True) -> tuple[float, float]:
    """(VmRSS, VmHWM) in MB of ``pid`` plus (``children``) its child processes (the receiver)."""
    pids = [pid]
    try:
        if not children:
            raise OSError
        for task in Path(f"/proc/{pid}/task").iterdir():
            pids += [int(c) for c in (task / "children").read_text().split()]
    except OSError:
        pass
    rss = hwm = 0.0
    for p in pids:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    rss += int(line.split()[1]) / 1024
                elif line.startswith("VmHWM:"):
                    hwm += int(line.split()[1]) / 1024
        except OSError:
            pass
    return rss, hwm


def _epoch(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def _read_sse(port: int, samples: list[float], started: list[float], stop: threading.Event,
              ready: threading.Event) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", "/api/v1/events", headers={"Authorization": "Bearer demo-viewer", "Accept": "text/event-stream"})
    response = conn.getresponse()
    event = None
    while not stop.is_set():
        line = response.fp.readline()
        if not line:
            return
        now = time.time()
        if line.startswith(b"event: "):
            event = line[7:].strip()
            if event == b"hello":
                ready.set()
        elif line.startswith(b"data: ") and event == b"alert":
            body = orjson.loads(line[6:])
            updated = _epoch(body["updated_at"])
            if started[0] and updated - started[0] >= WARM_UP_S:
                samples.append(now - updated)
        elif line == b"\n":
            event = None


def liaowang_latency(port: int, rate: int, seconds: float, lateness_s: float | None = None) -> dict:
    """``liaowang run`` fed at ``rate``; ``lateness_s`` overrides ``rules.lateness_s`` (None: the shipped 1 s)."""
    http_port, data_dir = free_port(), Path(tempfile.mkdtemp(prefix="lw-hotpath-"))
    client_id = f"hotpath-liaowang-{time.time_ns()}"
    env = {**os.environ, "LIAOWANG_MQTT__EMBEDDED_BROKER": "none", "LIAOWANG_MQTT__PORT": str(port),
           "LIAOWANG_MQTT__CLIENT_ID": client_id}
    if lateness_s is not None:
        env["LIAOWANG_RULES__LATENESS_S"] = str(lateness_s)
    proc = subprocess.Popen([sys.executable, "-m", "liaowang.cli", "run", "--config", str(ROOT / "config"),
                             "--data-dir", str(data_dir), "--http-port", str(http_port), "--no-simulators"],
                            env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    samples: list[float] = []
    started = [0.0]
    stop, ready = threading.Event(), threading.Event()
    try:
        deadline = time.time() + 90
        while time.time() < deadline and proc.poll() is None:
            try:
                c = http.client.HTTPConnection("127.0.0.1", http_port, timeout=2)
                c.request("GET", "/healthz")
                if c.getresponse().status == 200:
                    break
            except OSError:
                pass
            time.sleep(0.3)
        else:
            raise RuntimeError("liaowang run did not become healthy")
        reader = threading.Thread(target=_read_sse, args=(http_port, samples, started, stop, ready), daemon=True)
        reader.start()
        ready.wait(10)
        started[0] = time.time()
        sent = _publish(port, rate, seconds)
        time.sleep(2)
        rss, hwm = _process_rss(proc.pid)
        stop.set()
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(data_dir, ignore_errors=True)
        # Its persistent session would otherwise go on queueing every later round's feed: mosquitto then
        # carries (and autosaves every second) a growing dead queue, and every later consumer's latency
        # suffered for it (before this, a round's second and third runs had p50s of hundreds of ms).
        drop_session(port, client_id)
    return {"sent": sent["sent"], "rss_mb": rss, "rss_peak_mb": hwm, **_quantiles(samples)}


# -- RSS with 100,000 sensors ----------------------------------------------------------------------

def rss_child(port: int, sites_n: int) -> dict:
    """In this (child) process: fleet of ``sites_n`` × 100 sensors (0: the demo fleet), pipeline + app, 2 readings each."""
    import gc

    from bench.common import rss_mb
    from foundation.config import Fleet, Sensor, Site, load_config
    from foundation.logs import configure_logging
    from foundation.malloc import TRIM_INTERVAL_S
    from foundation.mqttclient import BoundedPublisher
    from liaowang.api import create_app
    from liaowang.pipeline import Pipeline

    configure_logging("warning")
    top_n = int(os.environ.get("HOTPATH_PROFILE", "0"))
    steps: dict[str, float] = {"imports": rss_mb()}
    if top_n:
        import tracemalloc
        tracemalloc.start()
        last = [tracemalloc.take_snapshot()]

    def step(name: str) -> None:
        """RSS after a step, and (with --profile) where Python's allocations grew during it."""
        steps[name] = rss_mb()
        if top_n:
            snap = tracemalloc.take_snapshot()
            print(f"-- {name}: RSS {steps[name]:.0f} MB; biggest growths", file=sys.stderr)
            for stat in snap.compare_to(last[0], "lineno")[:top_n]:
                print(f"   {stat.size_diff / 2**20:8.1f} MB  {stat.traceback[0]}", file=sys.stderr)
            last[0] = snap

    demo = load_config(ROOT / "config")
    rules = demo.settings.rules.model_copy(update={"stale_periods": 1e9})  # only 2 readings each: nothing is stale
    demo = demo.model_copy(update={"settings": demo.settings.model_copy(update={"rules": rules})})
    baseline = rss_mb()
    if sites_n:
        sites, sensors = {}, {}
        profiles = [("gas", "combustible_gas", "%LEL", "gas.combustible.point"),
                    ("hazard", "temperature", "°C", "hazard.temperature.storage"),
                    ("hazard", "tank_level", "m", "hazard.tank_level.12m"),
                    ("hazard", "pressure", "MPa", "hazard.pressure.storage")]
        for s in range(sites_n):
            site_id = f"B-{s:04d}"
            sites[site_id] = Site(id=site_id, name=f"site {s}", county="东昌府区", kind="enterprise", lon=116.0, lat=36.4)
            for k in range(100):
                family, quantity, unit, profile = profiles[k % 4]
                sid = f"{site_id}-S{k:03d}"
                sensors[sid] = Sensor(id=sid, site_id=site_id, name=sid, family=family, quantity=quantity, unit=unit,
                                      lon=116.0, lat=36.4, period_s=10, profile=profile)
        fleet = Fleet(sites=sites, sensors=sensors, profiles=demo.fleet.profiles, tiers=demo.fleet.tiers)
    else:
        fleet = demo.fleet
    gc.collect()
    after_fleet = rss_mb()
    step("fleet")
    mqtt_settings = demo.settings.mqtt.model_copy(update={"port": port, "client_id": f"rss-ingest-{sites_n}",
                                                          **login()})
    config = demo.model_copy(update={"fleet": fleet, "settings": demo.settings.model_copy(update={"mqtt": mqtt_settings})})
    data_dir = Path(tempfile.mkdtemp(prefix="lw-rss-"))
    pipeline = Pipeline(config, data_dir)
    step("pipeline")
    if not os.environ.get("HOTPATH_NO_APP"):
        create_app(pipeline)  # the HTTP side's routes and models are Liaowang's memory too
    step("app")
    pipeline.start()
    pipeline.ingest.wait_connected(15)
    pub = own_client(f"rss-pub-{time.time_ns()}")
    pub.max_queued_messages_set(0)
    pub.connect("127.0.0.1", port)
    pub.loop_start()
    out = BoundedPublisher(pub, 1000)
    by_site: dict[str, list] = {}
    for sensor in fleet.sensors.values():
        by_site.setdefault(sensor.site_id, []).append(sensor)
    now, total = time.time() - 30, 0
    for round_ in range(2):
        for site_id, members in by_site.items():
            for i in range(0, len(members), 100):
                readings = [{"sensor_id": s.id, "ts": now + round_ * 10, "value": NORMAL.get(s.quantity, 1.0)}
                            for s in members[i:i + 100]]
                total += len(readings)
                out.publish(f"liaowang/v1/readings/{site_id}", orjson.dumps({"site_id": site_id, "readings": readings}))
    out.flush(300)
    deadline = time.time() + 300
    while (pipeline.registry.get_sample_value("liaowang_ingest_readings_accepted_total") or 0) < total:
        if time.time() > deadline:
            break
        time.sleep(0.05)
    # The steady state, not the burst's: the pipeline's ticker hands freed heap back at most every
    # TRIM_INTERVAL_S (foundation/malloc.py), the receiver child after 1 s without messages.
    time.sleep(TRIM_INTERVAL_S + 1.5)
    stored = int(pipeline.registry.get_sample_value("liaowang_ingest_readings_accepted_total") or 0)
    step("ingest")
    me = _process_rss(os.getpid(), children=False)  # the receiver is added on its own below: count it once
    # diagnostic only (not the figure): how much of the RSS is heap freed but kept by glibc after ingest's peaks
    import ctypes
    gc.collect()
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    step("trimmed")
    receiver = pipeline.ingest.receiver_pid
    receiver_rss = _process_rss(receiver) if receiver else (0.0, 0.0)
    pipeline.stop()
    pub.disconnect()
    pub.loop_stop()
    shutil.rmtree(data_dir, ignore_errors=True)
    return {"sensors": len(fleet.sensors), "readings": total, "stored": stored, "imports_mb": baseline,
            "after_fleet_mb": after_fleet, "rss_mb": me[0], "rss_peak_mb": me[1],
            "receiver_rss_mb": receiver_rss[0], "receiver_rss_peak_mb": receiver_rss[1], "steps": steps}


def _rss(port: int, sites_n: int) -> dict:
    done = subprocess.run([sys.executable, __file__, "--rss-child", str(port), "--sites", str(sites_n)],
                          capture_output=True, text=True, timeout=900, cwd=ROOT)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if os.environ.get("HOTPATH_PROFILE"):
        print(done.stderr, file=sys.stderr)  # the child's per-step tracemalloc growths
    if not lines:
        raise RuntimeError(f"rss child failed: {done.stderr[-3000:]}")
    return json.loads(lines[-1])


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def run_memory(sites_n: int) -> dict:
    """Only the memory figures (``--memory-only``): the 100,000-sensor child and the demo-fleet child."""
    load_before, t0 = loadavg(), time.perf_counter()
    broker, port = start_broker()
    try:
        rss_big = _rss(port, sites_n)
        print(f"rss {sites_n * 100:,} sensors: {rss_big}", flush=True)
        rss_demo = _rss(port, 0)
        print(f"rss demo fleet: {rss_demo}", flush=True)
    finally:
        broker.stop()
    return {"date": now_utc(), "machine": machine(), "load_before": load_before, "load_after": loadavg(),
            "seconds": time.perf_counter() - t0, "rss_big": rss_big, "rss_demo": rss_demo}


def run(rate: int, seconds: float, sites_n: int, rounds: int) -> dict:
    load_before, t0 = loadavg(), time.perf_counter()
    broker, port = start_broker()
    try:
        results: dict[str, list[dict]] = {"bare": [], "liaowang": [], "liaowang_l0": []}
        measures = {"bare": bare_latency, "liaowang": liaowang_latency,
                    "liaowang_l0": lambda p, r, s: liaowang_latency(p, r, s, lateness_s=0.0)}
        names = list(measures)
        for rnd in range(rounds):
            for name in names[rnd % 3:] + names[:rnd % 3]:  # the order rotates each round
                result = measures[name](port, rate, seconds)
                results[name].append(result)
                print(f"round {rnd + 1} {name}: {result}", flush=True)
        bare, lw, lw0 = results["bare"], results["liaowang"], results["liaowang_l0"]
        rss_big = _rss(port, sites_n)
        print(f"rss {sites_n * 100:,} sensors: {rss_big}", flush=True)
        rss_demo = _rss(port, 0)
        print(f"rss demo fleet: {rss_demo}", flush=True)
    finally:
        broker.stop()
    return {"date": now_utc(), "machine": machine(), "load_before": load_before, "load_after": loadavg(),
            "seconds": time.perf_counter() - t0, "rate": rate, "feed_seconds": seconds, "rounds": rounds,
            "bare": bare, "liaowang": lw, "liaowang_l0": lw0, "rss_big": rss_big, "rss_demo": rss_demo}


def table(report: dict, command: str) -> str:
    def spread(rows: list[dict], key: str) -> str:
        values = [r[key] for r in rows if key in r]
        if not values:
            return "—"
        return f"{statistics.median(values):.1f} ms ({min(values):.1f}–{max(values):.1f})"

    lw, bare, big, demo = report["liaowang"], report["bare"], report["rss_big"], report["rss_demo"]
    lw0 = report["liaowang_l0"]
    p99 = statistics.median([r["p99_ms"] for r in lw if "p99_ms" in r] or [float("nan")])
    p99_0 = statistics.median([r["p99_ms"] for r in lw0 if "p99_ms" in r] or [float("nan")])
    total_big = big["rss_mb"] + big["receiver_rss_mb"]
    peak_big = big["rss_peak_mb"] + big["receiver_rss_peak_mb"]
    lines = [
        f"Command: `{command}` · {report['date']} · {report['machine']}",
        f"· load average (1, 5, 15 min) before {report['load_before']}, after {report['load_after']} · "
        f"{report['rounds']} interleaved rounds, {report['seconds']:.0f} s",
        "",
        f"Publish → visible at {report['rate']:,} readings/s for {report['feed_seconds']:.0f} s a round (single "
        f"readings, QoS 1, every sensor of the demo fleet, each gas sensor spiking once every {SPIKE_PERIOD_S:.0f} s), first "
        f"{WARM_UP_S:.0f} s left out. Median over rounds (min–max).",
        "",
        "| measure | bare paho subscriber: publish → received | Liaowang, shipped `rules.lateness_s: 1`: publish → "
        "alarm change on the API's SSE stream | Liaowang, `rules.lateness_s: 0` | target |",
        "| --- | --- | --- | --- | --- |",
        f"| samples a round | {statistics.median([r['count'] for r in bare]):,.0f} readings "
        f"| {statistics.median([r.get('count', 0) for r in lw]):,.0f} alarm changes "
        f"| {statistics.median([r.get('count', 0) for r in lw0]):,.0f} alarm changes | |",
        f"| p50 | {spread(bare, 'p50_ms')} | {spread(lw, 'p50_ms')} | {spread(lw0, 'p50_ms')} | |",
        f"| p95 | {spread(bare, 'p95_ms')} | {spread(lw, 'p95_ms')} | {spread(lw0, 'p95_ms')} | |",
        f"| p99 | {spread(bare, 'p99_ms')} | {spread(lw, 'p99_ms')} ({'met' if p99 <= 50 else 'missed'}) "
        f"| {spread(lw0, 'p99_ms')} ({'met' if p99_0 <= 50 else 'missed'}) | ≤ 50 ms |",
        f"| max | {spread(bare, 'max_ms')} | {spread(lw, 'max_ms')} | {spread(lw0, 'max_ms')} | |",
        f"| RSS of `liaowang run` (with its receiver), end of round | "
        f"| {statistics.median([r['rss_mb'] for r in lw]):.0f} MB (peak {max(r['rss_peak_mb'] for r in lw):.0f} MB) "
        f"| {statistics.median([r['rss_mb'] for r in lw0]):.0f} MB (peak {max(r['rss_peak_mb'] for r in lw0):.0f} MB) | |",
        "",
        "Memory: the `Pipeline` of `liaowang run` and its HTTP app (built, not served), after ingesting two readings "
        "of every sensor in batches of 100; the receiver child process's memory added.",
        "",
        "| fleet | imports | + fleet | after ingest (main + receiver) | peak (main + receiver) | target | met |",
        "| --- | --- | --- | --- | --- | --- | --- |",
        f"| {big['sensors']:,} sensors ({big['stored']:,} of {big['readings']:,} readings stored) | "
        f"{big['imports_mb']:.0f} MB | {big['after_fleet_mb'] - big['imports_mb']:.0f} MB | "
        f"{total_big:.0f} MB ({big['rss_mb']:.0f} + {big['receiver_rss_mb']:.0f}) | "
        f"{peak_big:.0f} MB ({big['rss_peak_mb']:.0f} + {big['receiver_rss_peak_mb']:.0f}) | ≤ 200 MB | "
        f"{'yes' if total_big <= 200 else 'no'} |",
        f"| demo fleet, {demo['sensors']:,} sensors (baseline) | {demo['imports_mb']:.0f} MB | "
        f"{demo['after_fleet_mb'] - demo['imports_mb']:.0f} MB | "
        f"{demo['rss_mb'] + demo['receiver_rss_mb']:.0f} MB ({demo['rss_mb']:.0f} + {demo['receiver_rss_mb']:.0f}) | "
        f"{demo['rss_peak_mb'] + demo['receiver_rss_peak_mb']:.0f} MB | | |",
    ]
    return "\n".join(lines)


def memory_table(report: dict, command: str) -> str:
    """The memory table alone (``--memory-only``)."""
    big, demo = report["rss_big"], report["rss_demo"]
    total_big = big["rss_mb"] + big["receiver_rss_mb"]
    peak_big = big["rss_peak_mb"] + big["receiver_rss_peak_mb"]
    return "\n".join([
        f"Command: `{command}` · {report['date']} · {report['machine']}",
        f"· load average (1, 5, 15 min) before {report['load_before']}, after {report['load_after']} · "
        f"{report['seconds']:.0f} s",
        "",
        "The `Pipeline` of `liaowang run` and its HTTP app (built, not served), after ingesting two readings "
        "of every sensor in batches of 100 and a quiet spell long enough for both processes' periodic heap trims "
        "(foundation/malloc.py); the receiver child process's memory added.",
        "",
        "| fleet | imports | + fleet | after ingest (main + receiver) | peak (main + receiver) | target | met |",
        "| --- | --- | --- | --- | --- | --- | --- |",
        f"| {big['sensors']:,} sensors ({big['stored']:,} of {big['readings']:,} readings stored) | "
        f"{big['imports_mb']:.0f} MB | {big['after_fleet_mb'] - big['imports_mb']:.0f} MB | "
        f"{total_big:.0f} MB ({big['rss_mb']:.0f} + {big['receiver_rss_mb']:.0f}) | "
        f"{peak_big:.0f} MB ({big['rss_peak_mb']:.0f} + {big['receiver_rss_peak_mb']:.0f}) | ≤ 200 MB | "
        f"{'yes' if total_big <= 200 else 'no'} |",
        f"| demo fleet, {demo['sensors']:,} sensors (baseline) | {demo['imports_mb']:.0f} MB | "
        f"{demo['after_fleet_mb'] - demo['imports_mb']:.0f} MB | "
        f"{demo['rss_mb'] + demo['receiver_rss_mb']:.0f} MB ({demo['rss_mb']:.0f} + {demo['receiver_rss_mb']:.0f}) | "
        f"{demo['rss_peak_mb'] + demo['receiver_rss_peak_mb']:.0f} MB | | |",
        "",
        "RSS after each step of the 100,000-sensor child (MB): "
        + ", ".join(f"{k} {v:.0f}" for k, v in big.get("steps", {}).items()),
    ])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=int, default=5000)
    parser.add_argument("--seconds", type=float, default=40.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--sites", type=int, default=1000, help="sites of 100 sensors for the RSS figure")
    parser.add_argument("--quick", action="store_true", help="4 s of feed, 1 round, 20 sites")
    parser.add_argument("--write", action="store_true", help="update docs/BENCHMARKS.md")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--memory-only", action="store_true", help="only the RSS figures (no latency rounds)")
    parser.add_argument("--profile", type=int, default=0, metavar="N",
                        help="with --memory-only: print the N biggest tracemalloc growths (by line) of each step")
    parser.add_argument("--publisher", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--rss-child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.publisher:
        paced_publisher(args.publisher, args.rate, args.seconds, _sensors())
        return
    if args.rss_child:
        print(json.dumps(rss_child(args.rss_child, args.sites)), flush=True)
        return
    if args.quick:
        args.seconds, args.rounds, args.sites = 4.0, 1, 20
    if args.profile:
        os.environ["HOTPATH_PROFILE"] = str(args.profile)  # read by the RSS child
    if args.memory_only:
        report = run_memory(args.sites)
        command = (".venv/bin/python bench/hotpath.py " + " ".join(sys.argv[1:])).strip()
        text = memory_table(report, command)
        print(text)
        if args.write:
            write_section(ROOT / "docs" / "BENCHMARKS.md", "hotpath-memory",
                          "## Memory with 100,000 sensors (issue 15 item 5)\n\n" + text)
        return
    report = run(args.rate, args.seconds, args.sites, args.rounds)
    command = (".venv/bin/python bench/hotpath.py " + " ".join(sys.argv[1:])).strip()
    text = table(report, command)
    print(text)
    out = args.json or ROOT / "bench" / "results" / f"hotpath-{'quick' if args.quick else 'full'}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1))
    if args.write:
        write_section(ROOT / "docs" / "BENCHMARKS.md", "hotpath",
                      "## Publish → alarm in the API, and memory with 100,000 sensors (issue 15)\n\n" + text)


if __name__ == "__main__":
    multiprocessing.set_start_method("spawn", force=True)
    main()

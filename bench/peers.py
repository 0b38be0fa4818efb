"""Side by side with the peers (issue 15 item 5): bare paho, Node-RED 4 and Liaowang on one broker.

Run:  .venv/bin/python bench/peers.py                 (full: 3 rounds, prints the table, writes JSON)
      .venv/bin/python bench/peers.py --quick         (smoke test: small feeds, 1 round)
      .venv/bin/python bench/peers.py --write         (also updates docs/BENCHMARKS.md)
      .venv/bin/python bench/peers.py --spike-every 0 (the same feeds without any alarm)
      .venv/bin/python bench/peers.py --profile FILE  (one Liaowang drain of the single feed, GIL-sampled
                                                       by py-spy if installed, else cProfile; --profile-batches)

Method. One mosquitto on loopback (Liaowang's embedded configuration: in-flight window 1,000,
queue unbounded). Each consumer has a persistent QoS 1 session on ``liaowang/v1/readings/#``.
For each feed and round, the same generated messages (docs/contract.md readings; ``single``: one
reading a message on ``…/{site}/{sensor}``; ``batch``: 100 readings a message on ``…/{site}``) are
preloaded once, in event-time order, by one publisher process with flow control (TRAPS.md: no
``mosquitto_pub -l``, no unbounded paho backlog) while no consumer is connected, so the broker
queues one copy for every consumer. One publisher, not several: slices from parallel publishers
interleave out of event-time order, and Liaowang dead-letters every reading that arrives more than
its lateness allowance (1 s) behind the newest — a third of the feed, a cost no real gateway causes. Then the consumers drain their copy one after the other, each in its own
process, in an order that rotates every round:

- ``bare``: a paho subscriber that only counts (the ceiling of a Python MQTT client);
- ``nodered``: Node-RED 4 headless (``mqtt in`` → ``json`` → threshold ``function``, no storage),
  its own settings, user dir and generated flow in a temp folder, HTTP on loopback; the function
  counts messages and readings and an ``http in`` endpoint reports the counters;
- ``liaowang``: the real ``Pipeline`` as ``liaowang run`` composes it (SQLite in a fresh data dir,
  the demo rule packs, alerting) — the stale rule is quieted because the feed's timestamps are old.

A drain's rate is consumer-side: messages (and readings) counted, divided by the time from the
first message the consumer processed to the last (connection and start-up are excluded). A drain
is complete only when every message and every reading was counted; one that is not complete
within its time limit is reported as such. RSS peak is the consumer process's ``VmHWM``. Every
few ticks all combustible-gas sensors spike to 60 %LEL and back, so both Node-RED's function and
Liaowang's rules raise alarms (nobody acknowledges them, so each spike re-enters the same alert).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import ROOT, create_session, free_port, machine, now_utc, preload, start_broker, write_section  # noqa: E402

CONSUMERS = ("bare", "nodered", "liaowang")
TOPIC = "liaowang/v1/readings/#"
SPIKE_EVERY = 50        # by default every 50th tick all gas sensors read 60 %LEL (Liaowang's and Node-RED's threshold: 25)
GAS_LIMIT = 25.0
NODE_RED_DIR = Path(os.environ.get("LIAOWANG_NODE_RED", Path.home() / ".cache" / "liaowang-bench" / "node-red"))
NORMAL = {"combustible_gas": 1.0, "h2s": 1.0, "nh3": 1.0, "co": 1.0, "cl2": 0.1, "tank_level": 6.0,
          "temperature": 25.0, "pressure": 0.38, "flow": 60.0, "relative_humidity": 50.0, "wind_speed": 10.0,
          "rain": 0.0, "smoke": 0.2, "flame": 0.01, "o2": 20.9, "esd_state": 0.0, "interlock_bypass": 0.0}
"""A quiet value for every quantity of the demo fleet: the feed raises no alarm but the gas spikes."""


# -- the feed -------------------------------------------------------------------------------------

def _value(sensor, tick: int, i: int, spike_every: int) -> float:
    if spike_every and sensor.quantity == "combustible_gas" and tick % spike_every == spike_every - 1:
        return 60.0
    return NORMAL[sensor.quantity] + (i % 7) * 0.01


def single_feed(fleet, n: int, base: float, spike_every: int = SPIKE_EVERY) -> list[tuple[str, bytes]]:
    """``n`` one-reading messages, round-robin over the fleet, one tick (1 s of event time) per lap."""
    sensors = sorted(fleet.sensors.values(), key=lambda s: s.id)
    out = []
    for i in range(n):
        s, tick = sensors[i % len(sensors)], i // len(sensors)
        out.append((f"liaowang/v1/readings/{s.site_id}/{s.id}",
                    orjson.dumps({"sensor_id": s.id, "ts": base + tick, "value": _value(s, tick, i, spike_every)})))
    return out


def batch_feed(fleet, n_messages: int, per_message: int, base: float,
               spike_every: int = SPIKE_EVERY) -> list[tuple[str, bytes]]:
    """``n_messages`` batches of ``per_message`` readings of one site (its sensors repeated 1 ms apart)."""
    by_site: dict[str, list] = {}
    for s in sorted(fleet.sensors.values(), key=lambda s: s.id):
        by_site.setdefault(s.site_id, []).append(s)
    sites = sorted(by_site)
    out = []
    for m in range(n_messages):
        site, tick = sites[m % len(sites)], m // len(sites)
        sensors = by_site[site]
        readings = [{"sensor_id": sensors[k % len(sensors)].id, "ts": base + tick + k // len(sensors) * 0.001,
                     "value": _value(sensors[k % len(sensors)], tick, k, spike_every)} for k in range(per_message)]
        out.append((f"liaowang/v1/readings/{site}", orjson.dumps({"site_id": site, "readings": readings})))
    return out


def load_config_for_bench():
    from foundation.config import load_config

    config = load_config(ROOT / "config")
    rules = config.settings.rules.model_copy(update={"stale_periods": 1e9})
    return config.model_copy(update={"settings": config.settings.model_copy(update={"rules": rules})})


# -- consumers run as child processes: `peers.py --consumer KIND ...` prints one JSON line ----------

def _rss_peak_mb(pid: int | str = "self") -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def consume_bare(port: int, client_id: str, messages: int, timeout: float, bulk: bool = False) -> dict:
    """The bare paho subscriber's drain (stock paho; ``bulk``: reading its socket as Liaowang's receiver does)."""
    from bench.common import client as own_client

    count, first, last = 0, [0.0], [0.0]
    done = threading.Event()

    def on_message(client, userdata, msg):
        nonlocal count
        now = time.perf_counter()
        if count == 0:
            first[0] = now
        count += 1
        last[0] = now
        if count >= messages:
            done.set()

    sub = own_client(client_id, clean_session=False)
    if bulk:
        from ingest.receiver_child import BulkReader
        BulkReader(sub).install()
    sub.on_message = on_message
    sub.connect("127.0.0.1", port)
    sub.loop_start()
    done.wait(timeout)
    sub.disconnect()
    sub.loop_stop()
    return {"messages": count, "readings": None, "seconds": last[0] - first[0], "rss_peak_mb": _rss_peak_mb()}


def consume_liaowang(port: int, client_id: str, messages: int, readings: int, timeout: float,
                     profile: Path | None = None) -> dict:
    from bench.common import login
    from foundation.logs import configure_logging
    from liaowang.pipeline import Pipeline

    configure_logging("warning")
    config = load_config_for_bench()
    mqtt_settings = config.settings.mqtt.model_copy(update={"port": port, "client_id": client_id, **login()})
    config = config.model_copy(update={"settings": config.settings.model_copy(update={"mqtt": mqtt_settings})})
    profiles = _profile_threads() if profile else None
    data_dir = Path(tempfile.mkdtemp(prefix="lw-peers-"))
    pipeline = Pipeline(config, data_dir)
    value = pipeline.registry.get_sample_value
    pipeline.start()
    deadline = time.perf_counter() + timeout
    first = None
    while time.perf_counter() < deadline:
        now = time.perf_counter()
        if first is None and (value("liaowang_ingest_messages_total") or 0) > 0:
            first = now
        if (value("liaowang_ingest_readings_accepted_total") or 0) >= readings:
            break
        time.sleep(0.002)
    last = time.perf_counter()
    got_messages = int(value("liaowang_ingest_messages_total") or 0)
    got_readings = int(value("liaowang_ingest_readings_accepted_total") or 0)
    # the receiver child process (ingest/receiver.py) is Liaowang's memory too: its peak is added
    receiver = pipeline.ingest.receiver_pid
    receiver_mb = _rss_peak_mb(receiver) if receiver is not None else 0.0
    pipeline.stop()
    shutil.rmtree(data_dir, ignore_errors=True)
    if profiles is not None:
        _dump_profiles(profiles, profile)
    return {"messages": got_messages, "readings": got_readings, "seconds": last - (first or last),
            "rss_peak_mb": _rss_peak_mb() + receiver_mb, "receiver_rss_peak_mb": receiver_mb}


def _profile_threads() -> list:
    """Run every thread started from now on under its own cProfile (cProfile sees one thread only)."""
    import cProfile

    profiles: list = []
    original = threading.Thread.run

    def run(self):
        prof = cProfile.Profile()
        profiles.append(prof)
        prof.enable()
        try:
            original(self)
        finally:
            prof.disable()

    threading.Thread.run = run
    return profiles


def _dump_profiles(profiles: list, path: Path) -> None:
    import pstats

    stats = None
    for prof in profiles:
        prof.disable()
        try:
            stats = pstats.Stats(prof) if stats is None else stats.add(prof) or stats
        except TypeError:  # a thread that never ran profiled code
            continue
    if stats is not None:
        stats.dump_stats(str(path))


# -- Node-RED -------------------------------------------------------------------------------------

def node_red_js(directory: Path = NODE_RED_DIR) -> Path | None:
    """Node-RED's ``red.js`` under ``directory`` (``npm install --prefix DIR node-red@4``), if installed with node."""
    red = directory / "node_modules" / "node-red" / "red.js"
    return red if red.exists() and shutil.which("node") else None


def _flow(port: int, client_id: str, thresholds: dict[str, float]) -> list[dict]:
    count_js = """
const s = global.get('bench');
const p = msg.payload;
const now = Date.now();
if (s.messages === 0) s.first = now;
let alarms = [];
if (Array.isArray(p.readings)) {
    s.readings += p.readings.length;
    for (const r of p.readings) {
        const t = T[r.sensor_id];
        if (t !== undefined && r.value >= t) alarms.push(r);
    }
} else {
    s.readings += 1;
    const t = T[p.sensor_id];
    if (t !== undefined && p.value >= t) alarms.push(p);
}
s.messages += 1;
s.alarms += alarms.length;
s.last = now;
return alarms.length ? {payload: alarms, topic: 'alarm'} : null;
"""
    return [
        {"id": "tab1", "type": "tab", "label": "bench"},
        {"id": "broker1", "type": "mqtt-broker", "name": "mosquitto", "broker": "127.0.0.1", "port": str(port),
         "clientid": client_id, "autoConnect": True, "usetls": False, "protocolVersion": "4", "keepalive": "60",
         "cleansession": False, "autoUnsubscribe": False,
         "birthTopic": "", "closeTopic": "", "willTopic": ""},
        {"id": "in1", "type": "mqtt in", "z": "tab1", "name": "", "topic": TOPIC, "qos": "1", "datatype": "utf8",
         "broker": "broker1", "nl": False, "rap": True, "rh": 0, "inputs": 0, "x": 100, "y": 100, "wires": [["json1"]]},
        {"id": "json1", "type": "json", "z": "tab1", "name": "", "property": "payload", "action": "obj",
         "pretty": False, "x": 300, "y": 100, "wires": [["fn1"]]},
        {"id": "fn1", "type": "function", "z": "tab1", "name": "threshold",
         "func": f"const T = {json.dumps(thresholds)};\n{count_js}",
         "outputs": 1, "timeout": 0, "noerr": 0,
         "initialize": "global.set('bench', {messages: 0, readings: 0, alarms: 0, first: 0, last: 0});",
         "finalize": "", "libs": [], "x": 500, "y": 100, "wires": [[]]},
        {"id": "http1", "type": "http in", "z": "tab1", "name": "", "url": "/count", "method": "get", "upload": False,
         "x": 100, "y": 200, "wires": [["fn2"]]},
        {"id": "fn2", "type": "function", "z": "tab1", "name": "report",
         "func": "msg.payload = global.get('bench'); return msg;", "outputs": 1, "timeout": 0, "noerr": 0,
         "initialize": "", "finalize": "", "libs": [], "x": 300, "y": 200, "wires": [["out1"]]},
        {"id": "out1", "type": "http response", "z": "tab1", "name": "", "statusCode": "", "headers": {},
         "x": 500, "y": 200, "wires": []},
    ]


class NodeRed:
    """Node-RED 4 headless in a temp user dir: settings, flow and credentials generated here."""

    def __init__(self, red_js: Path, mqtt_port: int, client_id: str, thresholds: dict[str, float]) -> None:
        self.red_js, self.http_port = red_js, free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="lw-nodered-"))
        (self.dir / "flows.json").write_text(json.dumps(_flow(mqtt_port, client_id, thresholds)))
        (self.dir / "flows_cred.json").write_text(json.dumps({"broker1": {
            "user": os.environ["LIAOWANG_MQTT__USERNAME"], "password": os.environ["LIAOWANG_MQTT__PASSWORD"]}}))
        (self.dir / "settings.js").write_text(f"""module.exports = {{
    uiHost: "127.0.0.1", uiPort: {self.http_port}, flowFile: "flows.json", credentialSecret: false,
    userDir: {json.dumps(str(self.dir))}, httpAdminRoot: false, disableEditor: true,
    logging: {{ console: {{ level: "warn", metrics: false, audit: false }} }},
    telemetry: {{ enabled: false }}, diagnostics: {{ enabled: false }}, runtimeState: {{ enabled: false }},
    externalModules: {{ autoInstall: false }},
}};
""")
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.log = open(self.dir / "node-red.log", "wb")
        self.proc = subprocess.Popen(["node", str(self.red_js), "--settings", str(self.dir / "settings.js"),
                                      "--userDir", str(self.dir)], stdout=self.log, stderr=subprocess.STDOUT,
                                     cwd=self.dir)

    def counters(self) -> dict | None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}/count", timeout=2) as answer:
                return json.loads(answer.read())
        except (OSError, ValueError):
            return None

    def stop(self) -> float:
        """Stop Node-RED (SIGTERM, it disconnects keeping its session); return its RSS peak in MB."""
        peak = _rss_peak_mb(self.proc.pid) if self.proc else float("nan")
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)
        return peak


def consume_nodered(red_js: Path, port: int, client_id: str, messages: int, readings: int, timeout: float,
                    thresholds: dict[str, float]) -> dict:
    node = NodeRed(red_js, port, client_id, thresholds)
    node.start()
    deadline = time.perf_counter() + timeout + 30  # Node-RED needs a few seconds to start
    counters = None
    try:
        while time.perf_counter() < deadline and node.proc.poll() is None:
            counters = node.counters() or counters
            if counters and counters["messages"] >= messages:
                break
            time.sleep(0.05)
        time.sleep(0.2)
        counters = node.counters() or counters
    finally:
        peak = node.stop()
    if not counters:
        return {"messages": 0, "readings": 0, "seconds": 0.0, "rss_peak_mb": peak, "error": "no counters from Node-RED"}
    return {"messages": counters["messages"], "readings": counters["readings"], "alarms": counters["alarms"],
            "seconds": (counters["last"] - counters["first"]) / 1000, "rss_peak_mb": peak}


def gas_thresholds(fleet) -> dict[str, float]:
    return {s.id: GAS_LIMIT for s in fleet.sensors.values() if s.quantity == "combustible_gas"}


# -- the run --------------------------------------------------------------------------------------

def _child(kind: str, port: int, client_id: str, messages: int, readings: int, timeout: float,
           profile: Path | None = None) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--consumer", kind, "--port", str(port),
           "--client-id", client_id, "--expect-messages", str(messages), "--expect-readings", str(readings),
           "--timeout", str(timeout)]
    if profile:
        cmd += ["--profile-out", str(profile)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout + 60, cwd=ROOT)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if not lines:
        return {"messages": 0, "readings": 0, "seconds": 0.0, "rss_peak_mb": float("nan"),
                "error": done.stderr[-2000:]}
    got = json.loads(lines[-1])
    got["stderr_tail"] = done.stderr[-3000:]  # the consumer's own log: why a drain was incomplete
    return got


def measure(kind: str, port: int, feed: str, n: int, per_message: int, timeout: float, thresholds,
            red_js: Path | None) -> dict:
    client_id = f"peers-{kind}"
    readings = n * per_message
    if kind == "nodered":
        got = consume_nodered(red_js, port, client_id, n, readings, timeout, thresholds)
    else:
        got = _child(kind, port, client_id, n, readings, timeout)
    if got.get("readings") is None:  # the bare subscriber counts messages, it does not parse them
        got["readings"] = got["messages"] * per_message
    seconds = got["seconds"] or float("nan")
    got.update(consumer=kind, feed=feed, expected_messages=n, expected_readings=readings,
               complete=got["messages"] == n and got["readings"] == readings,
               msgs_per_s=got["messages"] / seconds, readings_per_s=got["readings"] / seconds)
    return got


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def run(consumers=CONSUMERS, single: int = 60_000, batches: int = 10_000, rounds: int = 3,
        timeout: float = 180.0, log=print, spike_every: int = SPIKE_EVERY) -> dict:
    """Measure ``consumers`` on both feeds over ``rounds`` interleaved rounds; return the results."""
    config = load_config_for_bench()
    fleet = config.fleet
    red_js = node_red_js() if "nodered" in consumers else None
    if "nodered" in consumers and red_js is None:
        log(f"Node-RED not found under {NODE_RED_DIR} (npm install --prefix DIR node-red@4): skipped")
        consumers = tuple(c for c in consumers if c != "nodered")
    base = time.time() - 20 * 86400
    feeds = {"single": (single_feed(fleet, single, base, spike_every), 1),
             "batch": (batch_feed(fleet, batches, 100, base + 10 * 86400, spike_every), 100)}
    thresholds = gas_thresholds(fleet)
    broker, port = start_broker()
    results: list[dict] = []
    load_before = loadavg()
    t0 = time.perf_counter()
    try:
        for r in range(rounds):
            for feed, (messages, per_message) in feeds.items():
                for kind in consumers:
                    create_session(port, f"peers-{kind}", TOPIC)
                published = preload(port, messages, processes=1)
                order = list(consumers[r % len(consumers):]) + list(consumers[:r % len(consumers)])
                for kind in order:
                    got = measure(kind, port, feed, len(messages), per_message, timeout, thresholds, red_js)
                    got.update(round=r + 1, preload_s=published)
                    results.append(got)
                    log(f"round {r + 1} {feed:6} {kind:8} {got['messages']:>8,} msgs {got['msgs_per_s']:>10,.0f} msg/s "
                        f"{got['readings_per_s']:>11,.0f} readings/s  RSS {got['rss_peak_mb']:.0f} MB"
                        f"{'' if got['complete'] else '  INCOMPLETE'}")
    finally:
        broker.stop()
    return {"date": now_utc(), "machine": machine(), "load_before": load_before, "load_after": loadavg(),
            "seconds": time.perf_counter() - t0, "rounds": rounds, "single_messages": single,
            "batch_messages": batches, "spike_every": spike_every, "consumers": list(consumers), "results": results,
            "node_red": _node_red_version(red_js)}


def _node_red_version(red_js: Path | None) -> str | None:
    if red_js is None:
        return None
    return json.loads((red_js.parent / "package.json").read_text())["version"]


def summarize(report: dict) -> dict:
    """Median rate per (feed, consumer), its range over rounds, and per-round ratios Liaowang/peer."""
    out: dict = {}
    for feed in ("single", "batch"):
        rows = [r for r in report["results"] if r["feed"] == feed]
        for kind in report["consumers"]:
            mine = [r for r in rows if r["consumer"] == kind]
            if not mine:
                continue
            key = "msgs_per_s" if feed == "single" else "readings_per_s"
            rates = [r[key] for r in mine]
            out[(feed, kind)] = {"median": statistics.median(rates), "min": min(rates), "max": max(rates),
                                 "rss_min": min(r["rss_peak_mb"] for r in mine),
                                 "rss_max": max(r["rss_peak_mb"] for r in mine),
                                 "complete": all(r["complete"] for r in mine)}
        for peer in ("bare", "nodered"):
            key = "msgs_per_s" if feed == "single" else "readings_per_s"
            ratios = []
            for rnd in range(1, report["rounds"] + 1):
                a = [r[key] for r in rows if r["round"] == rnd and r["consumer"] == "liaowang"]
                b = [r[key] for r in rows if r["round"] == rnd and r["consumer"] == peer]
                if a and b:
                    ratios.append(a[0] / b[0])
            if ratios:
                out[(feed, f"ratio_{peer}")] = {"median": statistics.median(ratios), "min": min(ratios),
                                               "max": max(ratios)}
    return out


def table(report: dict, command: str) -> str:
    s = summarize(report)

    def cell(feed: str, kind: str) -> str:
        if (feed, kind) not in s:
            return "—"
        v = s[(feed, kind)]
        unit = "msg/s" if feed == "single" else "readings/s"
        flag = "" if v["complete"] else " (INCOMPLETE)"
        return f"{v['median']:,.0f} {unit} ({v['min']:,.0f}–{v['max']:,.0f}){flag}"

    def ratio(feed: str, peer: str) -> str:
        v = s.get((feed, f"ratio_{peer}"))
        return "—" if v is None else f"{v['median']:.2f} × ({v['min']:.2f}–{v['max']:.2f})"

    def rss(feed: str, kind: str) -> str:
        v = s.get((feed, kind))
        return "—" if v is None else f"{v['rss_min']:.0f}–{v['rss_max']:.0f} MB"

    lines = [
        f"Command: `{command}` · {report['date']} · {report['machine']} · Node-RED {report['node_red'] or 'not run'}",
        f"· load average (1, 5, 15 min) before {report['load_before']}, after {report['load_after']} · "
        f"{report['rounds']} interleaved rounds, {report['seconds']:.0f} s",
        "",
        f"Feeds: {report['single_messages']:,} single-reading messages; {report['batch_messages']:,} messages of 100 "
        "readings; " + (f"every {report['spike_every']}th tick (1 s of event time) every gas sensor reads 60 %LEL "
                        "(alarms raised; the value returns to normal the next tick)" if report["spike_every"] else "no alarm ever raised")
        + ". QoS 1, preloaded into each consumer's persistent session, drained one consumer at a time "
        "(order rotating each round). Median over rounds (min–max); ratios are Liaowang ÷ peer within each "
        "round, median (min–max).",
        "",
        "| feed | bare paho subscriber (counts only) | Node-RED 4 (json + threshold function) | "
        "Liaowang (SQLite + rules + alerting) | Liaowang ÷ bare | Liaowang ÷ Node-RED |",
        "| --- | --- | --- | --- | --- | --- |",
        f"| single readings | {cell('single', 'bare')} | {cell('single', 'nodered')} | {cell('single', 'liaowang')} "
        f"| {ratio('single', 'bare')} | {ratio('single', 'nodered')} |",
        f"| batches of 100 | {cell('batch', 'bare')} | {cell('batch', 'nodered')} | {cell('batch', 'liaowang')} "
        f"| {ratio('batch', 'bare')} | {ratio('batch', 'nodered')} |",
        f"| RSS peak, single readings | {rss('single', 'bare')} | {rss('single', 'nodered')} "
        f"| {rss('single', 'liaowang')} | | |",
        f"| RSS peak, batches of 100 | {rss('batch', 'bare')} | {rss('batch', 'nodered')} "
        f"| {rss('batch', 'liaowang')} | | |",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke test: 2,000 single, 100 batches, 1 round")
    parser.add_argument("--single", type=int, default=60_000, help="single-reading messages a round")
    parser.add_argument("--batches", type=int, default=10_000, help="messages of 100 readings a round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--spike-every", type=int, default=SPIKE_EVERY,
                        help="every Nth tick all gas sensors read 60 %%LEL and so raise alarms (0: never)")
    parser.add_argument("--consumers", default=",".join(CONSUMERS), help="comma-separated: bare,nodered,liaowang")
    parser.add_argument("--timeout", type=float, default=180.0, help="seconds a drain may take at most")
    parser.add_argument("--json", type=Path, default=None, help="where to write the results (default bench/results/)")
    parser.add_argument("--write", action="store_true", help="update docs/BENCHMARKS.md")
    parser.add_argument("--profile-batches", action="store_true", help="with --profile: the batch feed instead")
    parser.add_argument("--profile", type=Path, nargs="?", const=Path("peers-liaowang.prof"),
                        help="profile one Liaowang drain into this file (py-spy --gil if installed, else cProfile)")
    # a consumer child process
    parser.add_argument("--consumer", choices=("bare", "liaowang"), help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--client-id", help=argparse.SUPPRESS)
    parser.add_argument("--expect-messages", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--expect-readings", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--profile-out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.consumer == "bare":
        print(json.dumps(consume_bare(args.port, args.client_id, args.expect_messages, args.timeout)))
        return
    if args.consumer == "liaowang":
        print(json.dumps(consume_liaowang(args.port, args.client_id, args.expect_messages, args.expect_readings,
                                          args.timeout, args.profile_out)))
        return
    if args.profile:
        profile_run(args.profile, args.single, args.spike_every, args.batches if args.profile_batches else 0)
        return
    if args.quick:
        args.single, args.batches, args.rounds = 2_000, 100, 1
    consumers = tuple(c.strip() for c in args.consumers.split(",") if c.strip())
    report = run(consumers, args.single, args.batches, args.rounds, args.timeout, spike_every=args.spike_every)
    command = ".venv/bin/python bench/peers.py " + " ".join(sys.argv[1:])
    text = table(report, command.strip())
    print(text)
    out = args.json or ROOT / "bench" / "results" / f"peers-{'quick' if args.quick else 'full'}-spike{args.spike_every}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1))
    print(f"results: {out}")
    if args.write:
        if args.spike_every == SPIKE_EVERY:
            write_section(ROOT / "docs" / "BENCHMARKS.md", "peers", "## Side by side with the peers (issue 15)\n\n"
                          "### With alarms (the default feed)\n\n" + text)
        else:
            write_section(ROOT / "docs" / "BENCHMARKS.md", f"peers-spike{args.spike_every}",
                          f"### {'Without alarms' if not args.spike_every else f'Gas spikes every {args.spike_every} ticks'}"
                          "\n\n" + text)


def profile_run(path: Path, single: int, spike_every: int = SPIKE_EVERY, batches: int = 0) -> None:
    """One Liaowang drain of the single feed (or, with ``batches``, the batch feed) under a profiler;
    print the top costs with their share.

    With py-spy installed (``pip install py-spy``): sampled GIL-holding stacks of the pipeline's threads
    (the harness's main thread, imports and start-up excluded), written to ``path`` as raw
    collapsed stacks. Without it: cProfile in every pipeline thread (wall time, waits included).
    """
    config = load_config_for_bench()
    per_message = 100 if batches else 1
    messages = (batch_feed(config.fleet, batches, 100, time.time() - 20 * 86400, spike_every) if batches
                else single_feed(config.fleet, single, time.time() - 20 * 86400, spike_every))
    broker, port = start_broker()
    spy = shutil.which("py-spy") or (Path(sys.executable).parent / "py-spy")
    spy = str(spy) if Path(spy).exists() else None
    try:
        create_session(port, "peers-liaowang", TOPIC)
        preload(port, messages, processes=1)
        if spy:
            cmd = [spy, "record", "--threads", "--format", "raw", "--gil", "-r", "200", "-o", str(path.resolve()), "--",
                   sys.executable, str(Path(__file__).resolve()), "--consumer", "liaowang", "--port", str(port),
                   "--client-id", "peers-liaowang", "--expect-messages", str(len(messages)),
                   "--expect-readings", str(len(messages) * per_message), "--timeout", "300"]
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=400, cwd=ROOT)
            got = json.loads([line for line in done.stdout.splitlines() if line.startswith("{")][-1])
        else:
            got = _child("liaowang", port, "peers-liaowang", len(messages), len(messages) * per_message, 300,
                         profile=path.resolve())
    finally:
        broker.stop()
    print(f"{got['messages']:,} messages in {got['seconds']:.2f} s under the profiler "
          f"({got['messages'] / max(got['seconds'], 1e-9):,.0f} msg/s)")
    if spy:
        print(collapsed_report(path.resolve()))
    else:
        import pstats

        stats = pstats.Stats(str(path.resolve()))
        stats.sort_stats("tottime").print_stats(30)
        stats.sort_stats("cumulative").print_stats(40)


def collapsed_report(path: Path, top: int = 25) -> str:
    """Shares of GIL-holding samples in py-spy's raw output: by thread, by function (self), by function (inclusive).

    Sampled with ``--gil``: only the thread holding the GIL is counted, which is the resource the
    pipeline's threads share (a thread in ``select`` or a lock wait does not hold it).
    """
    import re
    from collections import Counter

    def name(frame: str) -> str:  # "func (path/file.py:123)" -> "func (file.py)": lines of one function add up
        m = re.match(r"(.*) \((.*?)(?::\d+)?\)$", frame.strip())
        if not m:
            return frame.strip()
        where = m.group(2)
        parts = where.split("/")
        return f"{m.group(1)} ({'/'.join(parts[-2:]) if len(parts) > 1 else where})"

    threads, self_, incl = Counter(), Counter(), Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        thread = frames[0].partition(": ")[2]  # "thread (1234): ingest-decode"
        if thread == "MainThread" or thread == "":
            continue  # imports, start-up and the harness's polling
        n = int(count)
        total += n
        body = [name(f) for f in frames[1:]
                if not f.startswith(("Thread._bootstrap", "Thread.run (", "Supervisor._run ("))] or ["(thread start)"]
        threads[thread] += n
        self_[body[-1]] += n
        for f in set(body):
            incl[f] += n
    lines = [f"{total:,} GIL-holding samples in the pipeline's threads", "", "by thread:"]
    lines += [f"  {100 * c / total:5.1f} %  {f}" for f, c in threads.most_common(10)]
    lines += ["", "self (where the CPU was):"] + [f"  {100 * c / total:5.1f} %  {f}" for f, c in self_.most_common(top)]
    lines += ["", "inclusive:"] + [f"  {100 * c / total:5.1f} %  {f}" for f, c in incl.most_common(top * 2)]
    return "\n".join(lines)


if __name__ == "__main__":
    main()

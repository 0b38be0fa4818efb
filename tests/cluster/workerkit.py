"""Test kit of the scaled-out proof: `liaowang worker` subprocesses, a deterministic feed over the NATS MQTT
listener, and the single-process reference it must agree with."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import nats
import orjson
import paho.mqtt.client as mqtt

from foundation.config import Config
from foundation.domain import Reading
from foundation.mqttclient import BoundedPublisher

from .natscluster import NatsCluster

ROOT = Path(__file__).resolve().parents[2]
TIME_RULES = ("sensor.stale", "site.comm_loss", "site.not_reporting")
"""Rules driven by the wall clock (silence), not by the feed: left out of the equivalence check."""


def _about_the_feed(rule_id: str) -> bool:
    """Not a wall-clock rule and not an alarm about Liaowang itself (``_system``: a stage restarted when a NATS
    node died, a spool filling) — those differ between a cluster under attack and one quiet process."""
    return rule_id not in TIME_RULES and not rule_id.startswith(("system.", "pipeline."))


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def untimed_config(root: Path) -> Path:
    """The demo configuration with alarm deadlines and repeats of a day: the feed lies minutes in the past, so
    the workers' escalation timers would otherwise fire on the wall clock, which the reference (fed, never
    ticked) does not — and an escalation widens who later news goes to. The timers' own proof is
    tests/cluster/test_runner_timers.py."""
    target = root / "config-untimed"
    if not target.exists():
        shutil.copytree(ROOT / "config", target)
        alerting = target / "alerting.yaml"
        text = re.sub(r"(?m)^(ack_deadline_s|repeat_s):.*$", r"\1: {red: 86400, orange: 86400, yellow: 86400}",
                      alerting.read_text())
        alerting.write_text(text)
    return target


class WorkerProcess:
    """One ``liaowang worker`` subprocess (its log in ``root/NAME.log``)."""

    def __init__(self, name: str, root: Path, cluster: NatsCluster, database_url: str, ttl_s: float = 3.0) -> None:
        self.name = name
        self.root = root
        self.health_port = _free_port()
        creds = root / "credentials.json"
        if not creds.exists():
            creds.write_text(json.dumps({"servers": list(cluster.servers), "partitions": cluster.partitions,
                                         "passwords": {"worker": cluster.plan.credentials.worker}}))
        env = {**os.environ, "LIAOWANG_MQTT__PORT": str(cluster.nodes[0].mqtt_port),
               "LIAOWANG_RULES__SNAPSHOT_EVERY_S": "2",  # takeovers resume from a recent stream position
               "LIAOWANG_MQTT__USERNAME": "worker", "LIAOWANG_MQTT__PASSWORD": cluster.plan.credentials.worker,
               "PYTHONPATH": str(ROOT)}
        self.log_path = root / f"{name}.log"
        self.argv = [sys.executable, "-m", "liaowang.cli", "worker", "--config", str(untimed_config(root)),
                     "--data-dir", str(root / name), "--credentials", str(creds), "--database-url", database_url,
                     "--lease-ttl-s", str(ttl_s), "--health-port", str(self.health_port), "--owner", name]
        self.env = env
        self.proc: subprocess.Popen | None = None

    def start(self) -> "WorkerProcess":
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.argv, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        return self

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, sig)

    def kill(self) -> None:
        """kill -9."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def stop(self, timeout: float = 30) -> int | None:
        """SIGTERM (hand partitions back), then kill if it does not exit."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGCONT)
        self.proc.terminate()
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def health(self) -> dict | None:
        import urllib.error
        import urllib.request

        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.health_port}/healthz", timeout=2) as answer:
                return json.loads(answer.read())
        except urllib.error.HTTPError as err:
            return json.loads(err.read())
        except OSError:
            return None


def holders(cluster: NatsCluster) -> dict[int, str | None]:
    """partition → owner named by its lease key (None: free or never taken)."""
    async def work(nc, js):
        kv = await js.key_value("LW_LEASES")
        out = {}
        for p in range(cluster.partitions):
            try:
                entry = await kv.get(f"partition.{p}")
                out[p] = orjson.loads(entry.value).get("owner")
            except nats.js.errors.KeyNotFoundError:
                out[p] = None
        return out
    return cluster.run(work)


@dataclass(frozen=True)
class Feed:
    """Readings, in publishing order (per sensor in time order)."""

    readings: list[Reading]

    def messages(self) -> list[tuple[str, bytes]]:
        return [(f"liaowang/v1/readings/{r.site_id}/{r.sensor_id}",
                 orjson.dumps({"sensor_id": r.sensor_id, "ts": r.ts, "value": r.value})) for r in self.readings]

    def batches(self, size: int = 100) -> list[tuple[str, bytes]]:
        """The same readings as site batches of up to ``size`` (the contract's batch topic), in order per site."""
        by_site: dict[str, list[Reading]] = {}
        for r in self.readings:
            by_site.setdefault(r.site_id, []).append(r)
        out = []
        for site, readings in by_site.items():
            for i in range(0, len(readings), size):
                out.append((f"liaowang/v1/readings/{site}", orjson.dumps({"site_id": site, "readings": [
                    {"sensor_id": r.sensor_id, "ts": r.ts, "value": r.value} for r in readings[i:i + size]]})))
        return out


def gas_feed(config: Config, start: float, steps: int = 60, excursion_every: int = 6) -> Feed:
    """Every point gas detector (``*-GD-*``) of the demo fleet, one reading each ``period_s``, ``steps`` steps
    from ``start``: baseline 5 %LEL; every ``excursion_every``-th detector climbs past both levels (45 %LEL)
    in the middle third and falls back. Deterministic: no randomness at all.

    Every sixth detector keeps each county under the flood limit (> 10 new alarms in 10 min per duty desk):
    flood grouping counts a county's raises, and a county's sites lie in several partitions, so a worker
    sees only its partitions' share (a known difference from the single process)."""
    from foundation.domain import Quality

    fleet = config.fleet
    sensors = sorted((s for s in fleet.sensors.values() if "-GD-" in s.id and fleet.setpoints_for(s)),
                     key=lambda s: s.id)
    out = []
    for i in range(steps):
        for n, sensor in enumerate(sensors):
            high = n % excursion_every == 0 and steps // 3 <= i < 2 * steps // 3
            value = 45.0 if high else 5.0
            out.append(Reading(sensor.id, sensor.site_id, start + i * sensor.period_s, value, Quality.GOOD))
    return Feed(out)


def publish_mqtt(cluster: NatsCluster, node: int, messages: list[tuple[str, bytes]], client_id: str = "feed",
                 timeout: float = 120) -> float:
    """Publish QoS 1 with flow control to node ``node``'s MQTT listener as the gateway; returns seconds taken."""
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=True)
    client.username_pw_set("gateway", cluster.mqtt_password())
    client.connect(cluster.nodes[node].host, cluster.nodes[node].mqtt_port)
    client.loop_start()
    out = BoundedPublisher(client, max_outstanding=500)
    t0 = time.perf_counter()
    for topic, payload in messages:
        out.publish(topic, payload, qos=1)
    ok = out.flush(timeout=timeout)
    took = time.perf_counter() - t0
    client.disconnect()
    client.loop_stop()
    assert ok, "the broker did not acknowledge every QoS 1 publish"
    return took


def publish_parallel(cluster: NatsCluster, messages: list[tuple[str, bytes]], connections: int = 4) -> float:
    """Like `publish_mqtt` over ``connections`` gateway connections (spread over the nodes), sites split between
    them so each sensor's readings keep their order; returns the seconds until every PUBACK."""
    import threading

    lanes: list[list[tuple[str, bytes]]] = [[] for _ in range(connections)]
    for topic, payload in messages:
        lanes[hash(topic.split("/")[3]) % connections].append((topic, payload))
    errors: list[BaseException] = []

    def lane(i: int) -> None:
        try:
            publish_mqtt(cluster, i % len(cluster.nodes), lanes[i], client_id=f"feed-lane-{i}")
        except BaseException as err:
            errors.append(err)

    t0 = time.perf_counter()
    threads = [threading.Thread(target=lane, args=(i,)) for i in range(connections) if lanes[i]]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    return time.perf_counter() - t0


def publish_js(cluster: NatsCluster, messages: list[tuple[str, bytes]], timeout: float = 120) -> None:
    """Publish through JetStream's own acknowledged publish (as admin; the account maps the subject to its
    partition), retrying what timed out with a ``Nats-Msg-Id`` so a retry of a publish that did land is
    stored once (the streams' duplicate window)."""
    import nats.errors

    async def work(nc, js):
        deadline = time.monotonic() + timeout
        for topic, payload in messages:
            subject = topic.replace("/", ".")
            body = orjson.loads(payload)
            headers = {"Nats-Msg-Id": f"{body['sensor_id']}@{body['ts']}"}
            while True:
                try:
                    await js.publish(subject, payload, headers=headers, timeout=2)
                    break
                except (nats.errors.TimeoutError, nats.errors.NoRespondersError, nats.js.errors.APIError,
                        nats.js.errors.NoStreamResponseError):
                    if time.monotonic() > deadline:
                        raise
                    await asyncio.sleep(0.2)
    cluster.run(work)


def alarms(database_url: str) -> list[tuple]:
    """(rule_id, subject, raised_at, tier, state) of every alarm in the shared store, sorted."""
    import psycopg

    with psycopg.connect(database_url) as conn:
        rows = conn.execute("SELECT rule_id, subject, raised_at, tier, state FROM alerts").fetchall()
    return sorted((r, s, round(float(t), 3), int(tier), st) for r, s, t, tier, st in rows if _about_the_feed(r))


_OUTBOX = ("SELECT a.rule_id, a.subject, a.raised_at, o.receiver, o.channel, o.kind FROM outbox o "
           "JOIN alerts a ON a.id = o.alert_id")


def _notifications(rows) -> list[tuple]:
    return sorted((r, s, round(float(t), 3), rc, int(ch), k) for r, s, t, rc, ch, k in rows if _about_the_feed(r))


def notifications(database_url: str) -> list[tuple]:
    """(rule_id, subject, raised_at, receiver, channel, kind) of every outbox document, sorted (duplicates kept)."""
    import psycopg

    with psycopg.connect(database_url) as conn:
        return _notifications(conn.execute(_OUTBOX).fetchall())


def outbox_statuses(database_url: str) -> dict[str, int]:
    """Outbox documents by delivery status."""
    import psycopg

    with psycopg.connect(database_url) as conn:
        return dict(conn.execute("SELECT status, count(*) FROM outbox GROUP BY status").fetchall())


def open_alarm(database_url: str) -> tuple[str, str]:
    """(alert id, site) of one open, unacknowledged feed alarm."""
    import psycopg

    with psycopg.connect(database_url) as conn:
        rows = conn.execute("SELECT id, site_id, rule_id, state FROM alerts ORDER BY id").fetchall()
    return next((i, site) for i, site, rule, state in rows if _about_the_feed(rule) and state in ("active", "returned",
                                                                                                     "rtn_unack"))


def alarm_state(database_url: str, alert_id: str) -> str:
    import psycopg

    with psycopg.connect(database_url) as conn:
        return conn.execute("SELECT state FROM alerts WHERE id = %s", (alert_id,)).fetchone()[0]


def stored_readings(root: Path) -> set[tuple[str, float]]:
    """(sensor, ts) of every reading stored in any worker's per-partition SQLite files under ``root``."""
    import sqlite3

    out: set[tuple[str, float]] = set()
    for path in root.glob("*/p*/readings.db"):
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            rows = conn.execute("SELECT s.sensor_id, r.ts_us FROM readings r JOIN sensors s ON s.id = r.sensor").fetchall()
        finally:
            conn.close()
        out.update((sensor, round(ts_us / 1e6, 3)) for sensor, ts_us in rows)
    return out


def reference_alarms(config: Config, feed: Feed, data_dir: Path) -> tuple[list[tuple], list[tuple]]:
    """The single-process path: `Pipeline` on SQLite, fed the same readings in the same order, all flushed.
    Returns its alarms and its notifications (as `alarms` and `notifications` give them)."""
    from liaowang.pipeline import Pipeline

    pipeline = Pipeline(config, data_dir)
    try:
        batch = []
        for r in feed.readings:
            batch.append(r)
            if len(batch) == 100:
                pipeline.handle_batch(config.fleet.batch(batch))
                batch = []
        if batch:
            pipeline.handle_batch(config.fleet.batch(batch))
        pipeline.flush_rules(everything=True)
        rows = pipeline.alert_db.conn.execute("SELECT rule_id, subject, raised_at, tier, state FROM alerts").fetchall()
        sent = _notifications(pipeline.alert_db.conn.execute(_OUTBOX).fetchall())
    finally:
        pipeline.stop()
    return sorted((r, s, round(float(t), 3), int(tier), st) for r, s, t, tier, st in rows if _about_the_feed(r)), sent


def wait_for(condition, timeout: float = 30.0, interval: float = 0.2, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)

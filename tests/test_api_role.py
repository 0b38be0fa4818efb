"""``liaowang api`` as its own process (liaowang/cli_api.py, liaowang/backend.py): it serves the alarms another
process (a `Pipeline`, as a worker or ``liaowang run`` would) wrote, its SSE stream sees their new changes
within a second and resumes after a drop with nothing missed and nothing doubled, and people's actions reach
the owner over a real nats-server — or answer 503 when no owner does."""

from __future__ import annotations

import asyncio
import http.client
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Iterator

import orjson
import pytest

from foundation.config import StorageSettings
from foundation.domain import Family, Tier
from liaowang.commands import partition_of, serve_commands
from liaowang.pipeline import Pipeline
from rules.base import Signal
from tests.conftest import CONFIG_DIR, ROOT, free_port, wait_until
from tests.pgserver import postgres  # noqa: F401  (a fixture)
from tests.natsserver import nats_url  # noqa: F401  (a fixture)

P = 4
GAS = "gas.combustible_gas.threshold"
DUTY = {"Authorization": "Bearer demo-duty"}
SENSORS = ["LC-LUXI-GD-01", "LC-LUXI-GD-02", "LC-XFHG-GD-01"]


def signal(sensor: str, tier: Tier | None, ts: float) -> Signal:
    site = sensor.rsplit("-", 2)[0]
    return Signal(GAS, "threshold", sensor, site, Family.GAS, tier, "level1" if tier else None, 30.0 if tier else 1.0,
                  20.0 if tier else None, "%LEL", ts, "msg")


class Owner:
    """The test's partition owner: answers lw.cmd.{p} for every partition with the pipeline's `command`."""

    def __init__(self, url: str, pipeline: Pipeline) -> None:
        import nats
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, daemon=True).start()

        async def start():
            self.nc = await nats.connect(url)
            for p in range(P):
                await serve_commands(self.nc, p, pipeline.command)
        asyncio.run_coroutine_threadsafe(start(), self.loop).result(10)

        self.closed = False

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self.nc.close(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.closed = True


class Sse:
    """A raw SSE client over http.client: frames as (id, event, data), with the last id it saw."""

    def __init__(self, port: int, last_id: str | None = None, timeout: float = 10.0) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        headers = {**DUTY, "Accept": "text/event-stream", **({"Last-Event-ID": last_id} if last_id else {})}
        self.conn.request("GET", "/api/v1/events", headers=headers)
        self.response = self.conn.getresponse()
        assert self.response.status == 200
        self.last_id = last_id

    def next(self) -> tuple[int | None, str, dict]:
        """The next event frame (comments and keep-alives skipped)."""
        seq, event, data = None, None, None
        while True:
            line = self.response.fp.readline()
            if not line:
                raise EOFError("the stream ended")
            line = line.decode().rstrip("\n")
            if line.startswith("id: "):
                seq = int(line[4:])
                self.last_id = line[4:]
            elif line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: "):
                data = orjson.loads(line[6:])
            elif line == "" and event is not None:
                return seq, event, data

    def close(self) -> None:
        self.conn.close()


def launch_api(data_dir: Path, nats_url: str, **env_vars: str) -> tuple[int, subprocess.Popen]:
    """Start ``liaowang api`` over ``data_dir``'s store; return its port and process once it answers."""
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT), **env_vars}
    proc = subprocess.Popen([sys.executable, "-m", "liaowang.cli", "api", "--config", str(CONFIG_DIR), "--data-dir",
                             str(data_dir), "--http-port", str(port), "--nats", nats_url, "--partitions", str(P)],
                            cwd=data_dir.parent, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def up() -> bool:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/healthz")
            return conn.getresponse().status in (200, 503)
        except OSError:
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
            return False
    wait_until(up, timeout=30)
    return port, proc


def stop_api(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture
def world(tmp_path, demo_config, nats_url) -> Iterator[tuple[Pipeline, int, "Owner"]]:
    """A Pipeline writing data_dir's store and owning every partition, and ``liaowang api`` over the same dir."""
    data_dir = tmp_path / "data"
    pipeline = Pipeline(demo_config, data_dir)
    pipeline.commit_signals([signal("LC-LUXI-GD-01", Tier.ORANGE, 1_795_564_800.0)])
    owner = Owner(nats_url, pipeline)
    port, proc = launch_api(data_dir, nats_url)
    yield pipeline, port, owner
    stop_api(proc)
    if not owner.closed:
        owner.close()
    pipeline.stop()


def get(port: int, path: str, method: str = "GET", body: dict | None = None) -> tuple[int, object]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request(method, path, body=orjson.dumps(body) if body is not None else None,
                 headers={**DUTY, "Content-Type": "application/json"})
    response = conn.getresponse()
    return response.status, orjson.loads(response.read())


@pytest.mark.slow
def test_the_api_process_serves_what_the_owner_wrote_streams_it_live_and_routes_actions(world):
    pipeline, port, _ = world
    status, alerts = get(port, "/api/v1/alerts")
    assert status == 200 and [a["subject"] for a in alerts] == ["LC-LUXI-GD-01"]
    assert get(port, "/healthz")[0] == 200

    stream = Sse(port)
    assert stream.next()[1] == "hello"
    latencies = []
    for n, sensor in enumerate(["LC-LUXI-GD-02", "LC-XFHG-GD-01"]):
        started = time.monotonic()
        pipeline.commit_signals([signal(sensor, Tier.YELLOW, 1_795_564_810.0 + n)])
        while True:
            _, event, data = stream.next()
            if event == "alert" and data["subject"] == sensor:
                latencies.append(time.monotonic() - started)
                break
    print("publish → SSE of the api process, s:", [round(x, 3) for x in latencies])
    assert max(latencies) < 1.0  # the api process polls the log every 250 ms (NOTIFY on PostgreSQL)

    alert_id = alerts[0]["id"]
    status, body = get(port, f"/api/v1/alerts/{alert_id}/ack", "POST", {"note": "收到"})
    assert status == 200 and body["state"] == "acknowledged"
    assert pipeline.alerts.get(alert_id).state == "acknowledged"  # the owner applied it
    while True:
        _, event, data = stream.next()
        if event == "alert" and data["id"] == alert_id:
            assert data["event"] == "acknowledged"
            break
    status, body = get(port, f"/api/v1/alerts/{alert_id}/close", "POST", {"note": "x", "cause": "误报"})
    assert status == 409  # the owner's refusal, as liaowang run answers it
    stream.close()


@pytest.mark.slow
def test_an_action_no_owner_answers_is_503_retry_and_changes_nothing(world):
    pipeline, port, owner = world
    [alert] = pipeline.alerts.open_alerts()
    owner.close()  # the worker died or lost its lease, and no other holds the partition yet
    status, body = get(port, f"/api/v1/alerts/{alert.id}/ack", "POST", {"note": "收到"})
    assert status == 503 and "owner unavailable, retry" in body["detail"]
    assert pipeline.alerts.get(alert.id).state == "active"
    status, body = get(port, "/healthz")
    assert status == 200  # the api role itself is fine: NATS is up, only the owner is missing


@pytest.mark.slow
def test_a_dropped_stream_resumes_from_last_event_id_while_alarms_keep_changing(world):
    """A writer keeps raising, escalating and clearing alarms; the client drops every few events and
    reconnects with the last id it saw; at the end it has every logged event after its first hello, once, in order."""
    pipeline, port, _ = world
    stop = threading.Event()
    tiers = [Tier.YELLOW, Tier.ORANGE, None, Tier.RED, None]

    def writer() -> None:
        ts = 1_795_565_000.0
        n = 0
        while not stop.is_set() and n < 150:
            ts += 1
            pipeline.commit_signals([signal(SENSORS[n % 3], tiers[(n // 3) % len(tiers)], ts)])
            n += 1
            time.sleep(0.01)

    stream = Sse(port, timeout=3.0)  # a read that times out (nothing pending) counts as one more drop
    seq, event, _ = stream.next()
    assert event == "hello"
    origin = seq
    got: list[int] = []
    thread = threading.Thread(target=writer)
    thread.start()
    drops = 0
    try:
        while thread.is_alive() or got[-1:] != [pipeline.event_log.head()]:
            for _ in range(7):
                try:
                    seq, event, _ = stream.next()
                except TimeoutError:
                    break
                if seq is not None and event not in ("hello", "reset"):
                    got.append(seq)
                if not thread.is_alive() and got[-1:] == [pipeline.event_log.head()]:
                    break
            stream.close()
            drops += 1
            stream = Sse(port, stream.last_id, timeout=3.0)
    finally:
        stop.set()
        thread.join()
        stream.close()
    wanted = [e.seq for e in pipeline.event_log.since(origin, limit=100_000)]
    assert drops > 5 and len(wanted) > 100
    assert got == wanted  # nothing missed, nothing doubled, in order


@pytest.mark.slow
def test_a_stream_moves_to_another_api_process_after_kill_9_and_misses_nothing(world, nats_url, tmp_path):
    """Two api processes over one store; the client's process is killed with SIGKILL mid-stream while alarms
    keep changing; it reconnects to the other with its last id and gets every event after it, once."""
    pipeline, _, _ = world
    port_b, proc_b = launch_api(tmp_path / "data", nats_url)  # the world's store
    try:
        port_c, proc_c = launch_api(tmp_path / "data", nats_url)  # the one to kill
        stream = Sse(port_c)
        seq, event, _ = stream.next()
        origin = seq
        got: list[int] = []
        ts = 1_795_566_000.0
        for n in range(30):
            ts += 1
            pipeline.commit_signals([signal(SENSORS[n % 3], [Tier.YELLOW, Tier.RED, None][(n // 3) % 3], ts)])
            if n == 10:
                while len(got) < 5:
                    seq, event, _ = stream.next()
                    got.append(seq)
                proc_c.kill()  # SIGKILL: no goodbye, the socket just dies
                proc_c.wait()
        with pytest.raises((EOFError, ConnectionError, OSError)):
            while True:
                seq, event, _ = stream.next()
                got.append(seq)
        stream.close()
        stream = Sse(port_b, stream.last_id, timeout=3.0)
        assert stream.next()[1] == "hello"
        while got[-1:] != [pipeline.event_log.head()]:
            seq, event, _ = stream.next()
            got.append(seq)
        stream.close()
        assert got == [e.seq for e in pipeline.event_log.since(origin, limit=100_000)]
    finally:
        stop_api(proc_b)


@pytest.mark.slow
@pytest.mark.skipif("database_url" not in StorageSettings.model_fields,
                    reason="h-pg's PostgreSQL store (storage.database_url) is not merged in this branch")
def test_on_postgresql_the_api_process_is_woken_by_notify(postgres, demo_config, tmp_path, nats_url):
    """With storage.database_url (h-pg's PostgreSQL AlertDB): the owner writes PostgreSQL, ``liaowang api`` reads
    it and its SSE stream is woken by LISTEN/NOTIFY rather than the 250 ms poll."""
    from pydantic import SecretStr

    import psycopg
    admin = psycopg.connect(postgres, autocommit=True)
    admin.execute("DROP DATABASE IF EXISTS api_role")
    admin.execute("CREATE DATABASE api_role")
    admin.close()
    url = postgres.rsplit("/", 1)[0] + "/api_role"
    storage = demo_config.settings.storage.model_copy(update={"database_url": SecretStr(url)})
    config = demo_config.model_copy(update={"settings": demo_config.settings.model_copy(update={"storage": storage})})
    pipeline = Pipeline(config, tmp_path / "data")
    pipeline.commit_signals([signal("LC-LUXI-GD-01", Tier.ORANGE, 1_795_564_800.0)])
    owner = Owner(nats_url, pipeline)
    port, proc = launch_api(tmp_path / "api", nats_url, LIAOWANG_STORAGE__DATABASE_URL=url)
    try:
        status, alerts = get(port, "/api/v1/alerts")
        assert status == 200 and [a["subject"] for a in alerts] == ["LC-LUXI-GD-01"]
        stream = Sse(port)
        assert stream.next()[1] == "hello"
        latencies = []
        for n, sensor in enumerate(["LC-LUXI-GD-02", "LC-XFHG-GD-01"]):
            started = time.monotonic()
            pipeline.commit_signals([signal(sensor, Tier.YELLOW, 1_795_564_810.0 + n)])
            while True:
                _, event, data = stream.next()
                if event == "alert" and data["subject"] == sensor:
                    latencies.append(time.monotonic() - started)
                    break
        print("publish → SSE over PostgreSQL NOTIFY, s:", [round(x, 3) for x in latencies])
        assert max(latencies) < 1.0
        status, body = get(port, f"/api/v1/alerts/{alerts[0]['id']}/ack", "POST", {"note": "收到"})
        assert status == 200 and body["state"] == "acknowledged"
        stream.close()
    finally:
        stop_api(proc)
        owner.close()
        pipeline.stop()

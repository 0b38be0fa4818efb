"""A pipeline whose alarms live in a real PostgreSQL (``storage.database_url``); readings stay in SQLite.

Raise → acknowledge → close through the HTTP API, read back after a restart, and a process killed with
``kill -9`` in the middle of an alarm transaction leaves nothing of it behind.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from foundation.config import Config
from foundation.domain import Reading
from liaowang.api import create_app
from liaowang.pipeline import Pipeline

from .conftest import wait_until

ROOT = Path(__file__).resolve().parent.parent
DUTY = {"Authorization": "Bearer demo-duty"}


def on_postgresql(config: Config, url: str) -> Config:
    storage = config.settings.storage.model_copy(update={"database_url": SecretStr(url)})
    return config.model_copy(update={"settings": config.settings.model_copy(update={"storage": storage})})


def ingest(pipeline: Pipeline, readings: list[Reading]) -> None:
    batch = pipeline.fleet.batch(readings)
    pipeline.readings.write(batch)
    pipeline.live.update(batch)
    pipeline.handle_batch(batch)
    pipeline.flush_rules(everything=True)


def rows(url: str, sql: str) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(sql).fetchall()


def test_an_alarm_is_raised_acknowledged_and_closed_with_its_state_in_postgresql(tmp_path, demo_config, pg_url):
    data = tmp_path / "data"
    pipeline = Pipeline(on_postgresql(demo_config, pg_url), data)
    try:
        client = TestClient(create_app(pipeline))
        now = time.time()
        ingest(pipeline, [Reading("LC-LUXI-GD-01", "LC-LUXI", now - 4 + i, v) for i, v in enumerate([5, 25, 45])])
        alert_id = client.get("/api/v1/alerts").json()[0]["id"]
        ingest(pipeline, [Reading("LC-LUXI-GD-01", "LC-LUXI", now + t, 2.0) for t in (1, 6, 11)])  # back to normal
        assert client.post(f"/api/v1/alerts/{alert_id}/ack", headers=DUTY, json={}).json()["state"] == "resolved"
        closed = client.post(f"/api/v1/alerts/{alert_id}/close", headers=DUTY,
                             json={"note": "阀门已关闭", "cause": "真实险情"})
        assert closed.status_code == 200 and closed.json()["state"] == "closed"
        history = client.get("/api/v1/history/alarms", headers=DUTY,
                             params={"cause": "real_incident", "priority": "high", "q": "可燃"})
        assert history.status_code == 200, history.text
        assert [a["id"] for a in history.json()["items"]] == [alert_id] and history.json()["total"] == 1
        stats = client.get("/api/v1/statistics", headers=DUTY)
        assert stats.status_code == 200, stats.text
    finally:
        pipeline.stop()

    assert rows(pg_url, f"SELECT state FROM alerts WHERE id = '{alert_id}'") == [("closed",)]
    actions = [a for (a,) in rows(pg_url, f"SELECT action FROM audit WHERE alert_id = '{alert_id}' ORDER BY seq")]
    assert actions[0] == "raised" and "acknowledged" in actions and actions[-1] == "closed"
    assert rows(pg_url, "SELECT count(*) FROM outbox")[0][0] > 0
    assert not (data / "alerts.db").exists() and (data / "readings.db").exists()  # readings stay in SQLite

    again = Pipeline(on_postgresql(demo_config, pg_url), data)  # a restart reads the episode back from PostgreSQL
    try:
        assert again.alerts.get(alert_id).state == "closed"
        assert alert_id not in {a.id for a in again.alerts.open_alerts()}
    finally:
        again.stop()


_CHILD = textwrap.dedent("""
    import sys, time
    from alerting import AlertManager, AlertStore
    from alerting.audit import AuditLog
    from alerting.db import AlertDB
    from alerting.notify import Notifier
    from foundation.config import load_config
    from foundation.domain import Family, Tier
    from rules.base import Signal

    url, config_dir = sys.argv[1], sys.argv[2]
    config = load_config(config_dir)
    db = AlertDB(url).fence(0, epoch=1)
    manager = AlertManager(AlertStore(db), config.fleet, lambda: 1_795_565_000.0, config.alerting, AuditLog(db))
    notifier = Notifier(db, config.alerting, config.fleet, manager, lambda: 1_795_565_000.0)
    with manager.transaction():
        changes = manager.apply([Signal("gas.combustible_gas.threshold", "threshold", "LC-LUXI-GD-01", "LC-LUXI",
                                        Family.GAS, Tier.ORANGE, "level2", 45.0, 40.0, "%LEL", 1_795_564_900.0, "leak")])
        notifier.on_changes(changes)
        print("inside", db.conn.execute("SELECT pg_backend_pid()").fetchone()[0], flush=True)
        time.sleep(600)  # killed here, its alarm, audit and outbox rows written and not committed
""")


@pytest.mark.timeout(120)
def test_kill_9_in_the_middle_of_an_alarm_transaction_leaves_nothing_half_stored(pg_url):
    child = subprocess.Popen([sys.executable, "-c", _CHILD, pg_url, str(ROOT / "config")], cwd=ROOT,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for line in child.stdout:  # structlog's lines come first
            if line.startswith("inside"):
                break
        else:
            child.wait(30)
            pytest.fail(f"the child died before its transaction: {child.stderr.read()[-2000:]}")
        backend = int(line.split()[1])
        # the server holds the child's rows in an open transaction: the alarm, its audit record, its outbox rows
        state = rows(pg_url, f"SELECT state FROM pg_stat_activity WHERE pid = {backend}")
        assert state == [("idle in transaction",)]
        os.kill(child.pid, signal.SIGKILL)
        child.wait(30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    deadline = time.monotonic() + 30  # the server notices the dead client's socket and rolls back
    while rows(pg_url, f"SELECT count(*) FROM pg_stat_activity WHERE pid = {backend}")[0][0]:
        assert time.monotonic() < deadline, "the killed client's backend is still there"
        time.sleep(0.05)
    for table in ("alerts", "audit", "outbox", "signal_horizon"):
        assert rows(pg_url, f"SELECT count(*) FROM {table}") == [(0,)], f"{table} kept part of the transaction"
    assert rows(pg_url, 'SELECT epoch FROM partition_fence') == []  # the fence row came with the transaction too

    # and the next owner of the partition writes as if nothing had happened
    from alerting import AlertStore
    from alerting.db import AlertDB
    store = AlertStore(AlertDB(pg_url).fence(0, epoch=2))
    store.set_horizon("r", "s", 1.0)
    assert rows(pg_url, 'SELECT epoch FROM partition_fence') == [(2,)]


def test_liaowang_users_works_on_the_configured_postgresql(tmp_path, pg_url):
    """`liaowang users` with LIAOWANG_STORAGE__DATABASE_URL: the people land in PostgreSQL, not in a data dir file."""
    env = {**os.environ, "LIAOWANG_STORAGE__DATABASE_URL": pg_url}

    def users(*args: str, password: str | None = None) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "liaowang.cli", "users", *args, "--config", str(ROOT / "config"),
                               "--data-dir", str(tmp_path / "data"), *(["--password-stdin"] if password else [])],
                              input=(password or "") + "\n", capture_output=True, text=True, timeout=60, env=env,
                              cwd=ROOT)

    added = users("add", "wang", "--role", "operator", "--sites", "LC-XFHG", password="wang-first-pass")
    assert added.returncode == 0, added.stderr
    assert users("disable", "wang").returncode == 0
    assert "wang\t" in users("list").stdout
    assert rows(pg_url, "SELECT role, disabled FROM users WHERE name = 'wang'") == [("operator", 1)]
    assert ("user_created",) in rows(pg_url, "SELECT action FROM audit WHERE subject = 'wang'")
    assert not (tmp_path / "data" / "alerts.db").exists()


def test_a_pipeline_on_a_fenced_view_stops_writing_once_a_newer_owner_has_written(tmp_path, demo_config, pg_url):
    """A worker wires `Pipeline(alert_db=AlertDB(url).fenced(...))`: while it holds the newest epoch its alarms
    commit; once a newer owner of the partition has written, its transitions stay pending (`Fenced`, reported as
    alerts.db unavailable), and nothing of them reaches PostgreSQL."""
    from alerting.db import AlertDB
    from liaowang.pipeline import AlertingUnavailable

    view = AlertDB(pg_url).fenced({0: 1})
    pipeline = Pipeline(on_postgresql(demo_config, pg_url), tmp_path / "data", alert_db=view)
    try:
        now = time.time()
        ingest(pipeline, [Reading("LC-LUXI-GD-01", "LC-LUXI", now - 4 + i, v) for i, v in enumerate([5, 25, 45])])
        raised = rows(pg_url, "SELECT count(*) FROM alerts")[0][0]
        assert raised >= 1
        with AlertDB(pg_url).fence(0, epoch=2).transaction():
            pass  # the partition's new owner commits its first transaction
        with pytest.raises(AlertingUnavailable):
            ingest(pipeline, [Reading("LC-XFHG-GD-01", "LC-XFHG", now + i, v) for i, v in enumerate([5, 25, 45])])
        assert rows(pg_url, "SELECT count(*) FROM alerts")[0][0] == raised
        assert pipeline.health()["pending_alarm_transitions"] > 0
        assert pipeline.registry.get_sample_value("liaowang_alert_apply_failures_total", {"kind": "fenced"}) >= 1
        view.set_fences({0: 3})  # a new lease for this worker (a higher epoch): the pending transitions commit

        def committed() -> bool:
            try:
                pipeline.commit_signals([])  # what the ticker does, after the retry back-off
            except AlertingUnavailable:
                return False
            return True

        wait_until(committed, timeout=30)
        assert rows(pg_url, "SELECT count(*) FROM alerts")[0][0] > raised
        assert pipeline.health()["pending_alarm_transitions"] == 0
    finally:
        pipeline.stop()


@pytest.mark.timeout(120)
def test_a_worker_paused_inside_its_transaction_is_ended_and_the_new_owner_takes_over(pg_url):
    """SIGSTOP of a worker holding its partition's fence row (a long GC pause, a hung host): the server ends its
    session after the idle-in-transaction limit, the partition's new owner commits, and the paused worker, resumed,
    commits nothing."""
    from alerting import AlertStore
    from alerting.db import AlertDB

    limited = f"{pg_url}?options=-c%20idle_in_transaction_session_timeout%3D1000"
    child = subprocess.Popen([sys.executable, "-c", _CHILD, limited, str(ROOT / "config")], cwd=ROOT,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for line in child.stdout:
            if line.startswith("inside"):
                break
        else:
            child.wait(30)
            pytest.fail(f"the child died before its transaction: {child.stderr.read()[-2000:]}")
        os.kill(child.pid, signal.SIGSTOP)
        store = AlertStore(AlertDB(pg_url).fence(0, epoch=2))
        store.set_horizon("r", "s", 1.0)  # waits for the paused worker's fence row until the server ends it
        assert rows(pg_url, 'SELECT epoch FROM partition_fence') == [(2,)]
        os.kill(child.pid, signal.SIGCONT)
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait(30)
    assert rows(pg_url, "SELECT count(*) FROM alerts") == [(0,)]
    assert rows(pg_url, "SELECT count(*) FROM audit") == [(0,)]

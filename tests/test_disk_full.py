"""A disk that fills: ingest pauses, the duty room is told, and nothing is lost once space returns.

Runs the real pipeline with its data directory on a small tmpfs (mounting needs root; CI runs as
root and sets LIAOWANG_REQUIRE_ROOT_TESTS=1 so this cannot skip there). The broker keeps its own
store elsewhere, as docs/broker.md asks of production. The clock is a fake so the stale rule can be
driven past its limit while the disk is full: every site falls silent, 15 communication-loss alarm
transitions (covering 193 sensors) that must not be lost.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import orjson
import pytest
from fastapi.testclient import TestClient

from liaowang.api import create_app
from liaowang.pipeline import Pipeline

from .conftest import config_for, publisher, wait_until
from liaowang.scenario import FakeClock

T0 = 1_795_564_800.0



@pytest.fixture
def small_volume(tmp_path: Path):
    """A 24 MiB tmpfs, unmounted afterwards."""
    mount = tmp_path / "vol"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        if os.environ.get("LIAOWANG_REQUIRE_ROOT_TESTS"):
            pytest.fail(f"cannot mount a tmpfs: {done.stderr.decode()}")
        pytest.skip("mounting a tmpfs needs root (CI runs this test)")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(volume: Path, leave_bytes: int) -> Path:
    """Write a filler file until only about ``leave_bytes`` are free (0: until the disk refuses)."""
    filler = volume / f"filler-{len(list(volume.glob('filler-*')))}"
    chunk = b"\0" * (256 * 1024)
    with open(filler, "wb", buffering=0) as out:
        while True:
            stats = os.statvfs(volume)
            free = stats.f_bavail * stats.f_frsize
            if free <= leave_bytes + len(chunk):
                if leave_bytes == 0:
                    try:
                        while True:
                            out.write(b"\0" * 4096)
                            out.flush()
                    except OSError:
                        break
                break
            try:
                out.write(chunk)
                out.flush()
            except OSError:
                break
    return filler


def readings_payload(fleet, site: str, ts: float, value: float = 1.0) -> bytes:
    sensors = [s for s in fleet.sensors.values() if s.site_id == site]
    return orjson.dumps({"site_id": site, "readings": [
        {"sensor_id": s.id, "ts": ts, "value": value if s.family.value != "gas" else 0.0} for s in sensors]})


def test_a_full_disk_pauses_ingest_raises_the_alarm_and_loses_nothing_once_space_returns(
        broker, small_volume, demo_config):
    host, port = broker
    clock = FakeClock(T0)
    storage = demo_config.settings.storage.model_copy(update={"min_free_bytes": 6 * 1024**2, "disk_check_every_s": 0.1})
    rules = demo_config.settings.rules.model_copy(update={"snapshot_every_s": 10**9})
    config = config_for(demo_config, port, storage=storage, rules=rules)
    fleet = config.fleet
    sites = sorted(fleet.sites)
    pipeline = Pipeline(config, small_volume / "data", clock=clock)
    pipeline.start()
    api = TestClient(create_app(pipeline))
    pub = publisher(host, port)
    published = 0
    try:
        assert pipeline.ingest.wait_connected(10)
        # 1. Normal operation: one batch per site, stored and evaluated.
        for site in sites:
            pub.publish(f"liaowang/v1/readings/{site}", readings_payload(fleet, site, T0 - 10), qos=1).wait_for_publish(5)
            published += sum(1 for s in fleet.sensors.values() if s.site_id == site)
        wait_until(lambda: pipeline.readings.count() == published, timeout=20)
        assert api.get("/healthz").status_code == 200

        # 2. The volume runs low: a _system disk alarm and /healthz 503 (degraded), before anything fails.
        low_filler = fill(small_volume, leave_bytes=4 * 1024**2)
        wait_until(lambda: any(a.rule_id == "system.disk" for a in pipeline.alerts.open_alerts()), timeout=10)
        health = api.get("/healthz")
        assert health.status_code == 503 and health.json()["status"] == "degraded"
        assert any("disk space low" in p for p in health.json()["problems"])
        system = pipeline.alert_store.query(site_id="_system")
        assert [a.rule_id for a in system] == ["system.disk"] and system[0].tier.colour == "orange"

        # 3. The volume is full. Readings keep coming (and a gateway goes offline): nothing can be stored.
        full_filler = fill(small_volume, leave_bytes=0)
        during = []
        for round_ in range(40):
            for site in sites:
                ts = T0 + round_
                during.append((site, ts))
                pub.publish(f"liaowang/v1/readings/{site}", readings_payload(fleet, site, ts), qos=1)
        pub.publish("liaowang/v1/status/LC-LUXI", b'{"state": "offline"}', qos=1).wait_for_publish(5)
        per_site = {site: sum(1 for s in fleet.sensors.values() if s.site_id == site) for site in sites}
        published += sum(per_site[site] for site, _ in during)
        # Every site now falls silent (the clock jumps a day): one communication-loss transition each to keep.
        clock.now = T0 + 86_400
        failing = wait_until(lambda: (h := api.get("/healthz").json())["pending_alarm_transitions"] >= len(fleet.sites)
                             and any("store failing" in p for p in h["problems"])
                             and any("alarm transitions waiting to be stored" in p for p in h["problems"]) and h,
                             timeout=30)
        assert failing["status"] == "degraded" and failing["checks"]["alerting"] is False
        assert pipeline.readings.count() < published, "the full disk really refused writes"
        assert pipeline.ingest.running(), "ingest stages are alive while the disk is full"

        # 4. Space returns: everything catches up — every reading, every stale alarm, the disk alarm resolves.
        full_filler.unlink()
        low_filler.unlink()
        wait_until(lambda: pipeline.readings.count() == published, timeout=60)
        lost = lambda: {a.subject for a in pipeline.alerts.open_alerts() if a.rule_id == "site.comm_loss"}  # noqa: E731
        wait_until(lambda: lost() == {f"site:{site}" for site in fleet.sites}, timeout=30)
        wait_until(lambda: not any(a.rule_id == "system.disk" and a.state == "active" and not a.latched
                                   for a in pipeline.alerts.open_alerts()), timeout=10)
        wait_until(lambda: api.get("/healthz").status_code == 200, timeout=10)
        stored = {(r.sensor_id, r.ts) for sid in fleet.sensors for r in pipeline.readings.recent(sid, limit=1000)}
        for site, ts in during:
            for sensor in (s for s in fleet.sensors.values() if s.site_id == site):
                assert (sensor.id, ts) in stored
        # Each communication-loss alarm was raised once, with its audit row, and names every sensor it hides.
        history = pipeline.alert_store.query(limit=5000)
        raised = [a for a in history if a.rule_id == "site.comm_loss"]
        assert len(raised) == len(fleet.sites) and sum(a.value for a in raised) == len(fleet.sensors)
    finally:
        pub.disconnect()
        pipeline.stop()

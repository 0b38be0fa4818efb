"""The InfluxDB v2 sink against `InfluxV2WriteDouble` (an HTTP-level test double of /api/v2/write;
no InfluxDB 2 server can be installed here): outages lose nothing, reorder nothing."""

from __future__ import annotations

import threading
import time

from prometheus_client import CollectorRegistry

from ingest.influx_v2 import InfluxV2Writer
from ingest.lineprotocol import LineEncoder
from ingest.metrics import IngestMetrics
from ingest.spooled import SpooledSink
from ingest.testing import InfluxV2WriteDouble
from foundation.config import InfluxV2Sink, SpoolSettings
from foundation.domain import Reading

from ..conftest import free_port, wait_until

T0 = 1_795_564_800.0
SENSORS = ["LC-LUXI-GD-01", "LC-LUXI-GD-02", "LC-XFHG-T101-LT"]


def make_sink(fleet, tmp_path, double, **spool):
    settings = InfluxV2Sink(url=double.url, org="bureau", bucket="liaowang", token=double.token, timeout_s=1.0)
    spool_settings = SpoolSettings(backoff_initial_s=0.2, backoff_max_s=3.0, **spool)
    health: list[tuple[float, bool]] = []
    sink = SpooledSink(InfluxV2Writer(settings), LineEncoder(fleet), tmp_path / "spool", spool_settings,
                       IngestMetrics(CollectorRegistry()), lambda name, fill, over: health.append((fill, over)))
    return sink, health


def test_after_a_60_second_outage_every_reading_arrives_in_order_and_once(fleet, tmp_path):
    """503s, 429 with Retry-After, slow answers and refused connections, 60 s in all, while ingest goes on."""
    double = InfluxV2WriteDouble(free_port())
    sink, _ = make_sink(fleet, tmp_path, double)
    written: list[Reading] = []
    stop = threading.Event()

    def produce() -> None:
        seq = 0
        while not stop.is_set():
            batch = [Reading(SENSORS[i % 3], "", T0 + seq + i / 10, float(seq * 10 + i)) for i in range(10)]
            batch = [Reading(r.sensor_id, fleet.sensors[r.sensor_id].site_id, r.ts, r.value) for r in batch]
            sink.write(fleet.batch(batch))  # returns once spooled: ingest is never blocked by the outage
            written.extend(batch)
            seq += 1
            stop.wait(0.1)

    producer = threading.Thread(target=produce)
    producer.start()
    try:
        time.sleep(3)
        outage_started = time.monotonic()
        double.fail_with("503"); time.sleep(15)
        double.fail_with("429", retry_after_s=2); time.sleep(15)
        double.fail_with("slow", slow_s=2.5); time.sleep(10)
        double.recover(); double.refuse_connections(); time.sleep(20)
        assert time.monotonic() - outage_started >= 60
        assert len(sink.spool) > 0, "the outage left batches waiting in the spool"
        double.start()
        time.sleep(3)
    finally:
        stop.set()
        producer.join()
    wait_until(lambda: len(sink.spool) == 0, timeout=60)
    sink.close()
    double.stop()

    expected = [(LineEncoder(fleet).series(r.sensor_id), round(r.ts * 1e9)) for r in written]
    assert set(double.points) == set(expected), "every reading arrived"
    assert len(double.points) == len(written), "none twice"
    order = {key: i for i, key in enumerate(expected)}
    arrival = [order[key] for key in double.first_arrival]
    assert arrival == sorted(arrival), "in the order they were written"
    statuses = {r.status for r in double.requests}
    assert {503, 429, 204} <= statuses
    throttled = [r.at for r in double.requests if r.status == 429]
    assert all(b - a >= 1.9 for a, b in zip(throttled, throttled[1:])), "Retry-After: 2 honoured"


def test_a_full_spool_refuses_writes_and_raises_a_health_warning(fleet, tmp_path):
    double = InfluxV2WriteDouble(free_port())
    double.refuse_connections()
    sink, health = make_sink(fleet, tmp_path, double, max_bytes=20_000, warn_fraction=0.5)
    from ingest.spool import SpoolFull

    batch = [Reading("LC-LUXI-GD-01", "LC-LUXI", T0 + i, 1.0) for i in range(20)]
    accepted = 0
    try:
        for i in range(100):
            sink.write(fleet.batch([Reading(r.sensor_id, r.site_id, r.ts + i * 100, r.value) for r in batch]))
            accepted += 1
    except SpoolFull:
        pass
    assert 0 < accepted < 100
    assert health and health[0][1] is True
    double.start()
    wait_until(lambda: len(sink.spool) == 0, timeout=30)
    assert health[-1][1] is False, "the warning clears when the spool drains"
    assert len(double.points) == accepted * 20
    sink.close()
    double.stop()


def test_a_batch_the_store_refuses_is_kept_aside_not_dropped(fleet, tmp_path):
    double = InfluxV2WriteDouble(free_port())
    sink, _ = make_sink(fleet, tmp_path, double)
    sink.spool.append(b"this is not line protocol\n")
    sink.write(fleet.batch([Reading("LC-LUXI-GD-01", "LC-LUXI", T0, 1.0)]))
    wait_until(lambda: len(sink.spool) == 0)
    sink.close()
    double.stop()
    assert len(list((tmp_path / "spool" / "rejected").iterdir())) == 1
    assert len(double.points) == 1, "the good batch behind it still arrived"


def test_spooled_batches_survive_a_restart(fleet, tmp_path):
    double = InfluxV2WriteDouble(free_port())
    double.refuse_connections()
    sink, _ = make_sink(fleet, tmp_path, double)
    sink.write(fleet.batch([Reading("LC-LUXI-GD-01", "LC-LUXI", T0 + i, 1.0) for i in range(5)]))
    sink.close()
    double.start()
    restarted, _ = make_sink(fleet, tmp_path, double)
    wait_until(lambda: len(restarted.spool) == 0)
    restarted.close()
    double.stop()
    assert len(double.points) == 5

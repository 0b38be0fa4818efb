"""The InfluxDB v1 sink against a real InfluxDB 1.x server: readings read back through InfluxQL."""

from __future__ import annotations

import json
import urllib.parse
import urllib.request

from ingest.influx_v1 import InfluxV1Writer
from ingest.lineprotocol import LineEncoder
from ingest.metrics import IngestMetrics
from ingest.spooled import SpooledSink
from foundation.config import InfluxV1Sink, SpoolSettings
from foundation.domain import Quality, Reading
from prometheus_client import CollectorRegistry

from ..conftest import wait_until

T0 = 1_795_564_800.0


def influxql(url: str, query: str, db: str | None = None) -> dict:
    params = {"q": query, "epoch": "ns"}
    if db:
        params["db"] = db
    request = urllib.request.Request(url + "/query", data=urllib.parse.urlencode(params).encode(), method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def test_readings_reach_influxdb_1x_with_their_tags_and_values(influxdb_v1, fleet, tmp_path):
    influxql(influxdb_v1, "CREATE DATABASE liaowang")
    writer = InfluxV1Writer(InfluxV1Sink(url=influxdb_v1, database="liaowang"))
    sink = SpooledSink(writer, LineEncoder(fleet), tmp_path / "spool", SpoolSettings(), IngestMetrics(CollectorRegistry()))
    readings = [Reading("LC-LUXI-GD-01", "LC-LUXI", T0 + i, 1.5 + i, Quality.GOOD) for i in range(100)]
    readings.append(Reading("LC-DEHH-WS1-TA", "LC-DEHH", T0, 21.25, Quality.BAD))
    sink.write(fleet.batch(readings))
    sink.write(fleet.batch(readings[:10]))  # a redelivered batch stores nothing twice
    wait_until(lambda: len(sink.spool) == 0, timeout=20)
    sink.close()

    result = influxql(influxdb_v1, "SELECT count(value) FROM reading WHERE sensor = 'LC-LUXI-GD-01'", "liaowang")
    assert result["results"][0]["series"][0]["values"][0][1] == 100
    result = influxql(influxdb_v1, "SELECT value, quality, county, family, quantity, site FROM reading "
                                   "WHERE sensor = 'LC-DEHH-WS1-TA'", "liaowang")
    series = result["results"][0]["series"][0]
    row = dict(zip(series["columns"], series["values"][0]))
    assert row == {"time": int(T0 * 1e9), "value": 21.25, "quality": 2, "county": "东阿县", "family": "forest",
                   "quantity": "temperature", "site": "LC-DEHH"}


def test_a_missing_database_is_retried_not_dropped(influxdb_v1, fleet, tmp_path):
    writer = InfluxV1Writer(InfluxV1Sink(url=influxdb_v1, database="not_yet"))
    settings = SpoolSettings(backoff_initial_s=0.05, backoff_max_s=0.2)
    sink = SpooledSink(writer, LineEncoder(fleet), tmp_path / "spool", settings, IngestMetrics(CollectorRegistry()))
    sink.write(fleet.batch([Reading("LC-LUXI-GD-01", "LC-LUXI", T0, 3.0)]))
    wait_until(lambda: sink._metrics.forward_errors.labels("influx_v1", "retryable")._value.get() >= 2)
    assert len(sink.spool) == 1  # still held
    influxql(influxdb_v1, "CREATE DATABASE not_yet")
    wait_until(lambda: len(sink.spool) == 0, timeout=20)
    sink.close()
    result = influxql(influxdb_v1, "SELECT value FROM reading", "not_yet")
    assert result["results"][0]["series"][0]["values"][0][1] == 3.0

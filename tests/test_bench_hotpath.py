"""bench/hotpath.py in its quick mode: the latency rounds see alarm changes on the API's stream and the
memory child ingests every reading of its generated fleet."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from bench import hotpath

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(shutil.which("mosquitto") is None and not Path("/usr/sbin/mosquitto").exists(),
                                 reason="the benchmark measures on mosquitto")]


@pytest.fixture(autouse=True)
def own_environment():
    """The harness puts its broker's credentials in os.environ (bench/common.py): restore it exactly."""
    saved = dict(os.environ)
    for name in ("LIAOWANG_MQTT__USERNAME", "LIAOWANG_MQTT__PASSWORD"):
        os.environ.pop(name, None)
    yield
    os.environ.clear()
    os.environ.update(saved)


def test_quick_mode_measures_alarm_latency_and_memory():
    """Every consumer gets samples (the SSE client sees the gas spikes' alarm changes), the memory child
    stores every reading of both fleets, and the table names the targets."""
    report = hotpath.run(rate=2000, seconds=5.0, sites_n=20, rounds=1)
    assert report["bare"][0]["count"] > 1000
    for name in ("liaowang", "liaowang_l0"):
        assert report[name][0]["count"] > 0, report[name]
    for fleet in ("rss_big", "rss_demo"):
        assert report[fleet]["stored"] == report[fleet]["readings"] > 0
        assert report[fleet]["receiver_rss_mb"] > 0
    text = hotpath.table(report, "bench/hotpath.py --quick")
    assert "| p99 |" in text and "≤ 200 MB" in text

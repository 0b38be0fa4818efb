"""The side-by-side benchmark (bench/peers.py, issue 15) in its quick mode: every message is counted."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from bench import peers

pytestmark = pytest.mark.slow

needs_mosquitto = pytest.mark.skipif(shutil.which("mosquitto") is None and not Path("/usr/sbin/mosquitto").exists(),
                                     reason="the benchmark measures on mosquitto")


@pytest.fixture(autouse=True)
def own_environment():
    """The harness puts its broker's credentials in os.environ (bench/common.py) for its child processes;
    restore the environment exactly, or every later `liaowang run` a test starts would log in with them."""
    saved = dict(os.environ)
    for name in ("LIAOWANG_MQTT__USERNAME", "LIAOWANG_MQTT__PASSWORD"):
        os.environ.pop(name, None)
    yield
    os.environ.clear()
    os.environ.update(saved)


def _check_complete(report: dict, consumers: tuple[str, ...]) -> None:
    got = {(r["consumer"], r["feed"]) for r in report["results"]}
    assert got == {(c, f) for c in consumers for f in ("single", "batch")}
    for r in report["results"]:
        assert r["complete"], r
        assert r["messages"] == r["expected_messages"] and r["readings"] == r["expected_readings"]
        assert r["msgs_per_s"] > 0 and r["rss_peak_mb"] > 0


@needs_mosquitto
def test_quick_mode_counts_every_message_for_bare_paho_and_liaowang():
    """Bare subscriber and Liaowang each count every message and reading of both quick feeds."""
    report = peers.run(("bare", "liaowang"), single=2_000, batches=100, rounds=1, timeout=60, log=lambda *_: None)
    _check_complete(report, ("bare", "liaowang"))
    assert "| single readings |" in peers.table(report, "bench/peers.py --quick")


@needs_mosquitto
@pytest.mark.skipif(peers.node_red_js() is None, reason="Node-RED 4 not installed (npm install --prefix DIR node-red@4)")
def test_quick_mode_counts_every_message_for_node_red():
    """Node-RED's generated flow counts every message and reading of both quick feeds."""
    report = peers.run(("nodered",), single=2_000, batches=100, rounds=1, timeout=60, log=lambda *_: None)
    _check_complete(report, ("nodered",))

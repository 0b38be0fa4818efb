"""The map and the site view resume their event streams (issue 15, liaowang/sse.py): after the server went away
and came back, the page's reconnect carries the id of the last event it got (Last-Event-ID), the server replays
what happened meanwhile, and the page shows it without a reload."""

from __future__ import annotations

import threading

import pytest
import uvicorn

from foundation.domain import Family, Tier
from liaowang.api import create_app
from liaowang.events import EventHub
from liaowang.httpserver import GRACEFUL_SHUTDOWN_S, HttpServer
from rules.base import Signal
from tests.browser.conftest import LiveServer
from tests.conftest import wait_until


def restart_http(live: LiveServer) -> None:
    """Serve the same pipeline on the same port again (a fresh hub: the old one was closed with its streams)."""
    live.pipeline.hub = EventHub()
    live.pipeline.feed.hub = live.pipeline.hub
    live.http = HttpServer(uvicorn.Config(create_app(live.pipeline), host="127.0.0.1", port=live.port,
                                          log_level="warning", lifespan="off",
                                          timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S), live.pipeline.hub)
    live._thread = threading.Thread(target=live.http.run, daemon=True)
    live._thread.start()
    wait_until(lambda: live.http.started, timeout=10)


@pytest.fixture
def live(broker, tmp_path, demo_config):
    server = LiveServer.start(broker, demo_config, tmp_path / "data")
    yield server
    server.stop()


def raise_alarm(pipeline, sensor: str, ts: float) -> None:
    pipeline.commit_signals([Signal("gas.combustible_gas.threshold", "threshold", sensor, "LC-LUXI", Family.GAS,
                                    Tier.RED, "level2", 45.0, 40.0, "%LEL", ts, "可燃气体二级报警")])


@pytest.mark.slow
def test_the_map_and_the_site_view_reconnect_with_the_last_event_id(live, browser):
    streams: list[tuple[str, str | None]] = []  # (path, Last-Event-ID) of every event-stream request
    pages = []
    for path in ("/", "/sites/LC-LUXI"):
        page = browser.new_page()
        page.on("request", lambda r: streams.append((r.url.split("?")[0].rsplit("/api/v1", 1)[-1],
                                                    r.headers.get("last-event-id")))
                if r.url.endswith("/events") or r.url.endswith("/live") else None)
        page.goto(live.base + path)
        page.wait_for_function("window.liaowangReady === true", timeout=15_000)
        pages.append(page)
    raise_alarm(live.pipeline, "LC-LUXI-GD-01", 1_795_564_800.0)
    head = live.pipeline.event_log.head()
    pages[0].wait_for_function("() => window.liaowang.state.alerts.length >= 1", timeout=10_000)
    live.stop_http()  # the server goes away: both streams end, the pages retry every 2 s
    raise_alarm(live.pipeline, "LC-LUXI-GD-02", 1_795_564_801.0)  # while nobody listens
    restart_http(live)
    for _ in range(200):  # Playwright's sync API delivers request events only while it is called: wait through it
        if len([s for s in streams if s[1] is not None]) >= 2:
            break
        pages[0].wait_for_timeout(100)
    else:
        raise AssertionError(f"no resumed stream within 20 s: {streams}")
    resumed = {path: int(last) for path, last in streams if last is not None}
    assert resumed["/events"] >= head and resumed["/sites/LC-LUXI/live"] >= 1
    pages[0].wait_for_function(
        "() => window.liaowang.state.alerts.some(a => a.subject === 'LC-LUXI-GD-02')", timeout=10_000)
    assert pages[0].evaluate("() => performance.getEntriesByType('navigation').length") == 1  # no reload

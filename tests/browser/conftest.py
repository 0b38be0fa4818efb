"""Shared fixtures of the browser tests: a real pipeline and HTTP server on loopback, Debian's
chromium driven by Playwright, and the viewports and artifact folder every page test uses."""

from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path

import pytest
import uvicorn

from liaowang.api import create_app
from liaowang.httpserver import GRACEFUL_SHUTDOWN_S, HttpServer
from liaowang.pipeline import Pipeline
from tests.conftest import config_for, free_port, wait_until

VIEWPORTS = {"1920x1080": (1920, 1080), "1366x768": (1366, 768), "390x844": (390, 844)}
"""The duty room's big screen, a laptop and a phone: screenshots are saved at each."""

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = Path(__file__).resolve().parent.parent.parent / "test-artifacts"

if not Path(CHROMIUM).exists() and not os.environ.get("LIAOWANG_REQUIRE_BROWSER"):
    pytest.skip("Debian's chromium is not installed (.ci/run installs it)", allow_module_level=True)

sync_api = pytest.importorskip("playwright.sync_api")


class LiveServer:
    """A real pipeline on the test broker and the HTTP server `liaowang run` uses (`HttpServer`), on loopback."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.http = HttpServer(uvicorn.Config(create_app(pipeline), host="127.0.0.1", port=self.port,
                                              log_level="warning", lifespan="off",
                                              timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S), pipeline.hub)
        self._thread = threading.Thread(target=self.http.run, daemon=True)

    @classmethod
    def start(cls, broker: tuple[str, int], config, data_dir: Path) -> "LiveServer":
        pipeline = Pipeline(config_for(config, broker[1]), data_dir)
        pipeline.start()
        assert pipeline.ingest.wait_connected(10)
        live = cls(pipeline)
        live._thread.start()
        wait_until(lambda: live.http.started, timeout=10)
        return live

    def stop_http(self) -> None:
        """Stop the HTTP side only (the pipeline goes on), as a killed server looks to a page."""
        self.http.stop()
        self._thread.join(10)

    def stop(self) -> None:
        self.stop_http()
        self.pipeline.stop()


@pytest.fixture
def server(broker, tmp_path, demo_config):
    live = LiveServer.start(broker, demo_config, tmp_path / "data")
    yield live.base, broker, live.pipeline
    live.stop()


@pytest.fixture
def browser(tmp_path):
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=CHROMIUM, args=ARGS, headless=True,
            viewport={"width": 1920, "height": 1080}, locale="zh-CN", timezone_id="Asia/Shanghai")
        yield browser
        browser.close()


def sign_in(page, name: str, password: str) -> None:
    """Sign in as a person through the page's sign-in form (session.js), and wait until it took."""
    page.fill("#signin-name", name)
    page.fill("#signin-password", password)
    page.click("#signin-btn")
    page.wait_for_function("() => !!(window.LW.session.user() && window.LW.session.user().kind === 'user')",
                           timeout=10_000)


def sign_in_token(page, token: str) -> None:
    """Sign in with a service token through the form's token option (machines, and the demo's viewer)."""
    page.click("#signin-token-toggle")
    page.fill("#token", token)
    page.click("#signin-btn")
    page.wait_for_function("() => !!window.LW.session.user()", timeout=10_000)


PEOPLE = {"duty_officer": ("duty", "demo-duty-pass"), "admin": ("admin", "demo-admin-pass"),
          "luxi_operator": ("luxi-operator", "demo-luxi-pass")}
"""The demo's people (config/liaowang.yaml auth.users; passwords in the README)."""

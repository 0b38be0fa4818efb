"""The site view and the alarm detail in a real headless Chromium against a real pipeline (issue 14 items 5, 3).

A reading published over MQTT changes its card without a reload and without any request for values
(the page holds one live stream); a sensor in alarm wears its priority colour and flashes until
acknowledged; the operator acknowledges from the site view through the dialog; the alarm panel is on
screen at 1920 px and nothing scrolls sideways on a 390 px phone; the detail page draws the sensor's
readings with the setpoint lines, the history, the measures and the deliveries. Screenshots go to
test-artifacts/ at 1920×1080, 1366×768 and 390×844.
"""

from __future__ import annotations

import re
import time

import threading

import orjson
import uvicorn

from liaowang.api import create_app
from liaowang.pipeline import Pipeline
from tests.browser.conftest import ARTIFACTS, VIEWPORTS
from tests.conftest import config_for, free_port, publisher, wait_until

CJK = re.compile(r"[\u3400-\u9fff]")


def publish(client, sensor_id: str, value: float, unit: str = "%LEL") -> None:
    body = {"sensor_id": sensor_id, "ts": time.time(), "value": value, "unit": unit}
    client.publish(f"liaowang/v1/readings/LC-LUXI/{sensor_id}", orjson.dumps(body), qos=1).wait_for_publish(5)


def open_page(browser, url: str, requests: list[str]):
    page = browser.new_page()
    page.on("request", lambda request: requests.append(request.url))
    page.goto(url)
    page.wait_for_function("window.liaowangReady === true", timeout=20_000)
    return page


def no_sideways_scroll(page, width: int) -> bool:
    return page.evaluate("() => document.documentElement.scrollWidth") <= width


def sign_in(page, token: str) -> None:
    """Sign in with a service token through the page's LW.session (the header widget's own fields belong to
    session.js, whose form changes with the people helper's name + password sign-in)."""
    page.evaluate("token => window.LW.session.signIn(token)", token)
    # the demo tokens are named like themselves (config/liaowang.yaml)
    page.wait_for_function("name => (window.LW.session.user() || {}).name === name", arg=token)


def card(page, sensor_id: str):
    return page.locator(f'.sensor[data-sensor-id="{sensor_id}"]')


def test_the_site_view_is_live_shows_alarms_and_acknowledges(server, browser):
    base, (host, port), pipeline = server
    ARTIFACTS.mkdir(exist_ok=True)
    requests: list[str] = []
    page = open_page(browser, base + "/sites/LC-LUXI", requests)
    loaded = len(requests)
    sensors = [s.id for s in pipeline.fleet.sensors.values() if s.site_id == "LC-LUXI"]
    assert card(page, "LC-LUXI-GD-01").count() == 1 and page.locator(".sensor").count() == len(sensors)
    assert page.locator(".group").count() >= 2  # grouped by hazard unit
    assert "液氨储罐区" in page.locator(".group h2").first.inner_text()
    assert card(page, "LC-LUXI-GD-01").locator(".name").inner_text() == "可燃气体探测器01"  # a name, not an id
    page.wait_for_function("document.body.dataset.link === 'live'", timeout=10_000)

    # a reading over MQTT reaches its card without a reload
    client = publisher(host, port)
    publish(client, "LC-LUXI-GD-03", 7.25)
    page.wait_for_function("""() => document.querySelector('.sensor[data-sensor-id="LC-LUXI-GD-03"] .value')
        .textContent === '7.25'""", timeout=10_000)
    # a second-level leak: the card turns orange (high) and flashes while unacknowledged
    publish(client, "LC-LUXI-GD-01", 45.0)
    page.wait_for_selector('.sensor[data-sensor-id="LC-LUXI-GD-01"][data-tier="orange"][data-isa="unacknowledged"]',
                           timeout=10_000)
    gd01 = card(page, "LC-LUXI-GD-01")
    assert gd01.evaluate("e => getComputedStyle(e).borderTopColor") == "rgb(255, 140, 0)"
    assert gd01.evaluate("e => getComputedStyle(e).animationName") == "lw-flash"
    assert card(page, "LC-LUXI-GD-04").get_attribute("data-tier") is None
    alert_id = gd01.get_attribute("data-alert-id")
    page.wait_for_selector(f'#site-alerts li[data-alert-id="{alert_id}"]')
    for name, (w, h) in VIEWPORTS.items():
        page.set_viewport_size({"width": w, "height": h})
        page.screenshot(path=str(ARTIFACTS / f"site-{name}.png"))
        assert no_sideways_scroll(page, w), name
    # at 1920 px the whole alert panel is on screen
    page.set_viewport_size({"width": 1920, "height": 1080})
    box = page.locator(f'#site-alerts li[data-alert-id="{alert_id}"]').bounding_box()
    assert box and box["x"] >= 0 and box["x"] + box["width"] <= 1920 and box["y"] < 1080

    # sign in as the operator in the header and acknowledge from the card, through the dialog with a note
    assert gd01.locator("button.act-ack").count() == 0  # anonymous: no action
    assert page.locator("#signin").inner_text() or page.locator("#signin input").count()  # the widget is mounted
    sign_in(page, "demo-operator")
    gd01.locator("button.act-ack").click()
    page.fill("dialog.lw-dialog textarea", "现场复核: 阀门法兰微漏, 已处置")
    page.click("dialog.lw-dialog .lw-ok")
    page.wait_for_selector('.sensor[data-sensor-id="LC-LUXI-GD-01"][data-isa="acknowledged"]', timeout=10_000)
    assert gd01.evaluate("e => getComputedStyle(e).animationName") == "none"  # steady once acknowledged
    stored = pipeline.alert_store.get(alert_id)
    assert stored.acknowledged_by == "demo-operator" and stored.ack_note == "现场复核: 阀门法兰微漏, 已处置"
    page.wait_for_selector(f'#site-alerts li[data-alert-id="{alert_id}"][data-isa="acknowledged"]')
    page.screenshot(path=str(ARTIFACTS / "site-acknowledged-1920x1080.png"))

    # the leak stops (past the 10 s off-delay, in event time): the latched alarm waits for 消警 by the duty officer
    now = time.time()
    for ts in (now, now + 11):
        client.publish("liaowang/v1/readings/LC-LUXI/LC-LUXI-GD-01", orjson.dumps(
            {"sensor_id": "LC-LUXI-GD-01", "ts": ts, "value": 5.0, "unit": "%LEL"}), qos=1).wait_for_publish(5)
    page.wait_for_selector(f'#site-alerts li[data-alert-id="{alert_id}"][data-state="resolved"]', timeout=10_000)
    assert page.locator(f'#site-alerts li[data-alert-id="{alert_id}"] button.act-close').count() == 0  # operator
    sign_in(page, "demo-duty")
    page.locator(f'#site-alerts li[data-alert-id="{alert_id}"] button.act-close').click()
    page.select_option("dialog.lw-dialog select[name=cause]", "process_upset")
    page.fill("dialog.lw-dialog textarea", "法兰紧固后复测正常")
    page.click("dialog.lw-dialog .lw-ok")
    page.wait_for_selector(f'#site-closed li[data-alert-id="{alert_id}"]', state="attached", timeout=10_000)
    assert card(page, "LC-LUXI-GD-01").get_attribute("data-tier") is None  # back to normal
    closed = pipeline.alert_store.get(alert_id)
    assert (closed.closed_by, closed.close_cause, closed.note) == ("demo-duty", "process_upset", "法兰紧固后复测正常")

    # English: cards and the alert panel hold no Chinese
    page.click("#lang")
    assert page.locator("#alerts-title").inner_text() == "Active alarms"
    assert not CJK.search(page.locator("#panel").inner_text()), page.locator("#panel").inner_text()
    assert not CJK.search(page.locator("#sensors").inner_text())
    page.screenshot(path=str(ARTIFACTS / "site-english-1920x1080.png"))
    page.click("#lang")

    # after loading, nothing asked for values again: they came over the one stream
    later = [u for u in requests[loaded:] if "/readings" in u or "/api/v1/sensors" in u or "/api/v1/sites/LC-LUXI?" in u]
    assert later == [], later
    streams = [u for u in requests if u.endswith("/api/v1/sites/LC-LUXI/live")]
    assert 1 <= len(streams) <= 3  # one per sign-in change, no polling
    assert [u for u in requests if not u.startswith(base)] == []


def test_the_alarm_detail_shows_the_episode_with_setpoints_history_and_measures(server, browser):
    base, (host, port), pipeline = server
    ARTIFACTS.mkdir(exist_ok=True)
    client = publisher(host, port)
    for value in (5.0, 25.0, 45.0):
        publish(client, "LC-LUXI-GD-02", value)
        time.sleep(0.05)  # distinct event times, in order
    alert = wait_until(lambda: next((a for a in pipeline.alerts.open_alerts()
                                     if a.subject == "LC-LUXI-GD-02" and a.tier.colour == "orange"), None))
    pipeline.act(lambda: pipeline.alerts.acknowledge(alert.id, "demo-duty", "已通知企业"))
    requests: list[str] = []
    site = open_page(browser, base + "/sites/LC-LUXI", requests)
    site.locator(f'#site-alerts li[data-alert-id="{alert.id}"] a.act-detail').click()
    site.wait_for_url(f"**/alerts/{alert.id}")
    site.wait_for_function("window.liaowangReady === true", timeout=20_000)
    page = site
    drawn = page.evaluate("""() => {
        const series = window.liaowangAlert.chart.getOption().series[0];
        return {points: series.data.length, lines: series.markLine.data.map(d => d.name),
                area: series.markArea.data.length, canvas: !!document.querySelector('#chart canvas')};
    }""")
    assert drawn["points"] >= 3 and drawn["canvas"] and drawn["area"] == 1
    assert {"level1", "level2", "raised"} <= set(drawn["lines"])
    history = page.locator("#history tbody tr")
    assert history.count() >= 3  # raised, escalated, acknowledged
    assert "已通知企业" in page.locator("#history").inner_text() and "demo-duty" in page.locator("#history").inner_text()
    assert "立即寻查释放点" in page.locator("#measures").inner_text()
    assert "GBZ/T 223" in page.locator("#measures").inner_text()
    facts = page.locator("#facts").inner_text()
    assert "高报警" in facts and "已确认" in facts and "45" in facts and "可燃气体探测器02" in facts
    assert "operator" in page.locator("#deliveries-note").inner_text()  # anonymous: the log needs a sign-in
    sign_in(page, "demo-operator")
    page.wait_for_function("() => document.getElementById('deliveries-note').textContent.indexOf('operator') < 0")
    assert page.locator("#deliveries tbody tr").count() >= 1  # the notifications of the raise, sent
    for name, (w, h) in VIEWPORTS.items():
        page.set_viewport_size({"width": w, "height": h})
        page.screenshot(path=str(ARTIFACTS / f"alert-detail-{name}.png"), full_page=True)
        assert no_sideways_scroll(page, w), name
    page.click("#lang")
    assert "Find the release point at once" in page.locator("#measures").inner_text()
    facts = page.locator("#facts").inner_text().replace("已通知企业", "")  # a person's note stays as written
    assert not CJK.search(facts), facts


def serve(pipeline, port: int):
    """uvicorn over ``pipeline`` on ``port`` in a thread (started); returns the server and its thread."""
    uv = uvicorn.Server(uvicorn.Config(create_app(pipeline), host="127.0.0.1", port=port, log_level="warning",
                                       lifespan="off"))
    thread = threading.Thread(target=uv.run, daemon=True)
    thread.start()
    wait_until(lambda: uv.started, timeout=10)
    return uv, thread


def test_the_site_view_says_when_its_server_is_gone_and_recovers(broker, tmp_path, demo_config, browser):
    """Issue 14 item 6 on the site view: the server killed, a red banner, greyed values and a grey status (never
    the last colour seen); a server back on the same address, the page live again without a reload."""
    pipeline = Pipeline(config_for(demo_config, broker[1]), tmp_path / "data")
    pipeline.start()
    port = free_port()
    uv, thread = serve(pipeline, port)
    try:
        page = open_page(browser, f"http://127.0.0.1:{port}/sites/LC-LUXI", [])
        page.wait_for_function("document.body.dataset.link === 'live'", timeout=10_000)
        assert page.locator("#live-banner").is_hidden()
        uv.should_exit = uv.force_exit = True  # killed: it does not wait for the open stream
        thread.join(10)
        page.wait_for_function("document.body.dataset.link === 'lost'", timeout=20_000)
        banner = page.locator("#live-banner")
        assert banner.is_visible() and "实时数据中断" in banner.inner_text()
        assert banner.evaluate("e => getComputedStyle(e).backgroundColor") == "rgb(224, 32, 32)"
        value = card(page, "LC-LUXI-GD-01").locator(".value")
        assert value.evaluate("e => getComputedStyle(e).color") == "rgb(138, 143, 152)"  # greyed, never green
        chip = page.locator("#site-status")
        assert chip.inner_text() == "状态未知"
        assert chip.evaluate("e => getComputedStyle(e).backgroundColor") == "rgb(138, 143, 152)"
        page.screenshot(path=str(ARTIFACTS / "site-link-lost-1920x1080.png"))
        uv, thread = serve(pipeline, port)  # back on the same address
        page.wait_for_function("document.body.dataset.link === 'live'", timeout=10_000)
        assert banner.is_hidden() and chip.inner_text() == "正常"
        assert page.evaluate("() => performance.getEntriesByType('navigation').length") == 1  # no reload
    finally:
        uv.should_exit = uv.force_exit = True
        thread.join(10)
        pipeline.stop()


def test_shelving_and_out_of_service_show_on_the_cards(server, browser):
    """A duty officer shelves an alarm from its card (duration and reason in the dialog) and unshelves it; a sensor
    taken out of service wears that state."""
    base, (host, port), pipeline = server
    pipeline.alerts.take_out_of_service("LC-LUXI-GD-03", "demo-duty", "标定", None)
    page = open_page(browser, base + "/sites/LC-LUXI", [])
    assert card(page, "LC-LUXI-GD-03").get_attribute("data-oos") == "1"
    assert card(page, "LC-LUXI-GD-03").locator(".oos-tag").is_visible()
    sign_in(page, "demo-duty")
    publish(publisher(host, port), "LC-LUXI-GD-04", 45.0)
    gd04 = card(page, "LC-LUXI-GD-04")
    page.wait_for_selector('.sensor[data-sensor-id="LC-LUXI-GD-04"][data-isa="unacknowledged"]', timeout=10_000)
    gd04.locator("button.act-shelve").click()
    page.select_option("dialog.lw-dialog select[name=duration_s]", "1800")
    page.fill("dialog.lw-dialog textarea", "检修作业, 已通知现场")
    page.click("dialog.lw-dialog .lw-ok")
    page.wait_for_selector('.sensor[data-sensor-id="LC-LUXI-GD-04"][data-isa="shelved"]', timeout=10_000)
    assert gd04.evaluate("e => getComputedStyle(e).borderTopStyle") == "dashed"
    alert = pipeline.alert_store.get(gd04.get_attribute("data-alert-id"))
    assert alert.shelve_reason == "检修作业, 已通知现场" and 1790 <= alert.shelved_until - time.time() <= 1800
    page.screenshot(path=str(ARTIFACTS / "site-shelved.png"))
    gd04.locator("button.act-unshelve").click()
    page.click("dialog.lw-dialog .lw-ok")
    page.wait_for_selector('.sensor[data-sensor-id="LC-LUXI-GD-04"][data-isa="unacknowledged"]', timeout=10_000)

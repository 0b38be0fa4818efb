"""The one map in a real headless Chromium (Debian's, driven by Playwright), against a real pipeline.

Checks: the page loads with the 8 counties and every site; a confirmed (two-detector, second
level) gas leak published over MQTT turns its site red within 3 s without a reload; the
`demo-operator` token acknowledges from the panel; a viewer token sees no action buttons; the page
makes no request outside 127.0.0.1. Screenshots go to test-artifacts/.
"""

from __future__ import annotations

import time

import orjson

from tests.browser.conftest import ARTIFACTS, PEOPLE, sign_in, sign_in_token
from tests.conftest import publisher


def open_map(browser, base: str, requests: list[str]):
    page = browser.new_page()
    page.on("request", lambda request: requests.append(request.url))
    page.goto(base + "/")
    page.wait_for_function("window.liaowangReady === true", timeout=15_000)
    return page


def site_status(page, site_id: str) -> str | None:
    return page.evaluate("id => (window.liaowang.state.sites.find(s => s.id === id) || {}).status", site_id)


def red_on_map(page) -> list[str]:
    return page.evaluate("""() => {
        const option = window.liaowang.chart.getOption();
        const red = option.series.find(s => s.id === "red-sites");
        return red ? red.data.map(d => d.site.id) : [];
    }""")


def test_the_one_map_live_in_a_real_browser(server, browser):
    base, (host, port), pipeline = server
    ARTIFACTS.mkdir(exist_ok=True)
    requests: list[str] = []
    page = open_map(browser, base, requests)

    counties = page.evaluate("() => echarts.getMap('liaocheng').geoJSON.features.map(f => f.properties.name)")
    assert len(counties) == 8 and "茌平区" in counties
    shown = page.evaluate("""() => window.liaowang.chart.getOption().series
        .filter(s => s.id === 'sites' || s.id === 'red-sites').flatMap(s => s.data.map(d => d.site.id))""")
    assert sorted(shown) == sorted(pipeline.fleet.sites)
    page.screenshot(path=str(ARTIFACTS / "map-1920x1080.png"))

    # two neighbouring detectors at their second level: a confirmed leak, red
    client = publisher(host, port)
    published = time.monotonic()
    body = {"site_id": "LC-LUXI", "readings": [
        {"sensor_id": "LC-LUXI-GD-01", "ts": time.time(), "value": 45.0, "unit": "%LEL"},
        {"sensor_id": "LC-LUXI-GD-02", "ts": time.time(), "value": 44.0, "unit": "%LEL"}]}
    client.publish("liaowang/v1/readings/LC-LUXI", orjson.dumps(body), qos=1).wait_for_publish(5)
    page.wait_for_function("() => (window.liaowang.state.sites.find(s => s.id === 'LC-LUXI') || {}).status === 'red'",
                           timeout=10_000, polling=50)
    took = time.monotonic() - published
    assert took <= 3.0, f"the site turned red after {took:.2f} s"
    assert "LC-LUXI" in red_on_map(page)
    assert page.evaluate("() => performance.getEntriesByType('navigation').length") == 1  # no reload
    page.screenshot(path=str(ARTIFACTS / "map-red-site.png"))

    # sign in as the operator and acknowledge the red alert from the panel
    sign_in(page, *PEOPLE["luxi_operator"])
    red_item = page.locator("#alerts li.red").first
    alert_id = red_item.get_attribute("data-alert-id")
    red_item.locator("button.act-ack").click()
    page.locator("dialog.lw-dialog[data-kind=ack] button.lw-ok").click()  # the dialog with a note, not prompt()
    page.wait_for_selector(f'#alerts li[data-alert-id="{alert_id}"][data-state="acknowledged"]', timeout=5_000)
    assert pipeline.alert_store.get(alert_id).acknowledged_by == "luxi-operator"  # the person, by name

    # at laptop size the panel still shows the alerts
    page.set_viewport_size({"width": 1366, "height": 768})
    page.screenshot(path=str(ARTIFACTS / "map-1366x768.png"))

    # a viewer sees the alerts and no action button
    viewer = open_map(browser, base, requests)
    viewer.evaluate("async () => { await LW.session.ready; await LW.session.signOut(); }")  # the browser's cookie
    sign_in_token(viewer, "demo-viewer")
    viewer.wait_for_function("() => (window.LW.session.user() || {}).role === 'viewer'")
    assert viewer.locator("#alerts li").count() >= 1
    assert viewer.locator("#alerts li .actions button").count() == 0
    viewer.screenshot(path=str(ARTIFACTS / "map-viewer.png"))

    # the site view: every sensor, its chart of the last hour with the setpoints drawn, the alerts with history
    site = browser.new_page()
    site.on("request", lambda request: requests.append(request.url))
    site.goto(base + "/sites/LC-LUXI")
    site.wait_for_function("window.liaowangReady === true", timeout=15_000)
    sensors = [s.id for s in pipeline.fleet.sensors.values() if s.site_id == "LC-LUXI"]
    assert site.locator(".sensor").count() == len(sensors)
    drawn = site.evaluate("""() => {
        const chart = window.liaowangSite.charts["LC-LUXI-GD-01"];
        const series = chart.getOption().series[0];
        return {points: series.data.length, lines: series.markLine.data.map(d => d.name),
                canvas: !!document.querySelector('[data-sensor-id="LC-LUXI-GD-01"] canvas')};
    }""")
    assert drawn == {"points": 1, "lines": ["level1", "level2"], "canvas": True}
    assert "一级" in site.locator("#site-meta").inner_text()  # GB 18218 grade shown
    assert site.locator(f'#site-alerts li[data-alert-id="{alert_id}"] .history li').count() >= 2
    site.screenshot(path=str(ARTIFACTS / "site-LC-LUXI.png"), full_page=True)

    # English at the press of a button, Chinese again at the next
    page.click("#lang")
    assert page.locator("#alerts-title").inner_text() == "Active alarms"
    assert "Urgent" in page.locator("#alerts li.red").first.inner_text()  # alarm priorities, not warning levels
    page.screenshot(path=str(ARTIFACTS / "map-english.png"))
    page.click("#lang")
    assert page.locator("#alerts-title").inner_text() == "当前报警"

    outside = [url for url in requests if not url.startswith(base)]
    assert requests and outside == []


def test_the_map_shows_warnings_in_force_and_colours_sites_by_risk_grade(server, browser):
    """Issue 13: an issued warning (预警) appears on the map, in Chinese, as a ring and in its own list;
    the map can colour enterprises by their MEM-style risk grade instead of their alarms."""
    base, _, pipeline = server
    ARTIFACTS.mkdir(exist_ok=True)
    requests: list[str] = []
    page = open_map(browser, base, requests)
    assert page.locator("#warnings li.none").count() == 1  # nothing in force yet

    import httpx

    duty = {"Authorization": "Bearer demo-duty"}
    with httpx.Client(base_url=base, headers=duty, timeout=10) as api:
        proposed = api.post("/api/v1/warnings", json={"subject": {"kind": "enterprise", "id": "LC-XFPVC"},
                                                      "category": "事故灾难/危险化学品", "level": "II",
                                                      "reason": "储罐区高高报警未确认, 动火作业中"})
        assert proposed.status_code == 201, proposed.text
        warning_id = proposed.json()["id"]
        assert api.post(f"/api/v1/warnings/{warning_id}/verify", json={"reason": "现场核实: 储罐区温度持续上升"}).status_code == 200
        assert api.post(f"/api/v1/warnings/{warning_id}/issue", json={}).status_code == 200
    page.wait_for_selector(f'#warnings li[data-warning-id="{warning_id}"]', timeout=10_000)
    item = page.locator(f'#warnings li[data-warning-id="{warning_id}"]').inner_text()
    assert "橙" in item and "信发" in item, item  # level in Chinese, the enterprise by name
    rings = page.evaluate("""() => (window.liaowang.chart.getOption().series.find(s => s.id === 'warned-sites') || {data: []})
        .data.map(d => d.warning.id)""")
    assert rings == [warning_id]
    page.screenshot(path=str(ARTIFACTS / "map-warning.png"))

    page.select_option("#f-view", "risk")
    graded = {r["site_id"]: r["colour"] for r in pipeline.risk.assess(pipeline.clock()).values()
              for r in [r.to_json() | {"site_id": r.site_id}]}
    drawn = page.evaluate("""() => Object.fromEntries(window.liaowang.chart.getOption().series
        .filter(s => s.id === 'sites' || s.id === 'red-sites').flatMap(s => s.data)
        .map(d => [d.site.id, d.itemStyle.color]))""")
    colours = page.evaluate("() => ({red: '#e02020', orange: '#ff8c00', yellow: '#f5c400', blue: '#1e6fff'})")
    assert graded and all(drawn[site] == colours[colour] for site, colour in graded.items())
    page.screenshot(path=str(ARTIFACTS / "map-risk.png"))
    assert [url for url in requests if not url.startswith(base)] == []

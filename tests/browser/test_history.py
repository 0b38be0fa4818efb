"""The alarm history and statistics pages in a real headless Chromium, against a real pipeline.

A month of stored episodes (October 2025, 60 alarms at three sites; `tests.alerting.episodes`) is
searched, paged and filtered from the form; the CSV and Excel exports are downloaded through the
page with the sign-in and their rows compared; English labels at the press of a button; the
statistics page draws its charts with the month's numbers; on a 390 px phone nothing scrolls
sideways. Screenshots at 1920×1080, 1366×768 and 390×844 go to test-artifacts/.
"""

from __future__ import annotations

import csv
import io
import re
from datetime import datetime

import openpyxl

from foundation.domain import CST
from tests.alerting.episodes import november
from tests.browser.conftest import ARTIFACTS, PEOPLE, VIEWPORTS, sign_in

OCTOBER = datetime(2025, 10, 2, 8, 0, tzinfo=CST).timestamp()


def seeded(server):
    base, _, pipeline = server
    alerts = november(OCTOBER)
    for alert in alerts:
        pipeline.alert_store.save(alert)
    return base, {a.id: a for a in alerts}


def searched(page, before: int) -> None:
    page.wait_for_function(f"() => window.liaowangHistory.loads > {before}", timeout=10_000)


def search(page, **fields) -> None:
    """Fill the form's fields (name → value) and press 查询, then wait for the answer."""
    before = page.evaluate("() => window.liaowangHistory.loads")
    for name, value in fields.items():
        selector = f'#search [name="{name}"]'
        if page.locator(selector).evaluate("el => el.tagName") == "SELECT":
            page.select_option(selector, value)
        else:
            page.fill(selector, value)
    page.click("#search-btn")
    searched(page, before)


def no_sideways_scroll(page) -> bool:
    return page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth")


def downloaded(page, button: str) -> tuple[str, bytes]:
    with page.expect_download(timeout=10_000) as info:
        page.click(button)
    download = info.value
    return download.suggested_filename, open(download.path(), "rb").read()


def test_search_page_and_export_in_a_real_browser(server, browser):
    base, alerts = seeded(server)
    ARTIFACTS.mkdir(exist_ok=True)
    requests: list[str] = []
    page = browser.new_page()
    page.on("request", lambda request: requests.append(request.url))
    page.goto(base + "/history")
    page.wait_for_function("() => window.liaowangHistory.loads >= 1", timeout=15_000)
    before = page.evaluate("() => window.liaowangHistory.loads")
    sign_in(page, *PEOPLE["duty_officer"])
    searched(page, before)  # signing in searches again (a scoped person sees other alarms)

    # October 2025 only: the live pipeline may raise its own alarms meanwhile, all of them today
    search(page, since="2025-10-01T00:00", until="2025-10-31T23:59", priority="urgent")
    assert page.evaluate("() => window.liaowangHistory.total") == 15
    assert page.locator("#results tbody tr").count() == 15
    assert page.locator("#results tbody .chip.red").count() == 15
    assert "共 15 条报警" in page.locator("#status").inner_text()
    for viewport, (width, height) in VIEWPORTS.items():
        page.set_viewport_size({"width": width, "height": height})
        assert no_sideways_scroll(page), viewport
        page.screenshot(path=str(ARTIFACTS / f"history-{viewport}.png"))
    page.set_viewport_size({"width": 1920, "height": 1080})

    # paging through all 60, 25 a page
    search(page, priority="")
    before = page.evaluate("() => window.liaowangHistory.loads")
    page.select_option("#page-size", "25")
    searched(page, before)
    seen = []
    for expected in (25, 25, 10):
        ids = page.eval_on_selector_all("#results tbody tr", "rows => rows.map(r => r.dataset.alertId)")
        assert len(ids) == expected
        seen += ids
        if expected == 25:
            before = page.evaluate("() => window.liaowangHistory.loads")
            page.click("#next")
            searched(page, before)
    assert sorted(seen) == sorted(alerts) and page.locator("#next").is_disabled()

    # a text search: a site's Chinese name
    search(page, q="信发化工")
    assert page.evaluate("() => window.liaowangHistory.total") == 20

    # the exports: the same rows, downloaded with the sign-in
    search(page, q="", state="closed")
    assert page.evaluate("() => window.liaowangHistory.total") == 18
    name, body = downloaded(page, "#export-csv")
    assert re.fullmatch(r"liaowang-alarms-\d{8}-\d{4}\.csv", name) and body.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))
    assert rows[0][0] == "报警时间 (UTC+08:00)" and len(rows) == 19
    assert {r[2] for r in rows[1:]} == {"鲁西集团", "信发化工", "东阿黄河森林"} and {r[9] for r in rows[1:]} == {"已消警"}
    assert {r[-1] for r in rows[1:]} == {i for i, a in alerts.items() if a.closed_at is not None}
    name, body = downloaded(page, "#export-xlsx")
    assert name.endswith(".xlsx")
    sheet = openpyxl.load_workbook(io.BytesIO(body)).active
    cells = [["" if v is None else v.strftime("%Y-%m-%d %H:%M:%S") if isinstance(v, datetime) else str(v) for v in row]
             for row in sheet.iter_rows(values_only=True)]
    assert cells == rows

    # English: every label of the form and the table, the words in the rows
    page.click("#lang")
    assert page.locator("#search-btn").inner_text() == "Search"
    header = page.locator("#results thead").inner_text()
    assert "Raised" in header and not re.search(r"[\u4e00-\u9fff]", header)
    states = page.eval_on_selector_all("#results tbody .state", "els => els.map(e => e.textContent)")
    assert set(states) == {"Closed"}
    page.click("#lang")

    outside = [url for url in requests if not url.startswith(base)]
    assert requests and outside == []


def test_statistics_page_draws_its_charts(server, browser):
    base, alerts = seeded(server)
    ARTIFACTS.mkdir(exist_ok=True)
    page = browser.new_page()
    page.goto(base + "/stats?month=2025-10")
    page.wait_for_function("() => window.liaowangStats.loads >= 1 && window.liaowangStats.data", timeout=15_000)
    assert page.input_value("#month") == "2025-10"
    totals = page.evaluate("""() => {
        const sum = id => window.liaowangStats.charts[id].getOption().series
            .reduce((n, s) => n + s.data.reduce((m, d) => m + (typeof d === "object" && d !== null ? d.value : d || 0), 0), 0);
        return {priority: sum("c-priority"), county: sum("c-county"), family: sum("c-family"), cause: sum("c-cause"),
                top: window.liaowangStats.charts["c-top"].getOption().series[0].data.length,
                days: window.liaowangStats.charts["c-priority"].getOption().xAxis[0].data.length,
                canvases: document.querySelectorAll(".chart canvas").length};
    }""")
    assert totals == {"priority": 60, "county": 60, "family": 60, "cause": 18, "top": 9, "days": 31, "canvases": 6}
    assert page.locator("#kpi-table tr").count() == 5 and page.locator("#desk-table tr").count() == 4
    assert page.locator("#tiles .tile").first.locator("b").inner_text() == "60"
    for viewport, (width, height) in VIEWPORTS.items():
        page.set_viewport_size({"width": width, "height": height})
        page.wait_for_timeout(200)  # ECharts redraws on resize
        assert no_sideways_scroll(page), viewport
        page.screenshot(path=str(ARTIFACTS / f"stats-{viewport}.png"), full_page=True)
    page.set_viewport_size({"width": 1920, "height": 1080})
    page.click("#lang")
    assert page.locator("#kpi-table th").first.inner_text() == "Priority"
    assert page.evaluate("() => window.liaowangStats.charts['c-priority'].getOption().series.map(s => s.name)") == [
        "Urgent", "High", "Medium", "Low"]
    page.screenshot(path=str(ARTIFACTS / "stats-english.png"), full_page=True)

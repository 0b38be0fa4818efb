"""The alarm history API (liaowang/api_history.py): search with filters and paging, CSV and Excel exports with
the same rows, statistics by month; a token scoped to one site never sees another site's alarms in any of them."""

from __future__ import annotations

import csv
import io
from datetime import datetime

import openpyxl
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from alerting import AlertStore
from liaowang.api import create_app
from foundation.config import TokenEntry, hash_token
from foundation.domain import CST, iso
from liaowang.pipeline import Pipeline
from tests.alerting.episodes import T0, november

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=CST).timestamp()
DUTY = {"Authorization": "Bearer demo-duty"}
XFHG = {"Authorization": "Bearer t-xfhg-history"}
"""A viewer token scoped to LC-XFHG (信发化工)."""


@pytest.fixture
def stored(tmp_path, demo_config, alerts_db_factory):
    """A pipeline whose alerts.db holds the `november` episodes, its clock at 2026-11-30 12:00 Beijing time;
    alerts.db is a SQLite file, then PostgreSQL (``storage.database_url``: the searches run there)."""
    alerts = november()
    (tmp_path / "data").mkdir()
    target = alerts_db_factory("data/alerts.db")
    store = AlertStore(target)
    for alert in alerts:
        store.save(alert)
    store.close()
    scoped = TokenEntry(name="xfhg-history", sha256=hash_token("t-xfhg-history"), role="viewer", sites=["LC-XFHG"])
    auth = demo_config.settings.auth.model_copy(update={"tokens": [*demo_config.settings.auth.tokens, scoped]})
    update: dict = {"auth": auth}
    if isinstance(target, str):
        update["storage"] = demo_config.settings.storage.model_copy(update={"database_url": SecretStr(target)})
    config = demo_config.model_copy(update={"settings": demo_config.settings.model_copy(update=update)})
    pipeline = Pipeline(config, tmp_path / "data", clock=lambda: NOW)
    yield TestClient(create_app(pipeline)), {a.id: a for a in alerts}
    pipeline.stop()


def search(client: TestClient, headers=DUTY, **params) -> dict:
    response = client.get("/api/v1/history/alarms", params=params, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def test_paging_walks_every_alarm_once_newest_raised_first(stored):
    client, alerts = stored
    pages = [search(client, limit=25, offset=offset) for offset in (0, 25, 50)]
    assert [p["total"] for p in pages] == [60, 60, 60] and [len(p["items"]) for p in pages] == [25, 25, 10]
    items = [item for page in pages for item in page["items"]]
    assert sorted(i["id"] for i in items) == sorted(alerts)
    raised = [alerts[i["id"]].raised_at for i in items]
    assert raised == sorted(raised, reverse=True)
    assert items[0]["site_name"] in ("鲁西集团", "信发化工", "东阿黄河森林") and "subject_name" in items[0]


@pytest.mark.parametrize("params, expected", [
    ({"site_id": "LC-XFHG"}, lambda a: a.site_id == "LC-XFHG"),
    ({"site_id": "LC-XFHG,LC-DEHH"}, lambda a: a.site_id in ("LC-XFHG", "LC-DEHH")),
    ({"county": "东阿县"}, lambda a: a.county == "东阿县"),
    ({"family": "forest"}, lambda a: a.family == "forest"),
    ({"priority": "urgent"}, lambda a: a.peak_tier.priority == "urgent"),
    ({"priority": "red,blue"}, lambda a: a.peak_tier.priority in ("urgent", "low")),
    ({"state": "closed"}, lambda a: a.closed_at is not None),
    ({"state": "active"}, lambda a: a.state == "active"),
    ({"cause": "maintenance"}, lambda a: a.close_cause == "maintenance"),
    ({"cause": "unspecified"}, lambda a: a.closed_at is not None and a.close_cause is None),
    ({"since": iso(T0 + 3 * 86400), "until": iso(T0 + 4 * 86400)}, lambda a: T0 + 3 * 86400 <= a.raised_at <= T0 + 4 * 86400),
    ({"q": "lc-luxi-gd-02"}, lambda a: a.subject == "LC-LUXI-GD-02"),
    ({"q": "信发化工"}, lambda a: a.site_id == "LC-XFHG"),
    ({"q": "可燃气体探测器03"}, lambda a: a.subject.endswith("GD-03")),
    ({"family": "gas", "priority": "high", "state": "resolved"},
     lambda a: a.family == "gas" and a.peak_tier.priority == "high" and a.state == "resolved"),
])
def test_each_filter_finds_exactly_the_matching_alarms(stored, params, expected):
    client, alerts = stored
    found = search(client, limit=500, **params)
    want = {i for i, a in alerts.items() if expected(a)}
    assert want and found["total"] == len(want)
    assert {i["id"] for i in found["items"]} == want


@pytest.mark.parametrize("params, name", [({"priority": "purple"}, "priority"), ({"since": "yesterday"}, "since"),
                                          ({"cause": "bad luck"}, "cause"), ({"county": "北京"}, "county"),
                                          ({"state": "open"}, "state"), ({"limit": "0"}, "query.limit"),
                                          ({"since": "2026-11-10T00:00:00+08:00", "until": "2026-11-01T00:00:00+08:00"}, "until")])
def test_bad_filters_are_422_naming_the_parameter(stored, params, name):
    client, _ = stored
    response = client.get("/api/v1/history/alarms", params=params, headers=DUTY)
    assert response.status_code == 422 and response.json()["detail"].startswith(name), response.text


def csv_rows(client: TestClient, headers=DUTY, **params) -> list[list[str]]:
    response = client.get("/api/v1/history/alarms/export", params={"format": "csv", **params}, headers=headers)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    assert response.content.startswith(b"\xef\xbb\xbf")  # the BOM Excel needs to read UTF-8
    return list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))


def xlsx_rows(client: TestClient, headers=DUTY, **params) -> list[list[str]]:
    response = client.get("/api/v1/history/alarms/export", params={"format": "xlsx", **params}, headers=headers)
    assert response.status_code == 200 and "spreadsheetml" in response.headers["content-type"]
    sheet = openpyxl.load_workbook(io.BytesIO(response.content)).active

    def text(value) -> str:
        return "" if value is None else value.strftime("%Y-%m-%d %H:%M:%S") if isinstance(value, datetime) else str(value)

    return [[text(v) for v in row] for row in sheet.iter_rows(values_only=True)]


def test_the_csv_and_excel_exports_hold_the_searched_rows_with_names_and_beijing_times(stored):
    client, alerts = stored
    params = {"site_id": "LC-LUXI", "state": "closed"}
    rows = csv_rows(client, **params)
    header, body = rows[0], rows[1:]
    assert header[:6] == ["报警时间 (UTC+08:00)", "区县", "场所", "监测对象", "类别", "优先级"]
    assert "消警原因" in header and "确认人" in header
    found = search(client, limit=500, **params)["items"]
    column = {name: header.index(name) for name in header}
    assert [r[column["报警编号"]] for r in body] == [i["id"] for i in found]  # same rows, same order
    for row in body:
        alert = alerts[row[column["报警编号"]]]
        assert row[column["场所"]] == "鲁西集团" and row[column["区县"]] == "东昌府区"
        assert row[column["监测对象"]].startswith("可燃气体探测器")  # the sensor's name, not its id
        assert row[column["报警时间 (UTC+08:00)"]] == datetime.fromtimestamp(alert.raised_at, CST).strftime("%Y-%m-%d %H:%M:%S")
        assert row[column["状态"]] == "已消警" and row[column["类别"]] == "气体泄漏"
        assert row[column["优先级"]] in ("低报警", "中报警", "高报警", "紧急报警")
        assert row[column["消警原因"]] in ("误报", "仪表故障", "工艺波动", "检修作业", "真实险情", "")
    assert xlsx_rows(client, **params) == rows


def test_the_export_speaks_english_on_request(stored):
    client, _ = stored
    rows = csv_rows(client, lang="en", site_id="LC-DEHH", state="closed", cause="real_incident")
    assert rows[0][:3] == ["raised (UTC+08:00)", "county", "site"]
    assert len(rows) == 2 and "closed" in rows[1] and "real incident" in rows[1] and "forest fire" in rows[1]


def test_a_site_scoped_token_sees_only_its_site_in_search_export_and_statistics(stored):
    client, alerts = stored
    mine = {i for i, a in alerts.items() if a.site_id == "LC-XFHG"}
    found = search(client, XFHG, limit=500)
    assert {i["id"] for i in found["items"]} == mine and found["total"] == 20
    assert search(client, XFHG, site_id="LC-LUXI")["total"] == 0
    assert search(client, XFHG, q="鲁西集团")["total"] == 0
    rows = csv_rows(client, XFHG)
    assert {r[2] for r in rows[1:]} == {"信发化工"} and len(rows) == 21
    assert {r[2] for r in xlsx_rows(client, XFHG)[1:]} == {"信发化工"}
    stats = client.get("/api/v1/statistics?month=2026-11", headers=XFHG).json()
    assert stats["new_alerts"] == 20 and set(stats["by_county"]) == {"茌平区"}
    assert set(stats["site_names"]) == {"LC-XFHG"}
    assert {t["site_id"] for t in stats["top_sources"] + stats["stale"]} == {"LC-XFHG"}
    assert client.get("/api/v1/statistics?month=2026-11", headers=DUTY).json()["new_alerts"] == 60


def test_statistics_of_a_month_default_to_this_month(stored):
    client, alerts = stored
    this_month = client.get("/api/v1/statistics", headers=DUTY).json()
    assert this_month["month"] == "2026-11" and this_month["new_alerts"] == 60
    assert this_month["since"] == "2026-11-01T00:00:00.000+08:00" and this_month["until"] == iso(NOW)
    assert set(this_month["by_priority"].values()) == {15} and this_month["stale_alerts"] == 6
    assert this_month["top_sources"][0]["name"].startswith("可燃气体探测器") or this_month["top_sources"][0]["site_id"] == "LC-DEHH"
    assert sum(this_month["time_to_ack"][p]["count"] for p in this_month["time_to_ack"]) == sum(
        1 for a in alerts.values() if a.acknowledged_at is not None)
    assert client.get("/api/v1/statistics?month=2026-10", headers=DUTY).json()["new_alerts"] == 0
    span = client.get("/api/v1/statistics", params={"since": iso(T0), "until": iso(T0 + 86400)}, headers=DUTY).json()
    assert span["new_alerts"] == sum(1 for a in alerts.values() if T0 <= a.raised_at <= T0 + 86400) and span["month"] is None
    for bad in ({"month": "2026-13"}, {"month": "November"}, {"month": "2026-11", "since": iso(T0)}):
        response = client.get("/api/v1/statistics", params=bad, headers=DUTY)
        assert response.status_code == 422 and response.json()["detail"].startswith("month"), bad


def test_kpis_keep_their_old_fields(stored):
    """/api/v1/kpis now computes through alerting.statistics: every field it had is still there."""
    client, _ = stored
    kpis = client.get("/api/v1/kpis", params={"since": "2026-11-01T00:00:00+08:00"}, headers=DUTY).json()
    assert {"since", "until", "new_alerts", "desks", "closed_by_cause", "closed_by_cause_zh", "floods",
            "chattering_alerts", "stale_alerts", "stale_alert_ids", "top_sources"} <= set(kpis)
    assert kpis["new_alerts"] == 60 and kpis["chattering_alerts"] == 3
    assert {"rule_id", "subject", "alerts"} <= set(kpis["top_sources"][0])


def test_the_history_and_statistics_pages_are_served(stored):
    client, _ = stored
    for path, title in (("/history", "报警历史"), ("/stats", "报警统计")):
        response = client.get(path)
        assert response.status_code == 200 and title in response.text, path


def test_the_excel_sheet_is_ready_to_read(stored):
    """Bold, frozen header; times are date-time cells (sortable in Excel) in Beijing wall time."""
    client, alerts = stored
    response = client.get("/api/v1/history/alarms/export", params={"format": "xlsx", "site_id": "LC-XFHG"}, headers=DUTY)
    sheet = openpyxl.load_workbook(io.BytesIO(response.content)).active
    assert sheet.title == "报警历史" and sheet.freeze_panes == "A2" and sheet["A1"].font.b
    first = alerts[sheet.cell(2, sheet.max_column).value]
    assert sheet["A2"].is_date and sheet["A2"].number_format == "yyyy-mm-dd hh:mm:ss"
    assert sheet["A2"].value == datetime.fromtimestamp(first.raised_at, CST).replace(tzinfo=None)
    assert sheet.max_row == 21

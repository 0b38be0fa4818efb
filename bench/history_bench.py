"""What the alarm history costs (issue 14 §4): search, exports and statistics over a large alarm store.

Run:  .venv/bin/python bench/history_bench.py [--alarms 50000]

Fills a fresh alerts.db with ``--alarms`` stored episodes spread over 30 days at three sites
(`tests.alerting.episodes.episode`), then times, in process (no HTTP):

1. one page of the history search without filters, and with a text filter (every episode is
   read and judged, as the API does for each page);
2. the CSV and Excel exports of a 10,000-alarm search;
3. the month's statistics (`alarm_kpis` over every episode).

The machine is shared (2 cores): treat the times as ± 20 %.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from alerting import AlertStore  # noqa: E402
from alerting.search import AlarmQuery, search  # noqa: E402
from alerting.statistics import alarm_kpis  # noqa: E402
from liaowang.alarm_export import subject_name, to_csv, to_xlsx  # noqa: E402
from foundation.config import load_config  # noqa: E402
from foundation.domain import Tier  # noqa: E402
from tests.alerting.episodes import T0, episode  # noqa: E402


def timed(label: str, work) -> object:
    started = time.perf_counter()
    result = work()
    print(f"{label:<48} {time.perf_counter() - started:8.3f} s")
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--alarms", type=int, default=50_000)
    args = parser.parse_args()
    config = load_config(ROOT / "config")
    fleet = config.fleet
    with tempfile.TemporaryDirectory() as tmp:
        store = AlertStore(Path(tmp) / "alerts.db")
        sites = [("LC-LUXI", "东昌府区"), ("LC-XFHG", "茌平区"), ("LC-HTHG", "莘县")]
        step = 30 * 86_400 / args.alarms

        def fill() -> None:
            with store.db.transaction():
                for i in range(args.alarms):
                    site, county = sites[i % 3]
                    store.save(episode(site, f"{site}-GD-0{1 + i % 3}", T0 + i * step, Tier(1 + i % 4), county=county,
                                       ack_after=60.0 + i % 600, close_after=3600.0 if i % 2 else None,
                                       cause="false_alarm" if i % 2 else None))

        timed(f"store {args.alarms} episodes", fill)
        name_of = lambda s: subject_name(fleet, s)  # noqa: E731
        site_name = lambda s: fleet.sites[s].name  # noqa: E731
        timed("search page 1 (50), no filter", lambda: search(store, AlarmQuery(), None, name_of, site_name, 50))
        timed("search page 1 (50), urgent gas, closed by false alarm", lambda: search(store, AlarmQuery(
            priorities=("urgent",), families=("gas",), causes=("false_alarm",)), None, name_of, site_name, 50))
        timed("search page 1 (50), text '可燃气体探测器02'",
              lambda: search(store, AlarmQuery(text="可燃气体探测器02"), None, name_of, site_name, 50))
        timed("search page 1 (50), one site and one day", lambda: search(store, AlarmQuery(
            start=T0 + 86_400, end=T0 + 2 * 86_400, sites=("LC-XFHG",)), None, name_of, site_name, 50))
        page = timed("search 10,000 (an export's read)",
                     lambda: search(store, AlarmQuery(), None, name_of, site_name, 10_000)).alerts
        csv_bytes = timed("CSV export of 10,000 alarms", lambda: to_csv(page, fleet))
        xlsx_bytes = timed("Excel export of 10,000 alarms", lambda: to_xlsx(page, fleet))
        print(f"{'':<48} CSV {len(csv_bytes) / 1e6:.1f} MB, xlsx {len(xlsx_bytes) / 1e6:.1f} MB")
        everything = timed("read the month (raised_between)", lambda: store.raised_between(T0, T0 + 31 * 86_400))
        timed("statistics of the month", lambda: alarm_kpis(everything, [], config.alerting, T0, T0 + 31 * 86_400,
                                                             T0 + 31 * 86_400, name_of))
        store.close()


if __name__ == "__main__":
    main()

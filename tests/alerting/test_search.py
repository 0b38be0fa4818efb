"""The history search (alerting/search.py): what SQLite answers equals filtering every episode with
`AlarmQuery.matches` (the reference model), for random episodes, filters, scopes and pages."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alerting import AlertStore
from alerting.search import AlarmQuery, search
from liaowang.alarm_export import subject_name
from foundation.domain import Tier
from tests.alerting.episodes import T0, episode

SITES = {"LC-LUXI": "东昌府区", "LC-XFHG": "茌平区", "LC-DEHH": "东阿县"}
CAUSES = ["false_alarm", "instrument_fault", "maintenance", None]


def subset(values):
    return st.none() | st.lists(st.sampled_from(values), unique=True, max_size=len(values)).map(tuple)


@st.composite
def episodes(draw):
    alerts = []
    for i in range(draw(st.integers(0, 25))):
        site = draw(st.sampled_from(sorted(SITES)))
        tier = draw(st.integers(1, 4))
        closed = draw(st.booleans())
        alert = episode(
            site, f"{site}-GD-0{draw(st.integers(1, 3))}", T0 + draw(st.integers(0, 2000)) * 60 + i, Tier(tier),
            family=draw(st.sampled_from(["gas", "hazard", "forest"])), county=SITES[site],
            peak=Tier(draw(st.integers(tier, 4))), ack_after=draw(st.none() | st.just(60.0)),
            close_after=600.0 if closed else None, cause=draw(st.sampled_from(CAUSES)) if closed else None,
            open_=not closed and draw(st.booleans()), message=draw(st.sampled_from(["可燃气体浓度 27.5 %LEL", "Level HIGH"])))
        alerts.append(alert)
    return alerts


queries = st.builds(
    AlarmQuery, start=st.none() | st.integers(0, 2000).map(lambda m: T0 + m * 60),
    end=st.none() | st.integers(0, 2000).map(lambda m: T0 + m * 60), sites=subset(sorted(SITES)),
    counties=subset(sorted(SITES.values())), families=subset(["gas", "hazard", "forest", "system"]),
    priorities=subset(["low", "medium", "high", "urgent"]),
    states=subset(["active", "acknowledged", "resolved", "closed", "shelved"]),
    causes=subset(["false_alarm", "instrument_fault", "process_upset", "maintenance", "real_incident", "unspecified"]),
    text=st.none() | st.sampled_from(["GD-01", "探测器02", "鲁西", "信发化工", "现场", "lc-luxi", "HIGH", "level high", "收到", "zzz"]))


@pytest.fixture(scope="module")
def names(demo_config):
    fleet = demo_config.fleet
    return (lambda s: subject_name(fleet, s)), (lambda s: fleet.sites[s].name if s in fleet.sites else s)


@pytest.fixture(scope="module")
def pg_store(pg_server):
    """One PostgreSQL store for every example of the property below (emptied before each)."""
    url = pg_server.create_database()
    store = AlertStore(url)
    yield store
    store.close()
    pg_server.drop_database(url)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(episodes(), queries, st.none() | st.sampled_from([frozenset({"LC-XFHG"}), frozenset({"LC-LUXI", "LC-DEHH"})]),
       st.none() | st.integers(1, 10), st.integers(0, 12))
def test_search_agrees_with_filtering_every_episode(names, alerts, query, scope, limit, offset):
    name_of, site_name = names
    with tempfile.TemporaryDirectory() as tmp:
        store = AlertStore(Path(tmp) / "alerts.db")
        for alert in alerts:
            store.save(alert)
        found = search(store, query, scope, name_of, site_name, limit, offset)
        store.close()
    _check(found, alerts, query, scope, limit, offset, name_of, site_name)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(episodes(), queries, st.none() | st.sampled_from([frozenset({"LC-XFHG"}), frozenset({"LC-LUXI", "LC-DEHH"})]),
       st.none() | st.integers(1, 10), st.integers(0, 12))
def test_search_on_postgresql_agrees_with_filtering_every_episode(names, pg_store, alerts, query, scope, limit, offset):
    """The same property with the filters run by PostgreSQL (JSON through ->>, no LIMIT -1)."""
    name_of, site_name = names
    pg_store.db.conn.execute("DELETE FROM alerts")
    for alert in alerts:
        pg_store.save(alert)
    found = search(pg_store, query, scope, name_of, site_name, limit, offset)
    _check(found, alerts, query, scope, limit, offset, name_of, site_name)


def _check(found, alerts, query, scope, limit, offset, name_of, site_name):
    expected = [a.id for a in sorted(alerts, key=lambda a: (-a.raised_at, a.id))
                if query.matches(a, name_of, site_name) and (scope is None or a.site_id in scope)]
    assert found.total == len(expected)
    assert [a.id for a in found.alerts] == (expected[offset:] if limit is None else expected[offset:offset + limit])


def test_an_in_memory_store_is_searched_through_its_own_connection(names):
    """Tools and tests keep alerts.db in memory: the search reads it under the writer's lock instead."""
    store = AlertStore(":memory:")
    store.save(episode("LC-LUXI", "LC-LUXI-GD-01", T0, Tier.RED))
    found = search(store, AlarmQuery(priorities=("urgent",), text="可燃气体探测器01"), None, *names)
    assert found.total == 1 and found.alerts[0].subject == "LC-LUXI-GD-01"

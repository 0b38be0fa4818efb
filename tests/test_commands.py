"""People's alarm actions as commands to the partition owner (liaowang/commands.py): `apply_command` is a
faithful, never-raising translation of the lifecycle's actions into replies, and `CommandClient` reaches an
owner over a real nats-server — or says plainly that none answered."""

from __future__ import annotations

import asyncio
import math
import sqlite3
import threading
import time
from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alerting import AlertManager, AlertStore
from alerting.audit import AuditLog
from alerting.db import AlertDB
from alerting.suppress import Suppressions
from foundation.domain import Family, Tier
from liaowang.commands import ERRORS, CommandClient, OwnerUnavailable, apply_command, partition_of, serve_commands
from rules.base import Signal
from tests.natsserver import nats_url  # noqa: F401  (a fixture)

T0 = 1_795_564_800.0
GAS = "gas.combustible_gas.threshold"


def signal(tier, ts, subject="LC-LUXI-GD-01"):
    return Signal(GAS, "threshold", subject, "LC-LUXI", Family.GAS, tier, "level1" if tier else None, 30.0,
                  20.0 if tier else None, "%LEL", ts, "msg")


def make_manager(path: Path | str, fleet, now: dict) -> AlertManager:
    db = AlertDB(path)
    return AlertManager(AlertStore(db), fleet, lambda: now["t"], audit=AuditLog(db), suppressions=Suppressions(db, []))


@pytest.fixture
def manager(tmp_path, fleet):
    now = {"t": T0 + 1000}
    m = make_manager(tmp_path / "alerts.db", fleet, now)
    m.now = now
    return m


def cmd(action, **fields):
    return {"action": action, "site_id": "LC-LUXI", "by": "张三", "role": "duty_officer", **fields}


def test_acknowledge_then_close_a_resolved_alarm(manager):
    [raised] = manager.apply([signal(Tier.ORANGE, T0)])
    alert_id = raised.alert.id
    reply = apply_command(manager, cmd("acknowledge", alert_id=alert_id, note="收到"))
    assert reply["ok"] and reply["events"] == ["acknowledged"] and reply["alert"]["acknowledged_by"] == "张三"
    assert apply_command(manager, cmd("close", alert_id=alert_id, note="ok"))["error"] == "conflict"  # not resolved
    manager.apply([signal(None, T0 + 5)])
    reply = apply_command(manager, cmd("close", alert_id=alert_id, note="现场确认", cause="误报"))
    assert reply["ok"] and reply["alert"]["state"] == "closed" and reply["alert"]["close_cause"] == "false_alarm"


def test_refusals_are_replies_with_the_api_status(manager):
    [raised] = manager.apply([signal(Tier.RED, T0)])
    alert_id = raised.alert.id
    cases = {
        "not_found": cmd("acknowledge", alert_id="nope"),
        "not_permitted": cmd("shelve", alert_id=alert_id, until=T0 + 1100, reason="x"),  # urgent: admin only
        "invalid": {**cmd("shelve", alert_id=alert_id, until=T0 + 1000 + 10 * 86400, reason="x"), "role": "admin"},
        "bad_request": cmd("shelve", alert_id=alert_id, until=math.nan, reason="x"),
    }
    for kind, request in cases.items():
        reply = apply_command(manager, request)
        assert (reply["ok"], reply["error"]) == (False, kind), reply
    assert (ERRORS["not_found"], ERRORS["not_permitted"], ERRORS["invalid"]) == (404, 403, 422)
    assert apply_command(manager, cmd("acknowledge", alert_id=alert_id, site_id="LC-XFHG"))["error"] == "bad_request"
    assert apply_command(manager, cmd("acknowledge", alert_id=alert_id), owns=lambda site: False)["error"] == "not_owner"
    assert manager.get(alert_id).state == "active"  # none of them changed it


@pytest.mark.parametrize("request_", [None, [], "ack", {"action": "acknowledge"}, {"action": "acknowledge", "by": 3},
                                      cmd("acknowledge"), cmd("acknowledge", alert_id=["x"]), cmd("fly"),
                                      cmd("take_out_of_service", sensor_id="LC-LUXI-GD-01", reason="r", until="soon"),
                                      cmd("suppress", window={"site_id": "LC-LUXI"}), {**cmd("shelve"), "role": "god"}])
def test_malformed_commands_are_bad_requests(manager, request_):
    assert apply_command(manager, request_)["error"] == "bad_request"


def test_a_store_that_cannot_write_is_unavailable_and_a_bug_is_internal_and_nothing_is_kept(manager):
    [raised] = manager.apply([signal(Tier.ORANGE, T0)])
    alert_id = raised.alert.id

    def full_disk(action):
        with manager.transaction():
            action()
            raise sqlite3.OperationalError("database or disk is full")

    def bug(action):
        raise KeyError("oops")
    assert apply_command(manager, cmd("acknowledge", alert_id=alert_id), run=full_disk)["error"] == "unavailable"
    assert apply_command(manager, cmd("acknowledge", alert_id=alert_id), run=bug)["error"] == "internal"
    assert manager.get(alert_id).state == "active"


def test_out_of_service_and_maintenance_windows_go_through_the_owner(manager):
    reply = apply_command(manager, cmd("take_out_of_service", sensor_id="LC-LUXI-GD-01", reason="标定"))
    assert reply["ok"] and reply["entry"]["sensor_id"] == "LC-LUXI-GD-01"
    assert apply_command(manager, cmd("return_to_service", sensor_id="LC-LUXI-GD-01"))["done"] is True
    assert apply_command(manager, cmd("return_to_service", sensor_id="LC-LUXI-GD-01"))["done"] is False
    window = apply_command(manager, cmd("suppress", window={"site_id": "LC-LUXI", "start": T0, "end": T0 + 60,
                                                            "reason": "检修"}))["window"]
    assert [w.id for w in manager.suppressions.all()] == [window["id"]]
    assert apply_command(manager, cmd("cancel_suppression", window_id=window["id"]))["window"]["cancelled"]
    assert apply_command(manager, cmd("cancel_suppression", window_id=window["id"]))["error"] == "not_found"


JSONISH = st.recursive(st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=5),
                       lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                       max_leaves=10)
FIELDS = st.fixed_dictionaries({}, optional={
    "action": st.sampled_from(["acknowledge", "close", "shelve", "unshelve", "take_out_of_service",
                               "return_to_service", "suppress", "cancel_suppression", "x"]),
    "site_id": st.sampled_from(["LC-LUXI", "LC-XFHG"]) | JSONISH, "by": st.just("张三") | JSONISH,
    "role": st.sampled_from(["operator", "admin"]) | JSONISH, "alert_id": JSONISH, "note": JSONISH,
    "until": JSONISH, "reason": JSONISH, "sensor_id": JSONISH, "window": JSONISH, "window_id": JSONISH,
    "cause": JSONISH})


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(request_=FIELDS | JSONISH)
def test_no_request_makes_apply_command_raise(manager, request_):
    reply = apply_command(manager, request_)
    assert isinstance(reply["ok"], bool) and (reply["ok"] or reply["error"] in ERRORS)
    orjson.dumps(reply)  # it can always be sent back


ACTION = st.one_of(
    st.tuples(st.just("signal"), st.sampled_from([None, Tier.BLUE, Tier.ORANGE, Tier.RED])),
    st.tuples(st.just("acknowledge"), st.sampled_from([None, "收到"])),
    st.tuples(st.just("close"), st.sampled_from(["", "处置完毕"]), st.sampled_from([None, "误报", "bogus"])),
    st.tuples(st.just("shelve"), st.sampled_from([60.0, 10 * 86400.0]), st.sampled_from(["operator", "admin"])),
    st.tuples(st.just("unshelve")),
    st.tuples(st.just("clock"), st.floats(1, 600)))


@pytest.mark.filterwarnings("ignore:Generating overly large repr")  # the fleet fixture in hypothesis' report
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(ACTION, max_size=25))
def test_commands_do_exactly_what_the_lifecycle_calls_do(tmp_path_factory, fleet, steps):
    """Twin managers on the same steps, one through `apply_command`, one through the typed calls (the reference):
    the same outcome (ok, or the same refusal) at every step and the same stored alarms at the end."""
    folder = tmp_path_factory.mktemp("twin")
    now = {"t": T0}
    via, ref = make_manager(folder / "a.db", fleet, now), make_manager(folder / "b.db", fleet, now)
    ts = T0
    kinds = {"AlertNotFound": "not_found", "NotPermitted": "not_permitted", "InvalidAction": "invalid",
             "LifecycleError": "conflict"}
    for step in steps:
        latest = ref.get(ref._store.query(limit=1)[0].id) if ref._store.query(limit=1) else None
        alert_id = latest.id if latest else "none"
        if step[0] == "signal":
            ts += 1
            assert [c.event for c in via.apply([signal(step[1], ts)])] == [c.event for c in ref.apply([signal(step[1], ts)])]
            continue
        if step[0] == "clock":
            now["t"] += step[1]
            continue
        name, args = step[0], step[1:]
        fields = {"acknowledge": lambda: {"note": args[0]}, "close": lambda: {"note": args[0], "cause": args[1]},
                  "shelve": lambda: {"until": now["t"] + args[0], "reason": "r", "role": args[1]},
                  "unshelve": lambda: {}}[name]()
        reply = apply_command(via, {**cmd(name, alert_id=alert_id), **{k: v for k, v in fields.items() if v is not None}})
        call = {"acknowledge": lambda: ref.acknowledge(alert_id, "张三", args[0]),
                "close": lambda: ref.close(alert_id, "张三", args[0], args[1]),
                "shelve": lambda: ref.shelve(alert_id, "张三", now["t"] + args[0], "r", args[1]),
                "unshelve": lambda: ref.unshelve(alert_id, "张三")}[name]
        try:
            expected = {"ok": True, "events": [c.event for c in call()]}
        except Exception as err:
            expected = {"ok": False, "error": next(kinds[k.__name__] for k in type(err).__mro__ if k.__name__ in kinds)}
        if name == "close" and args[0] == "":
            expected = {"ok": False, "error": "bad_request"}  # refused before the lifecycle (a note is required)
        elif latest is None:
            expected = {"ok": False, "error": "not_found"}  # looked up first, as the API does (404 before 422)
        assert {k: reply.get(k) for k in expected} == expected, (step, reply)
    assert [a.to_json() for a in via._store.query(limit=100)] == [a.to_json() for a in ref._store.query(limit=100)]


# ------------------------------------------------------------------ over a real nats-server

class Owner:
    """A partition owner in a thread: its own loop and nats connection, answering with ``handle``."""

    def __init__(self, url: str, partition: int, handle) -> None:
        import nats
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, daemon=True).start()

        async def start():
            self.nc = await nats.connect(url)
            return await serve_commands(self.nc, partition, handle)
        self.sub = asyncio.run_coroutine_threadsafe(start(), self.loop).result(10)

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self.nc.close(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)


P = 8


def test_a_command_reaches_the_owner_of_the_sites_partition_and_its_reply_comes_back(nats_url, manager):
    [raised] = manager.apply([signal(Tier.ORANGE, T0)])
    owner = Owner(nats_url, partition_of("LC-LUXI", P), lambda r: apply_command(manager, r))
    client = CommandClient([nats_url], P, timeout_s=2.0).start()
    try:
        reply = client.send("LC-LUXI", cmd("acknowledge", alert_id=raised.alert.id))
        assert reply["ok"] and reply["alert"]["state"] == "acknowledged"
        assert manager.get(raised.alert.id).state == "acknowledged"
        assert client.send("LC-LUXI", cmd("acknowledge", alert_id="nope"))["error"] == "not_found"
    finally:
        client.close()
        owner.close()


def test_no_owner_or_a_silent_or_garbled_one_is_owner_unavailable_never_success(nats_url, manager):
    client = CommandClient([nats_url], P, timeout_s=0.5).start()
    try:
        with pytest.raises(OwnerUnavailable, match="no owner"):  # nobody holds the partition
            client.send("LC-LUXI", cmd("acknowledge", alert_id="x"))
        stuck = Owner(nats_url, partition_of("LC-LUXI", P), lambda r: time.sleep(2) or {"ok": True})
        with pytest.raises(OwnerUnavailable, match="did not answer"):
            client.send("LC-LUXI", cmd("acknowledge", alert_id="x"))
        stuck.close()
        garbled = Owner(nats_url, partition_of("LC-LUXI", P), lambda r: {"fine": 1})
        with pytest.raises(OwnerUnavailable, match="not a command reply"):
            client.send("LC-LUXI", cmd("acknowledge", alert_id="x"))
        garbled.close()
    finally:
        client.close()


# ------------------------------------------------------------------ idempotent requests (request_id)

from alerting.requests import AppliedRequests  # noqa: E402


@pytest.fixture
def idem(alerts_db_target, fleet):
    """A manager on SQLite and on a private PostgreSQL, with its applied-request log on the same store."""
    now = {"t": T0 + 1000}
    m = make_manager(alerts_db_target, fleet, now)
    m.now = now
    m.requests = AppliedRequests(m._store.db)
    return m


def window_request(request_id, reason="检修"):
    return cmd("suppress", request_id=request_id,
               window={"site_id": "LC-LUXI", "start": T0, "end": T0 + 60, "reason": reason})


def test_a_retried_maintenance_window_is_created_once_and_answered_with_the_first_reply(idem):
    first = apply_command(idem, window_request("r-1"), requests=idem.requests)
    again = apply_command(idem, window_request("r-1"), requests=idem.requests)
    assert first["ok"] and "repeated" not in first
    assert again == {**first, "repeated": True}
    assert [w.id for w in idem.suppressions.all()] == [first["window"]["id"]]
    other = apply_command(idem, window_request("r-2"), requests=idem.requests)  # a new request is a new window
    assert other["ok"] and len(idem.suppressions.all()) == 2


def test_a_repeated_close_answers_with_its_reply_though_the_alarm_is_closed_now(idem):
    [raised] = idem.apply([signal(Tier.ORANGE, T0)])
    idem.apply([signal(None, T0 + 5)])
    alert_id = raised.alert.id
    assert apply_command(idem, cmd("acknowledge", alert_id=alert_id, request_id="a"), requests=idem.requests)["ok"]
    closed = apply_command(idem, cmd("close", alert_id=alert_id, note="ok", request_id="c"), requests=idem.requests)
    assert closed["ok"]
    assert apply_command(idem, cmd("close", alert_id=alert_id, note="ok", request_id="c"),
                         requests=idem.requests) == {**closed, "repeated": True}
    # without an id a second close is refused as before (the alarm is no longer open)
    assert not apply_command(idem, cmd("close", alert_id=alert_id, note="ok"), requests=idem.requests)["ok"]


def test_a_refused_or_failed_request_is_not_recorded_so_its_retry_is_applied(idem):
    assert apply_command(idem, cmd("acknowledge", alert_id="nope", request_id="x"),
                         requests=idem.requests)["error"] == "not_found"

    def full_disk(action):
        with idem.transaction():
            action()
            raise sqlite3.OperationalError("database or disk is full")

    assert apply_command(idem, window_request("w"), full_disk, requests=idem.requests)["error"] == "unavailable"
    assert idem.requests.count() == 0 and idem.suppressions.all() == []  # nothing of the attempt was kept
    assert apply_command(idem, window_request("w"), requests=idem.requests)["ok"]
    assert len(idem.suppressions.all()) == 1 and idem.requests.count() == 1


def test_replies_older_than_a_day_are_pruned(idem):
    from alerting.requests import KEEP_S
    assert idem.requests.record("old", {"ok": True}, T0)
    with idem.transaction():
        assert idem.requests.record("new", {"ok": True}, T0 + KEEP_S + 10)
    assert idem.requests.reply("old") is None and idem.requests.reply("new") == {"ok": True}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ids=st.lists(st.sampled_from(["a", "b", "c", "d"]), min_size=1, max_size=12))
def test_any_sequence_of_retries_applies_each_request_once(tmp_path_factory, fleet, ids):
    """Reference model: a set of applied ids; each id's first request makes a window, every repeat the same reply."""
    now = {"t": T0 + 1000}
    m = make_manager(tmp_path_factory.mktemp("idem") / "alerts.db", fleet, now)
    requests = AppliedRequests(m._store.db)
    first: dict[str, dict] = {}
    for request_id in ids:
        reply = apply_command(m, window_request(request_id, reason=f"检修 {request_id}"), requests=requests)
        assert reply["ok"]
        if request_id in first:
            assert reply == {**first[request_id], "repeated": True}
        else:
            assert "repeated" not in reply
            first[request_id] = reply
    assert sorted(w.reason for w in m.suppressions.all()) == sorted(f"检修 {i}" for i in first)


def test_a_request_whose_reply_was_lost_is_retried_by_the_client_and_applied_once(nats_url, idem):
    calls = []

    def slow_first(request):
        reply = apply_command(idem, request, requests=idem.requests)
        calls.append(request["request_id"])
        if len(calls) == 1:
            time.sleep(1.5)  # applied, but the reply comes after the client gave up: it retries
        return reply

    owner = Owner(nats_url, partition_of("LC-LUXI", P), slow_first)
    client = CommandClient([nats_url], P, timeout_s=0.5, retries=2).start()
    try:
        reply = client.send("LC-LUXI", cmd("suppress", window={"site_id": "LC-LUXI", "start": T0, "end": T0 + 60,
                                                               "reason": "检修"}))
        assert reply["ok"] and reply["repeated"] is True
        assert len(set(calls)) == 1 and len(calls) >= 2  # one id, sent again
        assert [w.id for w in idem.suppressions.all()] == [reply["window"]["id"]]
    finally:
        client.close()
        owner.close()

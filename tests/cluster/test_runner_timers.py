"""A partition's alarm timers run in its runner: an unacknowledged red alarm escalates after its deadline,
and after a takeover by a second runner (a higher epoch) the escalation is neither repeated nor lost; repeats
and flood digests are keyed, so the new owner stores none twice. SQLite and a private PostgreSQL."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from foundation.domain import Family, Tier
from foundation.partition import partition_of
from ingest.jetstream import NatsEndpoint
from liaowang.cluster.lease import Lease
from liaowang.cluster.runner import PartitionRunner
from liaowang.pipeline import AlertingUnavailable
from rules.base import Signal

P = 4
SITE, SENSOR = "LC-LUXI", "LC-LUXI-GD-01"
ENDPOINT = NatsEndpoint(("nats://127.0.0.1:1",), "worker", "x")  # never connected: the runners are not started
T0 = 1.8e9


class Clock:
    """The runners' injected clock: the test moves it past deadlines."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def lease(epoch: int) -> Lease:
    now = time.monotonic()
    return Lease(f"partition.{partition_of(SITE, P)}", "t", epoch, epoch, 6.0, 1.0, now, now + 600)


def red(ts: float, sensor: str = SENSOR, site: str = SITE) -> Signal:
    return Signal(rule_id="gas.combustible_gas.threshold", kind="threshold", subject=sensor, site_id=site,
                  family=Family.GAS, tier=Tier.RED, level="level2", value=80.0, threshold=50.0, unit="%LEL", ts=ts,
                  message="test")


@pytest.fixture
def make(demo_config, tmp_path: Path, alerts_db_target):
    made: list[PartitionRunner] = []

    def build(epoch: int, clock: Clock, name: str) -> PartitionRunner:
        runner = PartitionRunner(demo_config, tmp_path / name, ENDPOINT, str(alerts_db_target), partition_of(SITE, P),
                                 P, lease(epoch), name, lambda p: None, clock=clock)
        made.append(runner)
        return runner

    yield build
    for runner in made:
        try:
            runner.revoke()
        except Exception:
            pass


def outbox(runner: PartitionRunner, kind: str) -> list[str]:
    db = runner.pipeline.alert_db
    with db.transaction():
        return sorted(r[0] for r in db.conn.execute("SELECT key FROM outbox WHERE kind = ?", (kind,)).fetchall())


def escalations(runner: PartitionRunner) -> list[int]:
    """The notify level each open alarm of the runner reached and its ``notification_escalated`` entries."""
    return [sum(h.event == "notification_escalated" for h in a.history) for a in runner.pipeline.alert_store.open_alerts()]


def test_an_unacknowledged_red_alarm_escalates_once_across_a_takeover(make, demo_config) -> None:
    deadline = demo_config.alerting.ack_deadline_s["red"]
    clock = Clock(T0)
    old = make(5, clock, "old")
    assert [c.event for c in old.pipeline.commit_signals([red(T0)])] == ["raised"]
    old.pipeline.check_alert_timers()
    assert escalations(old) == [0] and outbox(old, "notification_escalated") == []

    clock.now = T0 + deadline + 1            # past the deadline: step 1 of the route
    old.pipeline.check_alert_timers()
    old.pipeline.check_alert_timers()        # a second beat in the same step adds nothing
    assert escalations(old) == [1]
    first = outbox(old, "notification_escalated")
    assert first and all(":esc1:" in k for k in first)

    new = make(7, clock, "new")              # takes the partition over at the same moment
    with pytest.raises(AlertingUnavailable, match="fenced"):
        old.pipeline.check_alert_timers()    # the old owner can no longer write a timer's effect
    new.pipeline.check_alert_timers()        # not repeated: the level is stored with the alarm
    assert escalations(new) == [1] and outbox(new, "notification_escalated") == first

    steps = new.pipeline.notifier.router.chain(new.pipeline.alert_store.open_alerts()[0])
    clock.now = T0 + 2 * deadline + 1        # not lost: the next step is the new owner's
    new.pipeline.check_alert_timers()
    if len(steps) > 2:
        assert escalations(new) == [2]
        assert any(":esc2:" in k for k in outbox(new, "notification_escalated"))
    else:
        assert escalations(new) == [1]
    # the new owner's memory matches the store
    reloaded = make(9, clock, "third")
    assert escalations(reloaded) == escalations(new)


def test_an_escalation_due_while_nobody_owned_the_partition_is_made_by_the_next_owner(make, demo_config) -> None:
    deadline = demo_config.alerting.ack_deadline_s["red"]
    clock = Clock(T0)
    old = make(5, clock, "old")
    old.pipeline.commit_signals([red(T0)])
    old.revoke()                             # dies before the deadline
    clock.now = T0 + deadline + 1
    new = make(7, clock, "new")
    new.pipeline.check_alert_timers()
    assert escalations(new) == [1]
    assert outbox(new, "notification_escalated")


def test_repeats_are_keyed_by_the_activation_and_count_so_a_takeover_stores_none_twice(make, demo_config) -> None:
    repeat = demo_config.alerting.repeat_s["red"]
    clock = Clock(T0)
    old = make(5, clock, "old")
    old.pipeline.commit_signals([red(T0)])
    clock.now = T0 + repeat + 1
    old.pipeline.check_alert_timers()
    first = outbox(old, "repeat")
    assert first and all(":rep1:" in k for k in first)
    new = make(7, clock, "new")
    new.pipeline.check_alert_timers()
    assert outbox(new, "repeat") == first
    clock.now = T0 + 2 * repeat + 1
    new.pipeline.check_alert_timers()
    assert sorted(k for k in outbox(new, "repeat") if ":rep2:" in k)


def test_a_flood_digest_left_grouped_by_a_dead_owner_is_sent_by_the_next(make, demo_config) -> None:
    flood = demo_config.alerting.flood
    clock = Clock(T0)
    old = make(5, clock, "old")
    sensors = sorted(s for s, v in old.fleet.sensors.items() if v.site_id == SITE)
    # orange alarms beyond the flood threshold at one site: the later ones are grouped for a digest
    signals = [Signal(rule_id="gas.combustible_gas.threshold", kind="threshold", subject=s, site_id=SITE,
                      family=Family.GAS, tier=Tier.ORANGE, level="level1", value=30.0, threshold=20.0, unit="%LEL",
                      ts=T0 + i, message="test") for i, s in enumerate(sensors)]
    if len(signals) <= flood.alerts:
        pytest.skip(f"{SITE} has {len(signals)} sensors: not enough for a flood of {flood.alerts}")
    old.pipeline.commit_signals(signals)
    assert outbox(old, "flood_grouped")
    old.revoke()                             # dies before the digest is due: the group must not stay unsent
    clock.now = T0 + len(signals) + flood.digest_every_s + 1
    new = make(7, clock, "new")
    new.pipeline.check_alert_timers()
    digests = outbox(new, "digest")
    assert digests and all(k.startswith(f"digest:{SITE}:") for k in digests)
    new.pipeline.check_alert_timers()        # once
    assert outbox(new, "digest") == digests

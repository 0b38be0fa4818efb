"""Rows of docs/alarms.md's table the model test (test_alarm_model.py) found broken, as examples.

Each test is a minimal sequence hypothesis shrank to, run on the real manager and notifier over
one alerts.db, one transaction per step as the pipeline runs them (`Desk`).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from alerting import AlertManager, AlertStore, LifecycleError
from alerting.db import AlertDB
from foundation.alertspec import AlertingSettings
from foundation.config import Fleet
from foundation.domain import Family, Tier, iso
from liaowang.scenario import FakeClock
from rules.base import Signal
from tests.alerting.test_alarm_model import System

T0 = 1_795_564_800.0
GAS = "gas.combustible_gas.threshold"
TT = "hazard.temperature.threshold"
SETTINGS = AlertingSettings.model_validate({
    "receivers": [{"id": "desk", "name": "duty desk", "level": "county_duty_desk", "channels": [{"kind": "log"}]}],
    "routes": [{"match": {}, "receivers": ["desk"]}],
    "maintenance": [{"site_id": "LC-LUXI", "start": iso(T0 + 200), "end": iso(T0 + 700), "reason": "年度检修"}],
})


class Desk(System):
    """The alarm core with its outbox on one file (the model test's `System`, this table's settings)."""

    def __init__(self, path: Path, fleet: Fleet, clock: FakeClock) -> None:
        super().__init__(path, fleet, clock, SETTINGS)

    def outbox(self) -> list[tuple[str, str, str]]:
        return self.db.conn.execute("SELECT key, kind, status FROM outbox").fetchall()


def signal(tier: Tier | None, ts: float, value: float, subject: str = "LC-LUXI-GD-01", rule: str = GAS) -> Signal:
    family = Family.GAS if rule == GAS else Family.HAZARD
    return Signal(rule, "threshold", subject, "LC-LUXI", family, tier, "level" if tier else None, value,
                  20.0 if tier else None, "u", ts, f"{subject} {value}")


@pytest.fixture
def system(tmp_path, fleet):
    desk = Desk(tmp_path / "alerts.db", fleet, FakeClock(T0))
    yield desk
    desk.db.close()


def test_a_suppressed_alarm_cannot_be_shelved(system):
    """Row suppressed, column shelve: 409. It is announced to nobody already; a shelf would only hide
    that it is there (the shelf outlives the episode and would mute the next one after the window)."""
    [raised] = system.run(lambda m: m.apply([signal(Tier.YELLOW, T0 + 300, 30.0, "LC-LUXI-T101-TT", TT)]))
    assert raised.alert.isa_state == "suppressed"  # the site's maintenance window (年度检修) covers it
    system.clock.now = T0 + 310
    with pytest.raises(LifecycleError, match="suppressed"):
        system.run(lambda m: m.shelve(raised.alert.id, "值班员", T0 + 400, "探头标定", "admin"))
    assert system.manager.shelved() == [] and system.store.get(raised.alert.id).shelved_until is None


@pytest.mark.parametrize("action", ["acknowledge", "close"])
def test_handling_an_old_episode_keeps_the_new_one_open(system, action):
    """After normal the next activation is a new episode; acknowledging or closing (消警) the old
    one must not make the manager forget the new one (its next signal would open a second episode
    while the first stays open in alerts.db for ever)."""
    [first] = system.run(lambda m: m.apply([signal(Tier.YELLOW, T0, 25.0, "LC-LUXI-T101-TT", TT)]))
    system.run(lambda m: m.apply([signal(None, T0 + 1, 3.0, "LC-LUXI-T101-TT", TT)]))  # medium: no latch, over
    [second] = system.run(lambda m: m.apply([signal(Tier.YELLOW, T0 + 2, 26.0, "LC-LUXI-T101-TT", TT)]))
    assert second.event == "raised" and second.alert.id != first.alert.id
    if action == "acknowledge":
        system.run(lambda m: m.acknowledge(first.alert.id, "值班员", "已复测"))
    else:
        system.run(lambda m: m.close(first.alert.id, "值班长", "误报, 已复测"))
    assert [a.id for a in system.manager.open_alerts()] == [second.alert.id]
    assert system.run(lambda m: m.apply([signal(Tier.ORANGE, T0 + 3, 45.0, "LC-LUXI-T101-TT", TT)]))[0].event == "escalated"
    assert [a.id for a in system.store.open_alerts()] == [second.alert.id]


def test_the_same_priority_again_stores_the_value_it_updates(system):
    """'The same priority again only updates the value' — and that update is stored like any other:
    memory never runs ahead of alerts.db, and a restart shows the same alert."""
    system.run(lambda m: m.apply([signal(Tier.YELLOW, T0, 25.0)]))
    assert system.run(lambda m: m.apply([signal(Tier.YELLOW, T0 + 1, 31.5)])) == []  # no event, no announcement
    [alert] = system.manager.open_alerts()
    assert alert.value == 31.5 and system.store.get(alert.id).value == 31.5
    system.reopen()
    [after] = system.manager.open_alerts()
    assert after.to_record() == alert.to_record()


def test_a_clear_while_returned_stores_the_value_it_updates(system):
    """A clear of a returned-unacknowledged episode changes no state ('—') but the value it carries is kept."""
    system.run(lambda m: m.apply([signal(Tier.YELLOW, T0, 25.0), signal(None, T0 + 1, 3.0)]))
    system.run(lambda m: m.apply([signal(None, T0 + 2, 0.25)]))
    [alert] = system.manager.open_alerts()
    assert alert.latched and system.store.get(alert.id).to_record() == alert.to_record()


def test_a_batch_retried_after_a_failure_is_counted_once_for_chattering(tmp_path, fleet):
    """Invariant 4 for the in-process retry of `commit_signals`: a transaction that failed left no
    trace, so one raise retried twice is one activation, not three (≥ 3 in 60 s is chattering)."""
    manager = AlertManager(AlertStore(AlertDB(tmp_path / "alerts.db")), fleet, FakeClock(T0), AlertingSettings())
    assert manager.settings.chattering.activations == 3
    raise_ = [signal(Tier.YELLOW, T0, 25.0, "LC-LUXI-T101-TT", TT)]
    for _ in range(2):  # e.g. the outbox write fails (a full disk): the batch is rolled back and retried
        with pytest.raises(OSError):
            with manager.transaction():
                manager.apply(raise_)
                raise OSError("disk full")
    [change] = manager.apply(raise_)
    assert change.event == "raised" and not change.alert.chattering
    assert [h.event for h in change.alert.history] == ["raised"]
    assert not manager.in_flood(AlertManager.desk_of(change.alert), T0)


BATCHES = {
    "escalations": ([(Tier.YELLOW, 25.0), (Tier.ORANGE, 45.0), (Tier.YELLOW, 30.0), (Tier.RED, 60.0)], TT,
                    ["raised", "escalated", "deescalated", "escalated"]),
    "reactivations": ([(Tier.YELLOW, 25.0), (None, 3.0), (Tier.YELLOW, 26.0), (None, 2.0), (Tier.YELLOW, 27.0)], GAS,
                      ["raised", "returned", "reactivated", "returned", "reactivated"]),
}


@pytest.mark.parametrize("batch", BATCHES)
def test_every_change_of_a_batch_is_announced(system, batch):
    """Invariant 2 and the table: a micro-batch with several readings of one sensor crossing its
    setpoints gives one history entry per change, and each is announced once (an outbox row per
    entry) — a re-activation too, even when the batch holds two."""
    steps, rule, events = BATCHES[batch]
    subject = "LC-LUXI-T101-TT" if rule == TT else "LC-LUXI-GD-01"
    changes = system.run(lambda m: m.apply([signal(tier, T0 + i, value, subject, rule)
                                            for i, (tier, value) in enumerate(steps)]))
    assert [c.event for c in changes] == events
    alert_id = changes[0].alert.id
    assert sorted(key for key, _, _ in system.outbox()) == [f"{alert_id}:h{i}:desk:0" for i in range(len(events))]

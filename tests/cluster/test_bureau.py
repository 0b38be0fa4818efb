"""The bureau desk runs risk grading and warning (预警) timers over the shared store, fenced by the bureau
lease's epoch: a takeover does not repeat a warning escalation step and the old holder can write nothing.
SQLite and a private PostgreSQL; the desks are built, not started (no broker), and ticked by hand."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from alerting.db import Fenced
from earlywarning import WarningLevel, WarningState
from foundation.domain import Family, Tier
from foundation.partition import partition_of
from ingest.jetstream import NatsEndpoint
from liaowang.cluster.bureau import BureauDesk
from liaowang.cluster.lease import Lease
from liaowang.cluster.runner import PartitionRunner
from rules.base import Signal

P = 4
SITE, TANKS = "LC-XFPVC", "LC-XFPVC-U1"
T0 = 1_795_564_800.0
ENDPOINT = NatsEndpoint(("nats://127.0.0.1:1",), "worker", "x")


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def high(sensor_id: str, ts: float) -> Signal:
    return Signal("hazard.pressure.threshold", "threshold", sensor_id, SITE, Family.HAZARD, Tier.ORANGE, "HH", 1.9,
                  1.8, "MPa", ts, "储罐压力 高高报")


@pytest.fixture
def world(demo_config, tmp_path: Path, alerts_db_target):
    """The site's partition owner (a runner) and bureau desks on one shared store."""
    clock = Clock(T0)
    made: list = []
    now = time.monotonic()
    lease = Lease(f"partition.{partition_of(SITE, P)}", "t", 3, 3, 6.0, 1.0, now, now + 600)
    owner = PartitionRunner(demo_config, tmp_path / "w", ENDPOINT, str(alerts_db_target), partition_of(SITE, P), P,
                            lease, "w", lambda p: None, clock=clock)
    made.append(owner)

    def bureau(epoch: int) -> BureauDesk:
        desk = BureauDesk(demo_config, str(alerts_db_target), f"b{epoch}", epoch=epoch, clock=clock)
        made.append(desk)
        return desk

    yield clock, owner, bureau
    for thing in made:
        try:
            thing.revoke() if isinstance(thing, PartitionRunner) else thing.stop()
        except Exception:
            pass


def test_the_bureau_grades_risk_over_the_owners_alarms_and_escalates_an_unverified_proposal_once(world,
                                                                                                 demo_config) -> None:
    clock, owner, bureau = world
    old = bureau(5)
    owner.pipeline.commit_signals([high("LC-XFPVC-T101-PT", T0), high("LC-XFPVC-T102-PT", T0 + 1)], publish=False)
    old.risk.states.register(SITE, "hot_work", T0, T0 + 3600, "xfpvc-operator", T0, unit_id=TANKS)
    clock.now = T0 + 700
    old.tick()                                  # the grade reaches the proposal threshold: a warning is proposed
    [proposal] = old.warnings.query(subject=f"enterprise:{SITE}")
    assert proposal.level is WarningLevel.II and proposal.state is WarningState.PROPOSED
    assert sorted(proposal.evidence.alarm_ids) == sorted(a.id for a in owner.pipeline.alert_store.open_alerts())

    deadline = demo_config.warnings.verification.deadline_s[proposal.level]
    new = bureau(8)                             # takes the bureau over before the deadline: records epoch 8 first
    clock.now = proposal.proposed_at + deadline + 1
    with pytest.raises(Fenced):
        old.tick()                              # the paused old holder wakes up with the escalation due: refused
    assert new.warnings.get(proposal.id).escalation_step == 0           # nothing of it was written
    new.tick()                                  # not lost: nobody verified in time, the next receiver is told
    new.tick()
    assert new.warnings.get(proposal.id).escalation_step == 1

    newest = bureau(9)                          # another takeover at the same moment: the step is not repeated
    newest.tick()
    assert newest.warnings.get(proposal.id).escalation_step == 1
    assert len(newest.warnings.query(subject=f"enterprise:{SITE}")) == 1   # nor the proposal

"""A partition runner's fencing, in process: a commit under a lower epoch or an expired lease is refused,
the runner learns it is fenced, and nothing of the refused commit is stored."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from foundation.domain import Family, Tier
from foundation.partition import partition_of
from ingest.jetstream import NatsEndpoint
from liaowang.cluster.lease import Lease
from liaowang.cluster.runner import PartitionRunner, partition_fleet
from liaowang.pipeline import AlertingUnavailable
from rules.base import Signal

P = 4
ENDPOINT = NatsEndpoint(("nats://127.0.0.1:1",), "worker", "x")  # never connected: the runners are not started


def lease(epoch: int, valid_for: float = 60.0) -> Lease:
    now = time.monotonic()
    return Lease(f"partition.{partition_of('LC-LUXI', P)}", "t", epoch, epoch, 6.0, 1.0, now, now + valid_for)


def signal(site: str, sensor: str, ts: float) -> Signal:
    return Signal(rule_id="gas.combustible_gas.threshold", kind="threshold", subject=sensor, site_id=site,
                  family=Family.GAS, tier=Tier.ORANGE, level="level1", value=30.0, threshold=20.0, unit="%LEL", ts=ts,
                  message="test")


@pytest.fixture
def make(demo_config, tmp_path: Path, alerts_db_target):
    """Runners on one shared alert database: SQLite and a private PostgreSQL (tests/pgserver.py)."""
    made: list[PartitionRunner] = []
    fenced: list[int] = []

    def build(epoch: int, valid_for: float = 60.0, name: str = "a") -> PartitionRunner:
        p = partition_of("LC-LUXI", P)
        runner = PartitionRunner(demo_config, tmp_path / name, ENDPOINT, str(alerts_db_target), p, P,
                                 lease(epoch, valid_for), name, fenced.append)
        made.append(runner)
        return runner

    build.fenced = fenced
    yield build
    for runner in made:
        try:
            runner.revoke()
        except Exception:
            pass


def test_the_partition_fleet_holds_only_its_sites(demo_config) -> None:
    for p in range(P):
        fleet = partition_fleet(demo_config.fleet, p, P)
        assert all(partition_of(s, P) == p for s in fleet.sites)
        assert all(sensor.site_id in fleet.sites for sensor in fleet.sensors.values())
    assert sum(len(partition_fleet(demo_config.fleet, p, P).sensors) for p in range(P)) == len(demo_config.fleet.sensors)


def test_an_older_epoch_cannot_commit_once_a_newer_owner_started(make) -> None:
    old = make(5, name="old")
    new = make(7, name="new")          # records epoch 7 in partition_fence before reading anything
    with pytest.raises(AlertingUnavailable, match="fenced off by epoch 7"):
        old.pipeline.commit_signals([signal("LC-LUXI", "LC-LUXI-GD-01", 1.8e9)])
    assert old.fenced.is_set() and make.fenced == [old.partition]
    changes = new.pipeline.commit_signals([signal("LC-LUXI", "LC-LUXI-GD-01", 1.8e9)])
    assert [c.event for c in changes] == ["raised"]
    assert len(new.pipeline.alert_store.open_alerts()) == 1   # the old owner's attempt left nothing


def test_a_lease_that_ran_out_here_refuses_commits_before_any_newer_owner_exists(make) -> None:
    runner = make(5, valid_for=3.0)  # long enough to be built (PostgreSQL), then let it run out
    time.sleep(max(0.0, runner.valid_until - time.monotonic()) + 0.05)
    with pytest.raises(AlertingUnavailable, match="expired or revoked"):
        runner.pipeline.commit_signals([signal("LC-LUXI", "LC-LUXI-GD-01", 1.8e9)])
    assert runner.fenced.is_set()
    runner.valid_until = time.monotonic() + 60  # a renewal does not unfence: the worker revokes it
    with pytest.raises(AlertingUnavailable):
        runner.pipeline.commit_signals([])

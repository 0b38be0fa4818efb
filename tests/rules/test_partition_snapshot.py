"""Rule snapshots per partition in PostgreSQL: the stream position is saved in the same fenced transaction."""

from __future__ import annotations

import pytest

from alerting.db import AlertDB, Fenced
from rules.snapshot import PartitionSnapshotStore
from tests.rules.feeds import engine_for


def test_a_snapshot_and_its_stream_position_round_trip_per_partition(pg_url, demo_config):
    db = AlertDB(pg_url)
    engine = engine_for(demo_config)
    mine, other = PartitionSnapshotStore(db.fence(2, 1), 2), PartitionSnapshotStore(db.fence(3, 1), 3)
    assert mine.stream_seq() is None and mine.saved_at() is None
    assert engine.snapshot(mine, 100.0, stream_seq=41) > 0
    assert (mine.stream_seq(), mine.saved_at(), other.stream_seq()) == (41, 100.0, None)
    fresh = engine_for(demo_config)
    outcome = fresh.restore(PartitionSnapshotStore(AlertDB(pg_url), 2))
    assert outcome and all(v.startswith("restored") for v in outcome.values())
    assert set(fresh.restore(other).values()) == {"none"}  # partition 3 has no snapshot of its own


def test_a_worker_that_lost_the_lease_cannot_overwrite_the_new_owners_snapshot(pg_url, demo_config):
    engine = engine_for(demo_config)
    old = PartitionSnapshotStore(AlertDB(pg_url).fence(0, epoch=1), 0)
    new = PartitionSnapshotStore(AlertDB(pg_url).fence(0, epoch=2), 0)
    engine.snapshot(old, 10.0, stream_seq=5)
    engine.snapshot(new, 20.0, stream_seq=9)
    with pytest.raises(Fenced):
        engine.snapshot(old, 30.0, stream_seq=12)
    assert (new.stream_seq(), new.saved_at()) == (9, 20.0)  # neither the state nor the position moved

"""The JetStream source's delivery protocol against a reference model, on a real cluster (hypothesis).

Model: every reading published to the partition is handed down at least once, in stream order within
a source's life; whatever happens in between (downstream unavailable for a while, a failing sink, the
source stopped mid-batch and a new one started), first deliveries come in stream order, every
reading handed down was stored first, and at the end the consumer's ack floor is the last published
sequence with nothing pending."""

from __future__ import annotations

import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from foundation.config import Config
from ingest.base import DownstreamUnavailable

from .natscluster import NatsCluster
from .sourcekit import Downstream, MemorySink, ack_floor, make_source, publish, reading, wait_for

P_LUXI = 3
SENSOR = "LC-LUXI-T101-LT"

step = st.one_of(
    st.tuples(st.just("publish"), st.integers(1, 40)),
    st.tuples(st.just("unavailable"), st.integers(1, 3)),
    st.tuples(st.just("sink_fails"), st.just(0)),
    st.tuples(st.just("restart"), st.just(0)),
)


class _Run:
    """One source at a time over the shared cluster; restarts keep what was seen."""

    def __init__(self, cluster: NatsCluster, config: Config) -> None:
        self.cluster, self.config = cluster, config
        self.seen: list[float] = []
        self.sink = MemorySink()
        self.down = Downstream()
        self.source = None
        self.start()

    def start(self) -> None:
        self.down = Downstream()
        self.source = make_source(self.cluster, self.config, P_LUXI, self.sink, self.down, fetch_batch=25)
        self.source.start()

    def stop(self) -> None:
        self.source.stop()
        self.seen.extend(ts for _, ts in self.down.seen)


@pytest.fixture(scope="module")
def model_cluster(tmp_path_factory: pytest.TempPathFactory):
    from .natscluster import NatsCluster as Cluster
    cluster = Cluster(tmp_path_factory.mktemp("model"), nodes=3, partitions=4)
    try:
        cluster.start()
        cluster.provision()
        yield cluster
    finally:
        cluster.stop()


@pytest.mark.slow
@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(step, min_size=1, max_size=6))
def test_the_source_hands_down_everything_in_order_and_acks_it_all(model_cluster: NatsCluster,
                                                                            demo_config: Config, steps) -> None:
    base = time.time() - 10_000_000 + time.monotonic_ns() % 1_000_000  # distinct timestamps per example
    published: list[float] = []
    last_seq = 0
    run = _Run(model_cluster, demo_config)
    try:
        for action, n in steps:
            if action == "publish":
                stamps = [base + len(published) + i for i in range(n)]
                last_seq = publish(model_cluster, [(f"liaowang.v1.readings.LC-LUXI.{SENSOR}", reading(SENSOR, ts))
                                                   for ts in stamps])[-1]
                published.extend(stamps)
            elif action == "unavailable":
                run.down.failure, run.down.times = (lambda: DownstreamUnavailable("disk full")), n
            elif action == "sink_fails":
                run.sink.fail = "influx down"
                time.sleep(0.3)
                run.sink.fail = None
            else:
                run.stop()
                run.start()
        if last_seq:
            wait_for(lambda: ack_floor(model_cluster, P_LUXI) == (last_seq, 0), timeout=30,
                     what=f"ack floor at {last_seq}")
    finally:
        run.stop()
    mine = [ts for ts in run.seen if ts >= base]
    assert set(mine) == set(published)              # at least once: nothing lost
    assert [ts for ts in dict.fromkeys(mine)] == sorted(set(mine))  # first deliveries in stream order
    assert set(ts for _, ts in run.sink.rows if ts >= base) == set(published)  # stored before handed down

"""`JetStreamSource` on a real 3-node cluster: store → hand down → ack, dead letters with reasons, retries
without acks, a clean stop that acknowledges nothing half-done, and a restart from a stream sequence."""

from __future__ import annotations

import time

import pytest

from foundation.config import Config
from ingest.base import DownstreamUnavailable

from .natscluster import NatsCluster
from .sourcekit import LUXI, Downstream, MemorySink, ack_floor, dead_letters, make_source, publish, reading, wait_for

P_LUXI = 3  # partition_of("LC-LUXI", 4)


@pytest.fixture
def cluster(fresh_nats_cluster) -> NatsCluster:
    return fresh_nats_cluster(nodes=3, partitions=4)


def test_readings_are_stored_handed_down_and_acked(cluster: NatsCluster, demo_config: Config) -> None:
    t0 = time.time() - 3600
    seqs = publish(cluster, [(f"liaowang.v1.readings.LC-LUXI.{s}", reading(s, t0 + i)) for i, s in enumerate(LUXI)]
                   + [("liaowang.v1.readings.LC-LUXI", b'{"site_id": "LC-LUXI", "readings": ['
                       + b",".join(reading(s, t0 + 100 + i) for i, s in enumerate(LUXI)) + b"]}")])
    sink, down = MemorySink(), Downstream()
    source = make_source(cluster, demo_config, P_LUXI, sink, down)
    source.start()
    try:
        assert source.wait_connected(20)
        wait_for(lambda: len(down.seen) == 10, what="10 readings handed down")
        wait_for(lambda: source.acked_through == seqs[-1], what="the last message acked")
        assert sorted(sink.rows) == sorted(down.seen) and len(set(down.seen)) == 10
        assert ack_floor(cluster, P_LUXI) == (seqs[-1], 0)
        assert source.problems() == [] and source.running() and source.connected
    finally:
        source.stop()


def test_bad_messages_are_dead_lettered_with_a_reason_and_the_source_goes_on(cluster: NatsCluster,
                                                                             demo_config: Config) -> None:
    t0 = time.time() - 3600
    publish(cluster, [
        ("liaowang.v1.readings.LC-LUXI.LC-LUXI-T101-LT", b"not json at all"),
        ("liaowang.v1.readings.LC-LUXI.LC-LUXI-T101-LT", b"[" * 5000),
        ("liaowang.v1.readings.LC-LUXI.LC-LUXI-NOPE", reading("LC-LUXI-NOPE", t0)),
        ("liaowang.v1.status.LC-LUXI", b'{"state": "sleepy"}'),
        ("lw.in.3.readings.LC-QLQY.LC-QLQY-T101-LT", reading("LC-QLQY-T101-LT", t0)),  # forged: QLQY is in 0
        ("liaowang.v1.readings.LC-LUXI.LC-LUXI-T101-LT", reading("LC-LUXI-T101-LT", t0 + 1)),
    ])
    gateways: list[tuple[str, bool]] = []
    sink, down = MemorySink(), Downstream()
    source = make_source(cluster, demo_config, P_LUXI, sink, down, on_gateway=lambda s, o, at: gateways.append((s, o)))
    source.start()
    try:
        wait_for(lambda: down.seen == [("LC-LUXI-T101-LT", pytest.approx(t0 + 1))], what="the good reading")
        wait_for(lambda: len(dead_letters(cluster)) == 5, what="5 dead letters")
        reasons = sorted(letter["reason"] for letter in dead_letters(cluster))
        assert reasons == sorted(["not_json", "too_deep", "unknown_sensor", "bad_status", "wrong_partition"])
        assert all(letter["detail"] for letter in dead_letters(cluster))
        wait_for(lambda: ack_floor(cluster, P_LUXI)[1] == 0, what="every message acked")
        assert gateways == []
    finally:
        source.stop()


def test_downstream_unavailable_is_retried_and_nothing_is_acked_meanwhile(cluster: NatsCluster,
                                                                          demo_config: Config) -> None:
    t0 = time.time() - 3600
    seqs = publish(cluster, [(f"liaowang.v1.readings.LC-LUXI.{s}", reading(s, t0 + i)) for i, s in enumerate(LUXI)])
    sink, down = MemorySink(), Downstream()
    down.failure, down.times = (lambda: DownstreamUnavailable("disk full")), -1  # for ever, until changed
    source = make_source(cluster, demo_config, P_LUXI, sink, down)
    source.start()
    try:
        wait_for(lambda: down.calls >= 3, what="three attempts")
        assert any("alerting cannot commit" in p for p in source.problems())
        assert ack_floor(cluster, P_LUXI)[0] == 0 and source.acked_through == 0
        down.times = 0  # the disk has room again
        wait_for(lambda: source.acked_through == seqs[-1], what="the batch acked after recovery")
        assert sorted(down.seen) == sorted((s, pytest.approx(t0 + i)) for i, s in enumerate(LUXI))
        assert source.problems() == [] and dead_letters(cluster) == []
    finally:
        source.stop()


def test_a_stop_mid_batch_acks_nothing_and_the_next_owner_gets_it_all(cluster: NatsCluster,
                                                                      demo_config: Config) -> None:
    t0 = time.time() - 3600
    publish(cluster, [(f"liaowang.v1.readings.LC-LUXI.{s}", reading(s, t0 + i)) for i, s in enumerate(LUXI)])
    sink, down = MemorySink(), Downstream()
    sink.fail = "influx down"
    first = make_source(cluster, demo_config, P_LUXI, sink, down)
    first.start()
    wait_for(lambda: any("store failing" in p for p in first.problems()), what="the store failing")
    first.stop()
    assert ack_floor(cluster, P_LUXI)[0] == 0  # nothing acked
    sink2, down2 = MemorySink(), Downstream()
    second = make_source(cluster, demo_config, P_LUXI, sink2, down2)
    second.start()
    try:
        # well inside the 30 s ack wait: the batch was nak'ed, not left to time out
        wait_for(lambda: len(down2.seen) == len(LUXI), timeout=10, what="the whole batch at the next owner")
        wait_for(lambda: ack_floor(cluster, P_LUXI) == (5, 0), what="acked by the next owner")
    finally:
        second.stop()


def test_start_from_a_stream_sequence_replays_from_there(cluster: NatsCluster, demo_config: Config) -> None:
    """A takeover restores a snapshot taken at stream sequence s and replays from s + 1."""
    t0 = time.time() - 3600
    seqs = publish(cluster, [(f"liaowang.v1.readings.LC-LUXI.LC-LUXI-T101-LT", reading("LC-LUXI-T101-LT", t0 + i))
                             for i in range(20)])
    sink, down = MemorySink(), Downstream()
    first = make_source(cluster, demo_config, P_LUXI, sink, down)
    first.start()
    wait_for(lambda: first.acked_through == seqs[-1], what="all acked")
    first.stop()
    snapshot = seqs[11]
    sink2, down2 = MemorySink(), Downstream()
    second = make_source(cluster, demo_config, P_LUXI, sink2, down2)
    second.start(from_seq=snapshot + 1)
    try:
        wait_for(lambda: second.acked_through == seqs[-1], what="the replay acked")
        assert [ts for _, ts in down2.seen] == [pytest.approx(t0 + i) for i in range(12, 20)]
    finally:
        second.stop()

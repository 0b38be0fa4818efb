"""Leases on a real nats-server's KV: CAS conflicts, epochs, takeover after the ttl, release."""

from __future__ import annotations

import asyncio

import nats
import pytest

from liaowang.cluster.lease import LeaseLost, Leases, LeaseUnavailable, ensure_bucket
from tests.cluster.jsnode import JetStreamNode, jetstream  # noqa: F401  (fixture)


def run(coro):
    return asyncio.run(coro)


def test_two_owners_racing_for_one_key_give_one_winner(jetstream: JetStreamNode) -> None:
    async def race():
        nc = await nats.connect(jetstream.url)
        kv = await ensure_bucket(nc.jetstream())
        contenders = [Leases(kv, f"w{i}", ttl_s=3.0) for i in range(8)]
        won = await asyncio.gather(*(c.acquire("partition.0") for c in contenders))
        await nc.close()
        return won

    won = [lease for lease in run(race()) if lease is not None]
    assert len(won) == 1 and won[0].epoch >= 1


def test_takeover_waits_the_ttl_raises_the_epoch_and_fences_the_old_holder(jetstream: JetStreamNode) -> None:
    async def scenario():
        nc = await nats.connect(jetstream.url)
        kv = await ensure_bucket(nc.jetstream())
        a, b = Leases(kv, "a", ttl_s=1.2), Leases(kv, "b", ttl_s=1.2)
        first = await a.acquire("partition.1")
        renewed = await a.renew(first)
        assert renewed.epoch == first.epoch and renewed.revision > first.revision
        assert await b.acquire("partition.1") is None      # held and fresh
        taken = None
        loop = asyncio.get_running_loop()
        started = loop.time()
        while taken is None and loop.time() - started < 10:  # a stopped renewing: b takes it after a ttl
            await asyncio.sleep(0.1)
            taken = await b.acquire("partition.1")
        waited = loop.time() - started
        with pytest.raises(LeaseLost):
            await a.renew(renewed)                           # too late, and written by b anyway
        released = await b.release(taken)
        again = await a.acquire("partition.1")               # free: taken at once
        await nc.close()
        return first, taken, waited, released, again

    first, taken, waited, released, again = run(scenario())
    assert taken is not None and taken.epoch > first.epoch
    assert waited >= 1.2 - 0.15   # b counted a whole ttl from its first look (which came after a's renewal)
    assert released and again is not None and again.epoch > taken.epoch


def test_a_dead_server_makes_the_lease_unavailable_not_lost(jetstream: JetStreamNode) -> None:
    async def scenario():
        nc = await nats.connect(jetstream.url, max_reconnect_attempts=-1, reconnect_time_wait=0.2)
        kv = await ensure_bucket(nc.jetstream())
        leases = Leases(kv, "a", ttl_s=3.0)
        lease = await leases.acquire("bureau")
        jetstream.stop()
        with pytest.raises(LeaseUnavailable):
            await leases.renew(lease)
        jetstream.start()                                    # same store: the key still names us
        renewed = None
        for _ in range(40):
            try:
                renewed = await leases.renew(lease)
                break
            except LeaseUnavailable:
                await asyncio.sleep(0.1)
        await nc.close()
        return lease, renewed

    lease, renewed = run(scenario())
    assert renewed is not None and renewed.epoch == lease.epoch

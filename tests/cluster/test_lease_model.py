"""Property test of leases against a reference model: many owners, arbitrary interleavings of acquire,
renew, release and clock steps, slow requests and lost answers, all on one fake KV and fake clock.

It pins the two promises fencing rests on: at no moment do two owners both believe they hold an
unexpired lease on one key (and the one who believes it is the one the key names), and the epochs
of successive acquisitions of a key strictly increase.
"""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from liaowang.cluster.lease import Lease, LeaseLost, Leases, LeaseUnavailable, _decode
from tests.cluster.fakekv import FakeClock, FakeKV

OWNERS = ["a", "b", "c"]
KEYS = ["partition.0", "bureau"]
TTL, MARGIN = 6.0, 1.0

owners = st.sampled_from(OWNERS)
keys = st.sampled_from(KEYS)
delays = st.sampled_from([0.0, 0.0, 0.1, 0.9, 2.5, 4.0])  # network: none, usual, slow, pathological


class LeaseMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.clock = FakeClock()
        self.kv = FakeKV(self.clock)
        self.leases = {o: Leases(self.kv, o, ttl_s=TTL, margin_s=MARGIN, clock=self.clock, timeout_s=60) for o in OWNERS}
        self.held: dict[tuple[str, str], Lease] = {}   # what each owner believes it holds
        self.epochs: dict[str, list[int]] = {k: [] for k in KEYS}  # the model: epochs handed out, in order
        self.kv.on_applied = self._others_look

    async def _others_look(self, key: str) -> None:
        """Every owner polls the key the moment a write lands (before its writer hears back): the
        earliest any contender can start counting a revision's ttl."""
        for leases in self.leases.values():
            await leases.holder(key)

    def teardown(self) -> None:
        self.loop.close()

    def _run(self, coro):
        return self.loop.run_until_complete(coro)

    def _network(self, before: float, after: float, lose: bool) -> None:
        self.kv.delay_before, self.kv.delay_after, self.kv.lose_answer = before, after, lose

    @rule(owner=owners, key=keys, before=delays, after=delays, lose=st.booleans())
    def acquire(self, owner: str, key: str, before: float, after: float, lose: bool) -> None:
        current = self.held.get((owner, key))
        if current is not None and current.valid(self.clock()):
            return  # a worker never asks again for what it holds
        self.held.pop((owner, key), None)
        self._network(before, after, lose)
        try:
            lease = self._run(self.leases[owner].acquire(key))
        except LeaseUnavailable:
            lease = None  # the write may have landed: then the key names us under an epoch nobody uses
        if lease is not None:
            assert all(lease.epoch > e for e in self.epochs[key]), (lease.epoch, self.epochs[key])
            self.epochs[key].append(lease.epoch)
            self.held[(owner, key)] = lease

    @rule(owner=owners, key=keys, before=delays, after=delays, lose=st.booleans())
    def renew(self, owner: str, key: str, before: float, after: float, lose: bool) -> None:
        lease = self.held.get((owner, key))
        if lease is None:
            return
        self._network(before, after, lose)
        try:
            renewed = self._run(self.leases[owner].renew(lease))
        except LeaseLost:
            del self.held[(owner, key)]
            return
        except LeaseUnavailable:
            return  # unchanged: it keeps counting down
        assert renewed.epoch == lease.epoch and renewed.revision > lease.revision
        self.held[(owner, key)] = renewed

    @rule(owner=owners, key=keys)
    def release(self, owner: str, key: str) -> None:
        lease = self.held.pop((owner, key), None)
        if lease is not None and lease.valid(self.clock()):
            try:
                self._run(self.leases[owner].release(lease))
            except LeaseUnavailable:
                pass

    @rule(seconds=st.sampled_from([0.1, 0.5, 1.0, 2.0, 2.5, 3.0, 4.0, 5.0, 7.0]))
    def tick(self, seconds: float) -> None:
        self.clock.advance(seconds)

    @rule(owner=owners, key=keys)
    def look(self, owner: str, key: str) -> None:
        """A contender polls the key without acting (it starts its observation of a revision)."""
        try:
            self._run(self.leases[owner].holder(key))
        except LeaseUnavailable:
            pass

    @invariant()
    def one_believer_per_key_and_it_is_the_named_holder(self) -> None:
        now = self.clock()
        for key in KEYS:
            believers = [(o, lease) for (o, k), lease in self.held.items() if k == key and lease.valid(now)]
            assert len(believers) <= 1, believers
            if believers:
                owner, lease = believers[0]
                entry = self.kv.entries[key]
                named = _decode(entry.value, entry.revision)
                assert (named.owner, named.epoch) == (owner, lease.epoch)
                assert lease.epoch == self.epochs[key][-1]


TestLeaseMachine = pytest.mark.slow(LeaseMachine.TestCase)  # ~25 s: 800 interleavings of up to 60 steps
TestLeaseMachine.settings = settings(max_examples=800, stateful_step_count=60, deadline=None)


def test_a_contender_waits_a_whole_ttl_of_an_unchanged_revision() -> None:
    """Example: b sees a's lease, waits; a stops renewing; b takes it exactly one ttl after first seeing it."""
    clock = FakeClock()
    kv = FakeKV(clock)
    a, b = Leases(kv, "a", TTL, MARGIN, clock), Leases(kv, "b", TTL, MARGIN, clock)
    loop = asyncio.new_event_loop()
    try:
        held = loop.run_until_complete(a.acquire("partition.0"))
        assert held is not None and held.epoch == 1
        assert loop.run_until_complete(b.acquire("partition.0")) is None  # starts b's observation
        clock.advance(TTL - 0.01)
        assert not held.valid(clock())                                    # a gave up a margin earlier
        assert loop.run_until_complete(b.acquire("partition.0")) is None
        clock.advance(0.01)
        taken = loop.run_until_complete(b.acquire("partition.0"))
        assert taken is not None and taken.epoch > held.epoch
        with pytest.raises(LeaseLost):
            loop.run_until_complete(a.renew(held))
    finally:
        loop.close()


def test_a_released_lease_is_taken_at_once_and_renewal_keeps_the_epoch() -> None:
    clock = FakeClock()
    kv = FakeKV(clock)
    a, b = Leases(kv, "a", TTL, MARGIN, clock), Leases(kv, "b", TTL, MARGIN, clock)
    loop = asyncio.new_event_loop()
    try:
        held = loop.run_until_complete(a.acquire("bureau"))
        clock.advance(2)
        renewed = loop.run_until_complete(a.renew(held))
        assert renewed.epoch == held.epoch and renewed.revision > held.revision
        assert renewed.valid_until == pytest.approx(clock() + TTL - MARGIN)
        assert loop.run_until_complete(a.release(renewed))
        taken = loop.run_until_complete(b.acquire("bureau"))
        assert taken is not None and taken.epoch > renewed.revision
    finally:
        loop.close()


def test_a_renewal_whose_answer_was_lost_is_adopted_without_extending_validity() -> None:
    clock = FakeClock()
    kv = FakeKV(clock)
    a = Leases(kv, "a", TTL, MARGIN, clock)
    loop = asyncio.new_event_loop()
    try:
        held = loop.run_until_complete(a.acquire("partition.0"))
        clock.advance(2)
        kv.lose_answer = True
        with pytest.raises(LeaseUnavailable):
            loop.run_until_complete(a.renew(held))
        again = loop.run_until_complete(a.renew(held))  # CAS fails on the old revision; the key still says us
        assert again.epoch == held.epoch
    finally:
        loop.close()

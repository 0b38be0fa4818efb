"""An in-memory KV with nats-py's errors and revisions, and a fake clock, for property tests of leases.

Revisions are one counter for the whole bucket (a JetStream stream's sequence), as in NATS. Each call
can be slowed (the clock advances before the write applies and again before the answer returns) or
lose its answer after applying (the client sees a timeout), as a network would.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Awaitable, Callable

from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Entry:
    key: str
    value: bytes
    revision: int


class FakeKV:
    """Keys → (value, revision); CAS on the last revision; network delay and lost answers on demand."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.entries: dict[str, Entry] = {}
        self.revision = 0
        self.delay_before = 0.0   # the next call's request takes this long to arrive (clock advances)
        self.delay_after = 0.0    # and its answer this long to come back
        self.lose_answer = False  # the next write applies but the client gets a timeout
        self.on_applied: Callable[[str], Awaitable[None]] | None = None

    def _take_network(self) -> tuple[float, float, bool]:
        """This call's delays and fate; the next call starts clean."""
        plan = (self.delay_before, self.delay_after, self.lose_answer)
        self.delay_before = self.delay_after = 0.0
        self.lose_answer = False
        return plan

    async def get(self, key: str) -> Entry:
        before, after, _ = self._take_network()
        self.clock.advance(before)
        entry = self.entries.get(key)
        self.clock.advance(after)
        if entry is None:
            raise KeyNotFoundError
        return Entry(entry.key, entry.value, entry.revision)

    async def create(self, key: str, value: bytes) -> int:
        return await self.update(key, value, last=0)

    async def update(self, key: str, value: bytes, last: int | None = None) -> int:
        before, after, lose = self._take_network()
        self.clock.advance(before)
        current = self.entries.get(key)
        if (current.revision if current else 0) != (last or 0):
            self.clock.advance(after)
            raise KeyWrongLastSequenceError(description="wrong last sequence")
        self.revision += 1
        self.entries[key] = Entry(key, value, self.revision)
        applied = self.revision
        if self.on_applied is not None:  # others look at the key while our answer is still in flight
            await self.on_applied(key)
        self.clock.advance(after)
        if lose:
            raise asyncio.TimeoutError("answer lost")
        return applied

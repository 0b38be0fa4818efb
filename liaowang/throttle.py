"""Lockout after failed sign-ins: a key (a user name, an address) that fails too often is refused a while.

`Throttle` is pure state with the time passed in (no clock of its own), so a property test can
drive it against a small model (tests/test_people_model.py). Walk-through with 3 failures in a
60 s window locking for 100 s:

>>> t = Throttle(failures=3, window_s=60, lock_s=100)
>>> t.fail("duty", 0); t.fail("duty", 10); t.locked_for("duty", 20)
0.0
>>> t.fail("duty", 50)                  # the third within 60 s: locked until 150
>>> t.locked_for("duty", 60)
90.0
>>> t.locked_for("duty", 150)           # the lock is over, and the count starts again from nothing
0.0
>>> t.fail("admin", 0); t.fail("admin", 61); t.fail("admin", 122)   # never 3 within 60 s
>>> t.locked_for("admin", 122)
0.0

State is in memory: a restart forgets counts and locks (a restart is rare and itself audited);
the number of keys tracked is bounded so a flood of invented names cannot grow it without end.
"""

from __future__ import annotations

from collections import OrderedDict

__all__ = ["Throttle"]


class Throttle:
    """Counts failures per key in a sliding window; ``failures`` of them within ``window_s`` lock it for ``lock_s``."""

    def __init__(self, failures: int, window_s: float, lock_s: float, max_keys: int = 100_000) -> None:
        self.failures = failures
        self.window_s = window_s
        self.lock_s = lock_s
        self._max_keys = max_keys
        self._recent: OrderedDict[str, list[float]] = OrderedDict()  # key → failure times within the window
        self._until: dict[str, float] = {}  # key → end of its lock

    def locked_for(self, key: str, now: float) -> float:
        """Seconds until ``key`` may try again (0.0: it may now)."""
        until = self._until.get(key)
        if until is None:
            return 0.0
        if now >= until:
            del self._until[key]
            return 0.0
        return float(until - now)

    def fail(self, key: str, now: float) -> None:
        """A failed attempt of ``key`` at ``now``; ignored while the key is locked (the lock is not extended)."""
        if self.locked_for(key, now):
            return
        recent = [t for t in self._recent.pop(key, []) if now - t < self.window_s]
        recent.append(now)
        if len(recent) >= self.failures:
            self._until[key] = now + self.lock_s
            return  # the lock starts a new count: failures before it do not count after it
        self._recent[key] = recent
        while len(self._recent) > self._max_keys:  # oldest-touched first: a flood of names forgets old counts
            self._recent.popitem(last=False)

    def succeed(self, key: str) -> None:
        """A successful attempt: ``key``'s failure count starts again."""
        self._recent.pop(key, None)

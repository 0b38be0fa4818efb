"""Event time without holes: every reading the buffer takes is evaluated in order or reported late.

Issue 12 found readings that arrived a fraction of a second after a newer reading of their sensor
stored and never evaluated: the newer one left by its hold time while the older one waited, and
the older one was then dropped as a "duplicate". These tests pin the example and a property over
any arrival order, batch cutting and clock.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from foundation.domain import ReadingBatch
from rules.reorder import ReorderBuffer

SENSORS = ("S0", "S1", "S2")


def batch(rows: list[tuple[int, float, float]]) -> ReadingBatch:
    """(sensor index, event time, value) rows as a batch of the three test sensors."""
    return ReadingBatch(np.array([r[0] for r in rows], dtype=np.int32), np.array([r[1] for r in rows]),
                        np.array([r[2] for r in rows]), np.zeros(len(rows), dtype=np.int8), SENSORS, ("A",) * 3)


def test_a_reading_just_behind_a_newer_one_is_placed_before_it_not_lost() -> None:
    buffer = ReorderBuffer(SENSORS, lateness_s=1.0, max_hold_s=1.5)
    assert len(buffer.add(batch([(0, 10.0, 1.0)]), now=10.0).late) == 0
    assert len(buffer.add(batch([(0, 9.5, 2.0)]), now=10.3).late) == 0  # 0.3 s later, 0.5 s older
    # At 11.55 the newer reading's hold is over but the older one's is not: neither leaves yet.
    assert buffer.release(now=11.55) is None
    out = buffer.release(now=11.85)
    assert out is not None and out.ts.tolist() == [9.5, 10.0] and out.value.tolist() == [2.0, 1.0]
    assert buffer.take_late() is None and buffer.duplicates == 0


Arrival = st.tuples(st.integers(0, 2), st.integers(0, 40).map(lambda t: t / 4), st.integers(0, 60).map(lambda t: t / 4))


@settings(max_examples=300, deadline=None)
@given(arrivals=st.lists(Arrival, min_size=1, max_size=40), cuts=st.lists(st.integers(1, 6), min_size=1, max_size=10),
       flush_gaps=st.lists(st.integers(0, 12).map(lambda t: t / 4), min_size=1, max_size=10),
       lateness=st.sampled_from([0.0, 0.5, 1.0, 3.0]))
def test_every_reading_is_released_once_in_order_or_reported_late(arrivals, cuts, flush_gaps, lateness) -> None:
    """Model: a reading is late exactly when a later reading of its sensor has already been released."""
    buffer = ReorderBuffer(SENSORS, lateness_s=lateness, max_hold_s=lateness + 0.5)
    arrivals = sorted(arrivals, key=lambda a: a[2])  # by arrival time on the clock
    released: list[tuple[int, float]] = []
    late: list[tuple[int, float]] = []
    seen: set[tuple[int, float]] = set()
    i, cut, now = 0, 0, 0.0
    while i < len(arrivals):
        now = max(now, arrivals[i][2])
        size = cuts[cut % len(cuts)]
        cut += 1
        rows = [(s, ts, 0.0) for s, ts, _ in arrivals[i:i + size]]
        i += size
        seen.update((s, ts) for s, ts, _ in rows)
        admission = buffer.add(batch(rows), now)
        late += list(zip(admission.late.sensor.tolist(), admission.late.ts.tolist()))
        for gap in flush_gaps[: 1 + cut % len(flush_gaps)]:
            now += gap
            out = buffer.release(now)
            if out is not None:
                released += list(zip(out.sensor.tolist(), out.ts.tolist()))
            extra = buffer.take_late()
            if extra is not None:
                late += list(zip(extra.sensor.tolist(), extra.ts.tolist()))
    out = buffer.release(now + 1000, everything=True)
    if out is not None:
        released += list(zip(out.sensor.tolist(), out.ts.tolist()))
    # Released at most once, each sensor in strictly increasing event time.
    assert len(released) == len(set(released))
    for s in range(3):
        times = [ts for sensor, ts in released if sensor == s]
        assert times == sorted(times) and len(times) == len(set(times))
    # Every distinct reading is released or late, never neither (a repeat of a released one may come late).
    assert set(released) | set(late) == seen
    # A late reading really was behind one already released of its sensor.
    for s, ts in late:
        assert any(sensor == s and t > ts for sensor, t in released)

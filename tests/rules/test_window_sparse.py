"""The tiered (sparse) windows equal the old dense implementation on random reading sequences.

The reference model is the dense ``Windows`` as it was before the tiers (every subject holding
``capacity`` float64 pairs from the start), kept here verbatim. Both get the same pushes, cut into
random batches; every statistic must be bit-for-bit equal, the kept history must be equal, and a
snapshot — in the new flat format or the old dense one — must restore to the same future.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from rules.window import Windows, WindowStats


class DenseWindows:
    """Kept history (times and values, newest at the right) of ``n`` subjects."""

    def __init__(self, n: int, window_s: float, capacity: int) -> None:
        self.window_s = float(window_s)
        self.capacity = int(capacity)
        self.t = np.zeros((n, capacity))
        self.v = np.zeros((n, capacity))
        self.length = np.zeros(n, dtype=np.int32)

    def push(self, subject: np.ndarray, ts: np.ndarray, value: np.ndarray) -> WindowStats:
        """Add readings (each later than its subject's kept ones, time-ordered per subject); return their windows."""
        m_new = len(subject)
        if not m_new:
            empty = np.zeros(0)
            return WindowStats(empty.astype(np.int64), empty, empty, empty, empty, empty)
        cap, width = self.capacity, self.window_s
        touched, group_new = np.unique(subject, return_inverse=True)
        k = len(touched)
        kept = self.length[touched]
        columns = np.arange(cap)
        valid = columns[None, :] >= (cap - kept)[:, None]
        group_old = np.repeat(np.arange(k), kept)
        groups = np.concatenate([group_old, group_new])
        times = np.concatenate([self.t[touched][valid], ts])
        values = np.concatenate([self.v[touched][valid], value])
        is_new = np.concatenate([np.zeros(len(group_old), dtype=bool), np.ones(m_new, dtype=bool)])
        # kept history precedes the new rows and both are time-ordered: a stable sort by group suffices
        order = np.argsort(groups, kind="stable")
        groups, times, values, is_new = groups[order], times[order], values[order], is_new[order]
        counts = np.bincount(groups, minlength=k)
        starts = np.cumsum(counts) - counts
        first = starts[groups]
        rel_t = times - times[first]
        rel_v = values - values[first]
        m = len(groups)
        index = np.arange(m)
        stride = float(rel_t.max()) + width + 1.0
        key = groups * stride + rel_t
        window_start = np.searchsorted(key, key - width, side="right")
        window_start = np.maximum(window_start, index - cap + 1)
        sums = np.zeros((m + 1, 5))
        np.cumsum(np.stack([rel_t, rel_v, rel_t * rel_t, rel_t * rel_v, rel_v * rel_v], axis=1), axis=0, out=sums[1:])

        rows = np.flatnonzero(is_new)
        lo, hi = window_start[rows], rows + 1
        n = (hi - lo).astype(np.float64)
        s_t, s_v, s_tt, s_tv, s_vv = (sums[hi] - sums[lo]).T
        sxx = s_tt - s_t * s_t / n
        sxy = s_tv - s_t * s_v / n
        syy = np.maximum(s_vv - s_v * s_v / n, 0.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            slope = np.where(sxx > 0, sxy / sxx, np.nan)
            fitted = s_v / n + slope * (rel_t[rows] - s_t / n) + values[first[rows]]
            residual = np.maximum(syy - slope * sxy, 0.0)
            stderr = np.where(n > 2, np.sqrt(residual / np.maximum(n - 2, 1) / sxx), np.nan)
        std = np.sqrt(syy / n)
        span = times[rows] - times[lo]
        result_order = np.empty(m_new, dtype=np.int64)
        result_order[order[rows] - len(group_old)] = np.arange(m_new)
        stats = WindowStats(count=(hi - lo)[result_order], span=span[result_order], slope=slope[result_order],
                            fitted=fitted[result_order], slope_stderr=stderr[result_order], std=std[result_order])
        self._keep(touched, groups, times, values, starts, counts, window_start)
        return stats

    def _keep(self, touched: np.ndarray, groups: np.ndarray, times: np.ndarray, values: np.ndarray,
              starts: np.ndarray, counts: np.ndarray, window_start: np.ndarray) -> None:
        """Keep, per subject, the readings inside the window of its newest reading (at most capacity)."""
        last = starts + counts - 1
        keep = last - window_start[last] + 1
        from_end = last[groups] - np.arange(len(groups))
        mask = from_end < keep[groups]
        rows = touched[groups[mask]]
        cols = self.capacity - 1 - from_end[mask]
        self.t[rows, cols] = times[mask]
        self.v[rows, cols] = values[mask]
        self.length[touched] = keep

    def state(self) -> dict[str, np.ndarray]:
        """The kept history (for snapshots)."""
        return {"t": self.t, "v": self.v, "length": self.length}

    def restore(self, arrays: dict[str, np.ndarray], rows: np.ndarray, into: np.ndarray) -> None:
        """Copy snapshot rows into subjects ``into`` (the capacity must match)."""
        if arrays["t"].shape[1] != self.capacity:
            return
        self.t[into], self.v[into], self.length[into] = arrays["t"][rows], arrays["v"][rows], arrays["length"][rows]


@st.composite
def feeds(draw):
    """(subjects, width, capacity, batches): each batch a list of (subject, ts, value), time-ordered per subject."""
    subjects = draw(st.integers(1, 6))
    width = draw(st.sampled_from([5.0, 30.0, 120.0]))
    capacity = draw(st.sampled_from([3, 4, 5, 16, 17, 40, 70]))
    clock = [1.795e9 + draw(st.floats(0, 50)) for _ in range(subjects)]
    batches = []
    for _ in range(draw(st.integers(1, 25))):
        batch = []
        for _ in range(draw(st.integers(1, 30))):
            s = draw(st.integers(0, subjects - 1))
            clock[s] += draw(st.sampled_from([0.5, 1.0, 2.5, 10.0, 40.0, 300.0]))  # bursts and gaps
            batch.append((s, clock[s], draw(st.floats(-1e3, 1e3, allow_nan=False))))
        batches.append(batch)
    return subjects, width, capacity, batches


def _push(windows, batch) -> WindowStats:
    return windows.push(np.array([b[0] for b in batch], dtype=np.int64), np.array([b[1] for b in batch]),
                        np.array([b[2] for b in batch]))


def _same_stats(a: WindowStats, b: WindowStats) -> None:
    for field in ("count", "span", "slope", "fitted", "slope_stderr", "std"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field), err_msg=field)


def _same_history(sparse: Windows, dense: DenseWindows) -> None:
    np.testing.assert_array_equal(sparse.length, dense.length)
    t, v = sparse.dense()
    valid = np.arange(dense.capacity)[None, :] >= (dense.capacity - dense.length)[:, None]
    np.testing.assert_array_equal(t[valid], dense.t[valid])
    np.testing.assert_array_equal(v[valid], dense.v[valid])


@settings(max_examples=150, deadline=None)
@given(feeds(), st.data())
def test_tiered_windows_equal_the_dense_reference(feed, data):
    subjects, width, capacity, batches = feed
    sparse, dense = Windows(subjects, width, capacity), DenseWindows(subjects, width, capacity)
    cut = data.draw(st.integers(0, len(batches)))
    for batch in batches[:cut]:
        _same_stats(_push(sparse, batch), _push(dense, batch))
        _same_history(sparse, dense)
    # a snapshot (new flat format, and the old dense one) restores to the same future, in a shuffled subject order
    perm = np.array(data.draw(st.permutations(range(subjects))), dtype=np.int64)
    from_flat, from_old = Windows(subjects, width, capacity), Windows(subjects, width, capacity)
    _push(from_flat, [(s, 1.0, 0.0) for s in range(subjects)])  # stale state the restore must replace
    from_flat.restore(sparse.state(), perm, perm)
    from_old.restore(dense.state(), perm, perm)
    for batch in batches[cut:]:
        expected = _push(dense, batch)
        _same_stats(_push(sparse, batch), expected)
        _same_stats(_push(from_flat, batch), expected)
        _same_stats(_push(from_old, batch), expected)
    _same_history(sparse, dense)
    _same_history(from_flat, dense)


def test_subjects_without_readings_hold_nothing_and_full_windows_use_the_top_tier():
    windows = Windows(100_000, 600.0, 93)
    assert sum(t.t.nbytes + t.v.nbytes for t in windows._tiers) == 0
    _push(windows, [(7, 1.795e9 + i, float(i)) for i in range(200)])
    assert windows.length[7] == 93 and windows.length.sum() == 93
    held = sum(t.t.nbytes + t.v.nbytes for t in windows._tiers)
    assert held < 100 * 93 * 16  # one subject's rows (tiers grow by 64 rows at a time), not 100,000 × 93

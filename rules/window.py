"""Event-time sliding windows for many subjects, with least-squares trend statistics per reading.

For every new reading, the window is the subject's readings in ``(ts − window_s, ts]`` (at most
``capacity`` of them, the newest). `Windows.push` returns, per reading, the count, the time the
window spans, the least-squares slope (unit per second), the fitted value at the reading's time,
the slope's standard error and the values' standard deviation — all from prefix sums over the
batch joined to each subject's kept history, so a whole micro-batch is one numpy pass whatever
its size, and the result does not depend on how a feed was cut into batches.

Times and values are taken relative to each subject's oldest kept reading before summing, which
keeps the sums small enough for float64 (checked against `numpy.polyfit` in the tests).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, slots=True)
class WindowStats:
    """Statistics of each pushed reading's window (arrays aligned with the pushed rows)."""

    count: np.ndarray
    span: np.ndarray
    slope: np.ndarray
    fitted: np.ndarray
    slope_stderr: np.ndarray
    std: np.ndarray


class Windows:
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

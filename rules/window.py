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


class _Tier:
    """Rows of one capacity, grown by doubling, with a free list (rows of subjects that moved away)."""

    __slots__ = ("cap", "t", "v", "used", "free")

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.t = np.zeros((0, cap))
        self.v = np.zeros((0, cap))
        self.used = 0
        self.free = np.zeros(0, dtype=np.int32)

    def allocate(self, m: int) -> np.ndarray:
        """``m`` row numbers, reusing freed rows first."""
        reuse = min(m, len(self.free))
        rows = self.free[len(self.free) - reuse:]
        self.free = self.free[:len(self.free) - reuse]
        fresh = np.arange(self.used, self.used + m - reuse, dtype=np.int32)
        self.used += m - reuse
        if self.used > len(self.t):
            size, had = max(self.used, 2 * len(self.t), 64), len(self.t)
            for name in ("t", "v"):
                grown = np.zeros((size, self.cap))
                grown[:had] = getattr(self, name)
                setattr(self, name, grown)
        return np.concatenate([rows, fresh])

    def release(self, rows: np.ndarray) -> None:
        """Give rows back (their contents are dead: a subject's length says what is valid)."""
        if len(rows):
            self.free = np.concatenate([self.free, rows.astype(np.int32)])


def _tier_caps(capacity: int) -> list[int]:
    caps, c = [], 4
    while c < capacity:
        caps.append(c)
        c *= 4
    return caps + [capacity]


class Windows:
    """Kept history (times and values, oldest first) of ``n`` subjects, stored sparsely in capacity tiers."""

    def __init__(self, n: int, window_s: float, capacity: int) -> None:
        self.window_s = float(window_s)
        self.capacity = int(capacity)
        self._tiers = [_Tier(c) for c in _tier_caps(self.capacity)]
        self._caps = np.array([t.cap for t in self._tiers], dtype=np.int64)
        self.tier = np.full(n, -1, dtype=np.int8)  # −1: no reading yet, nothing held
        self.row = np.zeros(n, dtype=np.int32)
        self.length = np.zeros(n, dtype=np.int32)

    def _gather(self, subjects: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(index into ``subjects``, times, values) of every kept reading of ``subjects``; per subject oldest first."""
        parts_i, parts_t, parts_v = [], [], []
        tiers = self.tier[subjects]
        for j, tier in enumerate(self._tiers):
            idx = np.flatnonzero(tiers == j)
            if not len(idx):
                continue
            kept = self.length[subjects[idx]]
            valid = np.arange(tier.cap)[None, :] >= (tier.cap - kept)[:, None]
            rows = self.row[subjects[idx]]
            parts_i.append(np.repeat(idx, kept))
            parts_t.append(tier.t[rows][valid])
            parts_v.append(tier.v[rows][valid])
        if not parts_i:
            return np.zeros(0, dtype=np.int64), np.zeros(0), np.zeros(0)
        return np.concatenate(parts_i), np.concatenate(parts_t), np.concatenate(parts_v)

    def push(self, subject: np.ndarray, ts: np.ndarray, value: np.ndarray) -> WindowStats:
        """Add readings (each later than its subject's kept ones, time-ordered per subject); return their windows."""
        m_new = len(subject)
        if not m_new:
            empty = np.zeros(0)
            return WindowStats(empty.astype(np.int64), empty, empty, empty, empty, empty)
        cap, width = self.capacity, self.window_s
        touched, group_new = np.unique(subject, return_inverse=True)
        k = len(touched)
        group_old, old_t, old_v = self._gather(touched)
        groups = np.concatenate([group_old, group_new])
        times = np.concatenate([old_t, ts])
        values = np.concatenate([old_v, value])
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
        """Keep, per subject, the readings inside the window of its newest reading (at most capacity), each
        subject in the smallest tier that holds them."""
        last = starts + counts - 1
        keep = last - window_start[last] + 1
        target = np.searchsorted(self._caps, keep).astype(np.int8)  # smallest tier with cap ≥ keep
        current = self.tier[touched]
        moving = current != target
        for j, tier in enumerate(self._tiers):  # every release before any allocation overwrites a row number
            tier.release(self.row[touched[moving & (current == j)]])
        for j, tier in enumerate(self._tiers):
            arriving = touched[moving & (target == j)]
            self.row[arriving] = tier.allocate(len(arriving))
        self.tier[touched] = target
        self.length[touched] = keep
        from_end = last[groups] - np.arange(len(groups))
        mask = from_end < keep[groups]
        subjects = touched[groups[mask]]
        subject_tier = target[groups[mask]]
        for j, tier in enumerate(self._tiers):
            sel = subject_tier == j
            if not sel.any():
                continue
            rows, cols = self.row[subjects[sel]], tier.cap - 1 - from_end[mask][sel]
            tier.t[rows, cols] = times[mask][sel]
            tier.v[rows, cols] = values[mask][sel]

    def state(self) -> dict[str, np.ndarray]:
        """The kept history (for snapshots): ``length`` per subject and the readings flat, per subject oldest
        first (``ft``, ``fv``) — a snapshot's size follows the readings held, not subjects × capacity."""
        _, ft, fv = self._gather_all()
        return {"length": self.length.copy(), "ft": ft, "fv": fv}

    def _gather_all(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every subject's kept readings, in subject order (a stable sort of `_gather`'s tier-major output)."""
        subjects = np.arange(len(self.length))
        index, t, v = self._gather(subjects)
        order = np.argsort(index, kind="stable")
        return index[order], t[order], v[order]

    def dense(self) -> tuple[np.ndarray, np.ndarray]:
        """(t, v) as ``(n, capacity)`` arrays, newest at the right (the pre-tier layout; for tests)."""
        n = len(self.length)
        t, v = np.zeros((n, self.capacity)), np.zeros((n, self.capacity))
        index, ft, fv = self._gather_all()
        cols = self.capacity - self.length[index] + _rank(index)
        t[index, cols], v[index, cols] = ft, fv
        return t, v

    def restore(self, arrays: dict[str, np.ndarray], rows: np.ndarray, into: np.ndarray) -> None:
        """Copy snapshot rows into subjects ``into``. Reads the flat format and the older dense one
        (``t``, ``v`` of shape (subjects, capacity), newest at the right); a dense one of another capacity is
        skipped, as before."""
        length = arrays["length"]
        if "t" in arrays:  # dense snapshot, written before the tiers
            if arrays["t"].shape[1] != self.capacity:
                return
            kept = length[rows].astype(np.int64)
            valid = np.arange(self.capacity)[None, :] >= (self.capacity - kept)[:, None]
            ft, fv = arrays["t"][rows][valid], arrays["v"][rows][valid]
        else:
            offsets = np.concatenate([[0], np.cumsum(length.astype(np.int64))])
            kept = np.minimum(length[rows].astype(np.int64), self.capacity)  # the newest, if capacity shrank
            owner = np.repeat(np.arange(len(rows)), kept)
            take = (offsets[rows + 1] - kept)[owner] + _rank(owner)
            ft, fv = arrays["ft"][take], arrays["fv"][take]
        # subjects restored into give up what they held, then take the snapshot's rows
        current = self.tier[into]
        for j, tier in enumerate(self._tiers):
            tier.release(self.row[into[current == j]])
        self.tier[into] = -1
        self.length[into] = 0
        has = kept > 0
        target = np.searchsorted(self._caps, kept).astype(np.int8)
        for j, tier in enumerate(self._tiers):
            arriving = into[has & (target == j)]
            self.row[arriving] = tier.allocate(len(arriving))
        self.tier[into[has]] = target[has]
        self.length[into] = kept
        groups = np.repeat(np.arange(len(into)), kept)
        cols_from_end = kept[groups] - 1 - _rank(groups)
        for j, tier in enumerate(self._tiers):
            sel = target[groups] == j
            r = self.row[into[groups[sel]]]
            tier.t[r, tier.cap - 1 - cols_from_end[sel]] = ft[sel]
            tier.v[r, tier.cap - 1 - cols_from_end[sel]] = fv[sel]


def _rank(groups: np.ndarray) -> np.ndarray:
    """Position of each element within its run of equal (sorted, contiguous) group labels."""
    if not len(groups):
        return np.zeros(0, dtype=np.int64)
    index = np.arange(len(groups))
    boundary = np.concatenate([[True], groups[1:] != groups[:-1]])
    return index - np.maximum.accumulate(np.where(boundary, index, 0))

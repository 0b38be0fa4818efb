"""The window statistics agree with numpy.polyfit on random windows, however the feed is cut into batches."""

from __future__ import annotations

import numpy as np
import pytest

from rules.window import Windows


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_slope_and_fit_match_polyfit_on_random_windows(seed):
    rng = np.random.default_rng(seed)
    subjects, width, capacity = 6, float(rng.uniform(20, 300)), 40
    feed = []
    for s in range(subjects):
        t = 1.795e9 + np.cumsum(rng.uniform(0.2, 8.0, 150))
        v = rng.normal(0, rng.uniform(0.01, 5)) + rng.uniform(-1, 1) * (t - t[0]) + rng.normal(0, 1, 150)
        feed += [(ti, s, vi) for ti, vi in zip(t, v)]
    feed.sort()
    windows = Windows(subjects, width, capacity)
    history: dict[int, list[tuple[float, float]]] = {s: [] for s in range(subjects)}
    checked, start = 0, 0
    while start < len(feed):
        chunk = feed[start:start + int(rng.integers(1, 60))]
        start += len(chunk)
        stats = windows.push(np.array([c[1] for c in chunk]), np.array([c[0] for c in chunk]),
                             np.array([c[2] for c in chunk]))
        for row, (t, s, v) in enumerate(chunk):
            history[s].append((t, v))
            inside = np.array([p for p in history[s] if p[0] > t - width][-capacity:])
            assert stats.count[row] == len(inside)
            if len(inside) < 3:
                continue
            x = inside[:, 0] - t
            slope, intercept = np.polyfit(x, inside[:, 1], 1)
            assert stats.slope[row] == pytest.approx(slope, rel=1e-7, abs=1e-9)
            assert stats.fitted[row] == pytest.approx(intercept, rel=1e-7, abs=1e-7)
            assert stats.std[row] == pytest.approx(inside[:, 1].std(), rel=1e-6, abs=1e-9)
            checked += 1
    assert checked > 500

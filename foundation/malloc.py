"""glibc malloc settings that keep a long-running numpy process's RSS near its live data.

glibc raises its mmap threshold each time a large block is freed (up to 32 MB), so after the
first large numpy temporaries, later ones come from the heap and stay resident after they are
freed; with threads it also opens up to 8 arenas per core that each keep freed memory. Measured
with bench/hotpath.py --memory-only at 100,000 sensors: ~330 → ~283 MB (main + receiver). A
fixed 1 MB threshold (blocks ≥ 1 MB are mmap'd and given back on free) and two arenas bound
both. Settings the operator already gave (``MALLOC_*`` or ``GLIBC_TUNABLES`` in the environment)
win; child processes inherit ours through the environment.

`release_freed_heap` hands freed heap back to the operating system (glibc's ``malloc_trim``),
at most once every ``TRIM_INTERVAL_S`` a process. Why: after a burst (a backlog drained, a
recovery replay) the freed memory of every arena stays mapped, so RSS — what a cgroup limit or the
OOM killer counts — stays at the burst's peak: 23–27 MB of ``liaowang run``'s 253 MB with 100,000
sensors even with the settings above. ``malloc_trim(0)`` returns free pages from the middle of
the heaps too (``madvise``), not only their tops (all ``M_TRIM_THRESHOLD`` governs). This module
imports only the standard library at load: the receiver child process (ingest/receiver_child.py)
trims too, and must stay small.
"""

from __future__ import annotations

import ctypes
import os
import sys
import threading
import time
from typing import Callable

M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8
MMAP_THRESHOLD = 1 << 20
ARENA_MAX = 2

# The shortest time between two trims of one process: a trim walks every arena under its lock
# (8 ms returning 76 MB here), so the pipelines of one worker share one budget.
TRIM_INTERVAL_S = 10.0

_outcome: bool | None = None


def _glibc() -> ctypes.CDLL | None:
    """glibc (``libc.so.6``), or None off Linux or where it cannot be loaded (musl): that allocator keeps its policy."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL("libc.so.6")
    except OSError:
        return None


_LIBC = _glibc()  # one handle for the settings and the trims


def tune_malloc() -> bool:
    """Apply the settings to this process (once) and, via the environment, to its children; True if applied."""
    global _outcome
    if _outcome is None:
        _outcome = _tune()
    return _outcome


def _tune() -> bool:
    import structlog  # here, not at load: the receiver child imports this module for its trims

    log = structlog.get_logger(__name__)
    if not sys.platform.startswith("linux"):
        return False
    if "GLIBC_TUNABLES" in os.environ or any(key.startswith("MALLOC_") for key in os.environ):
        log.info("malloc_tuning_skipped", reason="the environment sets malloc options (glibc applied them at start)")
        return False
    if _LIBC is None:
        log.info("malloc_tuning_skipped", reason="libc.so.6 cannot be loaded")
        return False
    try:
        applied = (_LIBC.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1
                   and _LIBC.mallopt(M_ARENA_MAX, ARENA_MAX) == 1)
    except AttributeError as err:  # not glibc (musl, …): its allocator, its behaviour
        log.info("malloc_tuning_skipped", reason=f"{type(err).__name__}: {err}")
        return False
    if not applied:
        log.warning("malloc_tuning_skipped", reason="mallopt refused")
        return False
    os.environ["MALLOC_MMAP_THRESHOLD_"] = str(MMAP_THRESHOLD)
    os.environ["MALLOC_ARENA_MAX"] = str(ARENA_MAX)
    log.info("malloc_tuned", mmap_threshold=MMAP_THRESHOLD, arena_max=ARENA_MAX)
    return True


_trim_lock = threading.Lock()
_last_trim = -TRIM_INTERVAL_S


def _load_trim() -> Callable[[int], int] | None:
    """glibc's ``malloc_trim``, or None where the C library has none (musl, macOS)."""
    trim = getattr(_LIBC, "malloc_trim", None)  # no such symbol: the C library keeps its own policy
    if trim is None:
        return None
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return trim


_trim = _load_trim()
TRIM_AVAILABLE = _trim is not None  # False off glibc: callers then need not wait to retry


def release_freed_heap(min_interval_s: float = TRIM_INTERVAL_S) -> bool:
    """Return the heap glibc holds free to the OS, unless this process did so within ``min_interval_s``.

    True when a trim ran (whether or not it found pages to return). Safe from any thread.
    """
    global _last_trim
    if _trim is None:
        return False
    with _trim_lock:
        now = time.monotonic()
        if now - _last_trim < min_interval_s:
            return False
        _last_trim = now
        _trim(0)
    return True

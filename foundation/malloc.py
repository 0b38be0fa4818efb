"""glibc malloc settings that keep a long-running numpy process's RSS near its live data.

glibc raises its mmap threshold each time a large block is freed (up to 32 MB), so after the
first large numpy temporaries, later ones come from the heap and stay resident after they are
freed; with threads it also opens up to 8 arenas per core that each keep freed memory. Measured
with bench/hotpath.py --memory-only at 100,000 sensors: ~330 → ~283 MB (main + receiver). A
fixed 1 MB threshold (blocks ≥ 1 MB are mmap'd and given back on free) and two arenas bound
both. Settings the operator already gave (``MALLOC_*`` or ``GLIBC_TUNABLES`` in the environment)
win; child processes inherit ours through the environment.
"""

from __future__ import annotations

import ctypes
import os
import sys

import structlog

M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8
MMAP_THRESHOLD = 1 << 20
ARENA_MAX = 2

log = structlog.get_logger(__name__)
_outcome: bool | None = None


def tune_malloc() -> bool:
    """Apply the settings to this process (once) and, via the environment, to its children; True if applied."""
    global _outcome
    if _outcome is None:
        _outcome = _tune()
    return _outcome


def _tune() -> bool:
    if not sys.platform.startswith("linux"):
        return False
    if "GLIBC_TUNABLES" in os.environ or any(key.startswith("MALLOC_") for key in os.environ):
        log.info("malloc_tuning_skipped", reason="the environment sets malloc options (glibc applied them at start)")
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        applied = (libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1
                   and libc.mallopt(M_ARENA_MAX, ARENA_MAX) == 1)
    except (OSError, AttributeError) as err:  # not glibc (musl, …): its allocator, its behaviour
        log.info("malloc_tuning_skipped", reason=f"{type(err).__name__}: {err}")
        return False
    if not applied:
        log.warning("malloc_tuning_skipped", reason="mallopt refused")
        return False
    os.environ["MALLOC_MMAP_THRESHOLD_"] = str(MMAP_THRESHOLD)
    os.environ["MALLOC_ARENA_MAX"] = str(ARENA_MAX)
    log.info("malloc_tuned", mmap_threshold=MMAP_THRESHOLD, arena_max=ARENA_MAX)
    return True

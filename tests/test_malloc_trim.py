"""foundation.malloc: freed heap goes back to the OS, at most once per interval."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

import pytest

from foundation import malloc as memory


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


@pytest.mark.skipif(not sys.platform.startswith("linux") or memory._trim is None, reason="glibc only")
def test_a_trim_returns_a_fragmented_thread_arena_to_the_os() -> None:
    kept: list[bytes] = []

    def burst() -> None:  # in its own thread, so in a glibc arena of its own, as ingest's threads are
        blocks = [bytes(2048) for _ in range(40_000)]  # 80 MB of malloc'd (not pymalloc) blocks
        kept.extend(blocks[::64])  # a few survivors pin the arena's top: only a trim frees the middle
        del blocks

    thread = threading.Thread(target=burst)
    thread.start()
    thread.join()
    before = _rss_mb()
    assert memory.release_freed_heap(0.0) is True
    after = _rss_mb()
    assert before - after > 40, f"RSS {before:.0f} MB before the trim, {after:.0f} MB after"
    assert len(kept) == 625


def test_a_second_trim_within_the_interval_is_skipped() -> None:
    if memory._trim is None:
        assert memory.release_freed_heap(0.0) is False
        return
    assert memory.release_freed_heap(0.0) is True
    assert memory.release_freed_heap(3600.0) is False
    assert memory.release_freed_heap(0.0) is True

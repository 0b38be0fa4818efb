"""A local append-only disk spool: batches wait here, in order, until a remote store accepts them.

Each batch is one file named by a growing sequence number, written to a temporary name, fsynced
and renamed, so a crash leaves either the whole batch or nothing. The forwarder reads the oldest
file first and deletes it only after the store accepted it: nothing is lost, order is kept.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path


class SpoolFull(Exception):
    """The spool reached its configured limit: the caller must hold the data (do not acknowledge)."""


class DiskSpool:
    """Ordered, durable queue of byte batches in a folder, bounded by ``max_bytes``."""

    def __init__(self, folder: Path, max_bytes: int) -> None:
        self._folder = folder
        self._folder.mkdir(parents=True, exist_ok=True)
        self._max = max_bytes
        self._lock = threading.Condition()
        for leftover in self._folder.glob("*.tmp"):  # a crash mid-write: the batch was never acknowledged
            leftover.unlink()
        self._files = sorted(self._folder.glob("*.batch"))
        self._bytes = sum(f.stat().st_size for f in self._files)
        self._next = int(self._files[-1].stem) + 1 if self._files else 1

    @property
    def size_bytes(self) -> int:
        """Bytes waiting in the spool."""
        return self._bytes

    @property
    def max_bytes(self) -> int:
        """The configured limit."""
        return self._max

    def __len__(self) -> int:
        return len(self._files)

    def append(self, data: bytes) -> None:
        """Durably add one batch at the end; raise SpoolFull when it would pass the limit."""
        with self._lock:
            if self._bytes + len(data) > self._max and self._files:
                raise SpoolFull(f"spool {self._folder} holds {self._bytes} bytes, limit {self._max}")
            path = self._folder / f"{self._next:016d}.batch"
            tmp = path.with_suffix(".tmp")
            with open(tmp, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
            self._next += 1
            self._files.append(path)
            self._bytes += len(data)
            self._lock.notify_all()

    def peek(self, timeout: float) -> tuple[Path, bytes] | None:
        """The oldest batch (without removing it), waiting up to ``timeout`` s for one to arrive."""
        with self._lock:
            if not self._files and not self._lock.wait_for(lambda: bool(self._files), timeout):
                return None
            path = self._files[0]
        return path, path.read_bytes()

    def remove(self, path: Path) -> None:
        """Drop a batch the store accepted (must be the oldest)."""
        with self._lock:
            size = path.stat().st_size
            path.unlink()
            self._files.remove(path)
            self._bytes -= size

    def wake(self) -> None:
        """Wake a waiting `peek` (at shutdown)."""
        with self._lock:
            self._lock.notify_all()

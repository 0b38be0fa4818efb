"""Free space on the volumes Liaowang writes to: a disk that fills must never be found out by loss.

SQLite, the InfluxDB spools and the broker's persistence all stop working when their volume is
full; before that, the duty room should see a ``_system`` alarm and ``/healthz`` should say so.
`DiskWatch` measures each watched path with ``statvfs`` (paths on one volume are reported once,
under all their names) against a floor in bytes and, optionally, a fraction of the volume.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class DiskSpace:
    """One volume: the names of the paths on it, what is free, and whether that is below the floor."""

    name: str
    path: str
    free_bytes: int
    total_bytes: int
    low: bool
    error: str | None = None

    def to_json(self) -> dict[str, object]:
        return {"name": self.name, "path": self.path, "free_bytes": self.free_bytes, "total_bytes": self.total_bytes,
                "low": self.low, "error": self.error}

    def describe(self) -> str:
        """One line for health and alarms, e.g. ``data: 12.0 MiB free of 1.0 GiB``."""
        if self.error:
            return f"{self.name} ({self.path}): cannot measure: {self.error}"
        return f"{self.name} ({self.path}): {_size(self.free_bytes)} free of {_size(self.total_bytes)}"


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{n} B"
        n /= 1024  # type: ignore[assignment]
    return f"{n} B"  # pragma: no cover


class DiskWatch:
    """Measures the volumes under named paths.

    ``min_free_bytes``: below this many free bytes a volume is low; ``min_free_fraction`` (0: off):
    below this share of the volume it is low too.

    >>> watch = DiskWatch({"data": Path(".")}, min_free_bytes=0)
    >>> [d.low for d in watch.check()]
    [False]
    """

    def __init__(self, paths: dict[str, Path], min_free_bytes: int, min_free_fraction: float = 0.0) -> None:
        self._paths = dict(paths)
        self._min_bytes = min_free_bytes
        self._min_fraction = min_free_fraction

    def watch(self, name: str, path: Path) -> None:
        """Watch one more path (the broker's store, once the broker is known)."""
        self._paths[name] = path

    def check(self) -> list[DiskSpace]:
        """The state of every watched volume, one entry per volume."""
        volumes: dict[int | str, tuple[list[str], str, os.statvfs_result | None, str | None]] = {}
        for name, path in self._paths.items():
            try:
                device: int | str = os.stat(path).st_dev
                stats, error = os.statvfs(path), None
            except OSError as err:
                device, stats, error = f"error:{name}", None, f"{type(err).__name__}: {err.strerror or err}"
            names, _, _, _ = volumes.setdefault(device, ([], str(path), stats, error))
            names.append(name)
        out = []
        for names, path, stats, error in volumes.values():
            name = ", ".join(names)
            if stats is None:
                out.append(DiskSpace(name, path, 0, 0, True, error))
                continue
            free = stats.f_bavail * stats.f_frsize  # what an unprivileged writer may still use
            total = stats.f_blocks * stats.f_frsize
            low = free < self._min_bytes or (self._min_fraction > 0 and total > 0 and free / total < self._min_fraction)
            out.append(DiskSpace(name, path, free, total, low))
        return out

"""A remote store behind a disk spool: ingest writes to the spool, a forwarder drains it in order.

`SpooledSink.write` returns once the batch is fsynced into the spool, so ingest may acknowledge it
to the broker; the forwarder thread sends the oldest batch first and deletes it only when the
store accepted it. Retryable failures (429, 5xx, timeouts, refused connections) back off
exponentially with jitter, honouring Retry-After; a batch the store refuses as malformed moves to
``rejected/`` and is counted, never silently dropped. When the spool is full, `write` raises and
ingest stops acknowledging: the broker then holds the backlog.
"""

from __future__ import annotations

import random
import shutil
import threading
from pathlib import Path
from typing import Callable

import structlog

from ingest.base import RejectedWriteError, RemoteWriter, RetryableWriteError
from ingest.lineprotocol import LineEncoder
from ingest.metrics import IngestMetrics
from ingest.spool import DiskSpool
from foundation.config import SpoolSettings
from foundation.domain import ReadingBatch

log = structlog.get_logger("ingest")

HealthCallback = Callable[[str, float, bool], None]
"""``(sink name, spool fill fraction, over the warning level)``: called when the level is crossed."""


def backoff_delay(attempt: int, initial: float, maximum: float, rng: random.Random) -> float:
    """Exponential backoff with equal jitter: half fixed, half random, capped at ``maximum``.

    >>> rng = random.Random(1)
    >>> [round(backoff_delay(n, 0.5, 30, rng), 2) for n in range(4)]
    [0.28, 0.92, 1.76, 2.51]
    """
    ceiling = min(maximum, initial * (2 ** attempt))
    return ceiling / 2 + rng.uniform(0, ceiling / 2)


class SpooledSink:
    """A `Sink` for a `RemoteWriter` (InfluxDB v1 or v2), with a durable spool and a forwarder."""

    def __init__(self, writer: RemoteWriter, encoder: LineEncoder, folder: Path, settings: SpoolSettings,
                 metrics: IngestMetrics, on_health: HealthCallback | None = None) -> None:
        self.name = writer.name
        self._writer = writer
        self._encoder = encoder
        self._settings = settings
        self._metrics = metrics
        self._on_health = on_health
        self.spool = DiskSpool(folder / "pending", settings.max_bytes)
        self._rejected = folder / "rejected"
        self._stop = threading.Event()
        self._warned = False
        self._rng = random.Random()
        metrics.spool_limit.labels(self.name).set(settings.max_bytes)
        self._update_gauges()
        self._thread = threading.Thread(target=self._forward, name=f"forward-{self.name}", daemon=True)
        self._thread.start()

    def write(self, batch: ReadingBatch) -> None:
        """Spool the batch durably (in chunks); raises SpoolFull when the spool is at its limit."""
        step = self._settings.max_batch_readings
        for start in range(0, len(batch), step):
            self.spool.append(self._encoder.encode(batch.take(slice(start, start + step))))
        self._update_gauges()

    def close(self) -> None:
        """Stop forwarding; what is still spooled is sent after the next start."""
        self._stop.set()
        self.spool.wake()
        self._thread.join(timeout=15)
        self._writer.close()

    def _update_gauges(self) -> None:
        size = self.spool.size_bytes
        self._metrics.spool_bytes.labels(self.name).set(size)
        self._metrics.spool_batches.labels(self.name).set(len(self.spool))
        fill = size / self._settings.max_bytes
        over = fill >= self._settings.warn_fraction
        if over != self._warned:
            self._warned = over
            log.warning("spool_filling" if over else "spool_recovered", sink=self.name, fill=round(fill, 3))
            if self._on_health is not None:
                self._on_health(self.name, fill, over)

    def _forward(self) -> None:
        attempt = 0
        while not self._stop.is_set():
            item = self.spool.peek(timeout=0.5)
            if item is None:
                continue
            path, body = item
            try:
                self._writer.send(body)
            except RetryableWriteError as err:
                self._metrics.forward_errors.labels(self.name, "retryable").inc()
                delay = backoff_delay(attempt, self._settings.backoff_initial_s, self._settings.backoff_max_s, self._rng)
                if err.retry_after is not None:
                    delay = max(delay, min(err.retry_after, self._settings.backoff_max_s * 4))
                if attempt == 0 or attempt % 10 == 0:
                    log.warning("store_unavailable", sink=self.name, error=str(err), retry_in_s=round(delay, 2),
                                spooled_bytes=self.spool.size_bytes)
                attempt += 1
                self._stop.wait(delay)
                continue
            except RejectedWriteError as err:
                self._metrics.forward_errors.labels(self.name, "rejected").inc()
                self._rejected.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, self._rejected / path.name)
                log.error("batch_rejected_by_store", sink=self.name, batch=path.name, error=str(err),
                          kept_in=str(self._rejected))
            else:
                self._metrics.forwarded.labels(self.name).inc()
                if attempt:
                    log.info("store_available", sink=self.name, after_attempts=attempt)
            attempt = 0
            self.spool.remove(path)
            self._update_gauges()

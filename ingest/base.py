"""The one interface a store implements: a `Sink` takes validated readings and keeps them."""

from __future__ import annotations

from typing import Protocol

from foundation.domain import ReadingBatch


class Sink(Protocol):
    """A store for readings (SQLite, InfluxDB, ...).

    ``write`` returns only when every reading is durably kept, and raises otherwise: the caller
    then keeps the batch and does not acknowledge it to the broker. Writes are idempotent on
    ``(sensor_id, ts)``, so a redelivered batch stores nothing twice.
    """

    name: str

    def write(self, batch: ReadingBatch) -> None:
        """Store the batch durably, or raise."""
        ...

    def close(self) -> None:
        """Flush and release the store."""
        ...


class DownstreamUnavailable(Exception):
    """The stage after ingest could not commit a batch's effects for a reason that passes (a full disk,
    a locked database): ingest keeps the batch unacknowledged and retries it, never drops it.

    Any other exception from downstream is a fault of the batch or of the code: ingest retries it a
    few times, then dead-letters the readings as ``evaluation_failed`` and reports it.
    """


class RetryableWriteError(Exception):
    """The store did not take the batch but may later (429, 5xx, timeout, refused connection).

    ``retry_after`` is the server's Retry-After in seconds, when it sent one.
    """

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class RejectedWriteError(Exception):
    """The store refused the batch itself (400: malformed data); resending it cannot help."""


class RemoteWriter(Protocol):
    """Sends one batch of line protocol to a remote store; raises one of the two errors above."""

    name: str

    def send(self, body: bytes) -> None:
        """Deliver ``body``; return only when the store accepted it."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...

"""The one interface a store implements: a `Sink` takes validated readings and keeps them."""

from __future__ import annotations

from typing import Protocol, Sequence

from liaowang.domain import Reading


class Sink(Protocol):
    """A store for readings (SQLite, InfluxDB, ...).

    ``write`` returns only when every reading is durably kept, and raises otherwise: the caller
    then keeps the batch and does not acknowledge it to the broker. Writes are idempotent on
    ``(sensor_id, ts)``, so a redelivered batch stores nothing twice.
    """

    name: str

    def write(self, readings: Sequence[Reading]) -> None:
        """Store ``readings`` durably, or raise."""
        ...

    def close(self) -> None:
        """Flush and release the store."""
        ...

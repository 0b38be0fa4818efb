"""Leases with a fencing epoch in a NATS KV bucket: who owns a partition (or the bureau desks) now.

A lease is one KV key (``partition.{p}``, ``bureau``) whose value names the holder. Every write is a
compare-and-set on the key's last revision, so two contenders can never both win. The lease's
EPOCH is the KV revision of the write that acquired it: revisions of a bucket only grow, so a later
acquisition always has a larger epoch; renewals write again (new revision) but keep the epoch.
PostgreSQL's ``partition_fence`` then refuses any commit under a smaller epoch.

Expiry needs no synchronised clocks. Nobody compares wall-clock timestamps:

* the holder counts its validity on its own monotonic clock from the moment it *sent* its last
  successful write: ``valid_until = sent_at + ttl - margin``; it renews every ``ttl / 3`` and, once
  past ``valid_until`` without a successful renewal, considers itself fenced (stops consuming and
  writing) — it never extends a lease it may already have lost;
* a contender may take a held lease only after it has watched the *same* revision unchanged for a
  whole ``ttl`` on its own monotonic clock. It first saw that revision after it was written, and the
  write came after the holder's ``sent_at``, so the holder gave up at least ``margin`` before.

Only the clocks' *rates* must agree to within ``margin / ttl`` (crystal drift is ~1e-5); offsets
do not matter. A released lease (value ``free``) can be taken at once.

Example::

    leases = Leases(kv, owner="worker-a", ttl_s=6.0)
    lease = await leases.acquire("partition.3")      # None: held by someone else (or not yet expired)
    ...
    lease = await leases.renew(lease)                 # every ttl/3; raises LeaseLost when taken
    if not lease.valid(time.monotonic()): stop()      # fenced: stop consuming and writing
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, replace
from typing import Any, Callable, Protocol

import orjson
import structlog
from nats.errors import Error as NatsError
from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError

__all__ = ["BUCKET", "Lease", "LeaseLost", "LeaseUnavailable", "Leases", "Holder", "ensure_bucket"]

BUCKET = "LW_LEASES"
log = structlog.get_logger("lease")


class LeaseLost(Exception):
    """The lease is no longer ours: another owner wrote the key, or we let it run out. Stop at once."""


class LeaseUnavailable(Exception):
    """The KV bucket did not answer (a timeout, no quorum): the lease is unchanged and still counts down."""


class KV(Protocol):
    """The part of nats-py's `KeyValue` a lease needs (a fake with the same errors serves the property test)."""

    async def get(self, key: str) -> Any: ...

    async def create(self, key: str, value: bytes) -> int: ...

    async def update(self, key: str, value: bytes, last: int | None = None) -> int: ...


@dataclass(frozen=True, slots=True)
class Lease:
    """A lease this process holds. ``valid_until`` is on this process's monotonic clock."""

    key: str
    owner: str
    epoch: int         # the revision of the acquiring write: the fencing token
    revision: int      # the revision of our last write (acquire or renewal): the next CAS expects it
    ttl_s: float
    margin_s: float
    renewed_at: float  # monotonic time our last successful write was *sent*
    valid_until: float

    def valid(self, now: float) -> bool:
        """Whether this holder may still act under the lease (strictly before ``valid_until``)."""
        return now < self.valid_until

    def renew_due(self, now: float) -> bool:
        """A renewal is due a third of the ttl after the last one, leaving two more attempts before expiry."""
        return now >= self.renewed_at + self.ttl_s / 3


@dataclass(frozen=True, slots=True)
class Holder:
    """What the key says now: who holds it (``None`` when free) under which epoch, at which revision."""

    owner: str | None
    epoch: int
    revision: int
    ttl_s: float


def _encode(owner: str | None, epoch: int | None, ttl_s: float) -> bytes:
    return orjson.dumps({"owner": owner, "epoch": epoch, "ttl_s": ttl_s})


def _decode(value: bytes | None, revision: int) -> Holder:
    """A key's value; an unreadable one counts as held by nobody we know, with the default ttl kept by caller."""
    try:
        body = orjson.loads(value or b"{}")
        owner = body.get("owner")
        epoch = body.get("epoch") or revision  # the acquiring write cannot hold its own revision
        return Holder(owner if isinstance(owner, str) else None, int(epoch), revision, float(body.get("ttl_s") or 0))
    except (orjson.JSONDecodeError, AttributeError, TypeError, ValueError):
        # Not ours to interpret: treat it as held, so a contender still waits a whole ttl before taking it.
        return Holder("<unreadable>", revision, revision, 0.0)


class Leases:
    """Acquire, renew and release leases in one KV bucket for one owner (a worker process incarnation).

    ``owner`` must be unique per process incarnation (a restarted worker is a new owner). ``clock`` is
    monotonic; tests inject a fake one.
    """

    def __init__(self, kv: KV, owner: str, ttl_s: float = 6.0, margin_s: float | None = None,
                 clock: Callable[[], float] = time.monotonic, timeout_s: float | None = None) -> None:
        if ttl_s <= 0:
            raise ValueError("ttl_s must be positive")
        self.kv = kv
        self.owner = owner
        self.ttl_s = ttl_s
        self.margin_s = ttl_s / 6 if margin_s is None else margin_s
        if not 0 < self.margin_s < ttl_s / 3:
            raise ValueError("margin_s must be positive and under ttl/3 (renewals happen every ttl/3)")
        self.clock = clock
        self.timeout_s = timeout_s if timeout_s is not None else ttl_s / 3
        self._seen: dict[str, tuple[int, float]] = {}  # key → (revision, when we first saw it): expiry by observation

    async def _call(self, coro: Any) -> Any:
        try:
            return await asyncio.wait_for(coro, self.timeout_s)
        except (KeyNotFoundError, KeyWrongLastSequenceError):
            raise
        except (NatsError, asyncio.TimeoutError, OSError) as err:
            raise LeaseUnavailable(f"{type(err).__name__}: {err}") from err

    async def holder(self, key: str) -> Holder | None:
        """What the key says now (``None``: never written). Also records the revision for expiry."""
        try:
            entry = await self._call(self.kv.get(key))
        except KeyNotFoundError:
            self._seen.pop(key, None)
            return None
        held = _decode(entry.value, entry.revision)
        seen = self._seen.get(key)
        if seen is None or seen[0] != entry.revision:
            self._seen[key] = (entry.revision, self.clock())
        return held

    def expired(self, key: str, held: Holder) -> bool:
        """Whether we have watched ``held``'s revision unchanged for a whole ttl (or it is free)."""
        if held.owner is None:
            return True
        seen = self._seen.get(key)
        ttl = max(held.ttl_s, self.ttl_s)  # the longer of theirs and ours: safe if configurations differ
        return seen is not None and seen[0] == held.revision and self.clock() - seen[1] >= ttl

    async def acquire(self, key: str) -> Lease | None:
        """Take ``key`` if it is free, never written, or held but unchanged for a whole ttl; else ``None``.

        Raises `LeaseUnavailable` when the bucket does not answer. A CAS conflict (someone else was
        faster) is ``None``, not an error.
        """
        held = await self.holder(key)
        if held is not None and not self.expired(key, held):
            return None
        sent_at = self.clock()
        value = _encode(self.owner, None, self.ttl_s)
        try:
            if held is None:
                revision = await self._call(self.kv.create(key, value))
            else:
                revision = await self._call(self.kv.update(key, value, last=held.revision))
        except (KeyWrongLastSequenceError, KeyNotFoundError):
            return None
        self._seen.pop(key, None)
        lease = Lease(key, self.owner, revision, revision, self.ttl_s, self.margin_s, sent_at,
                      sent_at + self.ttl_s - self.margin_s)
        if held is not None and held.owner is not None:
            log.info("lease_taken_over", key=key, owner=self.owner, epoch=revision, previous_owner=held.owner,
                     previous_epoch=held.epoch)
        else:
            log.info("lease_acquired", key=key, owner=self.owner, epoch=revision)
        return lease

    async def renew(self, lease: Lease) -> Lease:
        """Write the lease again (CAS on its last revision), keeping its epoch; returns the renewed lease.

        Raises `LeaseLost` when the lease already ran out here or the key was written by someone else,
        and `LeaseUnavailable` when the bucket did not answer (the old lease keeps counting down; try
        again until it runs out).
        """
        sent_at = self.clock()
        if not lease.valid(sent_at):
            raise LeaseLost(f"{lease.key}: not renewed in time (epoch {lease.epoch})")
        try:
            revision = await self._call(self.kv.update(lease.key, _encode(lease.owner, lease.epoch, lease.ttl_s),
                                                       last=lease.revision))
        except KeyWrongLastSequenceError:
            # Perhaps our own earlier renewal landed after its answer was lost: then the key still says us.
            adopted = await self._adopt(lease)
            if adopted is None:
                raise LeaseLost(f"{lease.key}: written by another owner (epoch {lease.epoch})") from None
            return adopted
        except KeyNotFoundError:
            raise LeaseLost(f"{lease.key}: deleted") from None
        return replace(lease, revision=revision, renewed_at=sent_at, valid_until=sent_at + lease.ttl_s - lease.margin_s)

    async def _adopt(self, lease: Lease) -> Lease | None:
        """The key says our owner and epoch at a newer revision (an answer lost in transit): keep counting
        from our last *confirmed* send, which is earlier than that write, so validity is never overstated."""
        try:
            entry = await self._call(self.kv.get(lease.key))
        except KeyNotFoundError:
            return None
        held = _decode(entry.value, entry.revision)
        if held.owner == lease.owner and held.epoch == lease.epoch and entry.revision > lease.revision:
            return replace(lease, revision=entry.revision)
        return None

    async def release(self, lease: Lease) -> bool:
        """Mark the key free (CAS) so a successor need not wait for the ttl; ``False`` if it was not ours any more.

        Call it only after this holder has stopped acting under the lease.
        """
        try:
            await self._call(self.kv.update(lease.key, _encode(None, None, lease.ttl_s), last=lease.revision))
        except (KeyWrongLastSequenceError, KeyNotFoundError):
            return False
        log.info("lease_released", key=lease.key, owner=lease.owner, epoch=lease.epoch)
        return True


async def ensure_bucket(js: Any, replicas: int = 1, bucket: str = BUCKET) -> Any:
    """The leases bucket (history 1, file storage), created if missing; returns its `KeyValue`."""
    from nats.js.api import KeyValueConfig, StorageType
    from nats.js.errors import BucketNotFoundError

    try:
        return await js.key_value(bucket)
    except BucketNotFoundError:
        return await js.create_key_value(KeyValueConfig(bucket=bucket, history=1, replicas=replicas,
                                                        storage=StorageType.FILE))

"""Provisioning of the JetStream side, idempotent: partition streams, their worker consumer, dead letters, leases.

- ``LW_P{p}`` for each partition: subjects ``lw.in.{p}.>``, file storage, limits retention with a
  maximum age (the replay horizon after an outage), a duplicate window (a gateway that resends
  with ``Nats-Msg-Id`` is stored once), ``replicas`` copies (3 in a 3-node cluster: one node may die).
- ``lw-worker`` on each: the durable pull consumer the partition's owner fetches from, explicit
  ack, an ack wait after which an unacknowledged message is redelivered, and a bound on the
  messages out unacknowledged (backpressure towards the stream, not memory in the worker).
- ``LW_DEADLETTER``: the contract's dead-letter topic (``liaowang/v1/deadletter`` = subject
  ``liaowang.v1.deadletter``) kept durably, so a worker acknowledges a bad message only after its
  dead letter is stored.
- KV bucket ``LW_LEASES`` (h-worker's partition leases and the ``bureau`` election).

Running it again changes nothing, or updates what differs (`Provisioned` says which).

>>> StreamSettings().max_age_s / 86400
7.0
"""

from __future__ import annotations

from dataclasses import dataclass, field

import structlog
from nats.js import JetStreamContext
from nats.js.api import (AckPolicy, ConsumerConfig, DeliverPolicy, DiscardPolicy, KeyValueConfig, RetentionPolicy,
                         StorageType, StreamConfig)
from nats.js.errors import BucketNotFoundError, NotFoundError

from foundation.partition import (DEADLETTER_STREAM, DEADLETTER_SUBJECT, LEASE_BUCKET, WORKER_CONSUMER, stream_name,
                                  stream_subjects)

__all__ = ["Provisioned", "StreamSettings", "ensure_streams", "stream_name", "consumer_config",
           "WORKER_CONSUMER", "LEASE_BUCKET", "DEADLETTER_STREAM"]

log = structlog.get_logger("cluster")


@dataclass(frozen=True)
class StreamSettings:
    """Limits of the partition streams and their consumer (seconds and counts)."""

    max_age_s: float = 7 * 86400.0
    """How long a reading stays in its stream: a worker down this long still finds what it missed."""
    duplicate_window_s: float = 120.0
    ack_wait_s: float = 30.0
    """An unacknowledged message is redelivered after this; the source marks long batches in progress."""
    max_ack_pending: int = 20_000
    deadletter_max_age_s: float = 30 * 86400.0
    lease_history: int = 1
    lease_ttl_s: float | None = None
    """Max age of a lease key (None: leases expire by their holder's own rules, h-worker's lease)."""


def consumer_config(settings: StreamSettings, start_seq: int | None = None) -> ConsumerConfig:
    """The ``lw-worker`` consumer: durable, pull, explicit ack; from the first message, or ``start_seq`` on."""
    by_seq = start_seq is not None
    return ConsumerConfig(
        durable_name=WORKER_CONSUMER, ack_policy=AckPolicy.EXPLICIT,
        deliver_policy=DeliverPolicy.BY_START_SEQUENCE if by_seq else DeliverPolicy.ALL,
        opt_start_seq=start_seq if by_seq else None,
        ack_wait=settings.ack_wait_s, max_ack_pending=settings.max_ack_pending, max_deliver=-1)


@dataclass
class Provisioned:
    """What `ensure_streams` did, by object name."""

    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)


def _stream_config(name: str, subjects: list[str], replicas: int, max_age_s: float,
                   duplicate_window_s: float) -> StreamConfig:
    return StreamConfig(name=name, subjects=subjects, storage=StorageType.FILE, retention=RetentionPolicy.LIMITS,
                        discard=DiscardPolicy.OLD, max_age=max_age_s, duplicate_window=duplicate_window_s,
                        num_replicas=replicas)


async def _ensure_stream(js: JetStreamContext, config: StreamConfig, done: Provisioned) -> None:
    try:
        info = await js.stream_info(config.name)
    except NotFoundError:
        await js.add_stream(config)
        done.created.append(config.name)
        log.info("stream_created", stream=config.name, subjects=config.subjects, replicas=config.num_replicas)
        return
    have = info.config
    same = (sorted(have.subjects or []) == sorted(config.subjects or []) and have.num_replicas == config.num_replicas
            and abs((have.max_age or 0) - (config.max_age or 0)) < 1e-3
            and abs((have.duplicate_window or 0) - (config.duplicate_window or 0)) < 1e-3)
    if same:
        done.unchanged.append(config.name)
        return
    await js.update_stream(config)
    done.updated.append(config.name)
    log.info("stream_updated", stream=config.name, subjects=config.subjects, replicas=config.num_replicas)


async def _ensure_consumer(js: JetStreamContext, stream: str, settings: StreamSettings, done: Provisioned) -> None:
    name = f"{stream}/{WORKER_CONSUMER}"
    try:
        info = await js.consumer_info(stream, WORKER_CONSUMER)
    except NotFoundError:
        await js.add_consumer(stream, consumer_config(settings))
        done.created.append(name)
        log.info("consumer_created", stream=stream, consumer=WORKER_CONSUMER)
        return
    have = info.config
    if (abs((have.ack_wait or 0) - settings.ack_wait_s) < 1e-3 and have.max_ack_pending == settings.max_ack_pending
            and have.ack_policy == AckPolicy.EXPLICIT):
        done.unchanged.append(name)
        return
    # ack wait and max ack pending are editable in place (2.9); the start position is kept as it is:
    # moving it is a takeover's business (JetStreamSource.start_at), not provisioning's.
    config = consumer_config(settings)
    config.deliver_policy, config.opt_start_seq = have.deliver_policy, have.opt_start_seq
    await js.add_consumer(stream, config)
    done.updated.append(name)
    log.info("consumer_updated", stream=stream, consumer=WORKER_CONSUMER)


async def ensure_streams(js: JetStreamContext, partitions: int, replicas: int,
                         settings: StreamSettings | None = None) -> Provisioned:
    """Create or update every partition stream with its ``lw-worker`` consumer, ``LW_DEADLETTER`` and ``LW_LEASES``.

    Idempotent: a second run reports everything ``unchanged``. Raises what nats-py raises when the
    cluster refuses (no JetStream, too few nodes for ``replicas``): provisioning is an operator's
    command, and a half-provisioned cluster must not look ready.
    """
    settings = settings or StreamSettings()
    done = Provisioned()
    for p in range(partitions):
        await _ensure_stream(js, _stream_config(stream_name(p), [stream_subjects(p)], replicas, settings.max_age_s,
                                                settings.duplicate_window_s), done)
        await _ensure_consumer(js, stream_name(p), settings, done)
    await _ensure_stream(js, _stream_config(DEADLETTER_STREAM, [DEADLETTER_SUBJECT], replicas,
                                            settings.deadletter_max_age_s, settings.duplicate_window_s), done)
    try:
        await js.key_value(LEASE_BUCKET)
        done.unchanged.append(LEASE_BUCKET)
    except BucketNotFoundError:
        await js.create_key_value(KeyValueConfig(bucket=LEASE_BUCKET, history=settings.lease_history,
                                                 ttl=settings.lease_ttl_s, storage=StorageType.FILE,
                                                 replicas=replicas))
        done.created.append(LEASE_BUCKET)
        log.info("kv_bucket_created", bucket=LEASE_BUCKET, replicas=replicas)
    return done

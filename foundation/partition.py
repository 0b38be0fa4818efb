"""Which partition a site belongs to: the same answer as nats-server's ``partition()`` subject mapping.

The server maps ``liaowang.v1.readings.{site}...`` to ``lw.in.{p}.readings.{site}...`` with
``{{partition(P,1)}}``: it hashes the selected tokens' bytes (here the one site token, as it appears
in the NATS subject) with FNV-1a 32 and takes the remainder by ``P`` (nats-server
``server/subject_transform.go``, ``getHashPartition``; ``accounts.go`` in 2.9). A worker uses this
function to know which sites it owns; tests/cluster/test_partition_server.py checks it against a
real server for many site ids.

>>> partition_of("LC-LUXI", 8) == partition_of("LC-LUXI", 8)   # deterministic, no per-process salt
True
>>> 0 <= partition_of("LC-LUXI", 8) < 8
True
"""

from __future__ import annotations

__all__ = ["fnv1a_32", "partition_of", "stream_name", "stream_subjects", "WORKER_CONSUMER", "LEASE_BUCKET",
           "DEADLETTER_STREAM", "DEADLETTER_SUBJECT"]

# The names of the shared design's JetStream objects, here so that ingest (the source), liaowang.cluster
# (provisioning) and the worker agree without importing each other.
WORKER_CONSUMER = "lw-worker"
"""The durable pull consumer of every partition stream; only the partition's lease holder fetches from it."""
LEASE_BUCKET = "LW_LEASES"
"""The KV bucket of partition leases (key ``partition.{p}``) and the bureau election (key ``bureau``)."""
DEADLETTER_STREAM = "LW_DEADLETTER"
"""Keeps the dead letters (subject `DEADLETTER_SUBJECT`)."""
DEADLETTER_SUBJECT = "liaowang.v1.deadletter"
"""The NATS spelling of the contract's MQTT dead-letter topic ``liaowang/v1/deadletter``."""


def stream_name(partition: int) -> str:
    """The stream of one partition.

    >>> stream_name(3)
    'LW_P3'
    """
    return f"LW_P{partition}"


def stream_subjects(partition: int) -> str:
    """The subjects a partition's stream captures (the server's mapping puts a site's messages there).

    >>> stream_subjects(3)
    'lw.in.3.>'
    """
    return f"lw.in.{partition}.>"

_FNV_OFFSET = 0x811C9DC5
_FNV_PRIME = 0x01000193


def fnv1a_32(data: bytes) -> int:
    """FNV-1a, 32 bits (Go's ``hash/fnv.New32a``).

    >>> hex(fnv1a_32(b""))
    '0x811c9dc5'
    >>> hex(fnv1a_32(b"a"))
    '0xe40c292c'
    """
    h = _FNV_OFFSET
    for byte in data:
        h = ((h ^ byte) * _FNV_PRIME) & 0xFFFFFFFF
    return h


def partition_of(site_id: str, partitions: int) -> int:
    """The partition (0 ≤ p < ``partitions``) of a site, as the server's mapping computes it.

    ``site_id`` is the site as it appears in the MQTT topic (``liaowang/v1/readings/{site_id}``); its
    UTF-8 bytes are hashed as they are. (nats-server 2.9.10's MQTT listener refuses a topic holding '.'
    or ' ' and drops the client, so no site id that reaches a stream over MQTT holds either.)

    >>> partition_of("LC-LUXI", 8)   # checked against nats-server 2.9.10
    7
    """
    if partitions < 1:
        raise ValueError(f"partitions must be at least 1, got {partitions}")
    return fnv1a_32(site_id.encode("utf-8")) % partitions

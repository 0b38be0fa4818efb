"""`partition_of` gives the partition nats-server's ``partition()`` mapping gives, for many site ids."""

from __future__ import annotations

import asyncio
import random
import string

import orjson

from foundation.partition import fnv1a_32, partition_of

from .natscluster import NatsCluster

ODD_SITES = ["LC-LUXI", "LC-DONGE", "a", "Z", "0", "x_y", "S-" * 40, "中文站点", "ñandú", "emoji😀", "tab\u00a0nbsp",
             "UPPER-lower-123", "--", "_", "~!@$%^&()=+[]{}|;:',<\\"]


def _site_ids(count: int) -> list[str]:
    rng = random.Random(15)
    alphabet = string.ascii_letters + string.digits + "-_"
    made = {"".join(rng.choice(alphabet) for _ in range(rng.randint(1, 24))) for _ in range(count)}
    return ODD_SITES + sorted(made)


def test_fnv1a_matches_the_published_vectors() -> None:
    """FNV-1a 32 test vectors (Go's hash/fnv, which the server uses)."""
    assert fnv1a_32(b"") == 0x811C9DC5
    assert fnv1a_32(b"a") == 0xE40C292C
    assert fnv1a_32(b"foobar") == 0xBF9CF968


def test_partition_of_equals_the_servers_mapping(nats_cluster: NatsCluster) -> None:
    """Every site id, published to its readings subject (one reading and a batch) and its status subject, lands
    on the subject of the partition `partition_of` computes."""
    sites = _site_ids(400)
    p_count = nats_cluster.partitions

    async def probe(nc, js):
        seen: list[str] = []
        done = asyncio.Event()
        want = 3 * len(sites)

        async def on_msg(msg) -> None:
            seen.append(msg.subject)
            if len(seen) >= want:
                done.set()

        await nc.subscribe("lw.in.>", cb=on_msg)
        await nc.flush()
        for site in sites:
            await nc.publish(f"liaowang.v1.readings.{site}.{site}-S1", b"{}")
            await nc.publish(f"liaowang.v1.readings.{site}", b"{}")
            await nc.publish(f"liaowang.v1.status.{site}", orjson.dumps({"state": "online"}))
        await nc.flush()
        await asyncio.wait_for(done.wait(), 20)
        return seen

    seen = nats_cluster.run(probe)
    landed: dict[str, set[int]] = {}
    for subject in seen:
        tokens = subject.split(".")
        landed.setdefault(tokens[4], set()).add(int(tokens[2]))
    assert set(landed) == set(sites)
    wrong = {site: (parts, partition_of(site, p_count)) for site, parts in landed.items()
             if parts != {partition_of(site, p_count)}}
    assert wrong == {}
    assert len({partition_of(s, p_count) for s in sites}) == p_count  # the ids spread over every partition

"""Properties of the partition function and of the subject ↔ topic mapping the JetStream source reads."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from foundation.partition import partition_of
from ingest.jetstream import subject_topic
from liaowang.cluster.natsconf import mappings

# A site or sensor id as an MQTT topic level the NATS MQTT listener accepts: no '/', '.', ' ', wildcards, NUL.
level = st.text(st.characters(blacklist_characters="/. +#*>\x00", blacklist_categories=("Cs", "Zs", "Cc")),
                min_size=1, max_size=30)


def _server_map(subject: str, partitions: int) -> str:
    """A reference model of the account mapping: what nats-server does to a readings/status subject."""
    tokens = subject.split(".")
    for source, dest in mappings(partitions).items():
        pattern = source.split(".")
        if len(pattern) == len(tokens) and all(p in ("*", t) for p, t in zip(pattern, tokens)):
            wild = [t for p, t in zip(pattern, tokens) if p == "*"]
            out = dest.replace(f"{{{{partition({partitions},1)}}}}", str(partition_of(wild[0], partitions)))
            for i, value in enumerate(wild, start=1):
                out = out.replace(f"{{{{wildcard({i})}}}}", value)
            return out
    return subject


@settings(max_examples=300)
@given(site=level, sensor=st.none() | level, partitions=st.integers(1, 64))
def test_a_mapped_readings_subject_reads_back_as_its_topic(site: str, sensor: str | None, partitions: int) -> None:
    topic = f"liaowang/v1/readings/{site}" + (f"/{sensor}" if sensor else "")
    mapped = _server_map(topic.replace("/", "."), partitions)
    p = partition_of(site, partitions)
    assert 0 <= p < partitions
    assert subject_topic(mapped, p) == ("readings", topic)
    assert all(subject_topic(mapped, q) is None for q in range(partitions) if q != p)


@given(site=level, partitions=st.integers(1, 64))
def test_a_mapped_status_subject_reads_back_as_its_topic(site: str, partitions: int) -> None:
    mapped = _server_map(f"liaowang.v1.status.{site}", partitions)
    assert subject_topic(mapped, partition_of(site, partitions)) == ("status", f"liaowang/v1/status/{site}")

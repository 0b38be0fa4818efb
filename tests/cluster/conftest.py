"""Fixtures of the scaled-out tests: a real 3-node NATS cluster (tests/cluster/natscluster.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterator

import pytest

from .natscluster import NatsCluster


@pytest.fixture(scope="module")
def nats_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsCluster]:
    """A provisioned 3-node cluster with 4 partitions, shared by a module's tests (they must not kill nodes)."""
    cluster = NatsCluster(tmp_path_factory.mktemp("nats"), nodes=3, partitions=4)
    try:
        cluster.start()
        cluster.provision()
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def fresh_nats_cluster(tmp_path: Path) -> Iterator[Callable[..., NatsCluster]]:
    """A factory of clusters of one test's own (they may be killed and restarted); all stopped at the end."""
    made: list[NatsCluster] = []

    def make(nodes: int = 3, partitions: int = 4) -> NatsCluster:
        cluster = NatsCluster(tmp_path / f"c{len(made)}", nodes=nodes, partitions=partitions)
        made.append(cluster)
        cluster.start()
        cluster.provision()
        return cluster

    try:
        yield make
    finally:
        for cluster in made:
            cluster.stop()

"""The nats-server configuration `liaowang nats-config` writes: nodes, routes, users, mappings, file modes."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from liaowang.cli import main
from liaowang.cluster.natsconf import ClusterPlan, Credentials, mappings, render_node, write_cluster


def test_mappings_cover_one_reading_a_batch_and_status() -> None:
    assert mappings(16) == {
        "liaowang.v1.readings.*.*": "lw.in.{{partition(16,1)}}.readings.{{wildcard(1)}}.{{wildcard(2)}}",
        "liaowang.v1.readings.*": "lw.in.{{partition(16,1)}}.readings.{{wildcard(1)}}",
        "liaowang.v1.status.*": "lw.in.{{partition(16,1)}}.status.{{wildcard(1)}}",
    }


def test_a_node_routes_to_the_others_and_names_itself() -> None:
    plan = ClusterPlan.loopback(3, 8, Credentials.generate())
    text = render_node(plan, plan.nodes[1], Path("/srv/js"))
    assert 'server_name: "lw-n2"' in text and '"127.0.0.1:4223"' in text
    assert text.count("nats-route://") == 2 and "127.0.0.1:6223" not in text.split("routes:")[1]
    assert "mqtt {" in text and "stream_replicas: 3" in text and 'store_dir: "/srv/js"' in text
    assert plan.credentials.gateway in text  # every user logs in: no anonymous access
    assert "no_auth_user" not in text


def test_nodes_on_distinct_hosts_keep_the_standard_ports() -> None:
    plan = ClusterPlan.on_hosts(["10.0.0.1", "10.0.0.2", "10.0.0.3"], 4, Credentials.generate())
    assert {(n.client_port, n.mqtt_port) for n in plan.nodes} == {(4222, 1883)}


def test_the_cli_writes_private_files_and_keeps_the_passwords(tmp_path: Path) -> None:
    out = tmp_path / "nats"
    assert main(["nats-config", "--nodes", "3", "--partitions", "8", "--out", str(out)]) == 0
    creds = json.loads((out / "credentials.json").read_text())
    assert creds["partitions"] == 8 and len(creds["servers"]) == 3
    for name in ("lw-n1.conf", "lw-n2.conf", "lw-n3.conf", "credentials.json"):
        assert stat.S_IMODE((out / name).stat().st_mode) == 0o600
    assert main(["nats-config", "--nodes", "3", "--partitions", "8", "--out", str(out)]) == 0
    assert json.loads((out / "credentials.json").read_text())["passwords"] == creds["passwords"]


def test_the_cli_refuses_a_changed_partition_count(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """P is fixed for a deployment's life: rewriting the configuration with another P would move sites."""
    out = tmp_path / "nats"
    assert main(["nats-config", "--nodes", "3", "--partitions", "8", "--out", str(out)]) == 0
    assert main(["nats-config", "--nodes", "3", "--partitions", "9", "--out", str(out)]) == 2
    assert "partitions" in capsys.readouterr().err

"""The transport on a real 3-node cluster: provisioning is idempotent, and MQTT QoS 1 publishes land in
the partition stream of their site (one reading, a batch, and gateway status alike)."""

from __future__ import annotations

import time
from collections import Counter

import orjson
import paho.mqtt.client as mqtt

from foundation.mqttclient import BoundedPublisher
from foundation.partition import partition_of, stream_name

from .natscluster import NatsCluster


def gateway_client(cluster: NatsCluster, node: int, client_id: str, password: str | None = None) -> mqtt.Client:
    """A paho client logged in as the ``gateway`` user on node ``node``'s MQTT listener, connected."""
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=True)
    client.username_pw_set("gateway", password or cluster.mqtt_password())
    client.connect(cluster.nodes[node].host, cluster.nodes[node].mqtt_port)
    client.loop_start()
    return client


def test_provisioning_twice_changes_nothing(nats_cluster: NatsCluster) -> None:
    again = nats_cluster.provision()
    assert again.created == [] and again.updated == []
    assert set(again.unchanged) >= {stream_name(p) for p in range(nats_cluster.partitions)} | {"LW_LEASES"}


def test_mqtt_qos1_publishes_land_in_their_sites_partition(nats_cluster: NatsCluster, fleet) -> None:
    """Every site of the demo fleet: 5 single readings, one batch and a status message, over node 2's MQTT listener."""
    before = {p: len(nats_cluster.stream_subjects(stream_name(p))) for p in range(nats_cluster.partitions)}
    sites = sorted({s.site_id for s in fleet.sensors.values()})
    client = gateway_client(nats_cluster, 1, "landing-gw")
    out = BoundedPublisher(client, max_outstanding=200)
    sent: Counter[int] = Counter()
    for site in sites:
        sensors = [sid for sid, s in fleet.sensors.items() if s.site_id == site][:5]
        for sensor in sensors:
            out.publish(f"liaowang/v1/readings/{site}/{sensor}", orjson.dumps({"sensor_id": sensor, "ts": 1.8e9,
                                                                                "value": 1.0}), qos=1)
        out.publish(f"liaowang/v1/readings/{site}", orjson.dumps({"site_id": site, "readings": []}), qos=1)
        out.publish(f"liaowang/v1/status/{site}", b'{"state": "online"}', qos=1)
        sent[partition_of(site, nats_cluster.partitions)] += len(sensors) + 2
    assert out.flush(timeout=30)
    client.disconnect()
    client.loop_stop()
    deadline = time.monotonic() + 15
    while True:
        landed = {p: nats_cluster.stream_subjects(stream_name(p))[before[p]:] for p in range(nats_cluster.partitions)}
        if sum(map(len, landed.values())) >= sum(sent.values()) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert {p: len(subjects) for p, subjects in landed.items() if subjects} == dict(sent)
    for p, subjects in landed.items():
        assert all(partition_of(subject.split(".")[4], nats_cluster.partitions) == p for subject in subjects)
        assert all(subject.startswith(f"lw.in.{p}.") for subject in subjects)


def test_a_gateway_cannot_log_in_without_the_password(nats_cluster: NatsCluster) -> None:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="intruder")
    client.username_pw_set("gateway", "wrong")
    refused = []
    client.on_connect = lambda c, u, f, reason, p: refused.append(reason.is_failure)
    client.connect(nats_cluster.nodes[0].host, nats_cluster.nodes[0].mqtt_port)
    client.loop_start()
    deadline = time.monotonic() + 10
    while not refused and time.monotonic() < deadline:
        time.sleep(0.05)
    client.loop_stop()
    assert refused == [True]


def test_nats_setup_cli_provisions_from_the_credentials_file(nats_cluster: NatsCluster,
                                                             capsys) -> None:
    """`liaowang nats-setup --credentials FILE` logs in as admin and finds everything in place."""
    import json

    from liaowang.cli import main
    assert main(["nats-setup", "--credentials", str(nats_cluster.root / "nats" / "credentials.json")]) == 0
    done = json.loads(capsys.readouterr().out)
    assert done["created"] == [] and done["updated"] == [] and "LW_LEASES" in done["unchanged"]


def test_nats_setup_cli_says_why_it_failed(capsys) -> None:
    from liaowang.cli import main
    import os
    os.environ["LIAOWANG_NATS_URL"] = "nats://127.0.0.1:1"  # nobody listens there
    try:
        assert main(["nats-setup", "--partitions", "2"]) == 1
    finally:
        del os.environ["LIAOWANG_NATS_URL"]
    assert "nats-setup failed" in capsys.readouterr().err

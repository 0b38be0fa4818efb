"""mosquitto → bridge → JetStream: a gateway's QoS 1 reading is acknowledged only once stored, so kill -9 of a
NATS node mid-stream loses none; the sources see each exactly once after dedup; a topic NATS cannot carry is
dead-lettered, not lost."""

from __future__ import annotations

import threading
import time
from collections import Counter

import orjson
import pytest

from foundation.config import Config, MqttSettings
from foundation.mqttclient import BoundedPublisher
from liaowang.cluster.bridge import MqttJetStreamBridge

from ..conftest import BrokerUnderTest, mqtt_client
from .natscluster import NatsCluster
from .sourcekit import Downstream, MemorySink, dead_letters, make_source, wait_for
from .test_node_kill import TOTAL, _feed


def _bridge(broker: BrokerUnderTest, cluster: NatsCluster) -> MqttJetStreamBridge:
    settings = MqttSettings(host=broker.host, port=broker.port, username=broker.credentials.username,
                            password=broker.credentials.password)
    bridge = MqttJetStreamBridge(settings, cluster.endpoint("bridge"), client_id=f"bridge-{broker.port}")
    bridge.start()
    assert bridge.wait_connected(20)
    return bridge


def test_a_topic_nats_cannot_carry_is_dead_lettered(broker: BrokerUnderTest, fresh_nats_cluster) -> None:
    cluster = fresh_nats_cluster(nodes=3, partitions=4)
    bridge = _bridge(broker, cluster)
    try:
        client = mqtt_client(broker.port, "dotted-gw")
        client.connect(broker.host, broker.port)
        client.loop_start()
        client.publish("liaowang/v1/readings/a.b/c", b"{}", qos=1).wait_for_publish(10)
        client.publish("liaowang/v1/readings/LC-LUXI/LC-LUXI-T101-LT", b'{"ts": 1, "value": 1}', qos=1)\
            .wait_for_publish(10)
        client.disconnect()
        client.loop_stop()
        wait_for(lambda: bridge.dead_lettered == 1 and bridge.forwarded == 1, what="both handled")
        assert [(d["reason"], d["topic"]) for d in dead_letters(cluster)] == [("bad_topic", "liaowang/v1/readings/a.b/c")]
        assert len(cluster.stream_subjects("LW_P3")) == 1
    finally:
        bridge.stop()


@pytest.mark.slow
def test_kill9_of_a_nats_node_behind_the_bridge_loses_no_reading(broker: BrokerUnderTest, fresh_nats_cluster,
                                                                demo_config: Config) -> None:
    cluster = fresh_nats_cluster(nodes=3, partitions=4)
    feed = _feed(demo_config.fleet)
    downs = [Downstream() for _ in range(cluster.partitions)]
    sources = [make_source(cluster, demo_config, p, MemorySink(), downs[p]) for p in range(cluster.partitions)]
    for source in sources:
        source.start()
    bridge = _bridge(broker, cluster)
    leaders = Counter(cluster.stream_leaders().values())
    victim = max(range(3), key=lambda i: leaders[cluster.nodes[i].name])
    halfway, done, failures = threading.Event(), threading.Event(), []

    def publish() -> None:
        try:
            client = mqtt_client(broker.port, "bridge-kill-gw", clean_session=False)
            client.connect(broker.host, broker.port)
            client.loop_start()
            out = BoundedPublisher(client, max_outstanding=200)
            for i, (site, sensor, ts) in enumerate(feed):
                out.publish(f"liaowang/v1/readings/{site}/{sensor}",
                            orjson.dumps({"sensor_id": sensor, "ts": ts, "value": 1.0}), qos=1)
                if i == len(feed) // 3:
                    halfway.set()
            if not out.flush(timeout=120):
                failures.append("not every publish acknowledged by mosquitto")
            client.disconnect()
            client.loop_stop()
        except Exception as err:
            failures.append(f"{type(err).__name__}: {err}")
        finally:
            done.set()

    threading.Thread(target=publish, daemon=True).start()
    try:
        assert halfway.wait(60)
        cluster.kill(victim)  # the node leading most partition streams, mid-stream
        time.sleep(2)
        cluster.restart(victim)
        assert done.wait(180) and failures == []
        wait_for(lambda: bridge.forwarded >= TOTAL, timeout=120, what="the bridge stored every reading")
        wait_for(lambda: sum(len(set(d.seen)) for d in downs) >= TOTAL, timeout=120, what="every reading handed down")
        seen = Counter(pair for d in downs for pair in d.seen)
        assert set(seen) == {(sensor, ts) for _, sensor, ts in feed}
        print(f"bridge: readings {TOTAL}, handed down {sum(seen.values())}, duplicates "
              f"{sum(seen.values()) - len(seen)}, killed {cluster.nodes[victim].name}")
        wait_for(lambda: not bridge.problems(), timeout=30, what="the bridge healthy again")
    finally:
        bridge.stop()
        for source in sources:
            source.stop()

"""kill -9 of one NATS node mid-stream (R3 streams): no acknowledged publish is lost, and the JetStream
sources see every reading exactly once after dedup by (sensor, ts).

Two ways in. JetStream publish with acks (what a bridge from mosquitto does: the gateway's QoS 1
message is acknowledged only after the partition stream's PubAck, retried with the same
``Nats-Msg-Id``): nothing is lost. nats-server 2.9.10's own MQTT listener: measured here, it
PUBACKs QoS 1 messages the R3 stream then never stores while its leader fails over (e.g. 768 of
2,000 and 238 of 400 lost on two partitions in one run) — an expected failure, kept to show it.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter

import orjson
import paho.mqtt.client as mqtt
import pytest

from foundation.config import Config
from foundation.mqttclient import BoundedPublisher

from .natscluster import NatsCluster
from .sourcekit import Downstream, MemorySink, make_source, wait_for

TOTAL = 6000


def _feed(fleet) -> list[tuple[str, str, float]]:
    """(site, sensor, ts) for TOTAL readings over two sensors of every site, one second apart, all in the past."""
    sensors = []
    for site in sorted({s.site_id for s in fleet.sensors.values()}):
        sensors += [(site, sid) for sid, s in fleet.sensors.items() if s.site_id == site][:2]
    t0 = time.time() - TOTAL - 3600
    return [(*sensors[i % len(sensors)], t0 + i) for i in range(TOTAL)]


def _publish(cluster: NatsCluster, node: int, feed, halfway: threading.Event, done: threading.Event,
             failures: list[str]) -> None:
    try:
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="kill-test-gw", clean_session=False)
        client.username_pw_set("gateway", cluster.mqtt_password())
        client.reconnect_delay_set(0.2, 2)
        client.connect(cluster.nodes[node].host, cluster.nodes[node].mqtt_port)
        client.loop_start()
        out = BoundedPublisher(client, max_outstanding=200)
        for i, (site, sensor, ts) in enumerate(feed):
            out.publish(f"liaowang/v1/readings/{site}/{sensor}",
                        orjson.dumps({"sensor_id": sensor, "ts": ts, "value": 1.0}), qos=1)
            if i == len(feed) // 3:
                halfway.set()
        if not out.flush(timeout=120):
            failures.append("not every publish was acknowledged")
        client.disconnect()
        client.loop_stop()
    except Exception as err:  # reported by the test, not lost in a thread
        failures.append(f"{type(err).__name__}: {err}")
    finally:
        done.set()


def _publish_jetstream(cluster: NatsCluster, node: int, feed, halfway: threading.Event, done: threading.Event,
                       failures: list[str]) -> None:
    """As the ``bridge`` user: JetStream publish, each message retried with its Nats-Msg-Id until the stream acks."""
    async def main() -> None:
        import nats
        nc = await nats.connect([cluster.nodes[node].url], user="bridge", password=cluster.plan.credentials.bridge,
                                max_reconnect_attempts=-1, reconnect_time_wait=0.2)
        js = nc.jetstream(timeout=2)
        window = 100
        pending: list[tuple[int, asyncio.Future]] = []

        async def settle(i: int, future) -> None:
            site, sensor, ts = feed[i]
            while True:
                try:
                    await future
                    return
                except Exception:  # no stream leader yet, a timeout: the same message again, deduplicated by id
                    await asyncio.sleep(0.2)
                    future = asyncio.ensure_future(js.publish(
                        f"liaowang.v1.readings.{site}.{sensor}", orjson.dumps({"sensor_id": sensor, "ts": ts,
                                                                                 "value": 1.0}),
                        headers={"Nats-Msg-Id": f"kill-{i}"}))

        for i, (site, sensor, ts) in enumerate(feed):
            pending.append((i, asyncio.ensure_future(js.publish(
                f"liaowang.v1.readings.{site}.{sensor}", orjson.dumps({"sensor_id": sensor, "ts": ts, "value": 1.0}),
                headers={"Nats-Msg-Id": f"kill-{i}"}))))
            if len(pending) >= window:
                await asyncio.gather(*(settle(j, f) for j, f in pending))
                pending = []
            if i == len(feed) // 3:
                halfway.set()
        await asyncio.gather(*(settle(j, f) for j, f in pending))
        await nc.close()

    try:
        asyncio.run(main())
    except Exception as err:
        failures.append(f"{type(err).__name__}: {err}")
    finally:
        done.set()


@pytest.mark.slow
@pytest.mark.parametrize("ingress", [
    "jetstream",
    pytest.param("mqtt-listener", marks=pytest.mark.xfail(
        reason="nats-server 2.9.10's MQTT listener PUBACKs QoS 1 messages the R3 stream loses in a leader failover",
        strict=False)),
])
def test_kill9_of_a_nats_node_mid_stream_loses_no_acknowledged_reading(fresh_nats_cluster, demo_config: Config,
                                                                      ingress: str) -> None:
    cluster = fresh_nats_cluster(nodes=3, partitions=4)
    feed = _feed(demo_config.fleet)
    sources, downs = [], []
    for p in range(cluster.partitions):
        down = Downstream()
        source = make_source(cluster, demo_config, p, MemorySink(), down, fetch_batch=500)
        source.start()
        sources.append(source)
        downs.append(down)
    leaders = Counter(cluster.stream_leaders().values())
    publisher_node = 0
    victim = max((i for i in range(3) if i != publisher_node), key=lambda i: leaders[cluster.nodes[i].name])
    halfway, done, failures = threading.Event(), threading.Event(), []
    publish = _publish if ingress == "mqtt-listener" else _publish_jetstream
    threading.Thread(target=publish, args=(cluster, publisher_node, feed, halfway, done, failures),
                     daemon=True).start()
    try:
        assert halfway.wait(60)
        cluster.kill(victim)  # mid-stream: a third of the feed is out, the rest still to come
        time.sleep(2)
        cluster.restart(victim)
        assert done.wait(180) and failures == []
        try:
            wait_for(lambda: sum(len(d.seen) for d in downs) >= TOTAL, timeout=30 if ingress == "mqtt-listener" else 60,
                     what="every reading handed down")
        except AssertionError:
            from foundation.partition import partition_of
            expected = Counter(partition_of(site, cluster.partitions) for site, _, _ in feed)
            stored = {p: len(cluster.stream_subjects(f"LW_P{p}")) for p in range(cluster.partitions)}
            got = {p: len(set(d.seen)) for p, d in enumerate(downs)}
            raise AssertionError(f"expected {dict(expected)}, in streams {stored}, handed down {got}, "
                                 f"acked {[s.acked_through for s in sources]}, "
                                 f"problems {[s.problems() for s in sources]}") from None
        time.sleep(1)  # any straggling duplicate would show now
        seen = Counter(pair for d in downs for pair in d.seen)
        want = {(sensor, ts) for _, sensor, ts in feed}
        assert set(seen) == want  # nothing lost, nothing extra
        duplicates = sum(seen.values()) - len(seen)
        print(f"readings {TOTAL}, handed down {sum(seen.values())}, duplicates {duplicates}, killed "
              f"{cluster.nodes[victim].name}")
        wait_for(lambda: all(not s.problems() for s in sources), timeout=30, what="every source healthy again")
    finally:
        for source in sources:
            source.stop()

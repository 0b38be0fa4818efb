"""MQTT → NATS JetStream (3 nodes, R3) → JetStreamSource throughput on this machine (issue 15).

Run:  .venv/bin/python bench/nats_ingest.py [--messages 20000] [--partitions 4] [--publishers 2] [--batch 1]
                                            [--ingress mqtt-listener|bridge|jetstream] [--drain]
                                            [--source-processes]

Method. A real 3-node nats-server cluster on loopback (tests/cluster/natscluster.py: the test
fixture, so the bench runs exactly what the tests run) with P partition streams of 3 replicas.
One JetStreamSource per partition (decode, a memory sink, a downstream that only counts, acks)
runs in this process, or with ``--source-processes`` each in a process of its own (the worker
design: a GIL per partition). Then ``--publishers`` processes publish the feed over MQTT QoS 1 to
the nodes' MQTT listeners (paho with flow control, round-robin over nodes), while the sources
consume. Reported: publish rate (every PUBACK received), and the end-to-end rate: readings handed
down by the sources / time from the first publish to the last reading handed down.

``--ingress bridge``: the publishers publish to mosquitto instead, and `liaowang nats-bridge`'s
class moves the messages into JetStream (acked to the gateway once stored). ``--ingress
jetstream``: the publishers are nats-py JetStream publishers (windows of 500 awaited PubAcks).
``--drain``: the sources start only after everything is stored, so the figure is the sources'
own rate (fetch, decode, memory sink, ack).
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import tempfile
import time
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from foundation.config import load_config  # noqa: E402
from foundation.mqttclient import BoundedPublisher  # noqa: E402
from tests.cluster.natscluster import NatsCluster  # noqa: E402
from tests.cluster.sourcekit import Downstream, MemorySink, make_source  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def feed(count: int, batch: int) -> list[tuple[str, bytes]]:
    """``count`` readings over the demo fleet, one a message (``batch`` 1) or ``batch`` per site message."""
    fleet = load_config(ROOT / "config").fleet
    sensors = list(fleet.sensors.values())
    base = time.time() - count - 3600
    if batch == 1:
        return [(f"liaowang/v1/readings/{s.site_id}/{s.id}",
                 orjson.dumps({"sensor_id": s.id, "ts": base + i, "value": 1.0}))
                for i, s in ((i, sensors[i % len(sensors)]) for i in range(count))]
    by_site: dict[str, list] = {}
    for s in sensors:
        by_site.setdefault(s.site_id, []).append(s)
    out, i = [], 0
    sites = sorted(by_site)
    while i < count:
        site = sites[(i // batch) % len(sites)]
        members = by_site[site]
        rows = [{"sensor_id": members[k % len(members)].id, "ts": base + i + k, "value": 1.0}
                for k in range(min(batch, count - i))]
        out.append((f"liaowang/v1/readings/{site}", orjson.dumps({"site_id": site, "readings": rows})))
        i += len(rows)
    return out


def _publisher(port: int, password: str, messages: list[tuple[str, bytes]], index: int, go, done,
               user: str = "gateway") -> None:
    import paho.mqtt.client as mqtt
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"bench-gw-{index}", clean_session=True)
    client.username_pw_set(user, password)
    client.connect("127.0.0.1", port)
    client.loop_start()
    out = BoundedPublisher(client, max_outstanding=1000)
    go.wait()
    for topic, payload in messages:
        out.publish(topic, payload, qos=1)
    ok = out.flush(timeout=600)
    client.disconnect()
    client.loop_stop()
    done.put((index, ok, time.time()))


def _js_publisher(servers: tuple[str, ...], password: str, messages: list[tuple[str, bytes]], index: int, go,
                  done) -> None:
    import asyncio

    import nats

    async def main() -> bool:
        nc = await nats.connect(list(servers), user="bridge", password=password)
        js = nc.jetstream(timeout=10)
        go.wait()
        for start in range(0, len(messages), 500):
            await asyncio.gather(*(js.publish(t.replace("/", "."), p) for t, p in messages[start:start + 500]))
        await nc.close()
        return True

    ok = asyncio.run(main())
    done.put((index, ok, time.time()))


def _source_process(cluster_state: dict, partition: int, readings, stop) -> None:
    cluster = NatsCluster.__new__(NatsCluster)
    cluster.__dict__.update(cluster_state)
    config = load_config(ROOT / "config")
    down = Downstream()
    source = make_source(cluster, config, partition, MemorySink(), down)
    source.start()
    while not stop.is_set():
        readings[partition] = len(down.seen)
        time.sleep(0.05)
    readings[partition] = len(down.seen)
    source.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=20_000, help="readings in the feed")
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--publishers", type=int, default=2)
    parser.add_argument("--batch", type=int, default=1, help="readings per MQTT message")
    parser.add_argument("--source-processes", action="store_true", help="one process per partition's source")
    parser.add_argument("--ingress", choices=("mqtt-listener", "bridge", "jetstream"), default="mqtt-listener")
    parser.add_argument("--drain", action="store_true", help="start the sources once everything is stored")
    args = parser.parse_args()
    messages = feed(args.messages, args.batch)
    config = load_config(ROOT / "config")
    with tempfile.TemporaryDirectory() as tmp:
        cluster = NatsCluster(Path(tmp), nodes=3, partitions=args.partitions).start()
        try:
            cluster.provision()
            ctx = multiprocessing.get_context("fork")
            stop = ctx.Event()
            counts = ctx.Manager().dict() if args.source_processes else None
            sources, downs, procs = [], [], []

            def start_sources() -> None:
                for p in range(args.partitions):
                    if args.source_processes:
                        state = {k: v for k, v in cluster.__dict__.items() if k != "procs"}
                        proc = ctx.Process(target=_source_process, args=(state, p, counts, stop))
                        proc.start()
                        procs.append(proc)
                    else:
                        down = Downstream()
                        source = make_source(cluster, config, p, MemorySink(), down)
                        source.start()
                        assert source.wait_connected(30)
                        sources.append(source)
                        downs.append(down)

            def handed_down() -> int:
                return sum(counts.values()) if counts is not None else sum(len(d.seen) for d in downs)

            if not args.drain:
                start_sources()
                time.sleep(2 if args.source_processes else 0.2)
            bridge = broker = None
            if args.ingress == "bridge":
                from bench.common import login, start_broker
                from foundation.config import MqttSettings
                from liaowang.cluster.bridge import MqttJetStreamBridge
                broker, mqtt_port = start_broker()
                bridge = MqttJetStreamBridge(MqttSettings(host="127.0.0.1", port=mqtt_port, **login()),
                                             cluster.endpoint("bridge"))
                bridge.start()
                assert bridge.wait_connected(30)
            go, done = ctx.Event(), ctx.Queue()
            slices = [messages[i::args.publishers] for i in range(args.publishers)]
            if args.ingress == "jetstream":
                pubs = [ctx.Process(target=_js_publisher, args=(cluster.servers, cluster.plan.credentials.bridge,
                                                                slices[i], i, go, done)) for i in range(args.publishers)]
            elif args.ingress == "bridge":
                import os
                mqtt_pw = os.environ["LIAOWANG_MQTT__PASSWORD"]
                pubs = [ctx.Process(target=_publisher, args=(mqtt_port, mqtt_pw, slices[i], i, go, done,
                                                             os.environ["LIAOWANG_MQTT__USERNAME"]))
                        for i in range(args.publishers)]
            else:
                pubs = [ctx.Process(target=_publisher, args=(cluster.nodes[i % 3].mqtt_port, cluster.mqtt_password(),
                                                             slices[i], i, go, done)) for i in range(args.publishers)]
            for proc in pubs:
                proc.start()
            time.sleep(1.0)  # every publisher connected
            t0 = t_pub = time.time()
            go.set()
            finished = [done.get(timeout=600) for _ in pubs]
            published_at = max(t for _, _, t in finished)
            if bridge is not None:
                while bridge.forwarded < len(messages) and time.time() < t0 + 600:
                    time.sleep(0.01)
                published_at = time.time()  # stored in JetStream, not only acked by mosquitto
                bridge.stop()
                broker.stop()
            if args.drain:
                t0 = time.time()
                start_sources()
            deadline = time.time() + 300
            while handed_down() < args.messages and time.time() < deadline:
                time.sleep(0.01)
            t_end = time.time()
            got = handed_down()
            for proc in pubs:
                proc.join()
            stop.set()
            for source in sources:
                source.stop()
            for proc in procs:
                proc.join(timeout=30)
        finally:
            cluster.stop()
    mode = "one process per partition" if args.source_processes else "sources in one process"
    print(f"feed: {args.messages} readings in {len(messages)} messages (batch {args.batch}), ingress {args.ingress}, "
          f"{args.publishers} publishers, {args.partitions} partitions R3 on 3 nodes, {mode}")
    print(f"all acknowledged: {all(ok for _, ok, _ in finished)}; publish: "
          f"{len(messages) / (published_at - t_pub):,.0f} msg/s ({args.messages / (published_at - t_pub):,.0f} readings/s)")
    what = "drain of the stored feed by the sources" if args.drain else "end to end (publish → NATS → source)"
    print(f"{what}, handed down {got}: {got / (t_end - t0):,.0f} readings/s, "
          f"{len(messages) * got / args.messages / (t_end - t0):,.0f} msg/s")
    return 0 if got >= args.messages else 1


if __name__ == "__main__":
    sys.exit(main())

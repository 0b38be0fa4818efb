"""`liaowang nats-config`, `nats-setup` and `nats-bridge`: the NATS side of a scaled-out deployment.

``nats-config`` writes one nats-server file per node and ``credentials.json`` (liaowang/cluster/natsconf.py);
run again, it keeps the passwords it made and refuses another partition count (sites would move).
``nats-setup`` provisions streams, consumers and the lease bucket on a running cluster, idempotently
(liaowang/cluster/streams.py), as ``admin`` from ``credentials.json`` or from the environment
(``LIAOWANG_NATS_URL`` comma-separated, ``LIAOWANG_NATS_USER``, ``LIAOWANG_NATS_PASSWORD``).
``nats-bridge`` runs liaowang/cluster/bridge.py: mosquitto → JetStream, acked to the gateway once stored.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from dataclasses import asdict
from pathlib import Path

__all__ = ["add_cluster_parsers"]


def cmd_nats_config(args: argparse.Namespace) -> int:
    from liaowang.cluster.natsconf import ClusterPlan, Credentials, write_cluster

    out = Path(args.out)
    existing = out / "credentials.json"
    credentials = Credentials.generate()
    if existing.exists():
        before = json.loads(existing.read_text())
        if before.get("partitions") != args.partitions and not args.force:
            print(f"{existing} was written for {before.get('partitions')} partitions, not {args.partitions}: "
                  "the partition count is fixed for a deployment's life (every site would move). "
                  "Pass --force to rewrite it anyway.", file=sys.stderr)
            return 2
        credentials = Credentials.load(existing)
    hosts = args.hosts.split(",") if args.hosts else [args.host] * args.nodes
    if len(hosts) != args.nodes:
        print(f"--hosts names {len(hosts)} hosts for --nodes {args.nodes}", file=sys.stderr)
        return 2
    plan = ClusterPlan.on_hosts(hosts, args.partitions, credentials, args.client_port, args.cluster_port,
                                args.mqtt_port, args.monitor_port)
    written = write_cluster(plan, out, Path(args.store_dir) if args.store_dir else None)
    for path in written:
        print(f"wrote {path}")
    print(f"wrote {existing} (passwords; mode 0600)")
    print("start each node with: nats-server -c FILE; then: liaowang nats-setup --credentials " + str(existing))
    return 0


def _admin(args: argparse.Namespace) -> tuple[list[str], str | None, str | None, int | None]:
    """Servers, user, password and (when known) partitions, from --credentials or the environment."""
    if args.credentials:
        creds = json.loads(Path(args.credentials).read_text())
        return creds["servers"], "admin", creds["passwords"]["admin"], creds.get("partitions")
    servers = [s for s in os.environ.get("LIAOWANG_NATS_URL", "nats://127.0.0.1:4222").split(",") if s]
    return servers, os.environ.get("LIAOWANG_NATS_USER"), os.environ.get("LIAOWANG_NATS_PASSWORD"), None


def cmd_nats_setup(args: argparse.Namespace) -> int:
    import nats

    from liaowang.cluster.streams import StreamSettings, ensure_streams

    servers, user, password, known = _admin(args)
    partitions = args.partitions or known
    if not partitions:
        print("--partitions is required without --credentials", file=sys.stderr)
        return 2
    settings = StreamSettings(max_age_s=args.max_age_s, duplicate_window_s=args.duplicate_window_s,
                              ack_wait_s=args.ack_wait_s, max_ack_pending=args.max_ack_pending)

    async def run() -> dict:
        nc = await nats.connect(servers, user=user, password=password, connect_timeout=3, max_reconnect_attempts=3)
        try:
            return asdict(await ensure_streams(nc.jetstream(timeout=10), partitions, args.replicas, settings))
        finally:
            await nc.close()

    try:
        done = asyncio.run(run())
    except Exception as err:  # an operator's command: say what failed and exit non-zero
        print(f"nats-setup failed: {type(err).__name__}: {err}", file=sys.stderr)
        return 1
    print(json.dumps(done, indent=2))
    return 0


def _env(name: str, legacy: str) -> str | None:
    """The variable every role reads (``LIAOWANG_MQTT__USERNAME``, as pydantic-settings spells nesting),
    or the single-underscore spelling this command first documented."""
    return os.environ.get(name) or os.environ.get(legacy)


def cmd_nats_bridge(args: argparse.Namespace) -> int:
    import signal
    import threading

    from foundation.config import MqttSettings
    from ingest.jetstream import NatsEndpoint
    from liaowang.cluster.bridge import MqttJetStreamBridge

    creds = json.loads(Path(args.credentials).read_text())
    host, _, port = args.mqtt.rpartition(":")
    mqtt = MqttSettings(host=host or "127.0.0.1", port=int(port), username=_env("LIAOWANG_MQTT__USERNAME", "LIAOWANG_MQTT_USERNAME"),
                        password=_env("LIAOWANG_MQTT__PASSWORD", "LIAOWANG_MQTT_PASSWORD"))
    bridge = MqttJetStreamBridge(mqtt, NatsEndpoint(tuple(creds["servers"]), "bridge", creds["passwords"]["bridge"],
                                                    "liaowang-nats-bridge"), client_id=args.client_id)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    bridge.start()
    if not bridge.wait_connected(30):
        print(f"nats-bridge: not connected after 30 s: {bridge.problems() or 'MQTT broker not answering'}",
              file=sys.stderr)
    stop.wait()
    bridge.stop()
    return 0


def add_cluster_parsers(sub: argparse._SubParsersAction) -> None:
    """Register ``nats-config`` and ``nats-setup`` on the `liaowang` command's subparsers."""
    conf = sub.add_parser("nats-config", help="write nats-server configuration files for an N-node cluster")
    conf.add_argument("--nodes", type=int, default=3)
    conf.add_argument("--partitions", type=int, required=True, help="P, fixed for the deployment's life")
    conf.add_argument("--out", required=True, help="directory for NODE.conf files and credentials.json")
    conf.add_argument("--host", default="127.0.0.1", help="one host for every node (ports base + index)")
    conf.add_argument("--hosts", help="comma-separated host per node (instead of --host)")
    conf.add_argument("--client-port", type=int, default=4222)
    conf.add_argument("--cluster-port", type=int, default=6222)
    conf.add_argument("--mqtt-port", type=int, default=1883)
    conf.add_argument("--monitor-port", type=int, default=8222)
    conf.add_argument("--store-dir", help="JetStream store root (default OUT/data); each node uses ROOT/NODE")
    conf.add_argument("--force", action="store_true", help="rewrite even with another partition count")
    conf.set_defaults(func=cmd_nats_config)

    setup = sub.add_parser("nats-setup", help="create or update the partition streams, consumers and lease bucket")
    setup.add_argument("--credentials", help="credentials.json written by nats-config (servers, admin password)")
    setup.add_argument("--partitions", type=int, help="default: from --credentials")
    setup.add_argument("--replicas", type=int, default=3)
    setup.add_argument("--max-age-s", type=float, default=7 * 86400.0, help="how long readings stay in a stream")
    setup.add_argument("--duplicate-window-s", type=float, default=120.0)
    setup.add_argument("--ack-wait-s", type=float, default=30.0)
    setup.add_argument("--max-ack-pending", type=int, default=20_000)
    setup.set_defaults(func=cmd_nats_setup)

    bridge = sub.add_parser("nats-bridge", help="forward gateways' QoS 1 readings from an MQTT broker into JetStream, "
                                                "acknowledging each only once stored (Ctrl-C stops)")
    bridge.add_argument("--credentials", required=True, help="credentials.json written by nats-config")
    bridge.add_argument("--mqtt", default="127.0.0.1:1883", help="HOST:PORT of the gateways' broker (user and "
                        "password from LIAOWANG_MQTT__USERNAME / LIAOWANG_MQTT__PASSWORD, as for every role)")
    bridge.add_argument("--client-id", default="liaowang-nats-bridge", help="its persistent session on the broker")
    bridge.set_defaults(func=cmd_nats_bridge)

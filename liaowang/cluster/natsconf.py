"""nats-server configuration for an N-node Liaowang cluster: routes, JetStream, MQTT, users, partition mapping.

One account ``LIAOWANG`` holds every user (subject mappings are per account) with JetStream on:

- ``gateway`` may only publish readings and status (over MQTT QoS 1 or NATS); it reads nothing;
- ``worker`` consumes the partition streams, holds leases in KV, answers commands on ``lw.cmd.>``
  and publishes dead letters and alert news; it cannot publish readings;
- ``api`` sends people's commands (``lw.cmd.>`` requests) and nothing else;
- ``bridge`` publishes readings and status with JetStream acknowledgements (a bridge from mosquitto
  that acknowledges a gateway's QoS 1 message only once the partition stream stored it);
- ``admin`` provisions streams and KV (`liaowang nats-setup`).

No anonymous access: every client logs in. Routes between nodes log in too (cluster authorization).

The account maps the MQTT listener's subjects (MQTT '/' becomes '.', nats-server 2.9) to partitions::

    liaowang.v1.readings.{site}.{sensor} -> lw.in.{p}.readings.{site}.{sensor}
    liaowang.v1.readings.{site}          -> lw.in.{p}.readings.{site}          (a batch)
    liaowang.v1.status.{site}            -> lw.in.{p}.status.{site}

with ``p = partition(P, site)`` (`foundation.partition.partition_of` gives the same answer). Both
single-token wildcards are spelt out instead of one ``>`` so that a topic with more levels than the
contract allows is not mapped (it stays on its own subject and no stream captures it).

Passwords live in the node files in clear (Debian's nats-server takes bcrypt hashes, but nothing
here can make them without a new dependency), so the files are written mode 0600, and
``credentials.json`` beside them holds what the clients need.

>>> plan = ClusterPlan.loopback(nodes=3, partitions=8, credentials=Credentials.generate())
>>> [n.name for n in plan.nodes]
['lw-n1', 'lw-n2', 'lw-n3']
>>> "partition(8,1)" in render_node(plan, plan.nodes[0], Path("/var/lib/nats"))
True
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

from foundation.partition import DEADLETTER_SUBJECT

__all__ = ["ClusterPlan", "Credentials", "Node", "mappings", "render_node", "write_cluster",
           "ACCOUNT", "READINGS_SUBJECT", "STATUS_SUBJECT", "DEADLETTER_SUBJECT"]

ACCOUNT = "LIAOWANG"
CLUSTER_NAME = "liaowang"
READINGS_SUBJECT = "liaowang.v1.readings"
STATUS_SUBJECT = "liaowang.v1.status"


def mappings(partitions: int) -> dict[str, str]:
    """The account's subject mappings for ``partitions`` partitions (the shared design's transport).

    >>> mappings(4)["liaowang.v1.status.*"]
    'lw.in.{{partition(4,1)}}.status.{{wildcard(1)}}'
    """
    p = f"{{{{partition({partitions},1)}}}}"
    return {
        f"{READINGS_SUBJECT}.*.*": f"lw.in.{p}.readings.{{{{wildcard(1)}}}}.{{{{wildcard(2)}}}}",
        f"{READINGS_SUBJECT}.*": f"lw.in.{p}.readings.{{{{wildcard(1)}}}}",
        f"{STATUS_SUBJECT}.*": f"lw.in.{p}.status.{{{{wildcard(1)}}}}",
    }


@dataclass(frozen=True)
class Credentials:
    """The users' passwords (and the routes'): generated once, kept in ``credentials.json``."""

    gateway: str
    worker: str
    api: str
    admin: str
    route: str
    bridge: str

    @classmethod
    def generate(cls) -> "Credentials":
        """Fresh random passwords (``secrets``: 24 bytes each)."""
        return cls(**{f.name: secrets.token_urlsafe(24) for f in fields(cls)})

    @classmethod
    def load(cls, path: Path) -> "Credentials":
        """Read the ``passwords`` of a ``credentials.json`` this module wrote (a user added since gets a new one)."""
        kept = json.loads(path.read_text())["passwords"]
        return cls(**{f.name: kept.get(f.name) or secrets.token_urlsafe(24) for f in fields(cls)})


@dataclass(frozen=True)
class Node:
    """One nats-server: its name (``server_name``, which JetStream and MQTT need) and where it listens."""

    name: str
    host: str
    client_port: int
    cluster_port: int
    mqtt_port: int
    monitor_port: int

    @property
    def url(self) -> str:
        """The client URL (``nats://host:port``)."""
        return f"nats://{self.host}:{self.client_port}"


@dataclass(frozen=True)
class ClusterPlan:
    """What a cluster is: its nodes, the partition count (fixed for a deployment's life) and the passwords."""

    nodes: tuple[Node, ...]
    partitions: int
    credentials: Credentials
    mqtt_stream_replicas: int = field(default=0)  # 0: as many as nodes, at most 3

    @classmethod
    def loopback(cls, nodes: int, partitions: int, credentials: Credentials, host: str = "127.0.0.1",
                 client_port: int = 4222, cluster_port: int = 6222, mqtt_port: int = 1883,
                 monitor_port: int = 8222) -> "ClusterPlan":
        """``nodes`` servers on one host, node ``i`` (0-based) on each base port + ``i``."""
        return cls.on_hosts([host] * nodes, partitions, credentials, client_port, cluster_port, mqtt_port,
                            monitor_port)

    @classmethod
    def on_hosts(cls, hosts: list[str], partitions: int, credentials: Credentials, client_port: int = 4222,
                 cluster_port: int = 6222, mqtt_port: int = 1883, monitor_port: int = 8222) -> "ClusterPlan":
        """One server per host; a host named twice gets the next ports (base + its index on that host)."""
        if not hosts:
            raise ValueError("a cluster needs at least one node")
        if partitions < 1:
            raise ValueError(f"partitions must be at least 1, got {partitions}")
        seen: dict[str, int] = {}
        made = []
        for i, host in enumerate(hosts):
            k = seen.get(host, 0)
            seen[host] = k + 1
            made.append(Node(f"lw-n{i + 1}", host, client_port + k, cluster_port + k, mqtt_port + k, monitor_port + k))
        return cls(tuple(made), partitions, credentials)

    @property
    def replicas(self) -> int:
        """Replicas for streams and KV: 3 where there are 3 nodes or more, else every node."""
        return min(3, len(self.nodes))

    def with_nodes(self, nodes: tuple[Node, ...]) -> "ClusterPlan":
        """The same plan on other nodes (tests pick free ports)."""
        return replace(self, nodes=nodes)


def _q(text: str) -> str:
    """A double-quoted string in nats-server's config syntax (JSON escaping is accepted by its parser)."""
    return json.dumps(text)


def _permissions(publish: list[str], subscribe: list[str]) -> str:
    pub = ", ".join(_q(s) for s in publish)
    sub = ", ".join(_q(s) for s in subscribe)
    return f"{{ publish: {{ allow: [{pub}] }}, subscribe: {{ allow: [{sub}] }} }}"


def _users(creds: Credentials) -> str:
    # nats-server 2.9.10 checks a publish against the subject AFTER the account's mapping (seen: "Publish
    # Violation ... lw.in.4.readings.a" for a gateway allowed liaowang.v1.readings.>), and still PUBACKs the
    # MQTT QoS 1 message it dropped. So the gateway is allowed exactly the mapped shapes; a gateway that
    # forges a partition is caught by the JetStream source (dead letter ``wrong_partition``).
    gateway = _permissions(["lw.in.*.readings.*", "lw.in.*.readings.*.*", "lw.in.*.status.*"], [])
    worker = _permissions(
        ["$JS.API.>", "$JS.ACK.>", "$KV.LW_LEASES.>", "_INBOX.>", DEADLETTER_SUBJECT, "liaowang.v1.alerts.>",
         "liaowang.v1.site-status.>", "lw.cmd.>"],
        ["_INBOX.>", "lw.cmd.>", "$KV.LW_LEASES.>"])
    api = _permissions(["lw.cmd.>"], ["_INBOX.>"])
    bridge = _permissions(["lw.in.*.readings.*", "lw.in.*.readings.*.*", "lw.in.*.status.*", DEADLETTER_SUBJECT],
                          ["_INBOX.>"])
    rows = [f"{{ user: \"gateway\", password: {_q(creds.gateway)}, permissions: {gateway} }}",
            f"{{ user: \"worker\", password: {_q(creds.worker)}, permissions: {worker} }}",
            f"{{ user: \"api\", password: {_q(creds.api)}, permissions: {api} }}",
            f"{{ user: \"bridge\", password: {_q(creds.bridge)}, permissions: {bridge} }}",
            f"{{ user: \"admin\", password: {_q(creds.admin)} }}"]
    return ",\n      ".join(rows)


def render_node(plan: ClusterPlan, node: Node, store_dir: Path) -> str:
    """The nats-server 2.9 configuration file of one node of ``plan``, JetStream under ``store_dir``."""
    routes = ", ".join(_q(f"nats-route://route:{plan.credentials.route}@{n.host}:{n.cluster_port}")
                       for n in plan.nodes if n != node)
    maps = ",\n      ".join(f"{_q(src)}: {_q(dst)}" for src, dst in mappings(plan.partitions).items())
    replicas = plan.mqtt_stream_replicas or plan.replicas
    cluster = ""
    if len(plan.nodes) > 1:
        cluster = f"""
cluster {{
  name: {_q(CLUSTER_NAME)}
  listen: {_q(f"{node.host}:{node.cluster_port}")}
  authorization {{ user: "route", password: {_q(plan.credentials.route)}, timeout: 2 }}
  routes: [{routes}]
}}
"""
    return f"""# Liaowang nats-server {node.name}: written by `liaowang nats-config` (liaowang/cluster/natsconf.py).
server_name: {_q(node.name)}
listen: {_q(f"{node.host}:{node.client_port}")}
http: {_q(f"{node.host}:{node.monitor_port}")}
max_payload: 1MB

jetstream {{
  store_dir: {_q(str(store_dir))}
}}
{cluster}
# Gateways publish QoS 1 here; MQTT '/' becomes NATS '.', and the account's mappings below apply.
mqtt {{
  listen: {_q(f"{node.host}:{node.mqtt_port}")}
  stream_replicas: {replicas}
}}

accounts {{
  {ACCOUNT}: {{
    jetstream: enabled
    users: [
      {_users(plan.credentials)}
    ]
    mappings: {{
      {maps}
    }}
  }}
}}
"""


def write_cluster(plan: ClusterPlan, out: Path, store_root: Path | None = None) -> list[Path]:
    """Write ``{node}.conf`` for every node and ``credentials.json`` into ``out`` (mode 0600); return the conf paths.

    JetStream stores go under ``store_root/{node}`` (default ``out/data/{node}``).
    """
    out.mkdir(parents=True, exist_ok=True)
    root = (store_root or out / "data").resolve()  # absolute: nats-server may be started from any directory
    written = []
    for node in plan.nodes:
        path = out / f"{node.name}.conf"
        _write_private(path, render_node(plan, node, root / node.name))
        written.append(path)
    summary = {"account": ACCOUNT, "partitions": plan.partitions, "replicas": plan.replicas,
               "servers": [n.url for n in plan.nodes],
               "mqtt": [f"{n.host}:{n.mqtt_port}" for n in plan.nodes],
               "nodes": [asdict(n) for n in plan.nodes],
               "passwords": asdict(plan.credentials)}
    _write_private(out / "credentials.json", json.dumps(summary, indent=2) + "\n")
    return written


def _write_private(path: Path, text: str) -> None:
    """Write a file only its owner can read (it holds passwords)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(path, 0o600)  # an existing file keeps its old mode through O_CREAT

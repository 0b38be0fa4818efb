"""A real N-node nats-server cluster on free loopback ports, written by `liaowang.cluster.natsconf`.

Starts every node as a plain process, waits until JetStream is ready on each (a meta leader
elected, the node's ``/healthz`` answering ok), can kill -9 and restart one node, and stops all.
Skips when nats-server is not installed, unless ``LIAOWANG_REQUIRE_NATS=1`` (CI), which fails instead.

    cluster = NatsCluster(tmp_path, nodes=3, partitions=4)
    cluster.start()
    cluster.provision()                       # streams, consumers, KV (liaowang.cluster.streams)
    cluster.kill(1); cluster.restart(1)
    cluster.stop()
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import nats
import pytest

from ingest.jetstream import NatsEndpoint
from liaowang.cluster.natsconf import ClusterPlan, Credentials, Node, write_cluster
from liaowang.cluster.streams import Provisioned, StreamSettings, ensure_streams

__all__ = ["NatsCluster", "nats_server_binary"]


def nats_server_binary() -> str:
    """Path of nats-server, or skip the test (fail under ``LIAOWANG_REQUIRE_NATS=1``)."""
    found = shutil.which("nats-server") or ("/usr/sbin/nats-server" if os.path.exists("/usr/sbin/nats-server") else None)
    if found is None:
        if os.environ.get("LIAOWANG_REQUIRE_NATS") == "1":
            pytest.fail("nats-server is not installed and LIAOWANG_REQUIRE_NATS=1")
        pytest.skip("nats-server is not installed")
    return found


def _free_ports(count: int) -> list[int]:
    """``count`` distinct free loopback ports (all held open at once, so none is handed out twice)."""
    held = []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            held.append(s)
        return [s.getsockname()[1] for s in held]
    finally:
        for s in held:
            s.close()


class NatsCluster:
    """``nodes`` nats-servers with JetStream, MQTT and the partition mapping, under ``root``."""

    def __init__(self, root: Path, nodes: int = 3, partitions: int = 4) -> None:
        self.binary = nats_server_binary()
        self.root = root
        self.plan = ClusterPlan.loopback(nodes, partitions, Credentials.generate())
        self.procs: list[subprocess.Popen | None] = [None] * nodes
        self._place()

    def _place(self) -> None:
        """Put the nodes on fresh free ports and (re)write their configuration."""
        ports = iter(_free_ports(4 * len(self.plan.nodes)))
        self.plan = self.plan.with_nodes(tuple(Node(n.name, "127.0.0.1", next(ports), next(ports), next(ports),
                                                    next(ports)) for n in self.plan.nodes))
        self.configs = write_cluster(self.plan, self.root / "nats")

    @property
    def nodes(self) -> tuple[Node, ...]:
        return self.plan.nodes

    @property
    def partitions(self) -> int:
        return self.plan.partitions

    @property
    def servers(self) -> tuple[str, ...]:
        return tuple(n.url for n in self.nodes)

    def endpoint(self, user: str = "worker", only: int | None = None) -> NatsEndpoint:
        """How ``user`` connects: to every node, or only to node ``only``."""
        servers = self.servers if only is None else (self.nodes[only].url,)
        return NatsEndpoint(servers, user, getattr(self.plan.credentials, user), f"test-{user}")

    def mqtt_password(self) -> str:
        return self.plan.credentials.gateway

    # ------------------------------------------------------------------ processes

    def _spawn(self, i: int) -> None:
        log = open(self.root / "nats" / f"{self.nodes[i].name}.log", "ab")
        self.procs[i] = subprocess.Popen([self.binary, "-c", str(self.configs[i])], stdout=log,
                                         stderr=subprocess.STDOUT)
        log.close()

    def start(self, timeout: float = 30.0) -> "NatsCluster":
        """Start every node; return once JetStream answers on all of them.

        A port taken between choosing and binding it (other tests run on this machine too) makes a
        node exit at once: then every node moves to new ports, up to three times.
        """
        for attempt in range(3):
            for i in range(len(self.nodes)):
                self._spawn(i)
            try:
                for i in range(len(self.nodes)):
                    self.wait_ready(i, timeout)
                return self
            except RuntimeError:
                self.stop()
                if attempt == 2:
                    raise
                self._place()
        return self

    def _monitor(self, i: int, path: str) -> tuple[int, dict]:
        url = f"http://{self.nodes[i].host}:{self.nodes[i].monitor_port}{path}"
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:
                return answer.status, json.loads(answer.read() or b"{}")
        except urllib.error.HTTPError as err:
            return err.code, {}

    def wait_ready(self, i: int, timeout: float = 30.0, healthz: bool = True) -> None:
        """Wait until node ``i`` sees a JetStream meta leader and (with ``healthz``) its /healthz says ok."""
        deadline = time.monotonic() + timeout
        last = "not started"
        while time.monotonic() < deadline:
            proc = self.procs[i]
            if proc is not None and proc.poll() is not None:
                raise RuntimeError(f"{self.nodes[i].name} exited {proc.returncode}: see {self.root / 'nats'}")
            try:
                status, jsz = self._monitor(i, "/jsz")
                leader = (jsz.get("meta_cluster") or {}).get("leader") if len(self.nodes) > 1 else "self"
                health, _ = self._monitor(i, "/healthz") if healthz else (200, {})
                if status == 200 and leader and health == 200:
                    return
                last = f"jsz {status} leader {leader!r} healthz {health}"
            except OSError as err:
                last = str(err)
            time.sleep(0.1)
        raise TimeoutError(f"{self.nodes[i].name} not ready after {timeout} s: {last}")

    def kill(self, i: int) -> None:
        """kill -9 node ``i``."""
        proc = self.procs[i]
        assert proc is not None
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        self.procs[i] = None

    def restart(self, i: int, timeout: float = 60.0) -> None:
        """Start node ``i`` again on its ports and store; return once it has rejoined (sees the meta leader).

        Not its /healthz: after a kill -9, nats-server 2.9.10 can answer 503 for minutes ("JetStream
        consumer 'LIAOWANG > $MQTT_rmsgs > $MQTT_rmsgs_<node>' is not current", the MQTT listener's
        own retained-message consumer) while it serves clients and replicates streams normally.
        """
        self._spawn(i)
        self.wait_ready(i, timeout, healthz=False)

    def stop(self) -> None:
        """Stop every node still running (SIGTERM, then SIGKILL)."""
        for proc in self.procs:
            if proc is not None and proc.poll() is None:
                proc.terminate()
        for i, proc in enumerate(self.procs):
            if proc is None:
                continue
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
            self.procs[i] = None

    # ------------------------------------------------------------------ JetStream helpers

    def run(self, work, user: str = "admin"):
        """Run ``await work(nc, js)`` on a fresh connection as ``user``; return its result."""
        async def main():
            e = self.endpoint(user)
            nc = await nats.connect(list(e.servers), user=e.user, password=e.password, connect_timeout=2)
            try:
                return await work(nc, nc.jetstream(timeout=10))
            finally:
                await nc.close()
        return asyncio.run(main())

    def provision(self, settings: StreamSettings | None = None, timeout: float = 30.0) -> Provisioned:
        """`ensure_streams` as admin, retried while the cluster still elects leaders."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                return self.run(lambda nc, js: ensure_streams(js, self.partitions, self.plan.replicas, settings))
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)

    def stream_subjects(self, stream: str) -> list[str]:
        """Every message subject held by ``stream``, in stream order."""
        async def read(nc, js):
            info = await js.stream_info(stream)
            out: list[str] = []
            if not info.state.messages:
                return out
            for seq in range(max(1, info.state.first_seq), info.state.last_seq + 1):
                try:
                    out.append((await js.get_msg(stream, seq)).subject)
                except nats.js.errors.NotFoundError:
                    continue
            return out
        return self.run(read)

    def stream_leaders(self) -> dict[str, str]:
        """Stream name → name of the node leading it."""
        async def read(nc, js):
            return {info.config.name: (info.cluster.leader if info.cluster else None)
                    for info in await js.streams_info()}
        return self.run(read)

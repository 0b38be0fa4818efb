"""The ``liaowang worker`` role: claim partitions under leases, run each one, hand them over on failure.

A worker is one process. Its coordinator (asyncio, one NATS connection) every ``ttl / 6`` seconds:

1. announces itself in the lease bucket (key ``worker.{owner}``, rewritten every beat) — the roster;
   a worker counts as live while its key keeps changing (watched on our own clock, like a lease);
2. renews its leases (``partition.{p}``, ``bureau``) when due; a lease lost or run out revokes its
   partition at once (nothing more is written; the connection is closed before anything else);
3. reads every partition key it does not hold (so a dead holder's lease is seen to run out one ttl after its
   last renewal) and claims partitions, up to `MAX_STARTING` at once, while it owns fewer than
   ``ceil(P / live workers)`` — free ones at once, ones
   whose holder stopped renewing after a whole ttl (`liaowang.cluster.lease`) — and hands one back
   per beat while it owns more (a worker that joins takes its share from the others);
4. answers ``lw.cmd.{p}`` for its partitions with `liaowang.commands.apply_command`;
5. holds the ``bureau`` lease if it can, and then runs the bureau desk (notification delivery).

It waits one ttl after starting before it claims anything: by then it knows the roster, so three
workers that start together do not all grab every partition first.

``/healthz`` (``--health-port``) answers 503 while a partition's source or commits fail or a lease
cannot be renewed; ``/metrics`` has the coordinator's numbers.
"""

from __future__ import annotations

import asyncio
import math
import os
import re
import secrets
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import nats
import orjson
import structlog
from nats.js.errors import BucketNotFoundError, KeyNotFoundError
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from foundation.config import Config
from foundation.partition import LEASE_BUCKET, stream_name
from ingest.jetstream import NatsEndpoint
from liaowang.cluster.bureau import BureauDesk
from liaowang.cluster.lease import Lease, LeaseLost, Leases, LeaseUnavailable, ensure_bucket
from liaowang.cluster.runner import PartitionRunner
from liaowang.commands import apply_command, serve_commands

__all__ = ["Worker", "WorkerOptions", "default_owner"]

log = structlog.get_logger("worker")

BUREAU_KEY = "bureau"
MAX_STARTING = 4
"""Partitions one worker starts at once (restore + rewind each): enough to take a dead peer's share in a beat
or two, few enough that one worker does not grab every orphan before the others look."""


def default_owner() -> str:
    """A name unique to this process incarnation (host, pid, random), valid as a KV key token."""
    raw = f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"
    return re.sub(r"[^A-Za-z0-9_=-]", "-", raw)


@dataclass(frozen=True)
class WorkerOptions:
    """How a worker reaches the cluster and what it may take."""

    endpoint: NatsEndpoint
    database: str                    # postgresql://… (shared state); a SQLite path works on one machine
    partitions: int
    data_dir: Path
    owner: str = field(default_factory=default_owner)
    lease_ttl_s: float = 6.0
    health_port: int | None = None
    bureau: bool = True              # stand in the bureau election
    lease_replicas: int = 1          # only used if the bucket is missing (nats-setup creates it with 3)


class _Roster:
    """Live workers: keys ``worker.*`` whose revision changed within a ttl, on our own clock."""

    def __init__(self, ttl_s: float) -> None:
        self.ttl_s = ttl_s
        self._seen: dict[str, tuple[int, float]] = {}
        self.counts: dict[str, int] = {}  # key → partitions the worker announced it runs

    def observe(self, key: str, revision: int, now: float, count: int = 0) -> None:
        if self._seen.get(key, (None,))[0] != revision:
            self._seen[key] = (revision, now)
        self.counts[key] = count

    def live(self, now: float) -> set[str]:
        return {k for k, (_, at) in self._seen.items() if now - at < self.ttl_s}


class Worker:
    """One worker process's coordinator; `run` blocks until `stop` (or SIGTERM via the CLI)."""

    def __init__(self, config: Config, options: WorkerOptions) -> None:
        self.config = config
        self.options = options
        self.owner = options.owner
        self.runners: dict[int, PartitionRunner] = {}
        self.leases: dict[str, Lease] = {}
        self.bureau: BureauDesk | None = None
        self._subs: dict[int, Any] = {}
        self._tasks: set[asyncio.Task] = set()   # partitions starting or stopping: never awaited by the beat
        self._starting: set[int] = set()
        self._fenced: set[int] = set()
        self._fenced_lock = threading.Lock()
        self._stop = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._kv_problem: str | None = None
        self._roster = _Roster(options.lease_ttl_s)
        self._live = 1
        self._live_since = time.monotonic()
        self._handed_back_at = float("-inf")
        self.registry = CollectorRegistry()
        self._owned = Gauge("liaowang_worker_partitions_owned", "Partitions this worker runs now",
                            registry=self.registry)
        self._epoch = Gauge("liaowang_worker_lease_epoch", "Lease epoch of each partition this worker runs",
                            ["partition"], registry=self.registry)
        self._takeovers = Counter("liaowang_worker_partitions_started_total",
                                  "Partitions started here (first claim or takeover)", registry=self.registry)
        self._revoked = Counter("liaowang_worker_partitions_revoked_total",
                                "Partitions stopped because their lease was lost, ran out or was fenced", ["reason"],
                                registry=self.registry)
        self._start_seconds = Histogram("liaowang_worker_partition_start_seconds",
                                        "From lease acquired to consuming (restore snapshot, rewind, start)",
                                        registry=self.registry)
        self._live_gauge = Gauge("liaowang_worker_live_workers", "Workers this one sees announcing themselves",
                                 registry=self.registry)
        self._stalls = Counter("liaowang_worker_partition_stalls_total",
                               "Partitions restarted because their source stopped although the stream held more",
                               registry=self.registry)
        self.stall_s = max(15.0, 3 * options.lease_ttl_s)
        self._http: ThreadingHTTPServer | None = None

    # ------------------------------------------------------------------ lifecycle

    def run(self) -> None:
        """Coordinate until `stop`; then hand every partition back (snapshot, release)."""
        asyncio.run(self._main())

    def stop(self) -> None:
        """Ask the coordinator to hand over and return from `run` (thread-safe)."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        e = self.options.endpoint
        self.nc = await nats.connect(list(e.servers), user=e.user, password=e.password, name=f"worker-{self.owner}",
                                     max_reconnect_attempts=-1, reconnect_time_wait=0.5, connect_timeout=2)
        self.js = js = self.nc.jetstream(timeout=max(1.0, self.options.lease_ttl_s / 6))
        try:
            self.kv = await js.key_value(LEASE_BUCKET)
        except BucketNotFoundError:
            self.kv = await ensure_bucket(js, self.options.lease_replicas, LEASE_BUCKET)
        self.lease_client = Leases(self.kv, self.owner, self.options.lease_ttl_s)
        self._serve_http()
        started = time.monotonic()
        log.info("worker_started", owner=self.owner, partitions=self.options.partitions,
                 lease_ttl_s=self.options.lease_ttl_s)
        beat = self.options.lease_ttl_s / 6
        while not self._stop.is_set():
            try:
                await self._step(claim=time.monotonic() - started >= self.options.lease_ttl_s)
            except Exception as err:  # the coordinator must keep renewing: report and go on
                log.error("worker_step_failed", error=f"{type(err).__name__}: {err}", exc_info=True)
            try:
                await asyncio.wait_for(self._stop.wait(), beat)
            except asyncio.TimeoutError:
                pass
        await self._shutdown()

    async def _shutdown(self) -> None:
        for p in sorted(self.runners):
            self._spawn(self._hand_back(p))
        while self._tasks:  # leases keep being renewed while partitions snapshot and stop
            await asyncio.wait(set(self._tasks), timeout=self.options.lease_ttl_s / 6)
            for key, lease in list(self.leases.items()):
                if key != BUREAU_KEY:
                    await self._keep(key, lease)
        await self._stop_bureau(release=True)
        try:
            await self.kv.delete(f"worker.{self.owner}")
        except Exception as err:  # others stop counting us after a ttl anyway
            log.warning("roster_leave_failed", error=str(err))
        await self.nc.close()
        if self._http is not None:
            self._http.shutdown()
        log.info("worker_stopped", owner=self.owner)

    # ------------------------------------------------------------------ one beat

    async def _step(self, claim: bool) -> None:
        now = time.monotonic()
        await self._announce(now)
        for p in sorted(self._take_fenced()):
            await self._revoke(p, "fenced")
        for key, lease in list(self.leases.items()):
            await self._keep(key, lease)
        for p, runner in list(self.runners.items()):
            await self._watch(p, runner)
        if not claim:
            return
        await self._observe()
        target = math.ceil(self.options.partitions / max(1, self._live))
        held = len(self.runners) + len(self._starting)
        room = min(target - held, MAX_STARTING - len(self._starting))  # a few at once: a dead peer's share
        if room > 0:                                                     # moves in one beat, not one a beat
            await self._claim(room)
        elif (not self._starting and time.monotonic() - self._live_since >= self.options.lease_ttl_s
              and time.monotonic() - self._handed_back_at >= 2 * self.options.lease_ttl_s
              and (len(self.runners) > target or self._should_share())):
            self._handed_back_at = time.monotonic()
            self._spawn(self._hand_back(max(self.runners)))  # others take it at once (released)
        if self.options.bureau and BUREAU_KEY not in self.leases:
            try:
                lease = await self.lease_client.acquire(BUREAU_KEY)
            except LeaseUnavailable as err:
                self._kv_problem = str(err)
                lease = None
            if lease is not None:
                self.leases[BUREAU_KEY] = lease
                await self._start_bureau()

    def _should_share(self) -> bool:
        """ceil(P / N) each can leave a live worker with nothing (4 partitions, 3 workers: 2 + 2 + 0). When some
        live worker runs fewer than floor(P / N), the one running the most (ties: the greatest name) hands one
        back, so everybody ends up with floor or ceil."""
        live = self._roster.live(time.monotonic()) | {f"worker.{self.owner}"}
        counts = {k: self._roster.counts.get(k, 0) for k in live}
        counts[f"worker.{self.owner}"] = len(self.runners)
        floor_share = self.options.partitions // max(1, len(live))
        if not any(c < floor_share for c in counts.values()):
            return False
        top = max(counts.items(), key=lambda kv: (kv[1], kv[0]))[0]
        return top == f"worker.{self.owner}" and len(self.runners) > floor_share

    async def _announce(self, now: float) -> None:
        """Rewrite our roster key and read the others'; count the live ones."""
        try:
            await asyncio.wait_for(self.kv.put(f"worker.{self.owner}", orjson.dumps(
                {"owner": self.owner, "partitions": sorted(self.runners)})), self.options.lease_ttl_s / 3)
            # nats-server 2.9 ignores KV key filters (nats-py warns, then finds "no keys"): ask the stream instead
            info = await asyncio.wait_for(self.js.stream_info(f"KV_{LEASE_BUCKET}",
                                                              subjects_filter=f"$KV.{LEASE_BUCKET}.worker.*"),
                                          self.options.lease_ttl_s / 3)
            for subject in (info.state.subjects or {}):
                key = subject[len(f"$KV.{LEASE_BUCKET}."):]
                try:
                    entry = await self.kv.get(key)
                except KeyNotFoundError:
                    continue
                try:
                    count = len(orjson.loads(entry.value or b"{}").get("partitions") or [])
                except (orjson.JSONDecodeError, AttributeError, TypeError):
                    count = 0
                self._roster.observe(key, entry.revision, now, count)
            self._kv_problem = None
        except Exception as err:
            self._kv_problem = f"lease bucket: {type(err).__name__}: {err}"
            log.warning("roster_unavailable", error=self._kv_problem)
            return
        live = len(self._roster.live(now) | {f"worker.{self.owner}"})
        if live != self._live:
            log.info("roster_changed", live_workers=live, was=self._live)
            self._live, self._live_since = live, time.monotonic()
        self._live_gauge.set(live)

    async def _keep(self, key: str, lease: Lease) -> None:
        """Renew a lease when due; revoke its partition (or the bureau desk) once it is lost or runs out."""
        now = time.monotonic()
        if lease.valid(now) and not lease.renew_due(now):
            return
        try:
            self.leases[key] = renewed = await self.lease_client.renew(lease)
            runner = self.runners.get(int(key.split(".")[1])) if key != BUREAU_KEY else None
            if runner is not None and runner.lease.epoch == renewed.epoch:
                runner.valid_until = renewed.valid_until  # its commits check this on their own clock
            return
        except LeaseLost as err:
            reason = "lost"
            log.error("lease_lost", key=key, epoch=lease.epoch, error=str(err))
        except LeaseUnavailable as err:
            self._kv_problem = f"lease renewal: {err}"
            if lease.valid(time.monotonic()):
                return  # it still counts down: try again next beat
            reason = "expired"
            log.error("lease_expired", key=key, epoch=lease.epoch, error=str(err))
        if key == BUREAU_KEY:
            self.leases.pop(key, None)
            await self._stop_bureau(release=False)
        else:
            await self._revoke(int(key.split(".")[1]), reason)

    async def _observe(self) -> None:
        """Read every partition key we do not hold, each beat: the expiry of a lease is counted from when
        we first saw its current revision, so watching all of them all the time lets a dead holder's
        partitions be taken one ttl after its last renewal — not one ttl after we first looked."""
        for p in range(self.options.partitions):
            key = f"partition.{p}"
            if key in self.leases:
                continue
            try:
                await self.lease_client.holder(key)
            except LeaseUnavailable as err:
                self._kv_problem = str(err)
                return

    async def _claim(self, room: int = 1) -> None:
        """Take up to ``room`` free or expired partitions, looking from an offset of our own (fewer CAS races)."""
        count = self.options.partitions
        first = int.from_bytes(self.owner.encode()[-4:], "big") % count
        for i in range(count):
            if room <= 0:
                return
            p = (first + i) % count
            if p in self.runners or f"partition.{p}" in self.leases:
                continue
            try:
                lease = await self.lease_client.acquire(f"partition.{p}")
            except LeaseUnavailable as err:
                self._kv_problem = str(err)
                return
            if lease is not None:
                self.leases[f"partition.{p}"] = lease  # renewed by the beat while the partition starts
                self._starting.add(p)
                self._spawn(self._start_partition(p, lease))
                room -= 1

    def _spawn(self, work: Any) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ------------------------------------------------------------------ partitions

    async def _start_partition(self, p: int, lease: Lease) -> None:
        key = f"partition.{p}"
        t0 = time.monotonic()
        try:
            runner = await asyncio.to_thread(self._make_runner, p, lease)
        except Exception as err:  # PostgreSQL down, fenced already: give the lease back, try again later
            log.error("partition_start_failed", partition=p, epoch=lease.epoch, error=f"{type(err).__name__}: {err}",
                      exc_info=True)
            self._starting.discard(p)
            current = self.leases.get(key)
            if current is not None and current.epoch == lease.epoch:
                del self.leases[key]
                try:
                    await self.lease_client.release(current)
                except LeaseUnavailable:
                    pass  # KV unreachable: the lease runs out at its ttl and another worker takes it
            return
        self._starting.discard(p)
        current = self.leases.get(key)
        if current is None or current.epoch != lease.epoch:  # lost while it started: it must not run
            log.warning("partition_lost_while_starting", partition=p, epoch=lease.epoch)
            await asyncio.to_thread(runner.revoke)
            return
        runner.valid_until = current.valid_until  # renewed while it started
        self.runners[p] = runner
        try:
            self._subs[p] = await serve_commands(self.nc, p, lambda request, r=runner: apply_command(
                r.pipeline.alerts, request, r.pipeline.act, owns=r.owns, clock=r.pipeline.clock,
                requests=r.pipeline.applied_requests))
        except Exception as err:  # people's actions answer 503 (no owner) until the next start: say so
            log.error("commands_not_served", partition=p, error=str(err))
        self._owned.set(len(self.runners))
        self._epoch.labels(str(p)).set(lease.epoch)
        self._takeovers.inc()
        self._start_seconds.observe(time.monotonic() - t0)
        log.info("partition_started", partition=p, epoch=lease.epoch, resumed_after_seq=runner.resumed_from,
                 start_s=round(time.monotonic() - t0, 3))

    def _make_runner(self, p: int, lease: Lease) -> PartitionRunner:
        runner = PartitionRunner(self.config, self.options.data_dir, self.options.endpoint, self.options.database, p,
                                 self.options.partitions, lease, self.owner, self._note_fenced)
        runner.start()
        return runner

    def _note_fenced(self, p: int) -> None:
        """From a pipeline thread: a commit of partition ``p`` was fenced; the coordinator revokes it next beat."""
        with self._fenced_lock:
            self._fenced.add(p)
        if self._loop is not None:
            self._loop.call_soon_threadsafe(lambda: None)

    def _take_fenced(self) -> set[int]:
        with self._fenced_lock:
            out, self._fenced = self._fenced, set()
        return out

    async def _watch(self, p: int, runner: PartitionRunner) -> None:
        """Restart a partition whose source stopped acknowledging although its stream holds more (seen after a
        NATS node died under a rewound consumer: the reconnected source fetched nothing more). The restart keeps
        the lease: final snapshot, new connection, consumer rewound to the snapshot."""
        now = time.monotonic()
        seq = runner.acked_through()
        if seq != runner.progress[0]:
            runner.progress = (seq, now)
            return
        if now - runner.progress[1] < self.stall_s:
            return
        runner.progress = (seq, now)  # look again only after another stall_s
        try:
            info = await asyncio.wait_for(self.js.stream_info(stream_name(p)), self.options.lease_ttl_s / 3)
        except Exception as err:  # NATS busy or a node down: the next look decides
            log.warning("partition_watch_failed", partition=p, error=f"{type(err).__name__}: {err}")
            return
        if info.state.last_seq <= max(seq, runner.resumed_from):
            return  # nothing new: a quiet feed, not a stall
        log.error("partition_stalled", partition=p, acked_through=seq, stream_last_seq=info.state.last_seq,
                  stalled_s=round(self.stall_s, 1))
        self._stalls.inc()
        self.runners.pop(p, None)
        self._starting.add(p)
        self._spawn(self._restart(p, runner))

    async def _restart(self, p: int, runner: PartitionRunner) -> None:
        await self._unserve(p)
        await asyncio.to_thread(runner.stop)
        lease = self.leases.get(f"partition.{p}")
        if lease is None or lease.epoch != runner.lease.epoch:
            self._starting.discard(p)
            return  # lost meanwhile: someone else runs it
        await self._start_partition(p, lease)

    async def _unserve(self, p: int) -> None:
        sub = self._subs.pop(p, None)
        if sub is not None:
            try:
                await sub.unsubscribe()
            except Exception as err:  # the connection is gone: the subscription with it
                log.warning("commands_unsubscribe_failed", partition=p, error=str(err))

    async def _revoke(self, p: int, reason: str) -> None:
        """Stop partition ``p`` writing nothing more (its lease is gone); a partition still starting is revoked
        by its start task when it sees the lease gone."""
        runner = self.runners.pop(p, None)
        self.leases.pop(f"partition.{p}", None)
        if runner is None:
            return
        runner.fenced.set()  # at once, before the slower close below: nothing more is committed
        await self._unserve(p)
        await asyncio.to_thread(runner.revoke)
        self._revoked.labels(reason).inc()
        self._owned.set(len(self.runners))
        self._epoch.remove(str(p))
        log.warning("partition_revoked", partition=p, epoch=runner.lease.epoch, reason=reason)

    async def _hand_back(self, p: int) -> None:
        """Stop partition ``p`` cleanly (final snapshot with its stream position) and release its lease."""
        runner = self.runners.pop(p, None)
        if runner is None:
            return
        await self._unserve(p)
        await asyncio.to_thread(runner.stop)  # the beat keeps renewing its lease meanwhile: the final snapshot commits
        lease = self.leases.pop(f"partition.{p}", None)
        if lease is not None and lease.valid(time.monotonic()) and not runner.fenced.is_set():
            try:
                await self.lease_client.release(lease)
            except LeaseUnavailable as err:  # the next owner waits a ttl instead
                log.warning("lease_release_failed", partition=p, error=str(err))
        self._owned.set(len(self.runners))
        self._epoch.remove(str(p))
        log.info("partition_handed_back", partition=p, epoch=runner.lease.epoch)

    # ------------------------------------------------------------------ bureau

    async def _start_bureau(self) -> None:
        try:
            self.bureau = await asyncio.to_thread(BureauDesk.start_for, self.config, self.options.database, self.owner,
                                                  self.leases[BUREAU_KEY].epoch)
            log.info("bureau_started", owner=self.owner, epoch=self.leases[BUREAU_KEY].epoch)
        except Exception as err:
            log.error("bureau_start_failed", error=f"{type(err).__name__}: {err}", exc_info=True)
            lease = self.leases.pop(BUREAU_KEY)
            try:
                await self.lease_client.release(lease)
            except LeaseUnavailable:
                pass  # KV unreachable: the lease runs out at its ttl and another worker takes it

    async def _stop_bureau(self, release: bool) -> None:
        desk, self.bureau = self.bureau, None
        if desk is not None:
            await asyncio.to_thread(desk.stop)
        lease = self.leases.pop(BUREAU_KEY, None)
        if release and lease is not None and lease.valid(time.monotonic()):
            try:
                await self.lease_client.release(lease)
            except LeaseUnavailable:
                pass  # KV unreachable: the lease runs out at its ttl and another worker takes it

    # ------------------------------------------------------------------ health

    def health(self) -> dict:
        """Readiness: every owned partition's pipeline healthy and the lease bucket answering."""
        partitions = {}
        problems = []
        for p, runner in sorted(list(self.runners.items())):
            h = runner.health()
            partitions[str(p)] = {"epoch": runner.lease.epoch, "ok": h["ok"], "problems": h["problems"]}
            problems += [f"partition {p}: {x}" for x in h["problems"]]
        if self._kv_problem:
            problems.append(self._kv_problem)
        bureau = self.bureau
        if bureau is not None and bureau.problem:  # delivery or risk/warning timers failing (or fenced)
            problems.append(f"bureau: {bureau.problem}")
        return {"ok": not problems, "owner": self.owner, "partitions": partitions,
                "bureau": self.bureau is not None, "live_workers": self._live, "problems": problems}

    def _serve_http(self) -> None:
        if self.options.health_port is None:
            return
        worker = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's spelling)
                if self.path.startswith("/healthz"):
                    body = worker.health()
                    self._send(200 if body["ok"] else 503, orjson.dumps(body), "application/json")
                elif self.path.startswith("/metrics"):
                    self._send(200, generate_latest(worker.registry), "text/plain; version=0.0.4")
                else:
                    self._send(404, b"{}", "application/json")

            def _send(self, status: int, body: bytes, kind: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self._http = ThreadingHTTPServer(("127.0.0.1", self.options.health_port), Handler)
        threading.Thread(target=self._http.serve_forever, name="worker-health", daemon=True).start()

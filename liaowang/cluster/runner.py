"""One owned partition in a worker: a `Pipeline` over the partition's sites, fed by its JetStream stream.

The runner is built under a lease epoch. Before it reads anything the last owner wrote it commits
one empty fenced transaction: ``partition_fence`` now records its epoch, so from that moment the
last owner can write nothing more, and the snapshot and open alarms it then loads are final. It
restores the partition's rule snapshot and rewinds the stream consumer to the position saved with
that snapshot; readings after it are stored and evaluated again, which neither duplicates a
reading (sinks are keyed by sensor and time) nor an alarm effect (``signal_horizon`` per rule and
subject; outbox keys).

The pipeline sees only the partition's sites (a sub-fleet): its stale-sensor and gateway-offline
checks cover only them, so no two workers raise the same alarm, and its alarm manager keeps only
their open episodes in memory.
"""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

import structlog

from alerting import AlertStore
from alerting.db import AlertDB, Fenced
from foundation.config import Config, Fleet
from foundation.database import StoreError
from foundation.partition import partition_of
from ingest import IngestMetrics
from ingest.jetstream import JetStreamSource, NatsEndpoint
from liaowang.cluster.lease import Lease
from liaowang.pipeline import Pipeline
from rules.snapshot import PartitionSnapshotStore

__all__ = ["PartitionRunner", "partition_fleet", "ScopedAlertStore", "schema_lock"]

SCHEMA_LOCK = 0x4C57_5343  # "LWSC": PostgreSQL advisory lock key of store set-up

log = structlog.get_logger("worker")


def partition_fleet(fleet: Fleet, partition: int, partitions: int) -> Fleet:
    """The sites (and their sensors) of ``fleet`` that NATS maps to ``partition`` of ``partitions``."""
    sites = {k: v for k, v in fleet.sites.items() if partition_of(k, partitions) == partition}
    sensors = {k: v for k, v in fleet.sensors.items() if v.site_id in sites}
    # already validated as a whole at load; a subset of a valid fleet stays valid
    return Fleet.model_construct(sites=sites, sensors=sensors, profiles=fleet.profiles, tiers=fleet.tiers)


class ScopedAlertStore(AlertStore):
    """The shared alert store, whose open alarms are only those of ``sites`` (one partition's)."""

    def __init__(self, db: AlertDB, sites: frozenset[str]) -> None:
        super().__init__(db)
        self.sites = sites

    def open_alerts(self):  # type: ignore[override]
        return [a for a in super().open_alerts() if a.site_id in self.sites]


@contextmanager
def schema_lock(db: AlertDB) -> Iterator[None]:
    """Hold PostgreSQL's session advisory lock `SCHEMA_LOCK` while the stores create their tables.

    Two workers starting partitions at once both run ``CREATE TABLE IF NOT EXISTS``; PostgreSQL lets
    one of them fail with a unique violation on ``pg_type`` (seen here). One at a time, it cannot.
    Nothing to do on SQLite (one writer at a time anyway)."""
    if db.dialect.name != "postgresql":
        yield
        return
    db.conn.execute("SELECT pg_advisory_lock(?)", (SCHEMA_LOCK,))
    try:
        yield
    finally:
        db.conn.execute("SELECT pg_advisory_unlock(?)", (SCHEMA_LOCK,))


class LeaseExpired(Fenced):
    """This worker's lease of the partition ran out (or was revoked) before a commit: refused here, before
    the database is asked, so a worker that slept past its lease writes nothing even before its successor
    has recorded a higher epoch."""

    def __init__(self, partition: int, epoch: int) -> None:
        StoreError.__init__(self, f"partition {partition}: lease (epoch {epoch}) expired or revoked in this worker")
        self.partition, self.epoch, self.recorded = partition, epoch, None


class _FencedSnapshots(PartitionSnapshotStore):
    """The partition's snapshots (h-pg's store: rule state and stream position in one fenced transaction),
    saved with the position ``position()`` gives, and telling the runner when a newer epoch refused a save.

    The saved position is the last stream sequence acknowledged when the state was taken. Acks come only
    after a batch is evaluated and its alarms committed, so the state may cover a batch past the position
    (evaluated again after a takeover: the reorder buffer drops readings it has seen and ``signal_horizon``
    skips alarm effects already recorded), never the other way round."""

    on_fenced: Callable[[Fenced], None] | None = None
    position: Callable[[], int] = staticmethod(lambda: 0)

    def save(self, parts, saved_at, stream_seq=None):  # type: ignore[override]
        try:
            return super().save(parts, saved_at, stream_seq=self.position() if stream_seq is None else stream_seq)
        except Fenced as err:
            if self.on_fenced is not None:
                self.on_fenced(err)
            raise


class _ResumingSource(JetStreamSource):
    """A JetStream source that starts at the stream sequence after the partition's snapshot."""

    resume_from: int | None = None

    def start(self, from_seq: int | None = None) -> None:
        super().start(from_seq if from_seq is not None else self.resume_from)


class PartitionRunner:
    """Partition ``partition`` of ``partitions``, run under ``lease`` (its epoch fences every commit).

    Its pipeline runs the partition's alarm timers (escalations, repeats, flood digests: they write its alarm
    and outbox rows under its fence); the bureau lease holder delivers what they enqueue.

    ``on_fenced`` is called (from a pipeline thread) when a commit was refused: a newer owner exists.
    """

    def __init__(self, config: Config, data_dir: Path, endpoint: NatsEndpoint, database: str, partition: int,
                 partitions: int, lease: Lease, owner: str, on_fenced: Callable[[int], None],
                 clock: Callable[[], float] = time.time) -> None:
        self.partition = partition
        self.lease = lease
        self.fenced = threading.Event()
        self.valid_until = lease.valid_until  # monotonic; the worker moves it at every renewal
        self._on_fenced = on_fenced
        self.fleet = partition_fleet(config.fleet, partition, partitions)
        self._base = AlertDB(database)
        try:
            with schema_lock(self._base):  # stores create their tables: one worker at a time
                self.db = self._base.fence(partition, lease.epoch)
                self._guard(self.db)
                with self.db.transaction():
                    pass  # record our epoch first: the last owner can write nothing after this point
                self.snapshots = _FencedSnapshots(self.db, partition)
                self.snapshots.on_fenced = self._fenced
                resume = self.snapshots.stream_seq() or 0
                self.resumed_from = resume

                def source(pipeline: Pipeline, metrics: IngestMetrics) -> JetStreamSource:
                    made = _ResumingSource(endpoint, partition, partitions, pipeline.settings, pipeline.fleet, pipeline.sinks,
                                           metrics, pipeline.live, pipeline.handle_batch, pipeline.handle_gateway,
                                           pipeline.clock, supervisor=pipeline.supervisor,
                                           on_evaluation_failed=pipeline.handle_evaluation_failed)
                    made.resume_from = resume + 1
                    return made

                store = ScopedAlertStore(self.db, frozenset(self.fleet.sites))
                started = time.monotonic()
                self.pipeline = Pipeline(config, data_dir / f"p{partition}", fleet=self.fleet, alert_store=store,
                                         snapshots=self.snapshots, source=source, desks=False, clock=clock,
                                         client_suffix=f"-{owner}-p{partition}")
        except BaseException:
            self._base.close()
            raise
        self.pipeline.on_fenced = self._fenced
        source_obj = self.pipeline.ingest
        self.acked_through = lambda: max(resume, getattr(source_obj, "acked_through", 0))
        self.progress = (resume, time.monotonic())  # (acked seq, when it last moved): the worker's stall watch
        self.snapshots.position = lambda: max(resume, getattr(source_obj, "acked_through", 0))
        log.info("partition_restored", partition=partition, epoch=lease.epoch, sites=len(self.fleet.sites),
                 sensors=len(self.fleet.sensors), resume_after_seq=resume,
                 restore_s=round(time.monotonic() - started, 3))

    def _guard(self, db: AlertDB) -> None:
        """Every transaction of ``db`` first checks, on this process's clock, that the lease still holds."""
        unguarded = db.transaction

        @contextmanager
        def transaction() -> Iterator[Any]:
            if self.fenced.is_set() or time.monotonic() >= self.valid_until:
                err = LeaseExpired(self.partition, self.lease.epoch)
                self._fenced(err)
                raise err
            with unguarded() as conn:
                yield conn

        db.transaction = transaction  # type: ignore[method-assign]

    def _fenced(self, err: Fenced) -> None:
        if not self.fenced.is_set():
            self.fenced.set()
            log.error("partition_fenced", partition=self.partition, epoch=self.lease.epoch, recorded_epoch=err.recorded,
                      reason=str(err))
            self._on_fenced(self.partition)

    def owns(self, site_id: str) -> bool:
        """Whether the site is this partition's and the partition still runs here unfenced."""
        return site_id in self.fleet.sites and not self.fenced.is_set()

    def start(self) -> None:
        """Start consuming (from the snapshot's stream position on) and the pipeline's ticker."""
        self.pipeline.start()

    def stop(self) -> None:
        """Hand over cleanly: finish the batch in hand, snapshot rule state with the stream position, close."""
        self.pipeline.stop(final_snapshot=not self.fenced.is_set())

    def revoke(self) -> None:
        """The lease is lost or ran out: write nothing more. The connection is closed first, so a commit racing
        this can only fail (its batch stays unacknowledged and is redelivered to the next owner)."""
        self.fenced.set()
        try:
            self._base.close()
        except Exception as err:  # closing a connection that already failed: nothing to undo
            log.warning("partition_db_close_failed", partition=self.partition, error=str(err))
        try:
            self.pipeline.stop(final_snapshot=False)
        except Exception as err:  # its stores are closed under it: what matters is that it stopped
            log.warning("partition_stop_after_revoke_failed", partition=self.partition,
                        error=f"{type(err).__name__}: {err}")

    def health(self) -> dict:
        """The pipeline's health, for the worker's /healthz."""
        return self.pipeline.health()

"""Wiring: sinks, ingest, rules and alerting assembled from one `Config` (the composition root).

Data flows one way: ingest hands each stored batch to `Pipeline.handle_batch`, which runs the
rule engine, applies the signals to the alert lifecycle, and announces changes on MQTT and to
the SSE hub. A ticker re-checks site status (stale sensors, offline gateways) on the wall clock.

Nothing the rules decide is lost. Signals wait in a pending list until one transaction of
``alerts.db`` holds their alert rows, history, audit and notification outbox rows; when that
commit fails (a full disk) they stay pending and are retried, ingest keeps the batch
unacknowledged, and rule state is not snapshotted past them. Stages run under a `Supervisor`;
a dead stage, a low disk or a failing store turns ``/healthz`` to 503 with the reason and, where
the store can still take it, raises a ``_system`` alarm on the map.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path
from typing import Callable, Protocol, Sequence

import numpy as np
import orjson
import structlog
from prometheus_client import CollectorRegistry, Counter, Gauge

from alerting import AlertChange, AlertManager, AlertStore, MqttAlertPublisher, site_statuses
from alerting.audit import AuditLog
from alerting.db import AlertDB, Fenced
from alerting.eventlog import EventLog
from alerting.messages import Messages
from alerting.mute import OutOfService
from earlywarning import Notice, RiskMonitor, WarningDesk
from earlywarning.forest import DangerProposer
from earlywarning.incidents import IncidentDesk
from alerting.notify import Notifier
from alerting.requests import AppliedRequests
from alerting.suppress import Suppressions
from ingest import IngestMetrics, IngestService, LiveValues, SQLiteSink, Sink
from ingest.base import DownstreamUnavailable
from ingest.influx_v1 import InfluxV1Writer
from ingest.influx_v2 import InfluxV2Writer
from ingest.lineprotocol import LineEncoder
from ingest.spooled import SpooledSink
from foundation.malloc import release_freed_heap, tune_malloc
from foundation.config import Config, Fleet, Sensor
from liaowang.diskwatch import DiskSpace, DiskWatch
from foundation.domain import Family, ReadingBatch, Tier, iso
from rules.base import Signal
from liaowang.commands import apply_command
from liaowang.events import EventFeed, EventHub
from foundation.mqttclient import make_client
from foundation.supervise import StageState, StageStatus, Supervisor
from rules import RuleEngine
from rules.snapshot import SnapshotStore

log = structlog.get_logger("pipeline")

SYSTEM_SITE = "_system"
"""The site id of alerts about Liaowang itself (pipeline health); it belongs to no county."""
RETENTION_EVERY_S = 3600.0
APPLY_ATTEMPTS = 3
"""How often pending signals whose application raises something other than a storage error are retried
before they are given up (reported with a ``_system`` alarm); storage errors are retried for ever."""


class Source(Protocol):
    """What the pipeline needs of its ingest: `IngestService` (MQTT) or a worker's `ingest.jetstream.JetStreamSource`."""

    def start(self) -> None: ...
    def stop(self) -> None: ...
    def problems(self) -> list[str]: ...
    def dead_letter_late(self, late: ReadingBatch) -> None: ...
    @property
    def connected(self) -> bool: ...


SourceFactory = Callable[["Pipeline", IngestMetrics], Source]
"""Builds a pipeline's source from the pipeline (its handlers, sinks, live values) and its ingest metrics."""


class AlertingUnavailable(DownstreamUnavailable):
    """``alerts.db`` could not commit (a full disk, a locked or failing file): signals stay pending."""


class Pipeline:
    """Everything between the broker and the API, for one configuration and data directory."""

    def __init__(self, config: Config, data_dir: Path, clock: Callable[[], float] = time.time,
                 alert_db: AlertDB | None = None, *, fleet: Fleet | None = None,
                 alert_store: AlertStore | None = None, snapshots: SnapshotStore | None = None,
                 source: SourceFactory | None = None, desks: bool = True, client_suffix: str = "") -> None:
        """Everything from ``config``; a worker (liaowang/worker.py) builds one per owned partition instead with
        its partition's sites (``fleet``), the shared fenced ``alert_db`` or ``alert_store``, the partition's
        ``snapshots`` and a JetStream ``source``; ``desks=False`` leaves the bureau-wide desks (notification
        delivery, warnings and risk timers) to the bureau lease holder. With a ``source``, recovery restores
        the snapshot only: the source replays the stream from the snapshot's position."""
        tune_malloc()  # before the receiver child starts: it inherits the settings (foundation/malloc.py)
        self.config = config
        self.fleet = fleet or config.fleet
        self.desks = desks
        self.on_fenced: Callable[[Fenced], None] | None = None
        """Called when a commit was refused because a newer lease epoch holds the partition (workers only)."""
        self.settings = config.settings
        self.clock = clock
        self.started_at = clock()
        data_dir.mkdir(parents=True, exist_ok=True)
        self.registry = CollectorRegistry()
        self.hub = EventHub()
        self.live = LiveValues(self.fleet.sensor_ids, self.fleet.sensor_index)
        self.readings = SQLiteSink(data_dir / "readings.db")
        # one connection: one transaction spans every table (alerts.db, or PostgreSQL when storage.database_url)
        # a worker passes its fenced view: every alarm transaction then checks its lease's epoch
        self.alert_db = (alert_store.db if alert_store is not None
                         else alert_db or AlertDB(self.settings.storage.alerts_target(data_dir)))
        self.alert_store = alert_store or AlertStore(self.alert_db)
        self.audit = AuditLog(self.alert_db)
        self.suppressions = Suppressions(self.alert_db, config.alerting.maintenance)
        self.out_of_service = OutOfService(self.alert_db, config.alerting.out_of_service)
        self.alerts = AlertManager(self.alert_store, self.fleet, clock, config.alerting, self.audit, self.suppressions,
                                   self.out_of_service, Messages(self.fleet, config.wording))
        self.event_log = EventLog(self.alert_db)  # every alarm change, in its transaction: SSE resumes from it
        self.alerts.events = self.event_log
        self.feed = EventFeed(self.event_log, self.hub)
        self.engine = RuleEngine(self.fleet, config.rules, self.settings.rules, start=self.started_at)
        self._engine_lock = threading.RLock()
        self.snapshots = snapshots or SnapshotStore(data_dir / "rules.db")
        self._rerun_stored = source is None
        self._last_snapshot = self.started_at
        self._late = Counter("liaowang_rule_late_readings_total",
                             "Readings that arrived after a later reading of their sensor had been evaluated "
                             "(beyond rules.lateness_s): stored, not evaluated, dead-lettered as `late`",
                             registry=self.registry)
        self._held = Gauge("liaowang_rule_held_readings", "Readings held for event-time ordering", registry=self.registry)
        self._alert_changes = Counter("liaowang_alert_changes_total", "Alert changes by event", ["event"],
                                      registry=self.registry)
        self._open_alerts = Gauge("liaowang_alerts_open", "Open alerts by tier", ["tier"], registry=self.registry)
        self._publisher_client = make_client(self.settings.mqtt, f"{self.settings.mqtt.client_id}-alerts{client_suffix}")
        self.publisher = MqttAlertPublisher(self._publisher_client)
        self.notifier = Notifier(self.alert_db, config.alerting, self.fleet, self.alerts, clock,
                                 self._publish_notification)
        self.warnings = WarningDesk(self.alert_db, config.warnings, self.fleet, clock, publish=self._publish_warning,
                                    notify=self._notify_warning, audit=self.audit)
        self.risk = RiskMonitor(self.alert_db, config.risk, self.fleet, clock, alarms=self.alerts.open_alerts,
                                desk=self.warnings, audit=self.audit)
        self.incidents = IncidentDesk(self.alert_db, self.audit, clock)
        self.applied_requests = AppliedRequests(self.alert_db)  # a retried command is applied once
        self.danger_proposals = DangerProposer(self.warnings)  # one that fails waits and is retried by the ticker
        for rule in self.engine.by_id.values():  # forest danger 三–五级 proposes a warning (预警) for a person to verify
            if hasattr(rule, "propose_warning"):
                rule.propose_warning = self.danger_proposals
        self.supervisor = Supervisor()
        self._pending: list[Signal] = []          # signals not yet committed to alerts.db (guarded by the engine lock)
        self._uncommitted: ReadingBatch | None = None   # the batch whose signals are pending: not submitted twice
        self._alerting_problem: str | None = None
        self._apply_failures = 0
        self._retry_at = 0.0
        self._ticker_problem: str | None = None
        storage = self.settings.storage
        self.disks = DiskWatch({"data": data_dir, **{k: Path(v) for k, v in storage.watch_paths.items()}},
                               storage.min_free_bytes, storage.min_free_fraction)
        self._disk_state: list[DiskSpace] = []
        self._low_disks: set[str] = set()
        self._last_disk_check = float("-inf")
        self.broker_info: dict[str, str] = {"kind": "external", "guarantee": (
            "as the external broker's persistence allows (docs/broker.md)")}
        self._apply_failed = Counter("liaowang_alert_apply_failures_total",
                                     "Attempts to commit rule signals to alerts.db that failed (signals kept and retried)",
                                     ["kind"], registry=self.registry)
        self._pending_gauge = Gauge("liaowang_alert_pending_signals", "Rule signals waiting to be committed to alerts.db",
                                    registry=self.registry)
        self._disk_free = Gauge("liaowang_disk_free_bytes", "Free bytes on a watched volume", ["volume"],
                                registry=self.registry)
        self._stage_up = Gauge("liaowang_stage_up", "1 while a supervised stage runs, 0 while it is failed", ["stage"],
                               registry=self.registry)
        self._stage_restarts = Counter("liaowang_stage_restarts_total", "Supervised stage restarts", ["stage"],
                                       registry=self.registry)
        self._evaluation_failed = Counter("liaowang_evaluation_failed_readings_total",
                                          "Readings stored but dead-lettered as evaluation_failed", registry=self.registry)
        ingest_metrics = IngestMetrics(self.registry)
        self.sinks: list[Sink] = [self.readings, *self._remote_sinks(data_dir, ingest_metrics)]
        self.ingest: Source = source(self, ingest_metrics) if source is not None else IngestService(
            self.settings, self.fleet, self.sinks, ingest_metrics, self.live, self.handle_batch, self.handle_gateway,
            clock, supervisor=self.supervisor, on_evaluation_failed=self.handle_evaluation_failed)
        self._last_retention = 0.0
        self._observers: list[Callable[[ReadingBatch], None]] = []
        sites = np.array(self.fleet.sensor_sites)
        order = np.argsort(sites, kind="stable")
        names, starts = np.unique(sites[order], return_index=True)
        self._site_rows: dict[str, np.ndarray] = {
            str(name): rows.astype(np.int32) for name, rows in zip(names, np.split(order, starts[1:]))}
        self._status_lock = threading.Lock()
        self._statuses: dict[str, dict] = {}
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None
        self.recover()
        self.supervisor.set_listener(self._on_stage_change)

    def recover(self) -> None:
        """Restore rule state from the last snapshot and re-run readings stored since (nothing re-raised or lost)."""
        with self._engine_lock:
            outcome = self.engine.restore(self.snapshots)
            since = max(self.engine.resume_point(), self.clock() - self.settings.rules.recovery_window_s)
            rerun = changes = 0
            if self._rerun_stored and any(v.startswith("restored") for v in outcome.values()):
                for batch in self.readings.batches_since(since, self.fleet.sensor_ids, self.fleet.sensor_sites):
                    signals = self.engine.evaluate(batch)
                    rerun += len(batch)
                    changes += len(self.commit_signals(signals, publish=False)) if signals else 0
        self.recovery = {"rerun_readings": rerun, "alert_changes": changes}
        log.info("rules_recovered", snapshot=outcome.get("_engine.reorder", "none"), rerun_readings=rerun,
                 alert_changes=changes)

    def _remote_sinks(self, data_dir: Path, metrics: IngestMetrics) -> list[Sink]:
        """InfluxDB sinks named in configuration, each behind its own disk spool."""
        config, out = self.settings.sinks, []
        writers = [w for w in (InfluxV2Writer(config.influx_v2) if config.influx_v2 else None,
                               InfluxV1Writer(config.influx_v1) if config.influx_v1 else None) if w is not None]
        encoder = LineEncoder(self.fleet) if writers else None
        for writer in writers:
            out.append(SpooledSink(writer, encoder, data_dir / "spool" / writer.name, config.spool, metrics,
                                   self.handle_spool_health))
        return out

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Connect to the broker and start ingest and the status ticker."""
        mqtt = self.settings.mqtt
        self._publisher_client.connect_async(mqtt.host, mqtt.port, mqtt.keepalive_s)
        self._publisher_client.loop_start()
        self.check_disks()  # health knows the volumes from the first request on
        self.ingest.start()
        if self.desks:
            self.notifier.start()
        self._ticker = self.supervisor.spawn("status-ticker", self._tick)
        self.refresh_statuses()
        log.info("pipeline_started", sites=len(self.fleet.sites), sensors=len(self.fleet.sensors))

    def stop(self, final_snapshot: bool = True) -> None:
        """Stop the ticker and ingest (finishing queued work), snapshot the rules, then close the publisher and stores.

        ``final_snapshot=False``: a worker that lost its partition's lease writes nothing more."""
        self._stop.set()
        self.supervisor.stop()
        if self._ticker is not None:  # started (tools and tests drive a pipeline without starting it)
            self.ingest.stop()
            self._ticker.join(timeout=5)
        if final_snapshot:
            self.snapshot()
        self.snapshots.close()
        self._publisher_client.disconnect()
        self._publisher_client.loop_stop()
        if self.desks:
            self.notifier.stop()
        self.alert_store.close()
        self.hub.close_all()
        log.info("pipeline_stopped")

    # ------------------------------------------------------------------ the flow

    def handle_batch(self, batch: ReadingBatch) -> None:
        """Ingest's downstream: rules (in event-time order) → alert lifecycle → announcements.

        Raises `AlertingUnavailable` when the alert changes could not be committed: ingest then keeps
        the batch unacknowledged and calls again with the same batch, which is not evaluated twice —
        only its pending signals are committed again.
        """
        with self._engine_lock:
            if batch is not self._uncommitted:
                result = self.engine.submit(batch, self.clock())
                self._held.set(self.engine.buffer.held)
                if result.late is not None:
                    self._late.inc(len(result.late))
                    self.ingest.dead_letter_late(result.late)
                self._pending.extend(result.signals)
                self._uncommitted = batch
            self.commit_signals([])
            self._uncommitted = None
        for observer in self._observers:
            observer(batch)

    def commit_signals(self, signals: Sequence[Signal], publish: bool = True) -> list[AlertChange]:
        """Apply ``signals`` and every signal still pending in one transaction with their notifications.

        On a storage error nothing is kept of the attempt, the signals stay pending and
        `AlertingUnavailable` is raised; the next call (a retried batch, the ticker) tries again.
        Changes are published (MQTT, SSE, site status) only after the commit.
        """
        with self._engine_lock:
            self._pending.extend(signals)
            self._pending_gauge.set(len(self._pending))
            if not self._pending:
                return []
            now = time.monotonic()
            if self._alerting_problem is not None and now < self._retry_at:
                raise AlertingUnavailable(self._alerting_problem)
            try:
                with self.alerts.transaction():
                    changes = self.alerts.apply(self._pending)
                    self.notifier.on_changes(changes)
                    for change in changes:  # a detected forest fire opens its incident (火情) in the same transaction
                        if change.event == "raised":
                            self.incidents.open_from_alarm(change.alert)
            except (sqlite3.Error, OSError) as err:
                if isinstance(err, Fenced) and self.on_fenced is not None:
                    self.on_fenced(err)  # a newer owner holds the partition: the worker stops it
                self._apply_failed.labels("fenced" if isinstance(err, Fenced) else "storage").inc()  # fenced: lease lost
                self._alerting_problem = f"alerts.db: {type(err).__name__}: {str(err)[:200]}"
                self._retry_at = now + min(0.25 * 2 ** min(self._apply_failures, 5), 5.0)
                self._apply_failures += 1
                log.error("alert_commit_failed", pending=len(self._pending), error=str(err), retry_at_s=self._retry_at - now)
                raise AlertingUnavailable(self._alerting_problem) from err
            except Exception as err:
                self._apply_failed.labels("error").inc()
                self._apply_failures += 1
                log.error("alert_apply_failed", pending=len(self._pending), attempt=self._apply_failures,
                          error=f"{type(err).__name__}: {err}", exc_info=True)
                if self._apply_failures < APPLY_ATTEMPTS:
                    raise
                dropped, self._pending = self._pending, []
                self._apply_failures = 0
                self._report_dropped_signals(dropped, f"{type(err).__name__}: {str(err)[:200]}")
                raise
            if self._alerting_problem is not None:
                log.info("alert_commit_recovered", applied=len(self._pending), changes=len(changes))
            self._pending.clear()
            self._pending_gauge.set(0)
            self._alerting_problem = None
            self._apply_failures = 0
        if publish:
            self._publish_changes(changes)
        return changes

    def _report_dropped_signals(self, dropped: list[Signal], reason: str) -> None:
        """Signals the lifecycle keeps failing on (a bug): give them up loudly, with a ``_system`` alarm."""
        log.error("alert_signals_dropped", signals=len(dropped), reason=reason,
                  subjects=sorted({s.subject for s in dropped})[:50])
        self._pending.append(self._system_signal(
            "system.alerting", "alerting", Tier.RED, f"报警处理失败, {len(dropped)} 条规则信号未能生成报警: {reason}"))

    def flush_rules(self, everything: bool = False) -> None:
        """Evaluate held readings that have waited long enough on the clock (a quiet feed); all with ``everything``."""
        with self._engine_lock:
            result = self.engine.flush(self.clock(), everything)
            self._held.set(self.engine.buffer.held)
            if result.late is not None:
                self._late.inc(len(result.late))
                self.ingest.dead_letter_late(result.late)
            self.commit_signals(result.signals)

    def snapshot(self) -> None:
        """Save rule state to ``rules.db`` (periodically and on stop); skipped while signals wait to be
        committed, so a restart never resumes from rule state whose alarms were not stored."""
        with self._engine_lock:
            if self._pending:
                log.warning("rules_snapshot_deferred", pending=len(self._pending))
                return
            size = self.engine.snapshot(self.snapshots, self.clock())
        self._last_snapshot = self.clock()
        log.debug("rules_snapshot_saved", bytes=size)

    def add_batch_observer(self, observer: Callable[[ReadingBatch], None]) -> None:
        """Call ``observer`` with every stored and evaluated batch (benchmarks, live views)."""
        self._observers.append(observer)

    def handle_spool_health(self, sink: str, fill: float, over: bool) -> None:
        """A sink's spool crossed its warning level: raise (or resolve) a pipeline-health alert."""
        pct = round(fill * 100, 1)
        message = (f"{sink} 本地缓存已用 {pct}%: 数据库不可用, 数据暂存本地" if over
                   else f"{sink} 本地缓存回落至 {pct}%")
        signal = Signal(rule_id="pipeline.spool", kind="pipeline", subject=f"sink:{sink}", site_id=SYSTEM_SITE,
                        family=Family.SYSTEM, tier=Tier.ORANGE if over else None, level=None, value=pct,
                        threshold=round(self.settings.sinks.spool.warn_fraction * 100, 1), unit="%",
                        ts=self.clock(), message=message)
        self.raise_system([signal])

    def _system_signal(self, rule_id: str, subject: str, tier: Tier | None, message: str, value: float = 0.0,
                       unit: str = "") -> Signal:
        return Signal(rule_id=rule_id, kind="pipeline", subject=subject, site_id=SYSTEM_SITE, family=Family.SYSTEM,
                      tier=tier, level=None, value=value, threshold=None, unit=unit, ts=self.clock(), message=message)

    def raise_system(self, signals: Sequence[Signal]) -> None:
        """Commit signals about Liaowang itself; never raises: if alerts.db cannot take them now they stay
        pending (and /healthz says why) until it can."""
        try:
            self.commit_signals(signals)
        except Exception as err:
            log.error("system_alarm_pending", error=str(err), pending=len(self._pending))

    def handle_evaluation_failed(self, readings: int, reason: str) -> None:
        """Ingest gave up on a batch the rules or alerting kept failing on: count it, raise a `_system` alarm."""
        self._evaluation_failed.inc(readings)
        self.raise_system([self._system_signal(
            "system.evaluation", "evaluation", Tier.RED,
            f"规则计算失败: {readings} 条读数已存储但未评估 (死信 evaluation_failed): {reason}", value=readings)])

    def _on_stage_change(self, status: StageStatus) -> None:
        """A supervised stage failed or came back: gauge, restart count and a `_system` alarm."""
        self._stage_up.labels(status.name).set(0 if status.state is StageState.FAILED else 1)
        if status.state is StageState.FAILED:
            # high at its first failures (it restarts within seconds); urgent once it keeps failing: blind
            tier = Tier.RED if status.restarts >= 2 else Tier.ORANGE
            self.raise_system([self._system_signal("system.stage", f"stage:{status.name}", tier,
                                                   f"处理线程 {status.name} 故障, 正在重启 (已重启 {status.restarts} 次): "
                                                   f"{status.last_error}")])
        elif status.state is StageState.RUNNING and status.restarts:
            self._stage_restarts.labels(status.name).inc()
            self.raise_system([self._system_signal("system.stage", f"stage:{status.name}", None,
                                                   f"处理线程 {status.name} 已重启 (第 {status.restarts} 次)")])

    def watch_broker_store(self, path: Path | None, kind: str, guarantee: str) -> None:
        """The embedded broker's kind, its delivery guarantee and where it persists (watched for free space)."""
        self.broker_info = {"kind": kind, "guarantee": guarantee}
        if path is not None:
            self.disks.watch("broker", path)

    def check_disks(self) -> list[DiskSpace]:
        """Measure the watched volumes; raise or resolve a `_system` disk alarm as one crosses its floor."""
        self._last_disk_check = time.monotonic()
        state = self.disks.check()
        self._disk_state = state
        signals = []
        low_now = set()
        for disk in state:
            self._disk_free.labels(disk.name).set(disk.free_bytes)
            subject = f"disk:{disk.name}"
            if disk.low:
                low_now.add(subject)
            if disk.low and subject not in self._low_disks:
                log.error("disk_space_low", volume=disk.describe(), min_free_bytes=self.settings.storage.min_free_bytes)
                signals.append(self._system_signal("system.disk", subject, Tier.ORANGE,
                                                   f"磁盘空间不足: {disk.describe()}", value=disk.free_bytes, unit="B"))
            elif not disk.low and subject in self._low_disks:
                log.info("disk_space_recovered", volume=disk.describe())
                signals.append(self._system_signal("system.disk", subject, None, f"磁盘空间恢复: {disk.describe()}",
                                                   value=disk.free_bytes, unit="B"))
        for subject in self._low_disks - low_now - {f"disk:{d.name}" for d in state}:
            signals.append(self._system_signal("system.disk", subject, None, "磁盘空间恢复"))  # a volume no longer watched
        self._low_disks = low_now
        if signals:
            self.raise_system(signals)
        return state

    def handle_gateway(self, site_id: str, online: bool, at: float) -> None:
        """A gateway came or went: its sensors go stale at once (or may recover)."""
        with self._engine_lock:
            self.engine.gateway(site_id, online, self.clock())
            self.check_time_rules()

    def check_time_rules(self) -> None:
        """Run the time-driven rules (stale sensors) on the injected clock and announce changes.

        The stale rule marks a sensor as it signals; the signal then waits in the pending list until
        its alarm is committed (raises `AlertingUnavailable` meanwhile), so no transition is lost.
        """
        with self._engine_lock:
            signals = self.engine.check(self.clock())
            changes = self.commit_signals(signals)
        if not changes:
            self.refresh_statuses()

    def _publish_warning(self, topic: str, payload: bytes, retain: bool) -> bool:
        """Publish a warning (预警) document at QoS 1, retained while the warning is in force; tell the map (SSE)."""
        sent = self._publisher_client.publish(topic, payload, qos=1, retain=retain).rc == 0
        if payload:
            try:
                body = orjson.loads(payload)
                warning = body.get("warning", {})
                self.event_log.append("warning", warning.get("site_id"), {
                    "id": warning.get("id"), "event": body.get("event"), "site_id": warning.get("site_id"),
                    "level": warning.get("level")}, self.clock())
                self.feed.pump()
            except (orjson.JSONDecodeError, AttributeError, sqlite3.Error, OSError) as err:
                # the MQTT copy went out and the warning is stored; the map shows it at its next refresh
                log.error("warning_event_not_sent_to_map", topic=topic, error=str(err))
        return sent

    def _notify_warning(self, notice: Notice) -> None:
        """Queue a warning step's notification in the outbox (inside the desk's transaction)."""
        self.notifier.enqueue_document(notice.key, notice.receiver, notice.event, notice.title, notice.text,
                                       notice.warning, self.clock())

    def _publish_notification(self, topic: str, payload: bytes) -> bool:
        info = self._publisher_client.publish(topic, payload, qos=1)
        return info.rc == 0

    def check_alert_timers(self) -> None:
        """Shelf expiry, notification escalation, repeats and flood digests on the injected clock.

        They run in every pipeline, a worker's partition pipelines too: they write the partition's own alarm
        history and outbox rows, so they belong to its owner (under its fence); only delivery is the bureau's.
        Each runs as one transaction (`act`): an escalation's history entry and its documents commit together
        or, refused (fenced, storage), not at all — memory is reloaded and the next beat tries again."""
        now = self.clock()
        self.act(lambda: self.alerts.expire_shelves(now))
        try:
            self.act(lambda: self.notifier.tick(now))  # escalation changes are not re-notified: they enqueue their own
        except AlertingUnavailable:
            self.notifier.recover_digests()  # a digest rolled back with the rest: its group is due again
            raise

    def check_warning_timers(self) -> None:
        """Risk grades on the injected clock (unacknowledged alarms age, operations start and end; a grade
        at the proposal threshold proposes a warning), then proposals nobody verified in time escalate."""
        self.risk.tick(self.clock())
        self.warnings.tick(self.clock())
        self.warnings.retry_unsent()
        self.danger_proposals.retry()

    def act(self, action: Callable[[], list[AlertChange]]) -> list[AlertChange]:
        """Run a person's action (or a timer's) and queue its notifications in one transaction, then publish.

        Raises `AlertingUnavailable` when alerts.db cannot commit (nothing of the action is kept), and
        whatever the action raises (`LifecycleError` and its kinds) with nothing changed.
        """
        try:
            with self.alerts.transaction():
                changes = action()
                self.notifier.on_changes(changes)
        except (sqlite3.Error, OSError) as err:
            if isinstance(err, Fenced) and self.on_fenced is not None:
                self.on_fenced(err)
            raise AlertingUnavailable(f"alerts.db: {type(err).__name__}: {str(err)[:200]}") from err
        self._publish_changes(changes)
        return changes

    def command(self, request: dict, owns: Callable[[str], bool] | None = None) -> dict:
        """A person's action as a command (`liaowang.commands`), applied here; ``owns(site)``: whether this process
        owns the site's partition now (a worker's leases; default: every site, as in ``liaowang run``)."""
        return apply_command(self.alerts, request, self.act, owns=owns, clock=self.clock,
                             requests=self.applied_requests)

    def announce(self, changes: Sequence[AlertChange]) -> None:
        """Notify (outbox), publish alert changes on MQTT and SSE, then refresh site statuses."""
        self.notifier.on_changes(changes)
        self._publish_changes(changes)

    def _publish_changes(self, changes: Sequence[AlertChange]) -> None:
        """Publish committed alert changes on MQTT and SSE, then refresh site statuses."""
        for change in changes:
            self._alert_changes.labels(change.event).inc()
            self.publisher.publish_change(change)
        if changes:  # the SSE events were logged with the changes; the feed hands them to the streams
            self.feed.pump()
            self.refresh_statuses()

    # ------------------------------------------------------------------ status

    def sensor_stale(self, sensor: Sensor, now: float | None = None) -> bool:
        """The stale rule's verdict: no usable reading for ``stale_periods`` periods, or gateway offline."""
        return self.engine.stale.is_stale(sensor.id, self.clock() if now is None else now)

    def site_offline(self, site_id: str) -> bool:
        """Whether every sensor of the site is stale."""
        rows = self._site_rows.get(site_id)
        return rows is not None and bool(self.engine.stale.stale_mask(self.clock())[rows].all())

    def refresh_statuses(self) -> dict[str, dict]:
        """Recompute every site's status; publish the ones that changed (MQTT retained and SSE)."""
        with self._status_lock:
            fresh = site_statuses(self.fleet, self.alerts.open_alerts(), self.site_offline)
            changed = {site_id: status for site_id, status in fresh.items() if self._statuses.get(site_id) != status}
            if changed:
                try:  # logged for SSE resume; if the store cannot take it now, the next refresh tries again
                    with self.alert_db.transaction():
                        for site_id, status in changed.items():
                            self.event_log.append("site", site_id, {"site_id": site_id, **status,
                                                                    "updated_at": iso(self.clock())}, self.clock())
                except (sqlite3.Error, OSError) as err:
                    log.error("site_events_not_logged", sites=len(changed), error=str(err)[:200])
                    # keep the old status of those sites, so the next refresh sees them changed and retries
                    fresh = {s: self._statuses[s] if s in changed else v for s, v in fresh.items()
                             if s not in changed or s in self._statuses}
                    changed = {}
                for site_id, status in changed.items():
                    self.publisher.publish_site_status(site_id, status)
                self.feed.pump()
            self._statuses = fresh
            counts: dict[str, int] = {"blue": 0, "yellow": 0, "orange": 0, "red": 0}
            for alert in self.alerts.open_alerts():
                counts[alert.tier.colour] += 1
            for tier, n in counts.items():
                self._open_alerts.labels(tier).set(n)
            return fresh

    def statuses(self) -> dict[str, dict]:
        """The last computed status of every site."""
        with self._status_lock:
            return dict(self._statuses) or site_statuses(self.fleet, self.alerts.open_alerts(), self.site_offline)

    def _tick(self) -> None:
        """The status ticker: quiet-feed flushes, time rules, alert timers, disks, snapshots, retention.

        A beat that fails (alerts.db cannot commit, say) is reported in /healthz and tried again at the
        next beat; what it had to commit stays pending, so nothing is lost meanwhile.
        """
        beat = 0
        while not self._stop.wait(0.5):
            beat += 1
            duties: list[Callable[[], object]] = []
            if time.monotonic() - self._last_disk_check >= self.settings.storage.disk_check_every_s:
                duties.append(self.check_disks)
            duties.append(self.flush_rules)
            if beat % 4 == 0:
                duties += [self.check_time_rules, self.check_alert_timers]
                if self.desks:
                    duties.append(self.check_warning_timers)
            if self.clock() - self._last_snapshot >= self.settings.rules.snapshot_every_s:
                duties.append(self.snapshot)
            if self.clock() - self._last_retention >= RETENTION_EVERY_S:
                duties.append(self.apply_retention)
            duties.append(release_freed_heap)  # at most every 10 s a process: a drained burst's heap goes back
            problems = []
            for duty in duties:  # each on its own: one failing (a full disk) must not starve the others
                try:
                    duty()
                except AlertingUnavailable as err:
                    problems.append(str(err))
                except (sqlite3.Error, OSError) as err:  # a store that cannot write: reported, tried next beat
                    problems.append(f"{getattr(duty, '__name__', duty)}: {type(err).__name__}: {str(err)[:200]}")
                    log.error("ticker_duty_failed", duty=getattr(duty, "__name__", str(duty)), error=str(err))
                except Exception as err:
                    problems.append(f"{getattr(duty, '__name__', duty)}: {type(err).__name__}: {str(err)[:200]}")
                    log.error("ticker_duty_failed", duty=getattr(duty, "__name__", str(duty)), error=str(err),
                              exc_info=True)
            self._ticker_problem = "; ".join(dict.fromkeys(problems)) or None

    def apply_retention(self) -> int:
        """Delete readings older than the retention period, in small transactions (ingest keeps going)."""
        self._last_retention = self.clock()
        cutoff = self._last_retention - self.settings.storage.retention_days * 86_400
        deleted = self.readings.delete_older_than(cutoff)
        self.event_log.prune(self._last_retention)  # the SSE resume window (a client older than it reloads)
        if deleted:
            log.info("retention_applied", deleted=deleted, cutoff=iso(cutoff))
        return deleted

    def health(self) -> dict:
        """Readiness of the broker link, the stores, the stages and the disks (for /healthz).

        ``ok`` is false — and /healthz answers 503 — with every reason in ``problems``: the broker
        unreachable, a store not answering, a stage failed (waiting for its restart), a volume below
        its free-space floor, batches or alarm transitions waiting because a store cannot write.
        """
        failing = self.supervisor.failing()
        low = [d for d in self._disk_state if d.low]
        ingest_problems = self.ingest.problems()
        checks = {"broker": self.ingest.connected, "readings_store": self.readings.ping(),
                  "alerts_store": self.alert_store.ping(), "stages": not failing, "disk": not low,
                  "alerting": self._alerting_problem is None and not ingest_problems,
                  "ticker": self._ticker_problem is None, "notifications": self.notifier.problem is None,
                  "warnings_published": not self.warnings.unsent,
                  "warning_proposals": not self.danger_proposals.pending}
        problems = [f"stage {s.name} failed ({s.last_error}); restarting" for s in failing]
        problems += [f"disk space low: {d.describe()}" for d in low]
        problems += ingest_problems
        if self._alerting_problem:
            problems.append(f"{len(self._pending)} alarm transitions waiting to be stored: {self._alerting_problem}")
        if self._ticker_problem and self._ticker_problem != self._alerting_problem:
            problems.append(f"status ticker: {self._ticker_problem}")
        if self.notifier.problem:
            problems.append(f"notification delivery failing, documents stay queued: {self.notifier.problem}")
        if waiting := self.danger_proposals.pending:
            problems.append(f"{len(waiting)} forest danger proposal(s) the warning desk could not take, retrying: "
                            + waiting[-1][2])
        if unsent := self.warnings.unsent:
            problems.append(f"{len(unsent)} warning message(s) not taken by the broker, retrying: "
                            + "; ".join(f"{w}: {why}" for w, why in list(unsent.items())[:5]))
        for name, ok in checks.items():
            if not ok and name in ("broker", "readings_store", "alerts_store"):
                problems.append(f"{name} not available")
        ok = all(checks.values())
        dead = failing or not checks["broker"] or not checks["readings_store"] or not checks["alerts_store"]
        return {"ok": ok, "status": "ok" if ok else ("failing" if dead else "degraded"), "checks": checks,
                "problems": problems, "stages": {n: s.to_json() for n, s in self.supervisor.statuses().items()},
                "disks": [d.to_json() for d in self._disk_state], "pending_alarm_transitions": len(self._pending),
                "broker_kind": self.broker_info["kind"], "delivery_guarantee": self.broker_info["guarantee"]}

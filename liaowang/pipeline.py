"""Wiring: sinks, ingest, rules and alerting assembled from one `Config` (the composition root).

Data flows one way: ingest hands each stored batch to `Pipeline.handle_batch`, which runs the
rule engine, applies the signals to the alert lifecycle, and announces changes on MQTT and to
the SSE hub. A ticker re-checks site status (stale sensors, offline gateways) on the wall clock.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import structlog
from prometheus_client import CollectorRegistry, Counter, Gauge

from alerting import AlertChange, AlertManager, AlertStore, MqttAlertPublisher, site_statuses
from alerting.audit import AuditLog
from alerting.notify import Notifier
from alerting.suppress import Suppressions
from ingest import IngestMetrics, IngestService, LiveValues, SQLiteSink, Sink
from ingest.influx_v1 import InfluxV1Writer
from ingest.influx_v2 import InfluxV2Writer
from ingest.lineprotocol import LineEncoder
from ingest.spooled import SpooledSink
from liaowang.config import Config, Sensor
from liaowang.domain import Family, ReadingBatch, Tier, iso
from rules.base import Signal
from liaowang.events import EventHub
from liaowang.mqttclient import make_client
from rules import RuleEngine
from rules.snapshot import SnapshotStore

log = structlog.get_logger("pipeline")

SYSTEM_SITE = "_system"
"""The site id of alerts about Liaowang itself (pipeline health); it belongs to no county."""
RETENTION_EVERY_S = 3600.0


class Pipeline:
    """Everything between the broker and the API, for one configuration and data directory."""

    def __init__(self, config: Config, data_dir: Path, clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self.fleet = config.fleet
        self.settings = config.settings
        self.clock = clock
        self.started_at = clock()
        data_dir.mkdir(parents=True, exist_ok=True)
        self.registry = CollectorRegistry()
        self.hub = EventHub()
        self.live = LiveValues(self.fleet.sensor_ids, self.fleet.sensor_index)
        self.readings = SQLiteSink(data_dir / "readings.db")
        self.alert_store = AlertStore(data_dir / "alerts.db")
        self.audit = AuditLog(data_dir / "alerts.db")
        self.suppressions = Suppressions(data_dir / "alerts.db", config.alerting.maintenance)
        self.alerts = AlertManager(self.alert_store, self.fleet, clock, config.alerting, self.audit, self.suppressions)
        self.engine = RuleEngine(self.fleet, config.rules, self.settings.rules, start=self.started_at)
        self._engine_lock = threading.RLock()
        self.snapshots = SnapshotStore(data_dir / "rules.db")
        self._last_snapshot = self.started_at
        self._late = Counter("liaowang_rule_late_readings_total",
                             "Readings that arrived after a later reading of their sensor had been evaluated "
                             "(beyond rules.lateness_s): stored, not evaluated, dead-lettered as `late`",
                             registry=self.registry)
        self._held = Gauge("liaowang_rule_held_readings", "Readings held for event-time ordering", registry=self.registry)
        self._alert_changes = Counter("liaowang_alert_changes_total", "Alert changes by event", ["event"],
                                      registry=self.registry)
        self._open_alerts = Gauge("liaowang_alerts_open", "Open alerts by tier", ["tier"], registry=self.registry)
        self._publisher_client = make_client(self.settings.mqtt, f"{self.settings.mqtt.client_id}-alerts")
        self.publisher = MqttAlertPublisher(self._publisher_client)
        self.notifier = Notifier(data_dir / "alerts.db", config.alerting, self.fleet, self.alerts, clock,
                                 self._publish_notification)
        ingest_metrics = IngestMetrics(self.registry)
        self.sinks: list[Sink] = [self.readings, *self._remote_sinks(data_dir, ingest_metrics)]
        self.ingest = IngestService(self.settings, self.fleet, self.sinks, ingest_metrics,
                                    self.live, self.handle_batch, self.handle_gateway, clock)
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
        self._ticker = threading.Thread(target=self._tick, name="status-ticker", daemon=True)
        self.recover()

    def recover(self) -> None:
        """Restore rule state from the last snapshot and re-run readings stored since (nothing re-raised or lost)."""
        with self._engine_lock:
            outcome = self.engine.restore(self.snapshots)
            since = max(self.engine.resume_point(), self.clock() - self.settings.rules.recovery_window_s)
            rerun = changes = 0
            if any(v.startswith("restored") for v in outcome.values()):
                for batch in self.readings.batches_since(since, self.fleet.sensor_ids, self.fleet.sensor_sites):
                    signals = self.engine.evaluate(batch)
                    rerun += len(batch)
                    changes += len(self.alerts.apply(signals)) if signals else 0
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
        self.ingest.start()
        self.notifier.start()
        self._ticker.start()
        self.refresh_statuses()
        log.info("pipeline_started", sites=len(self.fleet.sites), sensors=len(self.fleet.sensors))

    def stop(self) -> None:
        """Stop the ticker and ingest (finishing queued work), snapshot the rules, then close the publisher and stores."""
        self._stop.set()
        if self._ticker.is_alive():  # started (tools and tests drive a pipeline without starting it)
            self.ingest.stop()
            self._ticker.join(timeout=5)
        self.snapshot()
        self.snapshots.close()
        self._publisher_client.disconnect()
        self._publisher_client.loop_stop()
        self.notifier.stop()
        self.alert_store.close()
        self.hub.close_all()
        log.info("pipeline_stopped")

    # ------------------------------------------------------------------ the flow

    def handle_batch(self, batch: ReadingBatch) -> None:
        """Ingest's downstream: rules (in event-time order) → alert lifecycle → announcements."""
        with self._engine_lock:
            result = self.engine.submit(batch, self.clock())
            self._held.set(self.engine.buffer.held)
            if result.late is not None:
                self._late.inc(len(result.late))
                self.ingest.dead_letter_late(result.late)
            if result.signals:
                self.announce(self.alerts.apply(result.signals))
        for observer in self._observers:
            observer(batch)

    def flush_rules(self, everything: bool = False) -> None:
        """Evaluate held readings that have waited long enough on the clock (a quiet feed); all with ``everything``."""
        with self._engine_lock:
            result = self.engine.flush(self.clock(), everything)
            self._held.set(self.engine.buffer.held)
            if result.signals:
                self.announce(self.alerts.apply(result.signals))

    def snapshot(self) -> None:
        """Save rule state to ``rules.db`` (periodically and on stop)."""
        with self._engine_lock:
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
        self.announce(self.alerts.apply([signal]))

    def handle_gateway(self, site_id: str, online: bool, at: float) -> None:
        """A gateway came or went: its sensors go stale at once (or may recover)."""
        self.engine.gateway(site_id, online)
        self.check_time_rules()

    def check_time_rules(self) -> None:
        """Run the time-driven rules (stale sensors) on the injected clock and announce changes."""
        with self._engine_lock:
            signals = self.engine.check(self.clock())
        changes = self.alerts.apply(signals) if signals else []
        if changes:
            self.announce(changes)
        else:
            self.refresh_statuses()

    def _publish_notification(self, topic: str, payload: bytes) -> bool:
        info = self._publisher_client.publish(topic, payload, qos=1)
        return info.rc == 0

    def check_alert_timers(self) -> None:
        """Shelf expiry, notification escalation, repeats and flood digests on the injected clock."""
        changes = self.alerts.expire_shelves(self.clock())
        changes += self.notifier.tick(self.clock())
        if changes:
            self.announce(changes)

    def announce(self, changes: Sequence[AlertChange]) -> None:
        """Notify, publish alert changes on MQTT and SSE, then refresh site statuses."""
        self.notifier.on_changes(changes)
        for change in changes:
            self._alert_changes.labels(change.event).inc()
            self.publisher.publish_change(change)
            self.hub.publish("alert", {**change.alert.to_json(), "event": change.event})
        if changes:
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
            for site_id, status in fresh.items():
                if self._statuses.get(site_id) != status:
                    self.publisher.publish_site_status(site_id, status)
                    self.hub.publish("site", {"site_id": site_id, **status, "updated_at": iso(self.clock())})
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
        beat = 0
        while not self._stop.wait(0.5):
            beat += 1
            try:
                self.flush_rules()
                if beat % 4 == 0:
                    self.check_time_rules()
                    self.check_alert_timers()
                if self.clock() - self._last_snapshot >= self.settings.rules.snapshot_every_s:
                    self.snapshot()
                if self.clock() - self._last_retention >= RETENTION_EVERY_S:
                    self.apply_retention()
            except Exception:
                log.exception("status_refresh_failed")

    def apply_retention(self) -> int:
        """Delete readings older than the retention period, in small transactions (ingest keeps going)."""
        self._last_retention = self.clock()
        cutoff = self._last_retention - self.settings.storage.retention_days * 86_400
        deleted = self.readings.delete_older_than(cutoff)
        if deleted:
            log.info("retention_applied", deleted=deleted, cutoff=iso(cutoff))
        return deleted

    def health(self) -> dict:
        """Readiness of the broker link and the stores (for /healthz)."""
        checks = {"broker": self.ingest.connected, "readings_store": self.readings.ping(),
                  "alerts_store": self.alert_store.ping()}
        return {"ok": all(checks.values()), "checks": checks}

"""What the HTTP API needs from the rest of Liaowang (`Backend`), and its form without a pipeline (`ApiBackend`).

`liaowang.api.create_app` serves any `Backend`. ``liaowang run`` gives it the in-process `Pipeline`;
the stateless ``liaowang api`` role gives it an `ApiBackend`, which holds no rule engine, no ingest
and no alarm in memory:

- reads come from the shared store (alarms, history, audit, warnings, users, …: the AlertDB named by
  configuration; until PostgreSQL is wired, the ``alerts.db`` of a data dir another process writes);
- live events come from the event log (`alerting.eventlog`), tailed by an `EventFeed` — woken by
  PostgreSQL's NOTIFY when on PostgreSQL, polling every 250 ms otherwise — and fanned out to this
  process's SSE clients, each resuming from its ``Last-Event-ID``;
- a site's status is the latest ``site`` event its owner logged (else derived from its open alarms);
- people's alarm actions go to the site's owner as commands over NATS (`CommandClient`); when no
  owner answers, the route answers 503 "retry" — never a silent success.

Any number of ``liaowang api`` processes can serve the same store.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path
from typing import Any, Callable, Protocol

import orjson
import structlog
from prometheus_client import CollectorRegistry, Counter, Gauge

from alerting import Alert, AlertStore, site_statuses
from alerting.audit import AuditLog
from alerting.db import AlertDB
from alerting.eventlog import EventLog
from alerting.messages import Messages
from alerting.mute import OutOfService
from alerting.notify import Notifier
from alerting.suppress import Suppressions
from earlywarning import Notice, RiskMonitor, WarningDesk
from earlywarning.incidents import IncidentDesk
from foundation.config import Config, Sensor
from foundation.mqttclient import make_client
from ingest import SQLiteSink
from liaowang.commands import OwnerUnavailable
from liaowang.events import EventFeed, EventHub
from rules import RuleEngine

__all__ = ["ApiBackend", "Backend"]

log = structlog.get_logger("api")


class Backend(Protocol):
    """The narrow interface `create_app` is built on (attributes as `Pipeline` names them).

    Reads: ``alert_store``, ``alerts.open_alerts()``/``shelved()``/``messages``, ``statuses()``,
    ``live.get(sensor)``, ``readings.recent(...)``, ``sensor_stale(sensor, now)``, the desks
    (``warnings``, ``risk``, ``incidents``), ``audit``, ``suppressions.all()``, ``out_of_service.all()``,
    ``notifier.deliveries(alert)``; live events: ``hub`` and ``event_log``; actions: ``command(request)``
    (`liaowang.commands` replies); operations: ``health()``, ``registry``.
    """

    config: Config
    clock: Callable[[], float]
    alert_db: AlertDB
    alert_store: AlertStore
    event_log: EventLog
    hub: EventHub

    def statuses(self) -> dict[str, dict]: ...

    def sensor_stale(self, sensor: Sensor, now: float | None = None) -> bool: ...

    def command(self, request: dict) -> dict: ...

    def health(self) -> dict: ...


class _Fresh:
    """A registry another process writes (maintenance windows, out of service), re-read on every listing."""

    def __init__(self, registry: Suppressions | OutOfService) -> None:
        self._registry = registry

    def all(self) -> list[Any]:
        self._registry.reload()
        return self._registry.all()


class _AlarmReads:
    """The reads the API makes of the alarm manager, answered from the store (the owner holds the live copy)."""

    def __init__(self, store: AlertStore, messages: Messages) -> None:
        self._store = store
        self.messages = messages

    def open_alerts(self) -> list[Alert]:
        return self._store.open_alerts()

    def shelved(self) -> list[Alert]:
        return [a for a in self._store.open_alerts() if a.shelved_until is not None]


class _LatestReadings:
    """``live.get(sensor_id)``: the newest stored reading of a sensor (the api role sees no live feed)."""

    def __init__(self, readings: SQLiteSink) -> None:
        self._readings = readings

    def get(self, sensor_id: str) -> Any:
        rows = self._readings.recent(sensor_id, None, None, 1)
        return rows[0] if rows else None


class ApiBackend:
    """The `Backend` of the stateless ``liaowang api`` role over a shared store and NATS commands.

    ``commands`` sends actions to owners (None: actions answer 503, e.g. a read-only API).
    ``wait_for_events`` blocks until the store announces new events or the timeout passes (a
    PostgreSQL LISTEN: `liaowang.pgnotify.listener`); without it the feed polls every 250 ms.
    ``alert_db``: the shared store (PostgreSQL's AlertDB); default the ``alerts.db`` of ``data_dir``.
    """

    def __init__(self, config: Config, data_dir: Path, commands: Any | None = None,
                 clock: Callable[[], float] = time.time,
                 wait_for_events: Callable[[float], object] | None = None, alert_db: AlertDB | None = None) -> None:
        self.config = config
        self.fleet = config.fleet
        self.settings = config.settings
        self.clock = clock
        self.started_at = clock()
        self.registry = CollectorRegistry()
        self._commands_total = Counter("liaowang_api_commands_total", "Commands sent to partition owners by outcome",
                                       ["outcome"], registry=self.registry)
        self.alert_db = alert_db if alert_db is not None else AlertDB(data_dir / "alerts.db")
        self.alert_store = AlertStore(self.alert_db)
        self.audit = AuditLog(self.alert_db)
        self._suppressions = Suppressions(self.alert_db, config.alerting.maintenance)
        self._out_of_service = OutOfService(self.alert_db, config.alerting.out_of_service)
        self.suppressions = _Fresh(self._suppressions)
        self.out_of_service = _Fresh(self._out_of_service)
        self.alerts = _AlarmReads(self.alert_store, Messages(self.fleet, config.wording))
        self.event_log = EventLog(self.alert_db)
        self.hub = EventHub()
        self.feed = EventFeed(self.event_log, self.hub)
        self._wait = wait_for_events
        Gauge("liaowang_sse_clients", "SSE streams open on this API process", registry=self.registry).set_function(
            self.hub.count)
        Gauge("liaowang_event_feed_lag", "Logged events this process has not yet handed to its SSE streams",
              registry=self.registry).set_function(lambda: max(0, self.event_log.head() - self.feed.position))
        data_dir.mkdir(parents=True, exist_ok=True)
        self.readings = SQLiteSink(data_dir / "readings.db")  # a liaowang run's; empty in a cluster (readings: Influx)
        self.live = _LatestReadings(self.readings)
        self.engine = RuleEngine(self.fleet, config.rules, self.settings.rules, start=self.started_at)  # zones of rules
        self._mqtt = make_client(self.settings.mqtt, f"{self.settings.mqtt.client_id}-api-{id(self):x}")
        self.notifier = Notifier(self.alert_db, config.alerting, self.fleet, None, clock,  # type: ignore[arg-type]
                                 lambda topic, payload: False)  # never started: deliveries are the owner's
        self.warnings = WarningDesk(self.alert_db, config.warnings, self.fleet, clock, publish=self._publish_warning,
                                    notify=self._notify_warning, audit=self.audit)
        self.risk = RiskMonitor(self.alert_db, config.risk, self.fleet, clock, alarms=self.alerts.open_alerts,
                                desk=self.warnings, audit=self.audit)
        self.incidents = IncidentDesk(self.alert_db, self.audit, clock)
        self.commands = commands
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._ticker_problem: str | None = None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Tail the event log for this process's SSE clients; retry unsent warning messages."""
        mqtt = self.settings.mqtt
        self._mqtt.connect_async(mqtt.host, mqtt.port, mqtt.keepalive_s)
        self._mqtt.loop_start()
        for name, target in (("event-feed", lambda: self.feed.run(self._stop, self._wait)), ("api-ticker", self._tick)):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)
        log.info("api_backend_started", position=self.feed.position)

    def stop(self) -> None:
        """End the streams and threads, close the command link and the store."""
        self._stop.set()
        self.hub.close_all()
        for thread in self._threads:
            thread.join(timeout=5)
        if self.commands is not None:
            self.commands.close()
        self._mqtt.disconnect()
        self._mqtt.loop_stop()
        self.alert_store.close()

    def _tick(self) -> None:
        while not self._stop.wait(2.0):
            try:
                self.warnings.retry_unsent()
                self._ticker_problem = None
            except Exception as err:  # said in /healthz; tried again next beat
                self._ticker_problem = f"{type(err).__name__}: {str(err)[:200]}"
                log.error("api_ticker_failed", error=self._ticker_problem)

    # ------------------------------------------------------------------ warnings (预警) written from this role

    def _publish_warning(self, topic: str, payload: bytes, retain: bool) -> bool:
        """Publish a warning document (QoS 1) and log its SSE event, as the pipeline does."""
        sent = self._mqtt.publish(topic, payload, qos=1, retain=retain).rc == 0
        if payload:
            try:
                body = orjson.loads(payload)
                warning = body.get("warning", {})
                self.event_log.append("warning", warning.get("site_id"), {
                    "id": warning.get("id"), "event": body.get("event"), "site_id": warning.get("site_id"),
                    "level": warning.get("level")}, self.clock())
            except (orjson.JSONDecodeError, AttributeError, sqlite3.Error, OSError) as err:
                # the warning is stored and its MQTT copy went out; the maps show it at their next refresh
                log.error("warning_event_not_sent_to_map", topic=topic, error=str(err)[:200])
        return sent

    def _notify_warning(self, notice: Notice) -> None:
        """Queue the notification in the shared outbox; the owner's notifier delivers it."""
        self.notifier.enqueue_document(notice.key, notice.receiver, notice.event, notice.title, notice.text,
                                       notice.warning, self.clock())

    # ------------------------------------------------------------------ the Backend interface

    def statuses(self) -> dict[str, dict]:
        """Each site's latest status its owner logged; a site with none in the log's window, from its open alarms."""
        derived = site_statuses(self.fleet, self.alerts.open_alerts(), lambda site_id: False)
        logged = self.event_log.latest("site")
        out = {}
        for site_id, status in derived.items():
            event = logged.get(site_id)
            out[site_id] = ({"status": event["status"], "alerts": event.get("alerts", {})}
                            if event and "status" in event else status)
        return out

    def sensor_stale(self, sensor: Sensor, now: float | None = None) -> bool:
        """No stored reading within ``rules.stale_periods`` periods (the owner's stale rule also knows gateways)."""
        last = self.live.get(sensor.id)
        now = self.clock() if now is None else now
        return last is None or now - last.ts > self.settings.rules.stale_periods * sensor.period_s

    def command(self, request: dict) -> dict:
        """Send an action to the owner of its site's partition; its reply, or ``owner_unavailable``."""
        if self.commands is None:
            self._commands_total.labels("no_transport").inc()
            return {"ok": False, "error": "owner_unavailable",
                    "detail": "this API has no command link to the workers (start it with --nats): retry later"}
        try:
            reply = self.commands.send(str(request.get("site_id")), request)
        except OwnerUnavailable as err:
            self._commands_total.labels("owner_unavailable").inc()
            return {"ok": False, "error": "owner_unavailable", "detail": f"owner unavailable, retry: {err}"}
        self._commands_total.labels("ok" if reply["ok"] else reply.get("error", "error")).inc()
        return reply

    def health(self) -> dict:
        """Readiness of the store, the event feed and the command link (for /healthz)."""
        checks = {"alerts_store": self.alert_store.ping(), "event_feed": self.feed.problem is None,
                  "commands": self.commands is not None and self.commands.connected,
                  "ticker": self._ticker_problem is None, "warnings_published": not self.warnings.unsent}
        problems = [f"{name} not available" for name, ok in checks.items() if not ok]
        if self.feed.problem:
            problems.append(f"event log not readable: {self.feed.problem}")
        ok = all(checks.values())
        return {"ok": ok, "status": "ok" if ok else ("failing" if not checks["alerts_store"] else "degraded"),
                "role": "api", "checks": checks, "problems": problems, "stages": {}, "disks": [],
                "pending_alarm_transitions": 0, "event_position": self.feed.position,
                "broker_kind": "external", "delivery_guarantee": "the workers' (this role ingests nothing)"}

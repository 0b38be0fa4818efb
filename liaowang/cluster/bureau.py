"""The bureau desk of a scaled-out deployment: what runs once for the whole bureau, on the holder of
the ``bureau`` lease.

Done here: notification delivery — the outbox every partition owner fills (in its fenced alarm
transactions) is delivered by this one process, so a document is sent by one sender — and the
bureau-wide timers of ``liaowang run``'s `Pipeline.check_warning_timers`: risk grading (over every
open alarm of the shared store, whichever partition owns it), warning (预警) proposals nobody verified
in time escalating, and warning messages not yet published retried. Escalations, repeats and flood
digests of alarms are the partition owners' (they write alarm rows): see `PartitionRunner`.

Fencing: given the ``bureau`` lease's epoch, every transaction of the desk takes the row of the
reserved partition `BUREAU_PARTITION` in ``partition_fence`` first (as a partition owner's do), and the
desk records its epoch there when it is built: a paused old holder that wakes up can write nothing
more. What it can still do twice is what happens outside the database before its next write: publish
a warning message again (retained, the same document) and send a notification already in flight
(its ``sent`` mark is refused, so the new holder sends it once more).
"""

from __future__ import annotations

import threading
import time
from typing import Callable

import orjson
import structlog

from alerting import AlertManager, AlertStore
from alerting.audit import AuditLog
from alerting.db import AlertDB, Fenced
from alerting.eventlog import EventLog
from alerting.notify import Notifier
from earlywarning import Notice, RiskMonitor, WarningDesk
from foundation.config import Config
from foundation.mqttclient import make_client
from liaowang.cluster.runner import schema_lock

__all__ = ["BUREAU_PARTITION", "BureauDesk"]

BUREAU_PARTITION = 2**31 - 1
"""The reserved ``partition_fence`` row of the bureau lease's epoch: partitions are 0 … P-1 and fences are
non-negative, so the largest 32-bit integer (no deployment has that many partitions)."""
TICK_EVERY_S = 2.0

log = structlog.get_logger("worker")


class BureauDesk:
    """Notification delivery from the shared outbox, risk and warning timers, with its own database connection
    and MQTT client; fenced by the ``bureau`` lease's ``epoch`` when given."""

    def __init__(self, config: Config, database: str, owner: str, epoch: int | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self._base = AlertDB(database)
        self.epoch = epoch
        self.clock = clock
        self.fenced = threading.Event()
        mqtt = config.settings.mqtt
        self._client = make_client(mqtt, f"{mqtt.client_id}-bureau-{owner}")
        try:
            with schema_lock(self._base):
                self.db = self._base if epoch is None else self._base.fence(BUREAU_PARTITION, epoch)
                with self.db.transaction():
                    pass  # record our epoch first: the last holder can write nothing after this point
                manager = AlertManager(AlertStore(self.db), config.fleet, clock, config.alerting)  # read-only here
                self.notifier = Notifier(self.db, config.alerting, config.fleet, manager, clock, self._publish)
                self.audit = AuditLog(self.db)
                self.event_log = EventLog(self.db)
                self.warnings = WarningDesk(self.db, config.warnings, config.fleet, clock,
                                            publish=self._publish_warning, notify=self._notify_warning,
                                            audit=self.audit)
                # every open alarm of the bureau, read from the shared store at each tick (the owners keep them)
                self.risk = RiskMonitor(self.db, config.risk, config.fleet, clock, alarms=AlertStore(self.db).open_alerts,
                                        desk=self.warnings, audit=self.audit)
        except BaseException:
            self._base.close()
            raise
        self._mqtt = mqtt
        self._stop = threading.Event()
        self._ticker = threading.Thread(target=self._run, name="bureau-ticker", daemon=True)
        self.timers_problem: str | None = None

    @classmethod
    def start_for(cls, config: Config, database: str, owner: str, epoch: int | None = None) -> "BureauDesk":
        """Build and start the desk (blocking: opens the database and records the epoch)."""
        desk = cls(config, database, owner, epoch)
        desk._client.connect_async(desk._mqtt.host, desk._mqtt.port, desk._mqtt.keepalive_s)
        desk._client.loop_start()
        desk.notifier.start()
        desk._ticker.start()
        log.info("bureau_desk_started", owner=owner, epoch=epoch)
        return desk

    def tick(self, now: float | None = None) -> None:
        """Risk grades, then warning proposals past their verification deadline, then unsent warning messages.

        Raises what the store raises (`Fenced` when a newer bureau holder recorded its epoch)."""
        now = self.clock() if now is None else now
        self.risk.tick(now)
        self.warnings.tick(now)
        self.warnings.retry_unsent()

    def _run(self) -> None:
        """Tick every `TICK_EVERY_S`; a failing tick is said in `problem` and tried again; fenced: stop ticking."""
        while not self._stop.wait(TICK_EVERY_S):
            try:
                self.tick()
                self.timers_problem = None
            except Fenced as err:
                self.fenced.set()
                self.timers_problem = f"fenced: {err}"
                log.error("bureau_fenced", epoch=self.epoch, recorded_epoch=err.recorded, reason=str(err))
                return
            except Exception as err:  # said in /healthz (problem); the next beat tries again
                first = self.timers_problem is None
                self.timers_problem = f"{type(err).__name__}: {str(err)[:200]}"
                log.error("bureau_timers_failed", error=self.timers_problem, exc_info=first)

    def _publish(self, topic: str, payload: bytes) -> bool:
        return self._client.publish(topic, payload, qos=1).rc == 0

    def _publish_warning(self, topic: str, payload: bytes, retain: bool) -> bool:
        """Publish a warning document (QoS 1, retained while in force) and log its SSE event for the API roles."""
        sent = self._client.publish(topic, payload, qos=1, retain=retain).rc == 0
        if payload:
            try:
                warning = orjson.loads(payload).get("warning", {})
                self.event_log.append("warning", warning.get("site_id"), {
                    "id": warning.get("id"), "event": orjson.loads(payload).get("event"),
                    "site_id": warning.get("site_id"), "level": warning.get("level")}, self.clock())
            except (orjson.JSONDecodeError, AttributeError, OSError) as err:
                # stored and published; the maps show it at their next refresh
                log.error("warning_event_not_sent_to_map", topic=topic, error=str(err)[:200])
        return sent

    def _notify_warning(self, notice: Notice) -> None:
        """Queue a warning step's notification in the shared outbox (inside the desk's transaction)."""
        self.notifier.enqueue_document(notice.key, notice.receiver, notice.event, notice.title, notice.text,
                                       notice.warning, self.clock())

    @property
    def problem(self) -> str | None:
        """Why delivery or the timers fail now (the outbox cannot be read or written, fenced), or None."""
        return "; ".join(p for p in (self.notifier.problem, self.timers_problem) if p) or None

    def stop(self) -> None:
        """Stop the timers and delivery (pending documents stay in the outbox for the next holder) and close."""
        self._stop.set()
        if self._ticker.is_alive():
            self._ticker.join(timeout=10)
        self.notifier.stop()
        self._client.disconnect()
        self._client.loop_stop()

"""The bureau desk of a scaled-out deployment: what runs once for the whole bureau, on the holder of
the ``bureau`` lease.

Done here: notification delivery — the outbox every partition owner fills (in its fenced alarm
transactions) is delivered by this one process, so a document is sent by one sender. Not done here
yet (they stay with ``liaowang run``): escalations, repeats and flood digests (they write alarm
rows, which only a partition's owner may: they belong in the partition pipelines), warnings (预警)
and risk grading timers.
"""

from __future__ import annotations

import time

import structlog

from alerting import AlertManager, AlertStore
from alerting.db import AlertDB
from alerting.notify import Notifier
from foundation.config import Config
from foundation.mqttclient import make_client
from liaowang.cluster.runner import schema_lock

__all__ = ["BureauDesk"]

log = structlog.get_logger("worker")


class BureauDesk:
    """Notification delivery from the shared outbox, with its own database connection and MQTT client."""

    def __init__(self, config: Config, database: str, owner: str) -> None:
        self.db = AlertDB(database)
        mqtt = config.settings.mqtt
        self._client = make_client(mqtt, f"{mqtt.client_id}-bureau-{owner}")
        with schema_lock(self.db):
            manager = AlertManager(AlertStore(self.db), config.fleet, time.time, config.alerting)  # read-only here
            self.notifier = Notifier(self.db, config.alerting, config.fleet, manager, time.time, self._publish)
        self._mqtt = mqtt

    @classmethod
    def start_for(cls, config: Config, database: str, owner: str) -> "BureauDesk":
        """Build and start the desk (blocking: opens the database)."""
        desk = cls(config, database, owner)
        desk._client.connect_async(desk._mqtt.host, desk._mqtt.port, desk._mqtt.keepalive_s)
        desk._client.loop_start()
        desk.notifier.start()
        return desk

    def _publish(self, topic: str, payload: bytes) -> bool:
        return self._client.publish(topic, payload, qos=1).rc == 0

    @property
    def problem(self) -> str | None:
        """Why delivery fails now (the outbox cannot be read or written), or None."""
        return self.notifier.problem

    def stop(self) -> None:
        """Stop delivering (pending documents stay in the outbox for the next holder) and close."""
        self.notifier.stop()
        self._client.disconnect()
        self._client.loop_stop()

"""One way to make a paho-mqtt client, shared by ingest, alerting and the simulators.

A leaf module (imports only paho and the settings model), so any stage may use it.
"""

from __future__ import annotations

import paho.mqtt.client as mqtt

from liaowang.config import MqttSettings


def make_client(settings: MqttSettings, client_id: str, *, persistent: bool = False,
                manual_ack: bool = False, max_inflight: int = 100) -> mqtt.Client:
    """A paho 2.x client (MQTT 3.1.1) configured from ``settings``; not yet connected.

    ``persistent`` keeps the broker-side session (clean_session=False) so QoS 1 messages wait for
    the client while it is away. Outgoing QoS 1 is flow-controlled: paho breaks past 65,535
    outstanding messages (TRAPS.md), so the queue is bounded and publishers wait on it.
    """
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=not persistent,
                         protocol=mqtt.MQTTv311, manual_ack=manual_ack)
    if settings.username:
        client.username_pw_set(settings.username,
                               settings.password.get_secret_value() if settings.password else None)
    client.max_inflight_messages_set(max_inflight)
    client.max_queued_messages_set(10_000)
    client.reconnect_delay_set(min_delay=1, max_delay=30)
    return client


class BoundedPublisher:
    """Publishes with at most ``max_outstanding`` QoS 1 messages unacknowledged (flow control).

    paho-mqtt breaks past 65,535 outstanding QoS 1 messages (TRAPS.md), and an unbounded backlog
    is unbounded memory; this waits for the broker instead. Used by simulators, replay and benches.
    """

    def __init__(self, client: mqtt.Client, max_outstanding: int = 1000) -> None:
        self._client = client
        self._max = max_outstanding
        self._pending: list[mqtt.MQTTMessageInfo] = []

    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> None:
        """Queue one message, first waiting while too many are outstanding."""
        if len(self._pending) >= self._max:
            self._pending = [info for info in self._pending if not info.is_published()]
            while len(self._pending) >= self._max:
                self._pending[0].wait_for_publish(timeout=1.0)
                self._pending = [info for info in self._pending if not info.is_published()]
        info = self._client.publish(topic, payload, qos=qos, retain=retain)
        if qos > 0:
            self._pending.append(info)

    def flush(self, timeout: float = 60.0) -> bool:
        """Wait until every message was acknowledged by the broker; return whether all were."""
        import time

        deadline = time.monotonic() + timeout
        for info in self._pending:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            try:
                info.wait_for_publish(timeout=remaining)
            except (RuntimeError, ValueError):
                return False
        done = all(info.is_published() for info in self._pending)
        self._pending = [] if done else self._pending
        return done

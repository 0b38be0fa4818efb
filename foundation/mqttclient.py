"""One way to make a paho-mqtt client, shared by ingest, alerting and the simulators.

A leaf module (imports only paho, structlog and the settings model), so any stage may use it.
"""

from __future__ import annotations

import threading
import time

import paho.mqtt.client as mqtt
import structlog

from foundation.config import MqttSettings

log = structlog.get_logger("mqtt")


class ConnectRefused(ConnectionError):
    """The broker refused the CONNECT (credentials, client id) or did not answer in time."""


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

    def say_why_refused(c: mqtt.Client, userdata: object, flags: object, reason: object, props: object) -> None:
        # paho retries a refused CONNECT for ever without a word: say it (callers may replace this)
        if getattr(reason, "is_failure", False):
            log.error("mqtt_connect_refused", client_id=client_id, username=settings.username, reason=str(reason),
                      host=settings.host, port=settings.port,
                      hint="the embedded broker admits Liaowang's own user and configured gateways only (docs/broker.md)")

    client.on_connect = say_why_refused
    return client


def connect_and_wait(client: mqtt.Client, settings: MqttSettings, timeout: float = 10.0) -> None:
    """Connect, start the network loop and return once the broker accepted the CONNECT.

    Raises ConnectRefused if the broker refused it or did not answer within ``timeout``.
    """
    answered = threading.Event()
    reasons: list[object] = []
    previous = client.on_connect

    def on_connect(c: mqtt.Client, userdata: object, flags: object, reason: object, props: object) -> None:
        reasons.append(reason)
        answered.set()
        if previous is not None:
            previous(c, userdata, flags, reason, props)

    client.on_connect = on_connect
    client.connect(settings.host, settings.port, settings.keepalive_s)
    client.loop_start()
    if not answered.wait(timeout) or getattr(reasons[0], "is_failure", False):
        client.loop_stop()
        why = str(reasons[0]) if reasons else f"no answer within {timeout} s"
        raise ConnectRefused(f"MQTT broker {settings.host}:{settings.port} refused {settings.username or 'anonymous'}: {why}")
    client.on_connect = previous


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
        while len(self._pending) >= self._max:
            self._await_oldest(1.0)
        info = self._client.publish(topic, payload, qos=qos, retain=retain)
        if qos > 0:
            self._pending.append(info)

    def flush(self, timeout: float = 60.0) -> bool:
        """Wait until every message was acknowledged by the broker; return whether all were."""
        deadline = time.monotonic() + timeout
        while self._pending and time.monotonic() < deadline:
            self._await_oldest(min(1.0, max(0.0, deadline - time.monotonic())))
        return not self._pending

    def _await_oldest(self, timeout: float) -> None:
        """Wait up to ``timeout`` s for the oldest message's PUBACK, then drop every acknowledged one."""
        try:
            self._pending[0].wait_for_publish(timeout=timeout)
        except RuntimeError:
            # Published while disconnected: paho queued it and sends it on (re)connect, but will not
            # wait on it; poll instead.
            time.sleep(min(timeout, 0.02))
        self._pending = [info for info in self._pending if not _acknowledged(info)]


def _acknowledged(info: mqtt.MQTTMessageInfo) -> bool:
    """Whether the broker acknowledged a message, also for one published while disconnected.

    paho queues such a message and sends it on (re)connect, but its public ``is_published``
    raises for it; the flag it keeps is the only way to see the PUBACK arrive.
    """
    try:
        return info.is_published()
    except RuntimeError:
        return info._published  # noqa: SLF001 (see the docstring)

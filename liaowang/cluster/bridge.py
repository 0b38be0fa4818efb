"""mosquitto → NATS JetStream bridge that acknowledges a gateway's QoS 1 message only once its stream stored it.

Why it exists: nats-server 2.9.10's own MQTT listener PUBACKs a QoS 1 message before the R3
partition stream has stored it, and loses it when that stream's leader fails over (measured:
tests/cluster/test_node_kill.py). The bridge keeps the contract's promise instead: gateways
publish to mosquitto as before; the bridge holds a persistent QoS 1 session there with manual
acks, publishes each message to JetStream (``liaowang/v1/readings/a/b`` → ``liaowang.v1.readings.a.b``,
which the account maps to its partition) and acknowledges it to mosquitto only after the
stream's PubAck. A failed publish is retried with the same ``Nats-Msg-Id`` (a digest of topic
and payload), so the stream stores it once however often it is resent, within its duplicate window.

A topic NATS cannot carry ('.', ' ', '*', '>' or an empty level) is dead-lettered as ``bad_topic``
on ``liaowang.v1.deadletter`` (stored, then acknowledged): it would never reach a worker anyway.

    bridge = MqttJetStreamBridge(mqtt_settings, NatsEndpoint(servers, "bridge", password))
    bridge.start(); bridge.wait_connected(10); ...; bridge.problems(); bridge.stop()
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
import queue
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any, Coroutine, TypeVar

import nats
import orjson
import paho.mqtt.client as mqtt
import structlog
from nats.aio.client import Client as NatsClient

from foundation.config import MqttSettings
from foundation.domain import iso
from foundation.mqttclient import make_client
from foundation.partition import DEADLETTER_SUBJECT
from foundation.supervise import Supervisor
from ingest.jetstream import NatsEndpoint

__all__ = ["MqttJetStreamBridge", "topic_subject", "message_id"]

READINGS_FILTER = "liaowang/v1/readings/#"
STATUS_FILTER = "liaowang/v1/status/+"
BATCH = 500
log = structlog.get_logger("bridge")
T = TypeVar("T")


def topic_subject(topic: str) -> str | None:
    """The NATS subject of an MQTT topic ('/' → '.'), or None when NATS cannot carry it.

    >>> topic_subject("liaowang/v1/readings/LC-LUXI/LC-LUXI-T101-LT")
    'liaowang.v1.readings.LC-LUXI.LC-LUXI-T101-LT'
    >>> topic_subject("liaowang/v1/readings/a.b") is None
    True
    """
    levels = topic.split("/")
    if any(not level or any(c in level for c in ". *>\t\r\n") for level in levels):
        return None
    return ".".join(levels)


def message_id(topic: str, payload: bytes) -> str:
    """``Nats-Msg-Id`` of a message: the same topic and payload is the same reading, stored once."""
    return hashlib.blake2b(topic.encode("utf-8", "replace") + b"\0" + payload, digest_size=16).hexdigest()


@dataclass(frozen=True, slots=True)
class _Message:
    topic: str
    payload: bytes
    mid: int
    qos: int
    generation: int


class MqttJetStreamBridge:
    """Moves readings and status from an MQTT broker into JetStream, acknowledging each only once stored."""

    def __init__(self, mqtt_settings: MqttSettings, endpoint: NatsEndpoint, client_id: str = "liaowang-nats-bridge",
                 supervisor: Supervisor | None = None, queue_size: int = 10_000) -> None:
        self._mqtt = mqtt_settings
        self._endpoint = endpoint
        self._supervisor = supervisor or Supervisor()
        self._queue: queue.Queue[_Message] = queue.Queue(maxsize=queue_size)
        self._client = make_client(mqtt_settings, client_id, persistent=True, manual_ack=True)
        self._client.on_connect = self._on_connect
        self._client.on_subscribe = self._on_subscribe
        self._client.on_disconnect = self._on_disconnect
        self._client.on_message = self._on_message
        self._generation = 0
        self._subscribed = threading.Event()
        self._stop = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._nc: NatsClient | None = None
        self._problem: str | None = None
        self._threads: list[threading.Thread] = []
        self.forwarded = 0
        self.dead_lettered = 0

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Start the NATS loop and the forwarding stage, then connect to the MQTT broker (retrying)."""
        self._threads = [self._supervisor.spawn("bridge-loop", self._run_loop),
                         self._supervisor.spawn("bridge-forward", self._run_forward, on_restart=self._redeliver)]
        self._client.connect_async(self._mqtt.host, self._mqtt.port, self._mqtt.keepalive_s)
        self._client.loop_start()

    def wait_connected(self, timeout: float) -> bool:
        """Block until subscribed on the broker and connected to NATS, or ``timeout`` s; return whether both."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._subscribed.is_set() and self._nc is not None and self._nc.is_connected:
                return True
            time.sleep(0.05)
        return False

    def problems(self) -> list[str]:
        """What keeps the bridge from forwarding right now (for a health check); empty when all is well."""
        return [f"bridge: {self._problem}"] if self._problem else []

    def stop(self) -> None:
        """Stop forwarding (what is not yet stored stays unacknowledged at the broker), disconnect both sides."""
        self._stop.set()
        if len(self._threads) == 2:
            self._threads[1].join(timeout=30)
        self._client.disconnect()
        self._client.loop_stop()
        if self._nc is not None and self._loop.is_running():
            try:
                self._call(self._nc.close(), 5)
            except Exception as err:  # nothing is pending: every ack waited for its PubAck
                log.warning("bridge_nats_close_failed", error=str(err))
        self._loop.call_soon_threadsafe(self._loop.stop)
        if self._threads:
            self._threads[0].join(timeout=5)

    # ------------------------------------------------------------------ MQTT side (paho's thread: enqueue only)

    def _on_connect(self, client: mqtt.Client, userdata: object, flags: object, reason: object, props: object) -> None:
        if getattr(reason, "is_failure", False):
            log.error("bridge_mqtt_refused", reason=str(reason))
            return
        self._generation += 1
        client.subscribe([(READINGS_FILTER, 1), (STATUS_FILTER, 1)])

    def _on_subscribe(self, client: mqtt.Client, userdata: object, mid: int, reasons: list, props: object) -> None:
        if any(getattr(r, "is_failure", False) for r in reasons):
            log.error("bridge_subscribe_refused", reasons=[str(r) for r in reasons])
            return
        self._subscribed.set()

    def _on_disconnect(self, client: mqtt.Client, userdata: object, flags: object, reason: object,
                       props: object) -> None:
        self._subscribed.clear()
        if not self._stop.is_set():
            log.warning("bridge_mqtt_disconnected", reason=str(reason))

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        topic = msg._topic.decode("utf-8", "replace")  # noqa: SLF001 - paho's .topic raises on bad UTF-8
        self._queue.put(_Message(topic, msg.payload, msg.mid, msg.qos, self._generation))  # full: broker holds

    def _redeliver(self) -> None:
        """After the forwarding stage failed with messages in hand: drop the MQTT connection so the broker resends."""
        sock = self._client.socket()
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    # ------------------------------------------------------------------ NATS side

    def _run_loop(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_forever()
        if not self._stop.is_set():
            raise RuntimeError("the bridge's NATS event loop stopped by itself")

    def _call(self, coro: Coroutine[Any, Any, T], timeout: float) -> T:
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            if future.done():  # the coroutine's own timeout (the builtin TimeoutError since 3.11)
                raise
            future.cancel()
            raise

    async def _connect(self) -> None:
        e = self._endpoint
        self._nc = await nats.connect(list(e.servers), user=e.user, password=e.password, name=e.name,
                                      max_reconnect_attempts=-1, reconnect_time_wait=0.5, connect_timeout=2)

    async def _publish_all(self, batch: list[tuple[str, bytes, str]]) -> list[BaseException | None]:
        """JetStream-publish every (subject, payload, id); the error of each that failed, None where stored."""
        assert self._nc is not None
        js = self._nc.jetstream(timeout=5)
        results = await asyncio.gather(*(js.publish(s, p, headers={"Nats-Msg-Id": i}) for s, p, i in batch),
                                       return_exceptions=True)
        return [r if isinstance(r, BaseException) else None for r in results]

    def _run_forward(self) -> None:
        delay = 0.2
        while self._nc is None or self._nc.is_closed:
            try:
                self._call(self._connect(), 15)
                self._problem = None
            except Exception as err:  # unreachable cluster: said in problems(), retried
                self._problem = f"cannot connect to NATS: {type(err).__name__}: {err}"
                log.error("bridge_nats_connect_failed", error=self._problem, retry_in_s=delay)
                if self._stop.wait(delay):
                    return
                delay = min(delay * 2, 5.0)
        while not (self._stop.is_set() and self._queue.empty()):
            try:
                batch = [self._queue.get(timeout=0.2)]
            except queue.Empty:
                continue
            while len(batch) < BATCH:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            if not self._forward(batch):
                return

    def _forward(self, batch: list[_Message]) -> bool:
        """Store every message of ``batch`` in JetStream, retrying what failed; ack each once stored.

        Returns False when stopped with messages unstored (they stay unacknowledged at the broker).
        """
        todo = []
        for m in batch:
            subject = topic_subject(m.topic)
            if subject is None:
                letter = orjson.dumps({"reason": "bad_topic", "detail": "a topic NATS cannot carry ('.', ' ', '*', '>' "
                                                                        "or an empty level): not forwarded",
                                       "topic": m.topic, "payload": m.payload[:1024].decode("utf-8", "replace"),
                                       "truncated": len(m.payload) > 1024, "received_at": iso(time.time())})
                todo.append((m, DEADLETTER_SUBJECT, letter, message_id("deadletter:" + m.topic, m.payload)))
            else:
                todo.append((m, subject, m.payload, message_id(m.topic, m.payload)))
        delay = 0.1
        while todo:
            try:
                errors = self._call(self._publish_all([(s, p, i) for _, s, p, i in todo]), 30)
            except Exception as err:  # the loop or connection failed as a whole: all of them again
                errors = [err] * len(todo)
            left = []
            for item, error in zip(todo, errors):
                if error is None:
                    m = item[0]
                    if item[1] == DEADLETTER_SUBJECT:
                        self.dead_lettered += 1
                    else:
                        self.forwarded += 1
                    if m.qos > 0 and m.generation == self._generation:
                        self._client.ack(m.mid, m.qos)
                else:
                    left.append(item)
            todo = left
            if todo:
                first = next(e for e in errors if e is not None)
                self._problem = f"{len(todo)} messages not stored yet: {type(first).__name__}: {first}"
                log.warning("bridge_publish_failed", messages=len(todo), error=self._problem, retry_in_s=delay)
                if self._stop.wait(delay):
                    return False
                delay = min(delay * 2, 5.0)
            else:
                self._problem = None
        return True

"""The ingest stage: MQTT subscriber → bounded queue → batch worker → sinks → downstream handler.

The paho network thread only enqueues. One worker thread takes micro-batches (by size and by
time), decodes and validates them, stores them in every sink, hands the readings downstream
(rules and alerting) and only then acknowledges the messages to the broker (manual ack on a
persistent QoS 1 session). A full queue blocks the network thread, so the broker holds the
rest: memory stays bounded and nothing is dropped.
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass
from typing import Callable, Sequence

import orjson
import paho.mqtt.client as mqtt
import structlog

from ingest.base import Sink
from ingest.deadletter import DeadLetters
from ingest.decode import BatchBuilder, Decoder, Rejection
from ingest.live import LiveValues
from ingest.metrics import IngestMetrics
from liaowang.config import Fleet, Settings
from liaowang.domain import ReadingBatch, iso
from liaowang.mqttclient import make_client

READINGS_FILTER = "liaowang/v1/readings/#"
STATUS_FILTER = "liaowang/v1/status/+"
STATUS_PREFIX = "liaowang/v1/status/"

log = structlog.get_logger("ingest")


@dataclass(frozen=True, slots=True)
class _Message:
    topic: str
    payload: bytes
    mid: int
    qos: int
    generation: int  # which connection delivered it: acks for an older connection are void


@dataclass(frozen=True, slots=True)
class _Decoded:
    messages: list[_Message]
    readings: ReadingBatch | None
    rejections: list[Rejection]
    started: float


BatchHandler = Callable[[ReadingBatch], None]
GatewayHandler = Callable[[str, bool, float], None]


class IngestService:
    """Runs the subscriber and the worker; ``on_batch`` receives each stored batch of readings.

    ``clock`` is the wall clock (epoch seconds), injected so tests can hold it still.
    """

    def __init__(self, settings: Settings, fleet: Fleet, sinks: Sequence[Sink], metrics: IngestMetrics,
                 live: LiveValues, on_batch: BatchHandler, on_gateway: GatewayHandler | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self._settings = settings
        self._fleet = fleet
        self._sinks = list(sinks)
        self._metrics = metrics
        self._live = live
        self._on_batch = on_batch
        self._on_gateway = on_gateway
        self._clock = clock
        self._decoder = Decoder(fleet, settings.ingest, clock)
        self._queue: queue.Queue[_Message] = queue.Queue(maxsize=settings.ingest.queue_size)
        self._stop = threading.Event()
        self._generation = 0
        self._connected = threading.Event()
        self._client = make_client(settings.mqtt, settings.mqtt.client_id, persistent=True, manual_ack=True)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_message = self._on_message
        self._client.on_subscribe = self._on_subscribe
        self._deadletters = DeadLetters(self._publish, metrics, clock, settings.ingest.deadletter_log_interval_s)
        # Two stages, so decoding the next batch overlaps storing this one (SQLite releases the GIL
        # while it writes): decode → bounded hand-off → store, evaluate, acknowledge.
        self._decoded: queue.Queue[_Decoded | None] = queue.Queue(maxsize=2)
        self._worker = threading.Thread(target=self._run_worker, name="ingest-decode", daemon=True)
        self._storer = threading.Thread(target=self._run_storer, name="ingest-store", daemon=True)

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Connect (retrying in the background until the broker answers) and start the worker."""
        self._worker.start()
        self._storer.start()
        self._client.connect_async(self._settings.mqtt.host, self._settings.mqtt.port, self._settings.mqtt.keepalive_s)
        self._client.loop_start()

    def wait_connected(self, timeout: float) -> bool:
        """Block until subscribed to the broker, or ``timeout`` seconds; return whether connected."""
        return self._connected.wait(timeout)

    @property
    def connected(self) -> bool:
        """Whether the subscriber holds a live broker connection."""
        return self._connected.is_set()

    def stop(self) -> None:
        """Finish the queued work, disconnect, and close the sinks."""
        self._stop.set()
        self._worker.join(timeout=10)
        self._storer.join(timeout=30)
        self._client.disconnect()
        self._client.loop_stop()
        for sink in self._sinks:
            sink.close()

    # ------------------------------------------------------------------ paho callbacks (network thread)

    def _on_connect(self, client: mqtt.Client, userdata: object, flags: object, reason: object, props: object) -> None:
        if getattr(reason, "is_failure", False):
            log.error("broker_connect_failed", reason=str(reason))
            return
        self._generation += 1
        client.subscribe([(READINGS_FILTER, 1), (STATUS_FILTER, 1)])
        log.info("broker_connected", host=self._settings.mqtt.host, port=self._settings.mqtt.port,
                 session_present=getattr(flags, "session_present", None))

    def _on_subscribe(self, client: mqtt.Client, userdata: object, mid: int, reasons: list, props: object) -> None:
        failed = [str(r) for r in reasons if getattr(r, "is_failure", False)]
        if failed:
            log.error("subscribe_refused", reasons=failed)
            return
        self._metrics.broker_connected.set(1)
        self._connected.set()  # ready only once the broker confirmed the subscriptions

    def _on_disconnect(self, client: mqtt.Client, userdata: object, flags: object, reason: object,
                       props: object) -> None:
        self._connected.clear()
        self._metrics.broker_connected.set(0)
        if not self._stop.is_set():
            log.warning("broker_disconnected", reason=str(reason))

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        # Blocks when the queue is full: the broker then holds the backlog (backpressure).
        self._queue.put(_Message(msg.topic, msg.payload, msg.mid, msg.qos, self._generation))

    # ------------------------------------------------------------------ worker

    def _publish(self, topic: str, payload: bytes) -> None:
        self._client.publish(topic, payload, qos=1)

    def _run_worker(self) -> None:
        wait = self._settings.ingest.batch_wait_s
        size = self._settings.ingest.batch_size
        while not (self._stop.is_set() and self._queue.empty()):
            try:
                first = self._queue.get(timeout=0.2)
            except queue.Empty:
                continue
            batch = [first]
            deadline = time.monotonic() + wait
            while len(batch) < size:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    try:
                        batch.append(self._queue.get(timeout=remaining))
                    except queue.Empty:
                        break
            self._metrics.queue_depth.set(self._queue.qsize())
            self._decoded.put(self._decode(batch))
        self._decoded.put(None)

    def _run_storer(self) -> None:
        while True:
            decoded = self._decoded.get()
            if decoded is None:
                return
            self._complete(decoded)

    def _process(self, batch: list[_Message]) -> None:
        """Decode, store, evaluate and acknowledge one batch in the calling thread (tools, benches)."""
        self._complete(self._decode(batch))

    def _decode(self, batch: list[_Message]) -> "_Decoded":
        started = time.perf_counter()
        builder = BatchBuilder(self._fleet)
        rejections = []
        self._metrics.messages.inc(len(batch))
        self._decoder.refresh_clock()
        decode = self._decoder.decode_into
        for message in batch:
            if message.topic.startswith(STATUS_PREFIX):
                self._gateway_status(message)
                continue
            problems = decode(builder, message.topic, message.payload)
            if problems:
                rejections.extend(problems)
        return _Decoded(batch, builder.build() if len(builder) else None, rejections, started)

    def _complete(self, decoded: "_Decoded") -> None:
        batch, readings, rejections = decoded.messages, decoded.readings, decoded.rejections
        if readings is not None:
            self._store(readings)
            self._live.update(readings)
            self._metrics.accepted.inc(len(readings))
            try:
                self._on_batch(readings)
            except Exception:  # a downstream bug must not stop ingest: the readings are stored
                log.exception("batch_handler_failed", readings=len(readings))
        for rejection in rejections:
            self._deadletters.send(rejection)
        for message in batch:
            if message.qos > 0 and message.generation == self._generation:
                self._client.ack(message.mid, message.qos)
        self._metrics.batch_seconds.observe(time.perf_counter() - decoded.started)

    def _store(self, readings: ReadingBatch) -> None:
        """Store in every sink, retrying with backoff until each accepts (or we are told to stop)."""
        for sink in self._sinks:
            delay = 0.1
            while True:
                t0 = time.perf_counter()
                try:
                    sink.write(readings)
                    self._metrics.store_seconds.labels(sink.name).observe(time.perf_counter() - t0)
                    break
                except Exception as err:
                    self._metrics.store_errors.labels(sink.name).inc()
                    log.error("store_write_failed", sink=sink.name, readings=len(readings), error=str(err),
                              retry_in_s=delay)
                    if self._stop.wait(delay):
                        raise SystemExit("stopped with an unstored batch: it stays unacknowledged") from err
                    delay = min(delay * 2, 10.0)

    def dead_letter_late(self, late: ReadingBatch) -> None:
        """Dead-letter readings the rules could not place in event-time order (stored, not evaluated)."""
        for reading in late.readings():
            payload = orjson.dumps({"sensor_id": reading.sensor_id, "ts": iso(reading.ts), "value": reading.value,
                                    "quality": reading.quality.value})
            self._deadletters.send(Rejection("late", f"liaowang/v1/readings/{reading.site_id}/{reading.sensor_id}",
                                             payload, "older than a reading of its sensor already evaluated, "
                                                      "beyond rules.lateness_s: stored, not evaluated"))

    def _gateway_status(self, message: _Message) -> None:
        site_id = message.topic[len(STATUS_PREFIX):]
        try:
            state = orjson.loads(message.payload).get("state")
        except (orjson.JSONDecodeError, AttributeError):
            state = None
        if state not in ("online", "offline"):
            self._deadletters.send(Rejection("bad_status", message.topic, message.payload,
                                             'expected {"state": "online"} or {"state": "offline"}'))
            return
        online = state == "online"
        log.info("gateway_status", site_id=site_id, state=state)
        if self._on_gateway is not None:
            self._on_gateway(site_id, online, self._clock())

"""The ingest stage: MQTT subscriber → bounded queue → batch worker → sinks → downstream handler.

The paho network thread only enqueues. A decode stage takes micro-batches (by size and by
time), decodes and validates them (the decoder never raises: a bad message is a dead letter); a
store stage stores them in every sink, hands the readings and gateway news downstream (rules and
alerting) and only then acknowledges the messages to the broker (manual ack on a persistent QoS 1
session). A full queue blocks the network thread, so the broker holds the rest: memory stays
bounded and nothing is dropped.

Nothing stops silently. A sink that fails is retried with back-off while acknowledgements stop
(the broker holds the backlog); downstream that cannot commit (`DownstreamUnavailable`: a full
disk) is retried the same way; a batch downstream fails on for any other reason is retried a few
times, then dead-lettered as ``evaluation_failed`` and reported. Both stages run under a
`Supervisor`: a stage that raises anyway is reported (``/healthz`` 503, a ``_system`` alarm) and
restarted, after dropping the connection so the broker redelivers what was never acknowledged.
"""

from __future__ import annotations

import queue
import socket
import threading
import time
from dataclasses import dataclass
from typing import Callable, Sequence

import orjson
import paho.mqtt.client as mqtt
import structlog

from ingest.base import Sink
from ingest.deadletter import LATE_DETAIL, DeadLetters, stored_reading_letter
from ingest.handoff import EVALUATION_ATTEMPTS, Handoff, Stopped
from ingest.decode import BatchBuilder, Decoder, Rejection
from ingest.live import LiveValues
from ingest.receiver import Received, ReceiverProcess
from ingest.metrics import IngestMetrics
from foundation.config import Fleet, Settings
from foundation.domain import ReadingBatch
from foundation.mqttclient import make_client
from foundation.supervise import Supervisor

READINGS_FILTER = "liaowang/v1/readings/#"
STATUS_FILTER = "liaowang/v1/status/+"
STATUS_PREFIX = "liaowang/v1/status/"

LETTERS_PER_MESSAGE = 100
"""A batch message yields at most this many dead letters one by one; the rest are counted and summarised
in one more letter (a 256 KB batch of junk elements would otherwise publish ~128,000 letters)."""

log = structlog.get_logger("ingest")


_Message = Received  # one MQTT message: topic, payload, mid, qos and the connection (generation) it came on


@dataclass(frozen=True, slots=True)
class _GatewayNews:
    site_id: str
    online: bool
    at: float


@dataclass(frozen=True, slots=True)
class _Decoded:
    messages: list[_Message]
    readings: ReadingBatch | None
    rejections: list[Rejection]
    gateways: list[_GatewayNews]
    started: float


BatchHandler = Callable[[ReadingBatch], None]
GatewayHandler = Callable[[str, bool, float], None]
FailureHandler = Callable[[int, str], None]


class IngestService:
    """Runs the subscriber and the worker; ``on_batch`` receives each stored batch of readings.

    ``clock`` is the wall clock (epoch seconds), injected so tests can hold it still.
    ``on_batch`` raises `DownstreamUnavailable` to have a batch retried (it stays unacknowledged);
    ``on_evaluation_failed(readings, reason)`` hears of a batch dead-lettered as ``evaluation_failed``.
    """

    def __init__(self, settings: Settings, fleet: Fleet, sinks: Sequence[Sink], metrics: IngestMetrics,
                 live: LiveValues, on_batch: BatchHandler, on_gateway: GatewayHandler | None = None,
                 clock: Callable[[], float] = time.time, supervisor: Supervisor | None = None,
                 on_evaluation_failed: FailureHandler | None = None) -> None:
        self._settings = settings
        self._fleet = fleet
        self._sinks = list(sinks)
        self._metrics = metrics
        self._live = live
        self._on_batch = on_batch
        self._on_gateway = on_gateway
        self._clock = clock
        self._supervisor = supervisor or Supervisor()
        self._on_evaluation_failed = on_evaluation_failed
        self._decoder = Decoder(fleet, settings.ingest, clock)
        # Items are lists of messages: one per message from paho's thread, one per frame from a receiver process
        # (whose own window bounds the messages in flight, so a few frames queued here are plenty).
        in_process = settings.ingest.receiver == "process"
        self._queue: queue.Queue[list[_Message]] = queue.Queue(maxsize=8 if in_process else settings.ingest.queue_size)
        self._stop = threading.Event()
        self._handoff = Handoff(self._sinks, metrics, self._stop, self._evaluation_failed)
        self._generation = 0
        self._connected = threading.Event()
        self._client: mqtt.Client | None = None
        self._receiver: ReceiverProcess | None = None
        if in_process:
            self._receiver = ReceiverProcess(settings.mqtt, settings.mqtt.client_id, settings.ingest.queue_size,
                                             settings.ingest.batch_size, self._enqueue, self._receiver_connected)
        else:
            self._client = make_client(settings.mqtt, settings.mqtt.client_id, persistent=True, manual_ack=True)
            self._client.on_connect = self._on_connect
            self._client.on_disconnect = self._on_disconnect
            self._client.on_message = self._on_message
            self._client.on_subscribe = self._on_subscribe
        self._deadletters = DeadLetters(self._publish, metrics, clock, settings.ingest.deadletter_log_interval_s)
        # Two stages, so decoding the next batch overlaps storing this one (SQLite releases the GIL
        # while it writes): decode → bounded hand-off → store, evaluate, acknowledge.
        self._decoded: queue.Queue[_Decoded | None] = queue.Queue(maxsize=2)
        self._threads: list[threading.Thread] = []

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Connect (retrying in the background until the broker answers) and start the stages.

        With ``ingest.receiver: process`` (the default) a third stage, ``ingest-receive``, runs the
        receiver child process (ingest/receiver.py) and starts a new one if it dies.
        """
        self._threads = [self._supervisor.spawn("ingest-decode", self._run_worker, on_restart=self._redeliver),
                         self._supervisor.spawn("ingest-store", self._run_storer, on_restart=self._redeliver)]
        if self._receiver is not None:
            self._threads.append(self._supervisor.spawn("ingest-receive", self._receiver.run))
            return
        self._client.connect_async(self._settings.mqtt.host, self._settings.mqtt.port, self._settings.mqtt.keepalive_s)
        self._client.loop_start()

    def wait_connected(self, timeout: float) -> bool:
        """Block until subscribed to the broker, or ``timeout`` seconds; return whether connected."""
        return self._connected.wait(timeout)

    @property
    def connected(self) -> bool:
        """Whether the subscriber holds a live broker connection."""
        return self._connected.is_set()

    def running(self) -> bool:
        """Whether both stage threads and paho's network thread are alive (a failed stage is alive while it
        waits for its restart)."""
        network = getattr(self._client, "_thread", None)  # paho's loop_start thread; no public accessor
        # with a receiver process its stage thread stands for it: alive while the child runs or is being replaced
        return (bool(self._threads) and all(t.is_alive() for t in self._threads)
                and (network is None or network.is_alive() or self._stop.is_set()))

    def problems(self) -> list[str]:
        """What keeps ingest from finishing batches right now (for /healthz); empty when all is well."""
        out = []
        if self._handoff.store_problem:
            out.append(f"store failing, batches retried and not acknowledged: {self._handoff.store_problem}")
        if self._handoff.downstream_problem:
            out.append("alerting cannot commit, batches retried and not acknowledged: "
                       f"{self._handoff.downstream_problem}")
        return out

    def stop(self) -> None:
        """Finish the queued work, disconnect, and close the sinks."""
        self._stop.set()
        for thread, timeout in zip(self._threads, (10, 30)):
            thread.join(timeout=timeout)
        if self._receiver is not None:
            self._receiver.stop()
            if len(self._threads) > 2:
                self._threads[2].join(timeout=10)
        else:
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
        # Never raise here: paho re-raises a callback's exception out of its network loop, whose thread
        # then dies and ingest stops receiving without a word. A topic that is not valid UTF-8 (paho's
        # ``msg.topic`` raises for it) is decoded with replacement characters and dead-lettered as bad_topic.
        topic = msg._topic.decode("utf-8", "replace")  # noqa: SLF001 - the raw bytes; see above
        # Blocks when the queue is full: the broker then holds the backlog (backpressure).
        self._queue.put([_Message(topic, msg.payload, msg.mid, msg.qos, self._generation)])

    def _enqueue(self, messages: list[_Message]) -> None:
        """A receiver frame's messages to the decode stage; blocks while it is full (backpressure).

        Once stopping they are left: never acknowledged, the broker redelivers them.
        """
        while not self._stop.is_set():
            try:
                self._queue.put(messages, timeout=0.5)
                return
            except queue.Full:
                continue

    def _receiver_connected(self, up: bool) -> None:
        """The receiver process's connection came (subscribed) or went."""
        if up:
            self._generation = self._receiver.generation
            self._connected.set()
        else:
            self._connected.clear()
        self._metrics.broker_connected.set(1 if up else 0)

    @property
    def receiver_pid(self) -> int | None:
        """The receiver child's process id, or None when paho runs in this process (tests kill it)."""
        return self._receiver.pid if self._receiver is not None else None

    # ------------------------------------------------------------------ worker

    def _publish(self, topic: str, payload: bytes) -> None:
        if self._receiver is not None:
            self._receiver.publish(topic, payload, qos=1)
        else:
            self._client.publish(topic, payload, qos=1)

    def _redeliver(self) -> None:
        """After a stage failed with messages in hand: drop the connection, as a network failure would.

        paho reconnects by itself; the broker then redelivers every message of the persistent
        session that was never acknowledged (acks of the old connection are void, see `_Message`).
        """
        if self._receiver is not None:
            self._receiver.redeliver()
            return
        sock = self._client.socket()
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def _run_worker(self) -> None:
        wait = self._settings.ingest.batch_wait_s
        size = self._settings.ingest.batch_size
        while not (self._stop.is_set() and self._queue.empty()):
            try:
                first = self._queue.get(timeout=0.2)
            except queue.Empty:
                continue
            batch = list(first)
            deadline = time.monotonic() + wait
            while len(batch) < size:
                try:
                    batch.extend(self._queue.get_nowait())
                except queue.Empty:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    try:
                        batch.extend(self._queue.get(timeout=remaining))
                    except queue.Empty:
                        break
            self._metrics.queue_depth.set(self._queue.qsize())
            self._hand_to_store(self._decode(batch))
        self._hand_to_store(None)

    def _hand_to_store(self, item: "_Decoded | None") -> None:
        """Queue for the store stage; give up only when stopping and the store stage has ended."""
        while True:
            try:
                self._decoded.put(item, timeout=0.5)
                return
            except queue.Full:
                if self._stop.is_set() and not self._threads[-1].is_alive():
                    return

    def _run_storer(self) -> None:
        while True:
            decoded = self._decoded.get()
            if decoded is None:
                return
            try:
                self._complete(decoded)
            except Stopped:
                log.warning("ingest_stopped_with_unfinished_batch", messages=len(decoded.messages))
                return

    def _process(self, batch: list[_Message]) -> None:
        """Decode, store, evaluate and acknowledge one batch in the calling thread (tools, benches)."""
        self._complete(self._decode(batch))

    def _summarise(self, message: _Message, problems: list[Rejection]) -> list[Rejection]:
        """The first `LETTERS_PER_MESSAGE` rejections of one message, and one letter counting the rest (all counted)."""
        rest = problems[LETTERS_PER_MESSAGE:]
        reasons: dict[str, int] = {}
        for rejection in rest:
            reasons[rejection.reason] = reasons.get(rejection.reason, 0) + 1
        for reason, count in reasons.items():  # the summary letter itself counts one of its reason
            self._metrics.rejected.labels(reason).inc(count - (reason == rest[0].reason))
        summary = Rejection(rest[0].reason, message.topic, message.payload,
                            f"{len(rest)} more elements of this message rejected, by reason {reasons}; only the first "
                            f"{LETTERS_PER_MESSAGE} are dead-lettered one by one")
        return problems[:LETTERS_PER_MESSAGE] + [summary]

    def _decode(self, batch: list[_Message]) -> "_Decoded":
        started = time.perf_counter()
        builder = BatchBuilder(self._fleet)
        rejections: list[Rejection] = []
        gateways: list[_GatewayNews] = []
        self._metrics.messages.inc(len(batch))
        self._decoder.refresh_clock()
        decode = self._decoder.decode_into
        for message in batch:
            if message.topic.startswith(STATUS_PREFIX):
                news = self._gateway_status(message)
                if isinstance(news, Rejection):
                    rejections.append(news)
                else:
                    gateways.append(news)
                continue
            try:
                problems = decode(builder, message.topic, message.payload)
            except Exception as err:  # the decoder never raises; if it ever does, the message is still accounted for
                problems = [Rejection("decode_failed", message.topic, message.payload,
                                      f"decoder error {type(err).__name__}; report this payload")]
            if len(problems) > LETTERS_PER_MESSAGE:
                problems = self._summarise(message, problems)
            if problems:
                rejections.extend(problems)
        return _Decoded(batch, builder.build() if len(builder) else None, rejections, gateways, started)

    def _complete(self, decoded: "_Decoded") -> None:
        batch, readings, rejections = decoded.messages, decoded.readings, decoded.rejections
        if readings is not None:
            self._handoff.store(readings)
            self._live.update(readings)
            self._metrics.accepted.inc(len(readings))
            self._handoff.hand_down(lambda: self._on_batch(readings), readings)
        for news in decoded.gateways:
            log.info("gateway_status", site_id=news.site_id, state="online" if news.online else "offline")
            if self._on_gateway is not None:
                on_gateway = self._on_gateway
                self._handoff.hand_down(lambda news=news: on_gateway(news.site_id, news.online, news.at), None)
        for rejection in rejections:
            self._deadletters.send(rejection)
        if self._receiver is not None:
            self._receiver.ack(batch)
        else:
            for message in batch:
                if message.qos > 0 and message.generation == self._generation:
                    self._client.ack(message.mid, message.qos)
        self._metrics.batch_seconds.observe(time.perf_counter() - decoded.started)

    def _evaluation_failed(self, readings: ReadingBatch | None, reason: str) -> None:
        """Dead-letter a batch downstream keeps failing on (stored, not evaluated) and report it."""
        count = len(readings) if readings is not None else 0
        if readings is not None:
            detail = f"stored, but the rules or alerting failed on its batch {EVALUATION_ATTEMPTS} times: {reason}"
            for reading in readings.readings():
                self._deadletters.send(stored_reading_letter(reading, "evaluation_failed", detail))
        if self._on_evaluation_failed is not None:
            self._on_evaluation_failed(count, reason)

    def dead_letter_late(self, late: ReadingBatch) -> None:
        """Dead-letter readings the rules could not place in event-time order (stored, not evaluated)."""
        for reading in late.readings():
            self._deadletters.send(stored_reading_letter(reading, "late", LATE_DETAIL))

    def _gateway_status(self, message: _Message) -> _GatewayNews | Rejection:
        """A gateway's status message (its Last Will says offline), decoded only: the store stage acts on it."""
        site_id = message.topic[len(STATUS_PREFIX):]
        try:
            body = orjson.loads(message.payload) if len(message.payload) <= 1024 else None
            state = body.get("state") if type(body) is dict else None
        except orjson.JSONDecodeError:
            state = None
        if state not in ("online", "offline") or type(state) is not str:
            return Rejection("bad_status", message.topic, message.payload,
                             'expected {"state": "online"} or {"state": "offline"}')
        return _GatewayNews(site_id, state == "online", self._clock())

"""A JetStream source for ONE partition: durable pull consumer → decode → sinks → downstream → ack.

The semantics of `ingest.service.IngestService`, on a partition stream (``LW_P{p}``, consumer
``lw-worker``) instead of an MQTT session:

- a batch of messages is fetched, decoded with `ingest.decode` (the subject
  ``lw.in.{p}.readings.{site}[.{sensor}]`` is read as the topic ``liaowang/v1/readings/{site}[/{sensor}]``),
  stored in every sink (retried with back-off while failing), handed to ``on_batch``
  (`DownstreamUnavailable` → retried, the batch stays unacknowledged; any other error → 3 tries,
  then the readings are dead-lettered as ``evaluation_failed``) and only then acknowledged;
- bad messages are dead-lettered with a reason on ``liaowang.v1.deadletter`` (the ``LW_DEADLETTER``
  stream keeps them; each letter carries a ``Nats-Msg-Id`` made of its message's stream sequence,
  so a batch redelivered after a crash does not store its letters twice). A message on another
  partition's site (a forged subject) is ``wrong_partition``;
- while a batch waits (a failing sink, downstream down) its messages are marked in progress, so
  the server does not redeliver them after the ack wait; a batch given up (stop, a crashed stage)
  is nak'ed so it comes back first, before newer messages, and nothing is half-acknowledged: the
  acks of a batch are sent together after everything else succeeded, the last one confirmed;
- `acked_through` is the stream sequence of the last message acknowledged (the worker snapshots
  it with the rule state); ``start(from_seq=s)`` moves the consumer to stream sequence ``s``
  first (a takeover replays from its snapshot: ``s = snapshot + 1``).

nats-py is asyncio: the source owns an event loop on a thread of its own (network only); the
batch stage is a plain thread that runs coroutines on that loop and waits for them. Both run under
a `Supervisor`: a stage that raises is reported and restarted, its batch nak'ed.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Coroutine, Sequence, TypeVar

import nats
import nats.errors
import orjson
import structlog
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError
from prometheus_client import CollectorRegistry, Counter, Gauge

from foundation.config import Fleet, Settings
from foundation.domain import ReadingBatch
from foundation.partition import DEADLETTER_SUBJECT, WORKER_CONSUMER, partition_of, stream_name
from foundation.supervise import Supervisor
from ingest.base import Sink
from ingest.deadletter import DEADLETTER_TOPIC, LATE_DETAIL, DeadLetters, stored_reading_letter
from ingest.handoff import EVALUATION_ATTEMPTS, Handoff, Stopped
from ingest.decode import BatchBuilder, Decoder, Rejection
from ingest.live import LiveValues
from ingest.metrics import IngestMetrics

__all__ = ["JetStreamSource", "JetStreamMetrics", "NatsEndpoint", "subject_topic"]

LETTERS_PER_MESSAGE = 100
STATUS_PREFIX = "liaowang/v1/status/"
_IN_PROGRESS_EVERY_S = 5.0  # well inside any sane ack wait (default 30 s)

log = structlog.get_logger("ingest")
T = TypeVar("T")

BatchHandler = Callable[[ReadingBatch], None]
GatewayHandler = Callable[[str, bool, float], None]
FailureHandler = Callable[[int, str], None]


@dataclass(frozen=True)
class NatsEndpoint:
    """Where and as whom to connect: NATS URLs of the cluster's nodes, user and password."""

    servers: tuple[str, ...]
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    name: str = "liaowang-worker"


class JetStreamMetrics:
    """Per-partition numbers a duty engineer wants besides the ingest counters (one per process)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.acked_seq = Gauge("liaowang_jetstream_acked_seq", "Stream sequence of the last acknowledged message",
                               ["partition"], registry=registry)
        self.connected = Gauge("liaowang_jetstream_connected", "1 while the partition's NATS connection is up",
                               ["partition"], registry=registry)
        self.redelivered = Counter("liaowang_jetstream_redelivered_total",
                                   "Messages delivered more than once (a crash, a nak, an ack wait passed)",
                                   ["partition"], registry=registry)
        self.fetch_errors = Counter("liaowang_jetstream_fetch_errors_total",
                                    "Fetches from the partition's consumer that failed (not the idle timeouts)",
                                    ["partition"], registry=registry)


def subject_topic(subject: str, partition: int) -> tuple[str, str] | None:
    """``(kind, topic)`` of a partition stream's subject, kind ``readings`` or ``status``; None if it is neither.

    >>> subject_topic("lw.in.3.readings.LC-LUXI.LC-LUXI-T101-LT", 3)
    ('readings', 'liaowang/v1/readings/LC-LUXI/LC-LUXI-T101-LT')
    >>> subject_topic("lw.in.3.status.LC-LUXI", 3)
    ('status', 'liaowang/v1/status/LC-LUXI')
    >>> subject_topic("lw.in.4.readings.X", 3) is None
    True
    """
    tokens = subject.split(".")
    if len(tokens) < 5 or tokens[:3] != ["lw", "in", str(partition)] or tokens[3] not in ("readings", "status"):
        return None
    return tokens[3], f"liaowang/v1/{tokens[3]}/" + "/".join(tokens[4:])


class _CallTimeout(Exception):
    """A coroutine handed to the source's event loop did not finish in time (the loop is stuck or starved)."""


@dataclass(slots=True)
class _Decoded:
    messages: list[Msg]
    readings: ReadingBatch | None
    rejections: list[tuple[str, Rejection]]  # (Nats-Msg-Id of the letter, rejection)
    gateways: list[tuple[str, bool, float]]
    started: float


class JetStreamSource:
    """Consumes partition ``partition`` of ``partitions``; ``on_batch`` receives each stored batch of readings.

    Same callbacks and health surface as `IngestService` (``running``, ``problems``, ``connected``).
    ``clock`` is the wall clock (epoch seconds); it judges future timestamps and stamps gateway news.

    Example (tests/cluster/test_jetstream_source.py runs it against a real 3-node cluster)::

        source = JetStreamSource(NatsEndpoint(("nats://127.0.0.1:4222",), "worker", pw), 3, 8, settings,
                                 fleet, [sink], IngestMetrics(reg), LiveValues(), pipeline.handle_batch)
        source.start(from_seq=snapshot_seq + 1)     # after a takeover; plain start() otherwise
        ...
        source.acked_through                        # snapshot this with the rule state
        source.stop()
    """

    def __init__(self, endpoint: NatsEndpoint, partition: int, partitions: int, settings: Settings, fleet: Fleet,
                 sinks: Sequence[Sink], metrics: IngestMetrics, live: LiveValues, on_batch: BatchHandler,
                 on_gateway: GatewayHandler | None = None, clock: Callable[[], float] = time.time,
                 supervisor: Supervisor | None = None, on_evaluation_failed: FailureHandler | None = None,
                 jetstream_metrics: JetStreamMetrics | None = None, fetch_batch: int | None = None,
                 fetch_timeout_s: float = 1.0) -> None:
        self._endpoint = endpoint
        self._partition = partition
        self._partitions = partitions
        self._stream = stream_name(partition)
        self._settings = settings
        self._fleet = fleet
        self._sinks = list(sinks)
        self._metrics = metrics
        self._js_metrics = jetstream_metrics
        self._label = str(partition)
        self._live = live
        self._on_batch = on_batch
        self._on_gateway = on_gateway
        self._clock = clock
        self._supervisor = supervisor or Supervisor()
        self._on_evaluation_failed = on_evaluation_failed
        self._fetch_batch = fetch_batch or settings.ingest.batch_size
        self._fetch_timeout = fetch_timeout_s
        self._decoder = Decoder(fleet, settings.ingest, clock)
        self._letter_id: str | None = None
        self._deadletters = DeadLetters(self._publish_letter, metrics, clock, settings.ingest.deadletter_log_interval_s)
        self._stop = threading.Event()
        self._handoff = Handoff(self._sinks, metrics, self._stop, self._evaluation_failed, partition=partition)
        self._connected = threading.Event()
        self._ready = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._nc: NatsClient | None = None
        self._js: JetStreamContext | None = None
        self._psub: Any = None
        self._in_hand: list[Msg] = []  # the batch between fetch and ack: nak'ed if its stage dies
        self._acked_through = 0
        self._from_seq: int | None = None
        self._nats_problem: str | None = None
        self._threads: list[threading.Thread] = []

    # ------------------------------------------------------------------ lifecycle

    def start(self, from_seq: int | None = None) -> None:
        """Start the network loop and the batch stage; connect (retrying) and bind ``lw-worker``.

        With ``from_seq``, the consumer is first recreated to deliver from that stream sequence on
        (only the partition's lease holder may do this: it drops the consumer's acknowledgement state).
        """
        self._from_seq = from_seq
        name = f"jetstream-p{self._partition}"
        self._threads = [self._supervisor.spawn(f"{name}-loop", self._run_loop),
                         self._supervisor.spawn(name, self._run_batches, on_restart=self._give_back)]

    def wait_connected(self, timeout: float) -> bool:
        """Block until bound to the consumer, or ``timeout`` seconds; return whether it is."""
        return self._ready.wait(timeout)

    @property
    def connected(self) -> bool:
        """Whether the NATS connection is up and the consumer bound."""
        return self._connected.is_set() and self._ready.is_set()

    @property
    def acked_through(self) -> int:
        """Stream sequence of the last message acknowledged (0 before the first); snapshot it with the rule state."""
        return self._acked_through

    def running(self) -> bool:
        """Whether both threads are alive (a failed stage is alive while it waits for its restart)."""
        return bool(self._threads) and all(t.is_alive() for t in self._threads)

    def problems(self) -> list[str]:
        """What keeps this partition from finishing batches right now (for /healthz); empty when all is well."""
        out = []
        if self._nats_problem:
            out.append(f"partition {self._partition}: NATS: {self._nats_problem}")
        if self._handoff.store_problem:
            out.append(f"partition {self._partition}: store failing, batches retried and not acknowledged: "
                       f"{self._handoff.store_problem}")
        if self._handoff.downstream_problem:
            out.append(f"partition {self._partition}: alerting cannot commit, batches retried and not "
                       f"acknowledged: {self._handoff.downstream_problem}")
        return out

    def stop(self) -> None:
        """Finish the batch in hand or nak it, close the connection and the sinks. Never half-acknowledges."""
        self._stop.set()
        if len(self._threads) == 2:
            self._threads[1].join(timeout=30)
        if self._nc is not None and self._loop.is_running():
            try:
                self._call(self._nc.close(), timeout=5)
            except Exception as err:  # closing a dead connection: nothing is lost (no ack is pending)
                log.warning("nats_close_failed", partition=self._partition, error=str(err))
        self._loop.call_soon_threadsafe(self._loop.stop)
        if self._threads:
            self._threads[0].join(timeout=5)
        for sink in self._sinks:
            sink.close()

    # ------------------------------------------------------------------ the event loop (network only)

    def _run_loop(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_forever()
        if not self._stop.is_set():
            raise RuntimeError("the NATS event loop stopped by itself")

    def _call(self, coro: Coroutine[Any, Any, T], timeout: float) -> T:
        """Run ``coro`` on the source's loop and wait for it (from the batch stage's thread)."""
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            # Since 3.11 this is the builtin TimeoutError, which asyncio and nats-py raise too: only a future
            # still running means *our* wait ran out; otherwise it is the coroutine's own error.
            if future.done():
                raise
            future.cancel()
            raise _CallTimeout(f"NATS call took over {timeout} s") from None

    async def _connect(self) -> None:
        async def disconnected() -> None:
            self._connected.clear()
            self._set_connected(0)
            if not self._stop.is_set():
                log.warning("nats_disconnected", partition=self._partition)

        async def reconnected() -> None:
            self._connected.set()
            self._set_connected(1)
            log.info("nats_reconnected", partition=self._partition, server=str(self._nc.connected_url.netloc
                                                                                if self._nc and self._nc.connected_url
                                                                                else None))

        async def error(err: Exception) -> None:
            log.warning("nats_error", partition=self._partition, error=f"{type(err).__name__}: {err}")

        e = self._endpoint
        self._nc = await nats.connect(list(e.servers), user=e.user, password=e.password, name=e.name,
                                      max_reconnect_attempts=-1, reconnect_time_wait=0.5, connect_timeout=2,
                                      disconnected_cb=disconnected, reconnected_cb=reconnected, error_cb=error)
        self._js = self._nc.jetstream(timeout=5)
        self._connected.set()
        self._set_connected(1)

    async def _bind(self) -> None:
        assert self._js is not None
        if self._from_seq is not None:
            await self._rewind(self._from_seq)
            self._from_seq = None
        self._psub = await self._js.pull_subscribe_bind(durable=WORKER_CONSUMER, stream=self._stream)

    async def _rewind(self, seq: int) -> None:
        """Recreate ``lw-worker`` delivering from stream sequence ``seq`` (keeping its ack wait and limits)."""
        assert self._js is not None
        try:
            have = (await self._js.consumer_info(self._stream, WORKER_CONSUMER)).config
            await self._js.delete_consumer(self._stream, WORKER_CONSUMER)
        except NotFoundError:
            have = ConsumerConfig()
        config = ConsumerConfig(durable_name=WORKER_CONSUMER, ack_policy=AckPolicy.EXPLICIT,
                                deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=max(1, seq),
                                ack_wait=have.ack_wait or 30.0, max_ack_pending=have.max_ack_pending or 20_000,
                                max_deliver=-1)
        await self._js.add_consumer(self._stream, config)
        log.info("consumer_rewound", partition=self._partition, stream=self._stream, from_seq=seq)

    async def _fetch(self) -> list[Msg]:
        try:
            return await self._psub.fetch(self._fetch_batch, timeout=self._fetch_timeout)
        except (nats.errors.TimeoutError, asyncio.TimeoutError):  # nats-py raises either when nothing came
            return []

    def _set_connected(self, value: int) -> None:
        self._metrics.broker_connected.set(value)
        if self._js_metrics is not None:
            self._js_metrics.connected.labels(self._label).set(value)

    # ------------------------------------------------------------------ the batch stage

    def _run_batches(self) -> None:
        delay = 0.2
        while not self._stop.is_set():
            if not self._ready.is_set():
                try:
                    if self._nc is None or self._nc.is_closed:
                        self._call(self._connect(), timeout=15)
                    self._call(self._bind(), timeout=15)
                    self._ready.set()
                    self._nats_problem = None
                    log.info("jetstream_source_bound", partition=self._partition, stream=self._stream)
                except Exception as err:  # unreachable cluster, no stream yet: said in /healthz, retried
                    self._nats_problem = f"cannot bind {self._stream}/{WORKER_CONSUMER}: {type(err).__name__}: {err}"
                    log.error("jetstream_bind_failed", partition=self._partition, error=self._nats_problem,
                              retry_in_s=delay)
                    self._stop.wait(delay)
                    delay = min(delay * 2, 5.0)
                    continue
                delay = 0.2
            try:
                messages = self._call(self._fetch(), timeout=self._fetch_timeout + 10)
            except Exception as err:  # a lost connection: nats-py reconnects by itself; we say so and retry
                self._nats_problem = f"fetch failed: {type(err).__name__}: {err}"
                if self._js_metrics is not None:
                    self._js_metrics.fetch_errors.labels(self._label).inc()
                log.warning("jetstream_fetch_failed", partition=self._partition, error=self._nats_problem)
                self._stop.wait(0.5)
                continue
            self._nats_problem = None
            if not messages:
                continue
            self._in_hand = messages
            try:
                self._complete(self._decode(messages))
            except Stopped:
                log.warning("ingest_stopped_with_unfinished_batch", partition=self._partition,
                            messages=len(messages))
                self._give_back()
                return
            self._in_hand = []

    def _give_back(self) -> None:
        """Nak the batch in hand (a stop or a crashed stage) so it is redelivered first; never ack part of it."""
        batch, self._in_hand = self._in_hand, []
        if not batch or not self._loop.is_running():
            return

        async def nak_all() -> None:
            for message in batch:
                if not message.is_acked:  # acked before a failed ack_sync: the server decides, nak would raise
                    await message.nak()
            await self._nc.flush(timeout=2) if self._nc is not None else None

        try:
            self._call(nak_all(), timeout=5)
            log.info("batch_given_back", partition=self._partition, messages=len(batch))
        except Exception as err:  # the server redelivers after the ack wait anyway
            log.warning("batch_nak_failed", partition=self._partition, messages=len(batch), error=str(err))

    def _decode(self, batch: list[Msg]) -> _Decoded:
        started = time.perf_counter()
        builder = BatchBuilder(self._fleet)
        rejections: list[tuple[str, Rejection]] = []
        gateways: list[tuple[str, bool, float]] = []
        self._metrics.messages.inc(len(batch))
        self._decoder.refresh_clock()
        for message in batch:
            meta = message.metadata
            letter_id = f"{self._stream}-{meta.sequence.stream}"
            if meta.num_delivered > 1 and self._js_metrics is not None:
                self._js_metrics.redelivered.labels(self._label).inc()
            problems = self._decode_one(builder, gateways, message)
            if len(problems) > LETTERS_PER_MESSAGE:
                problems = self._summarise(problems)
            rejections.extend((f"{letter_id}-{i}", problem) for i, problem in enumerate(problems))
        return _Decoded(batch, builder.build() if len(builder) else None, rejections, gateways, started)

    def _decode_one(self, builder: BatchBuilder, gateways: list[tuple[str, bool, float]],
                    message: Msg) -> list[Rejection]:
        payload = message.data
        parsed = subject_topic(message.subject, self._partition)
        if parsed is None:
            return [Rejection("bad_topic", message.subject, payload,
                              f"expected lw.in.{self._partition}.readings.{{site}}[.{{sensor}}] or "
                              f"lw.in.{self._partition}.status.{{site}}")]
        kind, topic = parsed
        site = topic.split("/")[3]
        if partition_of(site, self._partitions) != self._partition:
            return [Rejection("wrong_partition", topic, payload,
                              f"site {site!r} belongs to partition {partition_of(site, self._partitions)}, "
                              f"not {self._partition}: published to a partition subject directly?")]
        if kind == "status":
            news = self._gateway_status(topic, payload)
            if isinstance(news, Rejection):
                return [news]
            gateways.append(news)
            return []
        try:
            return self._decoder.decode_into(builder, topic, payload)
        except Exception as err:  # the decoder never raises; if it ever does, the message is still accounted for
            return [Rejection("decode_failed", topic, payload, f"decoder error {type(err).__name__}; report this payload")]

    def _summarise(self, problems: list[Rejection]) -> list[Rejection]:
        """The first `LETTERS_PER_MESSAGE` rejections of one message, and one letter counting the rest (all counted)."""
        rest = problems[LETTERS_PER_MESSAGE:]
        reasons: dict[str, int] = {}
        for rejection in rest:
            reasons[rejection.reason] = reasons.get(rejection.reason, 0) + 1
        for reason, count in reasons.items():  # the summary letter itself counts one of its reason
            self._metrics.rejected.labels(reason).inc(count - (reason == rest[0].reason))
        summary = Rejection(rest[0].reason, rest[0].topic, rest[0].payload,
                            f"{len(rest)} more elements of this message rejected, by reason {reasons}; only the first "
                            f"{LETTERS_PER_MESSAGE} are dead-lettered one by one")
        return problems[:LETTERS_PER_MESSAGE] + [summary]

    def _gateway_status(self, topic: str, payload: bytes) -> tuple[str, bool, float] | Rejection:
        """A gateway's status message (its Last Will says offline): ``(site, online, at)``."""
        try:
            body = orjson.loads(payload) if len(payload) <= 1024 else None
            state = body.get("state") if type(body) is dict else None
        except orjson.JSONDecodeError:
            state = None
        if type(state) is not str or state not in ("online", "offline"):
            return Rejection("bad_status", topic, payload, 'expected {"state": "online"} or {"state": "offline"}')
        return topic[len(STATUS_PREFIX):], state == "online", self._clock()

    def _complete(self, decoded: _Decoded) -> None:
        readings = decoded.readings
        if readings is not None:
            self._handoff.store(readings, self._in_progress_keeper())
            self._live.update(readings)
            self._metrics.accepted.inc(len(readings))
            self._handoff.hand_down(lambda: self._on_batch(readings), readings, self._in_progress_keeper())
        for site, online, at in decoded.gateways:
            log.info("gateway_status", site_id=site, state="online" if online else "offline")
            if self._on_gateway is not None:
                on_gateway = self._on_gateway
                self._handoff.hand_down(lambda s=site, o=online, a=at: on_gateway(s, o, a), None,
                                        self._in_progress_keeper())
        for letter_id, rejection in decoded.rejections:
            self._letter_id = letter_id
            self._deadletters.send(rejection)
        self._ack(decoded.messages)
        self._metrics.batch_seconds.observe(time.perf_counter() - decoded.started)

    def _ack(self, batch: list[Msg]) -> None:
        """Acknowledge the whole batch; the last ack is confirmed by the server (acks on one connection keep order)."""
        async def ack_all() -> None:
            for message in batch[:-1]:
                await message.ack()
            await batch[-1].ack_sync(timeout=5)

        self._call(ack_all(), timeout=15)
        self._in_hand = []
        top = max(m.metadata.sequence.stream for m in batch)
        self._acked_through = max(self._acked_through, top)
        if self._js_metrics is not None:
            self._js_metrics.acked_seq.labels(self._label).set(self._acked_through)

    def _publish_letter(self, topic: str, payload: bytes) -> None:
        """Store one dead letter in ``LW_DEADLETTER`` (confirmed), deduplicated by its message's sequence."""
        assert self._js is not None and topic == DEADLETTER_TOPIC
        headers = {"Nats-Msg-Id": self._letter_id} if self._letter_id else None
        self._call(self._js.publish(DEADLETTER_SUBJECT, payload, headers=headers), timeout=10)

    def _in_progress_keeper(self) -> Callable[[], None]:
        """What to run between retries of one step: tell the server, at most every `_IN_PROGRESS_EVERY_S`, that
        the batch in hand is still being worked on (no redelivery after the ack wait)."""
        last = [time.monotonic()]
        return lambda: self._keep_in_progress(last)

    def _keep_in_progress(self, last: list[float]) -> None:
        now = time.monotonic()
        if not self._in_hand or now - last[0] < _IN_PROGRESS_EVERY_S:
            return
        last[0] = now
        batch = list(self._in_hand)

        async def touch() -> None:
            for message in batch:
                await message.in_progress()

        try:
            self._call(touch(), timeout=5)
        except Exception as err:  # worst case the server redelivers: a duplicate, which sinks and alerting absorb
            log.warning("in_progress_failed", partition=self._partition, error=str(err))

    def _evaluation_failed(self, readings: ReadingBatch | None, reason: str) -> None:
        """Dead-letter a batch downstream keeps failing on (stored, not evaluated) and report it."""
        count = len(readings) if readings is not None else 0
        if readings is not None:
            base = f"{self._stream}-eval-{min(m.metadata.sequence.stream for m in self._in_hand)}" if self._in_hand else None
            detail = f"stored, but the rules or alerting failed on its batch {EVALUATION_ATTEMPTS} times: {reason}"
            for i, reading in enumerate(readings.readings()):
                self._letter_id = f"{base}-{i}" if base else None
                self._deadletters.send(stored_reading_letter(reading, "evaluation_failed", detail))
        if self._on_evaluation_failed is not None:
            self._on_evaluation_failed(count, reason)

    def dead_letter_late(self, late: ReadingBatch) -> None:
        """Dead-letter readings the rules could not place in event-time order (stored, not evaluated)."""
        for reading in late.readings():
            self._letter_id = None  # judged after the batch was taken: no message sequence to key on
            self._deadletters.send(stored_reading_letter(reading, "late", LATE_DETAIL))

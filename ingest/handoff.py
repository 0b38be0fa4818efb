"""Store a decoded batch in every sink, then hand it downstream: the retry rules every ingest source shares.

The MQTT source (`ingest.service`) and the JetStream source (`ingest.jetstream`) differ in how they
receive and acknowledge, never in this: a sink that fails is retried with back-off for as long as it
takes (nothing is acknowledged meanwhile, the broker or stream keeps the backlog); downstream that
cannot commit (`DownstreamUnavailable`, a full disk) is retried the same way; a batch downstream fails
on for any other reason is tried `EVALUATION_ATTEMPTS` times, then given to ``on_failed`` (the source
dead-letters it as ``evaluation_failed``). A stop asked meanwhile raises `Stopped`: the batch stays
unacknowledged and is redelivered, never half-acknowledged.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Callable, Sequence

import structlog

from foundation.domain import ReadingBatch
from ingest.base import DownstreamUnavailable, Sink
from ingest.metrics import IngestMetrics

__all__ = ["EVALUATION_ATTEMPTS", "Handoff", "Stopped"]

EVALUATION_ATTEMPTS = 3
"""How often a batch downstream fails on (not for want of a disk) is tried before it is dead-lettered."""
MAX_DELAY_S = 10.0

log = structlog.get_logger("ingest")


class Stopped(Exception):
    """Stop was asked while a batch could not be finished: it stays unacknowledged (redelivered later)."""


class Handoff:
    """Sinks, then downstream, with ingest's retry rules; ``store_problem`` / ``downstream_problem`` say what fails now.

    ``while_waiting`` runs between attempts (the JetStream source tells the server the batch is still in
    hand); ``log_fields`` are added to every log event (the partition of a JetStream source).
    """

    def __init__(self, sinks: Sequence[Sink], metrics: IngestMetrics, stop: threading.Event,
                 on_failed: Callable[[ReadingBatch | None, str], None], **log_fields: Any) -> None:
        self._sinks = sinks
        self._metrics = metrics
        self._stop = stop
        self._on_failed = on_failed
        self._log_fields = log_fields
        self.store_problem: str | None = None
        self.downstream_problem: str | None = None

    def store(self, readings: ReadingBatch, while_waiting: Callable[[], None] | None = None) -> None:
        """Write ``readings`` to every sink, retrying each until it accepts; raises `Stopped` on stop."""
        for sink in self._sinks:
            delay = 0.1
            while True:
                t0 = time.perf_counter()
                try:
                    sink.write(readings)
                    self._metrics.store_seconds.labels(sink.name).observe(time.perf_counter() - t0)
                    self.store_problem = None
                    break
                except Exception as err:  # any sink error: retried, reported in problems(), never dropped
                    self._metrics.store_errors.labels(sink.name).inc()
                    self.store_problem = f"{sink.name}: {type(err).__name__}: {str(err)[:200]}"
                    log.error("store_write_failed", sink=sink.name, readings=len(readings), error=str(err),
                              retry_in_s=delay, **self._log_fields)
                    self._pause(delay, "stopped with an unstored batch: it stays unacknowledged", while_waiting, err)
                    delay = min(delay * 2, MAX_DELAY_S)

    def hand_down(self, call: Callable[[], None], readings: ReadingBatch | None,
                  while_waiting: Callable[[], None] | None = None) -> None:
        """Run a downstream ``call`` until it succeeds: for ever while downstream is unavailable,
        `EVALUATION_ATTEMPTS` times when it fails otherwise (then ``on_failed(readings, reason)``)."""
        delay, failures = 0.1, 0
        size = len(readings) if readings is not None else 0
        while True:
            try:
                call()
                self.downstream_problem = None
                return
            except DownstreamUnavailable as err:
                self.downstream_problem = str(err)[:300]
                self._metrics.downstream_retries.labels("unavailable").inc()
                log.error("downstream_unavailable", readings=size, error=str(err), retry_in_s=delay,
                          **self._log_fields)
            except Exception as err:  # a rule or alerting bug: tried again, then dead-lettered with the reason
                failures += 1
                self._metrics.downstream_retries.labels("failed").inc()
                log.error("batch_handler_failed", readings=size, attempt=failures,
                          error=f"{type(err).__name__}: {err}", exc_info=True, **self._log_fields)
                if failures >= EVALUATION_ATTEMPTS:
                    self._on_failed(readings, f"{type(err).__name__}: {str(err)[:200]}")
                    return
            self._pause(delay, "stopped with a batch downstream has not taken: it stays unacknowledged",
                        while_waiting)
            delay = min(delay * 2, MAX_DELAY_S)

    def _pause(self, delay: float, why: str, while_waiting: Callable[[], None] | None,
               cause: BaseException | None = None) -> None:
        if self._stop.wait(delay):
            raise Stopped(why) from cause
        if while_waiting is not None:
            while_waiting()

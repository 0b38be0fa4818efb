"""Dead letters: every rejected payload goes to ``liaowang/v1/deadletter``, counted and logged sparingly."""

from __future__ import annotations

from typing import Callable

import orjson
import structlog

from ingest.decode import READINGS_PREFIX, Rejection
from ingest.metrics import IngestMetrics
from foundation.domain import Reading, iso

DEADLETTER_TOPIC = "liaowang/v1/deadletter"
PAYLOAD_EXCERPT = 1024

log = structlog.get_logger("ingest")


LATE_DETAIL = "older than a reading of its sensor already evaluated, beyond rules.lateness_s: stored, not evaluated"


def stored_reading_letter(reading: Reading, reason: str, detail: str) -> Rejection:
    """The dead letter of a reading that was stored but not evaluated (``late``, ``evaluation_failed``):
    the reading as its gateway would have sent it, on its single-reading topic."""
    payload = orjson.dumps({"sensor_id": reading.sensor_id, "ts": iso(reading.ts), "value": reading.value,
                            "quality": reading.quality.value})
    return Rejection(reason, f"{READINGS_PREFIX}{reading.site_id}/{reading.sensor_id}", payload, detail)


def _printable(text: str) -> str:
    """Text that serialises as JSON whatever it holds (a lone surrogate would make orjson raise)."""
    return text.encode("utf-8", "replace").decode("utf-8")


class DeadLetters:
    """Publishes, counts and logs rejections; one log line per reason per interval (no floods).

    ``publish(topic, payload)`` is the MQTT publish function; ``clock`` gives wall-clock seconds.
    """

    def __init__(self, publish: Callable[[str, bytes], None], metrics: IngestMetrics,
                 clock: Callable[[], float], log_interval_s: float) -> None:
        self._publish = publish
        self._metrics = metrics
        self._clock = clock
        self._interval = log_interval_s
        self._last_logged: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def send(self, rejection: Rejection) -> None:
        """Dead-letter one rejection."""
        now = self._clock()
        self._metrics.rejected.labels(rejection.reason).inc()
        letter = {
            "reason": rejection.reason,
            "detail": _printable(rejection.detail),
            "topic": _printable(rejection.topic),
            "payload": rejection.payload[:PAYLOAD_EXCERPT].decode("utf-8", errors="replace"),
            "truncated": len(rejection.payload) > PAYLOAD_EXCERPT,
            "received_at": iso(now),
        }
        self._publish(DEADLETTER_TOPIC, orjson.dumps(letter))
        last = self._last_logged.get(rejection.reason)
        if last is None or now - last >= self._interval:
            log.warning("reading_rejected", reason=rejection.reason, detail=rejection.detail, topic=rejection.topic,
                        suppressed_since_last=self._suppressed.pop(rejection.reason, 0))
            self._last_logged[rejection.reason] = now
        else:
            self._suppressed[rejection.reason] = self._suppressed.get(rejection.reason, 0) + 1

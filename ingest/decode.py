"""Decoding and validating MQTT payloads into `Reading`s, per CONTRACT §1.

Every payload ends as readings or as `Rejection`s with a reason; nothing raises and nothing is
dropped silently. One bad element of a batch never drops the others.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Literal

import orjson

import msgspec
import numpy as np

from liaowang.config import Fleet, IngestSettings
from liaowang.domain import QUALITY_CODE, Reading, ReadingBatch, parse_time

READINGS_PREFIX = "liaowang/v1/readings/"
EARLIEST_TS = 946_684_800.0  # 2000-01-01: anything older is a broken clock, not a reading

REASONS = (
    "not_json", "bad_shape", "oversized", "bad_topic", "unknown_sensor", "sensor_mismatch", "site_mismatch",
    "bad_value", "bad_timestamp", "future_timestamp", "unit_mismatch", "bad_quality", "bad_status", "late",
)
"""Every dead-letter reason ingest gives (CONTRACT §1 and its extensions in docs/CONTRACT-EXTENSIONS.md)."""

# Unit spellings and conversions accepted besides the registry's own unit: (sent, registered) → f.
_UNIT_CONVERSIONS: dict[tuple[str, str], Callable[[float], float]] = {
    ("℃", "°C"): lambda v: v, ("degC", "°C"): lambda v: v, ("C", "°C"): lambda v: v,
    ("kPa", "MPa"): lambda v: v / 1000.0, ("MPa", "kPa"): lambda v: v * 1000.0,
    ("m/s", "km/h"): lambda v: v * 3.6, ("km/h", "m/s"): lambda v: v / 3.6,
    ("cm", "m"): lambda v: v / 100.0, ("mm", "m"): lambda v: v / 1000.0,
    ("mg/m³", "mg/m3"): lambda v: v, ("m³/h", "m3/h"): lambda v: v,
}


class BatchBuilder:
    """Collects decoded readings as plain columns; `build` makes one `ReadingBatch` per micro-batch."""

    __slots__ = ("sensor", "ts", "value", "quality", "_fleet")

    def __init__(self, fleet: Fleet) -> None:
        self._fleet = fleet
        self.sensor: list[int] = []
        self.ts: list[float] = []
        self.value: list[float] = []
        self.quality: list[int] = []

    def __len__(self) -> int:
        return len(self.ts)

    def build(self) -> ReadingBatch:
        """The collected rows as numpy columns."""
        return ReadingBatch(np.array(self.sensor, dtype=np.int32), np.array(self.ts, dtype=np.float64),
                            np.array(self.value, dtype=np.float64), np.array(self.quality, dtype=np.int8),
                            self._fleet.sensor_ids, self._fleet.sensor_sites)


_QUALITY_CODES = {q.value: code for q, code in QUALITY_CODE.items()}


class _FastReading(msgspec.Struct):
    """The common, well-formed reading: decoded and type-checked in C by msgspec."""

    value: float
    ts: float | str
    sensor_id: str | None = None
    unit: str | None = None
    quality: Literal["good", "uncertain", "bad"] = "good"


class _FastBatch(msgspec.Struct):
    readings: list[_FastReading]
    site_id: str | None = None


_FAST_ONE = msgspec.json.Decoder(_FastReading)
_FAST_BATCH = msgspec.json.Decoder(_FastBatch)


@dataclass(frozen=True, slots=True)
class Rejection:
    """A payload, or one element of a batch, that could not become a reading."""

    reason: str
    topic: str
    payload: bytes
    detail: str


class Decoder:
    """Turns ``(topic, payload)`` into readings and rejections.

    ``clock`` returns wall-clock epoch seconds; it judges only timestamps from the future.

    >>> # decoder.decode("liaowang/v1/readings/LC-LUXI/LC-LUXI-GD-01", b'{"ts": 1795564800, "value": 3}')
    """

    def __init__(self, fleet: Fleet, settings: IngestSettings, clock: Callable[[], float]) -> None:
        self._fleet = fleet
        self._settings = settings
        self._clock = clock
        index = fleet.sensor_index
        # Per sensor id: (fleet index, site, unit), looked up once per reading on the hot path.
        self._sensors = {sid: (index[sid], s.site_id, s.unit) for sid, s in fleet.sensors.items()}
        self._topics: dict[str, tuple[str, str | None]] = {}
        self._max_ts = clock() + settings.future_skew_s

    def decode(self, topic: str, payload: bytes) -> tuple[list[Reading], list[Rejection]]:
        """Decode one MQTT message into `Reading`s and rejections; never raises."""
        builder = BatchBuilder(self._fleet)
        self.refresh_clock()
        rejections = self.decode_into(builder, topic, payload)
        return builder.build().readings(), rejections

    def refresh_clock(self) -> None:
        """Re-read the wall clock that bounds future timestamps (ingest calls it once per micro-batch)."""
        self._max_ts = self._clock() + self._settings.future_skew_s

    def _topic_parts(self, topic: str) -> tuple[str, str | None] | None:
        """(site, sensor or None) of a readings topic, or None when malformed; cached, topics repeat."""
        parts = self._topics.get(topic)
        if parts is None:
            pieces = topic[len(READINGS_PREFIX):].split("/") if topic.startswith(READINGS_PREFIX) else []
            if len(pieces) not in (1, 2) or not all(pieces):
                return None
            parts = (pieces[0], pieces[1] if len(pieces) == 2 else None)
            if len(self._topics) < 200_000:  # bounded: a flood of made-up topics cannot grow memory
                self._topics[topic] = parts
        return parts

    def decode_into(self, out: BatchBuilder, topic: str, payload: bytes) -> list[Rejection]:
        """Decode one MQTT message, appending good readings to ``out``; return the rejections."""
        if len(payload) > self._settings.max_payload_bytes:
            return [Rejection("oversized", topic, payload, f"{len(payload)} bytes > {self._settings.max_payload_bytes}")]
        parts = self._topic_parts(topic)
        if parts is None:
            return [Rejection("bad_topic", topic, payload, "expected liaowang/v1/readings/{site_id}[/{sensor_id}]")]
        topic_site, topic_sensor = parts
        if self._decode_fast(out, topic_site, topic_sensor, payload):
            return []
        # The slow path: find out exactly what is wrong, element by element.
        try:
            body = orjson.loads(payload)
        except orjson.JSONDecodeError as err:
            return [Rejection("not_json", topic, payload, str(err)[:200])]
        if type(body) is not dict:
            return [Rejection("bad_shape", topic, payload, f"expected a JSON object, got {type(body).__name__}")]
        items = body.get("readings")
        if items is None and "readings" not in body:
            problem = self._decode_one(out, topic_site, topic_sensor, body)
            return [Rejection(problem[0], topic, payload, problem[1])] if problem else []
        if type(items) is not list:
            return [Rejection("bad_shape", topic, payload, "'readings' must be a list")]
        batch_site = body.get("site_id", topic_site)
        if batch_site != topic_site:
            return [Rejection("site_mismatch", topic, payload,
                              f"batch site_id {str(batch_site)[:60]!r} differs from topic site {topic_site!r}")]
        rejections = []
        for item in items:
            problem = self._decode_one(out, topic_site, None, item)
            if problem:  # the element alone is dead-lettered; its neighbours are kept
                rejections.append(Rejection(problem[0], topic, orjson.dumps(item), problem[1]))
        return rejections

    def _decode_fast(self, out: BatchBuilder, topic_site: str, topic_sensor: str | None, payload: bytes) -> bool:
        """Decode a payload with nothing wrong in it, all or nothing; False sends it to the slow path.

        msgspec parses and type-checks in C; the registry, site, unit and time checks run here.
        Most payloads are well formed, so this carries the load (see docs/BENCHMARKS.md).
        """
        try:
            if topic_sensor is None:
                batch = _FAST_BATCH.decode(payload)
                if batch.site_id is not None and batch.site_id != topic_site:
                    return False
                items = batch.readings
            else:
                items = [_FAST_ONE.decode(payload)]
        except (msgspec.DecodeError, msgspec.ValidationError):
            return False
        sensors, max_ts = self._sensors, self._max_ts
        rows = []
        for item in items:
            sensor_id = item.sensor_id if item.sensor_id is not None else topic_sensor
            known = sensors.get(sensor_id)
            ts = item.ts
            if (known is None or known[1] != topic_site or type(ts) is str or not EARLIEST_TS <= ts <= max_ts
                    or (topic_sensor is not None and sensor_id != topic_sensor)
                    or (item.unit is not None and item.unit != known[2])):
                return False
            rows.append((known[0], ts, item.value, _QUALITY_CODES[item.quality]))
        for index, ts, value, code in rows:
            out.sensor.append(index)
            out.ts.append(ts)
            out.value.append(value)
            out.quality.append(code)
        return True

    def _decode_one(self, out: BatchBuilder, topic_site: str, topic_sensor: str | None,
                    item: Any) -> tuple[str, str] | None:
        """Append one reading to ``out``, or return (reason, detail). The hot path: keep it lean."""
        if type(item) is not dict:
            return "bad_shape", f"a reading must be a JSON object, got {type(item).__name__}"
        sensor_id = item.get("sensor_id", topic_sensor)
        known = self._sensors.get(sensor_id) if type(sensor_id) is str else None
        if known is None:
            if type(sensor_id) is not str:
                return "bad_shape", "sensor_id missing or not a string"
            return "unknown_sensor", f"sensor {sensor_id[:80]!r} is not registered"
        if topic_sensor is not None and sensor_id != topic_sensor:
            return "sensor_mismatch", f"payload sensor_id {sensor_id!r} differs from topic {topic_sensor!r}"
        index, site_id, unit_registered = known
        if site_id != topic_site:
            return "site_mismatch", f"sensor {sensor_id} belongs to {site_id}, topic says {topic_site}"

        value = item.get("value")
        kind = type(value)
        if kind is float:
            pass  # orjson never yields NaN or infinity: those payloads fail as not_json
        elif kind is int:
            value = float(value)
            if not math.isfinite(value):
                return "bad_value", "value overflows a double"
        else:
            return "bad_value", f"value must be a finite number, got {str(value)[:40]!r}"

        raw_ts = item.get("ts")
        if type(raw_ts) is float or type(raw_ts) is int:
            ts = float(raw_ts)
            if not EARLIEST_TS <= ts <= self._max_ts:
                return self._timestamp_problem(raw_ts, ts)
        else:
            ts, problem = self._timestamp(raw_ts)
            if problem:
                return problem

        unit = item.get("unit")
        if unit is not None and unit != unit_registered:
            convert = _UNIT_CONVERSIONS.get((unit, unit_registered)) if type(unit) is str else None
            if convert is None:
                return "unit_mismatch", f"unit {str(unit)[:20]!r} is not {unit_registered!r} nor a known conversion"
            value = convert(value)

        quality = item.get("quality")
        if quality is None and "quality" not in item:
            code = 0
        else:
            code = _QUALITY_CODES.get(quality) if type(quality) is str else None
            if code is None:
                return "bad_quality", f"quality must be good, uncertain or bad, got {str(quality)[:20]!r}"
        out.sensor.append(index)
        out.ts.append(ts)
        out.value.append(value)
        out.quality.append(code)
        return None

    def _timestamp_problem(self, raw: Any, ts: float) -> tuple[str, str]:
        if not math.isfinite(ts) or ts < EARLIEST_TS:
            return "bad_timestamp", f"ts {raw!r} is before 2000 or not finite"
        return "future_timestamp", f"ts {raw!r} is more than {self._settings.future_skew_s:g} s ahead"

    def _timestamp(self, raw: Any) -> tuple[float, tuple[str, str] | None]:
        if isinstance(raw, bool) or raw is None:
            return 0.0, ("bad_timestamp", "ts missing or not a number/RFC 3339 string")
        if isinstance(raw, str):
            try:
                ts = parse_time(raw)
            except (ValueError, OverflowError) as err:
                return 0.0, ("bad_timestamp", str(err)[:120])
        else:
            return 0.0, ("bad_timestamp", f"ts must be a number or string, got {type(raw).__name__}")
        if not EARLIEST_TS <= ts <= self._max_ts:
            return 0.0, self._timestamp_problem(raw, ts)
        return ts, None

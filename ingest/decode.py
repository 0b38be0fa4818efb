"""Decoding and validating MQTT payloads into `Reading`s, per CONTRACT §1.

Every payload ends as readings or as `Rejection`s with a reason; nothing raises and nothing is
dropped silently. One bad element of a batch never drops the others.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import orjson

from liaowang.config import Fleet, IngestSettings
from liaowang.domain import Quality, Reading, parse_time

READINGS_PREFIX = "liaowang/v1/readings/"
EARLIEST_TS = 946_684_800.0  # 2000-01-01: anything older is a broken clock, not a reading

REASONS = (
    "not_json", "bad_shape", "oversized", "bad_topic", "unknown_sensor", "sensor_mismatch", "site_mismatch",
    "bad_value", "bad_timestamp", "future_timestamp", "unit_mismatch", "bad_quality", "bad_status",
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

    def decode(self, topic: str, payload: bytes) -> tuple[list[Reading], list[Rejection]]:
        """Decode one MQTT message; never raises."""
        def reject(reason: str, detail: str, part: bytes = payload) -> tuple[list[Reading], list[Rejection]]:
            return [], [Rejection(reason, topic, part, detail)]

        if len(payload) > self._settings.max_payload_bytes:
            return reject("oversized", f"{len(payload)} bytes > {self._settings.max_payload_bytes}")
        parts = topic[len(READINGS_PREFIX):].split("/") if topic.startswith(READINGS_PREFIX) else []
        if len(parts) not in (1, 2) or not all(parts):
            return reject("bad_topic", "expected liaowang/v1/readings/{site_id}[/{sensor_id}]")
        topic_site, topic_sensor = parts[0], (parts[1] if len(parts) == 2 else None)
        try:
            body = orjson.loads(payload)
        except orjson.JSONDecodeError as err:
            return reject("not_json", str(err)[:200])
        if not isinstance(body, dict):
            return reject("bad_shape", f"expected a JSON object, got {type(body).__name__}")
        if "readings" in body:
            return self._decode_batch(topic, topic_site, body)
        reading, rejection = self._decode_one(topic, topic_site, topic_sensor, body, payload)
        return ([reading], []) if reading else ([], [rejection])  # type: ignore[list-item]

    def _decode_batch(self, topic: str, topic_site: str, body: dict[str, Any]) -> tuple[list[Reading], list[Rejection]]:
        items = body["readings"]
        if not isinstance(items, list):
            return [], [Rejection("bad_shape", topic, orjson.dumps(body)[:1024], "'readings' must be a list")]
        batch_site = body.get("site_id", topic_site)
        if batch_site != topic_site:
            return [], [Rejection("site_mismatch", topic, orjson.dumps(body)[:1024],
                                  f"batch site_id {batch_site!r} differs from topic site {topic_site!r}")]
        readings, rejections = [], []
        for item in items:
            raw = orjson.dumps(item)
            reading, rejection = self._decode_one(topic, topic_site, None, item, raw)
            if reading is not None:
                readings.append(reading)
            else:
                rejections.append(rejection)
        return readings, rejections

    def _decode_one(self, topic: str, topic_site: str, topic_sensor: str | None, item: Any,
                    raw: bytes) -> tuple[Reading | None, Rejection | None]:
        def reject(reason: str, detail: str) -> tuple[None, Rejection]:
            return None, Rejection(reason, topic, raw, detail)

        if not isinstance(item, dict):
            return reject("bad_shape", f"a reading must be a JSON object, got {type(item).__name__}")
        sensor_id = item.get("sensor_id", topic_sensor)
        if not isinstance(sensor_id, str):
            return reject("bad_shape", "sensor_id missing or not a string")
        if topic_sensor is not None and sensor_id != topic_sensor:
            return reject("sensor_mismatch", f"payload sensor_id {sensor_id!r} differs from topic {topic_sensor!r}")
        sensor = self._fleet.sensors.get(sensor_id)
        if sensor is None:
            return reject("unknown_sensor", f"sensor {sensor_id[:80]!r} is not registered")
        if sensor.site_id != topic_site:
            return reject("site_mismatch", f"sensor {sensor_id} belongs to {sensor.site_id}, topic says {topic_site}")

        value = item.get("value")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            return reject("bad_value", f"value must be a finite number, got {str(value)[:40]!r}")
        value = float(value)
        if not math.isfinite(value):
            return reject("bad_value", "value overflows a double")

        ts, problem = self._timestamp(item.get("ts"))
        if problem:
            return reject(*problem)

        unit = item.get("unit")
        if unit is not None and unit != sensor.unit:
            convert = _UNIT_CONVERSIONS.get((unit, sensor.unit)) if isinstance(unit, str) else None
            if convert is None:
                return reject("unit_mismatch", f"unit {str(unit)[:20]!r} is not {sensor.unit!r} nor a known conversion")
            value = convert(value)

        try:
            quality = Quality(item.get("quality", "good"))
        except (ValueError, TypeError):
            return reject("bad_quality", f"quality must be good, uncertain or bad, got {str(item.get('quality'))[:20]!r}")
        return Reading(sensor_id, sensor.site_id, ts, value, quality), None

    def _timestamp(self, raw: Any) -> tuple[float, tuple[str, str] | None]:
        if isinstance(raw, bool) or raw is None:
            return 0.0, ("bad_timestamp", "ts missing or not a number/RFC 3339 string")
        if isinstance(raw, (int, float)):
            ts = float(raw)
        elif isinstance(raw, str):
            try:
                ts = parse_time(raw)
            except (ValueError, OverflowError) as err:
                return 0.0, ("bad_timestamp", str(err)[:120])
        else:
            return 0.0, ("bad_timestamp", f"ts must be a number or string, got {type(raw).__name__}")
        if not math.isfinite(ts) or ts < EARLIEST_TS:
            return 0.0, ("bad_timestamp", f"ts {raw!r} is before 2000 or not finite")
        if ts > self._clock() + self._settings.future_skew_s:
            return 0.0, ("future_timestamp", f"ts {raw!r} is more than {self._settings.future_skew_s:g} s ahead")
        return ts, None

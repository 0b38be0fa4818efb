"""Decoding and validating MQTT payloads into `Reading`s, per CONTRACT §1.

Every payload ends as readings or as `Rejection`s with a reason; nothing raises and nothing is
dropped silently. One bad element of a batch never drops the others.

Hostile input is bounded, not trusted: JSON nested past the parser's limit is ``too_deep``; a
container where the contract wants a scalar gets that field's reason; detail strings describe a
rejected value by its type, never by ``str()`` of it (a deeply nested list cannot be printed); a
batch element too deep to re-serialise is dead-lettered with the whole message. Anything else
that goes wrong while decoding one message becomes one ``decode_failed`` rejection naming the
exception type, so a single message can never stop ingest (TRAPS.md, "Found by attacking").
The verdict never depends on which path judged a payload: the fast path (msgspec) takes only
what the slow path (orjson, then Python) would take too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Literal

import orjson

import msgspec
import numpy as np

from foundation.config import Fleet, IngestSettings
from foundation.domain import QUALITY_CODE, Reading, ReadingBatch, parse_time

READINGS_PREFIX = "liaowang/v1/readings/"
EARLIEST_TS = 946_684_800.0  # 2000-01-01: anything older is a broken clock, not a reading

MAX_DEPTH = 1024
"""Deepest nesting accepted (orjson's limit; the contract's own shapes need 3). Deeper: ``too_deep``."""
_MAX_CACHED_TOPIC = 256  # longer topics are parsed each time: no real topic is that long, and the cache stays small

REASONS = (
    "not_json", "bad_shape", "oversized", "bad_topic", "unknown_sensor", "sensor_mismatch", "site_mismatch",
    "bad_value", "bad_timestamp", "future_timestamp", "unit_mismatch", "bad_quality", "bad_status", "late",
    "too_deep", "decode_failed", "evaluation_failed",
)
"""Every dead-letter reason ingest gives (docs/contract.md §1, and §6 "Dead-letter reasons").

``evaluation_failed`` is given by the store stage (ingest/service.py), not by the decoder.
"""

# Unit spellings and conversions accepted besides the registry's own unit: (sent, registered) → f.
_UNIT_CONVERSIONS: dict[tuple[str, str], Callable[[float], float]] = {
    ("℃", "°C"): lambda v: v, ("degC", "°C"): lambda v: v, ("C", "°C"): lambda v: v,
    ("kPa", "MPa"): lambda v: v / 1000.0, ("MPa", "kPa"): lambda v: v * 1000.0,
    ("m/s", "km/h"): lambda v: v * 3.6, ("km/h", "m/s"): lambda v: v / 3.6,
    ("cm", "m"): lambda v: v / 100.0, ("mm", "m"): lambda v: v / 1000.0,
    ("mg/m³", "mg/m3"): lambda v: v, ("m³/h", "m3/h"): lambda v: v,
}

_PPM = "ppm"
_MG_M3 = ("mg/m3", "mg/m³")


def species_conversion(sent: str, registered: str, molar_mass: float, molar_volume: float) -> Callable[[float], float] | None:
    """ppm ↔ mg/m3 for one gas species: mg/m3 = ppm × M / V (V = 24.06 L/mol at 20 °C, 101.325 kPa).

    >>> round(species_conversion("ppm", "mg/m3", 34.08, 24.06)(10.0), 2)   # H2S: 10 ppm
    14.16
    >>> round(species_conversion("mg/m3", "ppm", 28.01, 24.06)(20.0), 2)   # CO: 20 mg/m3
    17.18
    """
    if sent == _PPM and registered in _MG_M3:
        factor = molar_mass / molar_volume
    elif sent in _MG_M3 and registered == _PPM:
        factor = molar_volume / molar_mass
    else:
        return None
    return lambda v: v * factor


class BatchBuilder:
    """Collects decoded readings as plain columns; `build` makes one `ReadingBatch` per micro-batch.

    Readings decoded one by one are appended to the four lists; a whole batch message decoded at
    once arrives as four numpy columns (`add_columns`). Arrival order is kept across both.
    """

    __slots__ = ("sensor", "ts", "value", "quality", "_fleet", "_chunks", "_chunk_rows")

    def __init__(self, fleet: Fleet) -> None:
        self._fleet = fleet
        self.sensor: list[int] = []
        self.ts: list[float] = []
        self.value: list[float] = []
        self.quality: list[int] = []
        self._chunks: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
        self._chunk_rows = 0

    def __len__(self) -> int:
        return len(self.ts) + self._chunk_rows

    def add_columns(self, sensor: np.ndarray, ts: np.ndarray, value: np.ndarray, quality: np.ndarray) -> None:
        """Append whole rows given as columns (int32 fleet index, float64 ts and value, int8 quality code)."""
        self._lists_to_chunk()
        self._chunks.append((sensor, ts, value, quality))
        self._chunk_rows += len(ts)

    def _lists_to_chunk(self) -> None:
        if self.ts:
            self._chunks.append(self._arrays())
            self._chunk_rows += len(self.ts)
            for column in (self.sensor, self.ts, self.value, self.quality):
                del column[:]

    def _arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        return (np.array(self.sensor, dtype=np.int32), np.array(self.ts, dtype=np.float64),
                np.array(self.value, dtype=np.float64), np.array(self.quality, dtype=np.int8))

    def discard_partial_row(self) -> None:
        """Cut the columns back to whole rows (after a failure between the four appends of one row)."""
        rows = min(len(self.sensor), len(self.ts), len(self.value), len(self.quality))
        for column in (self.sensor, self.ts, self.value, self.quality):
            del column[rows:]

    def build(self) -> ReadingBatch:
        """The collected rows as numpy columns."""
        if not self._chunks:
            columns = self._arrays()
        else:
            self._lists_to_chunk()
            columns = tuple(np.concatenate([chunk[c] for chunk in self._chunks]) if len(self._chunks) > 1
                            else self._chunks[0][c] for c in range(4))
        return ReadingBatch(*columns, self._fleet.sensor_ids, self._fleet.sensor_sites)


_QUALITY_CODES = {q.value: code for q, code in QUALITY_CODE.items()}
assert _QUALITY_CODES["good"] == 0  # the columnar path fills a batch of good readings with zeros
_COLUMNS_FROM = 8
"""Batches of at least this many readings are decoded column by column (`Decoder._columns`)."""


class _FastReading(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    """The common, well-formed reading: decoded and type-checked in C by msgspec.

    Only the contract's fields, all scalars: a payload it takes is nested exactly as deep as the
    contract's shapes (1 level, a batch 3) and msgspec has checked every byte of it. Scalars only, so not
    tracked by the garbage collector (a batch of 100 would otherwise be 100 objects for it to scan). A payload
    with other fields goes to the lax twin below (see `_lax_items`).
    """

    value: float
    ts: float | str
    sensor_id: str | None = None
    unit: str | None = None
    quality: Literal["good", "uncertain", "bad"] = "good"


class _FastBatch(msgspec.Struct, forbid_unknown_fields=True):
    readings: list[_FastReading]
    site_id: str | None = None


class _LaxReading(_FastReading, forbid_unknown_fields=False):
    """A reading with fields the contract does not name: msgspec skips them (they are ignored)."""


class _LaxBatch(msgspec.Struct):
    readings: list[_LaxReading]
    site_id: str | None = None


_FAST_ONE = msgspec.json.Decoder(_FastReading)
_FAST_BATCH = msgspec.json.Decoder(_FastBatch)
_LAX_ONE = msgspec.json.Decoder(_LaxReading)
_LAX_BATCH = msgspec.json.Decoder(_LaxBatch)


def _describe(value: Any) -> str:
    """A short description of a decoded JSON value for a detail string: bounded, and never ``str()``
    of a container (a list nested a few hundred deep makes ``str()`` raise RecursionError).

    >>> _describe("x" * 100), _describe(True), _describe(12.5), _describe([[[]]])
    ("'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx'…", 'true', '12.5', 'an array')
    """
    kind = type(value)
    if kind is str:
        return repr(value[:40]) + "…" if len(value) > 40 else repr(value)
    if value is None or kind is bool:
        return "null" if value is None else ("true" if value else "false")
    if kind is float or (kind is int and -2**64 < value < 2**64):
        return repr(value)
    return {dict: "an object", list: "an array", int: "a very large integer"}.get(kind, f"a {kind.__name__}")


def _mqtt_topic_name(topic: str) -> bool:
    """Whether ``topic`` can be an MQTT topic name: UTF-8, no U+0000, no wildcard (MQTT 3.1.1 §4.7).

    A broker delivers no other, so such a topic is ``bad_topic`` whatever its payload.
    """
    if "+" in topic or "#" in topic or "\x00" in topic:
        return False
    try:
        topic.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate
        return False
    return True


def _failure(err: BaseException) -> str:
    """``decode_failed`` detail: the exception type and where it was raised (never ``str(err)``)."""
    tb = err.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    where = f" in {tb.tb_frame.f_code.co_name} line {tb.tb_lineno}" if tb is not None else ""
    return f"unexpected {type(err).__name__}{where} while decoding: a bug in ingest, please report this payload"


def _element_payload(item: Any, message: bytes) -> tuple[bytes, str]:
    """The dead-letter payload of one rejected batch element, and a note for its detail.

    The element is re-serialised on its own; one orjson cannot write (nested past 254 levels) is
    dead-lettered with the whole message instead, and the note says so.
    """
    try:
        return orjson.dumps(item), ""
    except Exception:
        return message, " (element nested too deep to re-serialise: the payload is the whole message)"


def _lax_items(topic_site: str, topic_sensor: str | None, payload: bytes) -> list[Any] | None:
    """The readings of a payload with fields the contract does not name, or None for the slow path.

    Those fields are ignored, but msgspec skips them unchecked: invalid UTF-8, numbers past a
    double's range, nesting deeper than `MAX_DEPTH` (as deep as the recursion limit lets it).
    orjson, the slow path's parser, judges the payload first, so the verdict never depends on
    the path. Only payloads with such fields pay for it.
    """
    try:
        orjson.loads(payload)
        if topic_sensor is None:
            batch = _LAX_BATCH.decode(payload)
            if batch.site_id is not None and batch.site_id != topic_site:
                return None
            return batch.readings
        return [_LAX_ONE.decode(payload)]
    except Exception:
        return None


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
        # Sensor id → fleet index, then the index → site and unit: the fleet's own maps, shared, not copied
        # (a private id → (index, site, unit) dict cost 10 MB at 100,000 sensors; docs/BENCHMARKS.md, memory).
        self._index = fleet.sensor_index
        self._site_of = fleet.sensor_sites
        self._unit_of = tuple(fleet.sensors[sid].unit for sid in fleet.sensor_ids)
        self._topics: dict[str, tuple[str, str | None]] = {}
        # Per site: its sensors' fleet indexes, so one lookup both finds a sensor and checks its site (batches).
        self._site_sensors: dict[str, dict[str, int]] = {}
        for sid, i in self._index.items():
            self._site_sensors.setdefault(self._site_of[i], {})[sid] = i
        # Per gas sensor with a molar mass (its profile's): ppm ↔ mg/m3 on the slow path only.
        self._molar = {sid: m for sid, s in fleet.sensors.items() if (m := fleet.molar_mass(s)) is not None}
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
            pieces = topic[len(READINGS_PREFIX):].split("/", 2) if topic.startswith(READINGS_PREFIX) else []
            if len(pieces) not in (1, 2) or not all(pieces) or not _mqtt_topic_name(topic):
                return None
            parts = (pieces[0], pieces[1] if len(pieces) == 2 else None)
            # Bounded in count and size: a flood of made-up (or 64 KB) topics cannot grow memory.
            if len(self._topics) < 200_000 and len(topic) <= _MAX_CACHED_TOPIC:
                self._topics[topic] = parts
        return parts

    def decode_into(self, out: BatchBuilder, topic: str, payload: bytes) -> list[Rejection]:
        """Decode one MQTT message, appending good readings to ``out``; return the rejections.

        Never raises, whatever the bytes and the topic: what cannot be judged becomes a rejection.
        """
        try:
            if len(payload) > self._settings.max_payload_bytes:
                return [Rejection("oversized", topic, payload,
                                  f"{len(payload)} bytes > {self._settings.max_payload_bytes}")]
            parts = self._topic_parts(topic)
            if parts is None:
                return [Rejection("bad_topic", topic, payload, "expected liaowang/v1/readings/{site_id}[/{sensor_id}]")]
            topic_site, topic_sensor = parts
            if self._decode_fast(out, topic_site, topic_sensor, payload):
                return []
            return self._decode_slow(out, topic, topic_site, topic_sensor, payload)
        except Exception as err:  # last resort: a bug or a library surprise costs one message, never the thread
            out.discard_partial_row()
            return [Rejection("decode_failed", topic, payload, _failure(err))]

    def _decode_slow(self, out: BatchBuilder, topic: str, topic_site: str, topic_sensor: str | None,
                     payload: bytes) -> list[Rejection]:
        """Find out exactly what is wrong, element by element (payloads the fast path would not take)."""
        try:
            body = orjson.loads(payload)
        except orjson.JSONDecodeError as err:
            if err.msg == "depth limit exceeded":
                return [Rejection("too_deep", topic, payload,
                                  f"JSON nested deeper than {MAX_DEPTH} levels (a reading needs 3)")]
            return [Rejection("not_json", topic, payload, str(err)[:200])]
        if type(body) is not dict:
            return [Rejection("bad_shape", topic, payload, f"expected a JSON object, got {_describe(body)}")]
        items = body.get("readings")
        if items is None and "readings" not in body:
            problem = self._decode_one(out, topic_site, topic_sensor, body)
            return [Rejection(problem[0], topic, payload, problem[1])] if problem else []
        if type(items) is not list:
            return [Rejection("bad_shape", topic, payload, f"'readings' must be a list, got {_describe(items)}")]
        batch_site = body.get("site_id", topic_site)
        if batch_site != topic_site:
            return [Rejection("site_mismatch", topic, payload,
                              f"batch site_id {_describe(batch_site)} differs from topic site {topic_site[:80]!r}")]
        rejections = []
        for item in items:
            try:
                problem = self._decode_one(out, topic_site, None, item)
            except Exception as err:  # last resort for one element: its neighbours are still judged
                out.discard_partial_row()
                problem = ("decode_failed", _failure(err))
            if problem:  # the element alone is dead-lettered; its neighbours are kept
                element, note = _element_payload(item, payload)
                rejections.append(Rejection(problem[0], topic, element, problem[1] + note))
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
        except msgspec.ValidationError:  # perhaps fields the contract does not name: they are ignored
            items = _lax_items(topic_site, topic_sensor, payload)
            if items is None:
                return False
        except Exception:  # not only DecodeError: msgspec raises RecursionError a few hundred levels deep
            return False
        # msgspec refuses NaN, Infinity and out-of-range numbers, so every value here is finite.
        if topic_sensor is None and len(items) >= _COLUMNS_FROM:
            return self._columns(out, topic_site, items)
        index_of, site_of, unit_of, max_ts = self._index.get, self._site_of, self._unit_of, self._max_ts
        rows = []
        for item in items:
            sensor_id = item.sensor_id if item.sensor_id is not None else topic_sensor
            index = index_of(sensor_id)
            ts = item.ts
            if (index is None or site_of[index] != topic_site or type(ts) is str or not EARLIEST_TS <= ts <= max_ts
                    or (topic_sensor is not None and sensor_id != topic_sensor)
                    or (item.unit is not None and item.unit != unit_of[index])):
                return False
            rows.append((index, ts, item.value, _QUALITY_CODES[item.quality]))
        for index, ts, value, code in rows:
            out.sensor.append(index)
            out.ts.append(ts)
            out.value.append(value)
            out.quality.append(code)
        return True

    def _columns(self, out: BatchBuilder, topic_site: str, items: list) -> bool:
        """A batch's readings straight into numpy columns, all or nothing (False: the slow path says why).

        The same checks as the per-reading loop of `_decode_fast`, each done once for the whole
        batch: one dict lookup per reading finds the sensor among the topic site's own (unknown, or
        another site's: the slow path), times are numbers within range, units the registered ones.
        """
        members = self._site_sensors.get(topic_site)
        if members is None:
            return False
        get = members.get
        index = [get(item.sensor_id, -1) for item in items]  # a missing sensor_id (None) is not a member either
        if -1 in index:
            return False
        ts = np.array([item.ts for item in items])  # a string among them makes a string array: not for this path
        if ts.dtype.kind != "f" or not ((ts >= EARLIEST_TS) & (ts <= self._max_ts)).all():
            return False
        units = [item.unit for item in items]
        if units.count(None) != len(units):
            unit_of = self._unit_of
            if any(unit is not None and unit != unit_of[i] for i, unit in zip(index, units)):
                return False
        qualities = [item.quality for item in items]
        quality = (np.zeros(len(items), dtype=np.int8) if qualities.count("good") == len(qualities)
                   else np.array([_QUALITY_CODES[q] for q in qualities], dtype=np.int8))
        out.add_columns(np.array(index, dtype=np.int32), ts,
                        np.array([item.value for item in items], dtype=np.float64), quality)
        return True

    def _decode_one(self, out: BatchBuilder, topic_site: str, topic_sensor: str | None,
                    item: Any) -> tuple[str, str] | None:
        """Append one reading to ``out``, or return (reason, detail). The hot path: keep it lean."""
        if type(item) is not dict:
            return "bad_shape", f"a reading must be a JSON object, got {type(item).__name__}"
        sensor_id = item.get("sensor_id", topic_sensor)
        index = self._index.get(sensor_id) if type(sensor_id) is str else None
        if index is None:
            if type(sensor_id) is not str:
                return "bad_shape", "sensor_id missing or not a string"
            return "unknown_sensor", f"sensor {_describe(sensor_id)} is not registered"
        if topic_sensor is not None and sensor_id != topic_sensor:
            return "sensor_mismatch", f"payload sensor_id {sensor_id!r} differs from topic {_describe(topic_sensor)}"
        site_id, unit_registered = self._site_of[index], self._unit_of[index]
        if site_id != topic_site:
            return "site_mismatch", f"sensor {sensor_id} belongs to {site_id}, topic says {topic_site[:80]}"

        value = item.get("value")
        kind = type(value)
        if kind is float:
            pass  # orjson never yields NaN or infinity: those payloads fail as not_json
        elif kind is int:
            value = float(value)
            if not math.isfinite(value):
                return "bad_value", "value overflows a double"
        else:
            return "bad_value", f"value must be a finite number, got {_describe(value)}"

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
            if convert is None and type(unit) is str and sensor_id in self._molar:
                convert = species_conversion(unit, unit_registered, self._molar[sensor_id], self._settings.molar_volume_l_mol)
            if convert is None:
                return "unit_mismatch", f"unit must be {unit_registered!r} or convert to it, got {_describe(unit)}"
            value = convert(value)
            if not math.isfinite(value):  # 1e308 m/s is finite; in km/h it is not
                return "bad_value", f"value in {unit} is not finite in {unit_registered}"

        quality = item.get("quality")
        if quality is None and "quality" not in item:
            code = 0
        else:
            code = _QUALITY_CODES.get(quality) if type(quality) is str else None
            if code is None:
                return "bad_quality", f"quality must be good, uncertain or bad, got {_describe(quality)}"
        out.sensor.append(index)
        out.ts.append(ts)
        out.value.append(value)
        out.quality.append(code)
        return None

    def _timestamp_problem(self, raw: Any, ts: float) -> tuple[str, str]:
        if not math.isfinite(ts) or ts < EARLIEST_TS:
            return "bad_timestamp", f"ts {_describe(raw)} is before 2000 or not finite"
        return "future_timestamp", f"ts {_describe(raw)} is more than {self._settings.future_skew_s:g} s ahead"

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

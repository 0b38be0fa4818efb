"""Scenario files: a deterministic feed (fleet subset, incidents, sensor faults) and the alerts it must give.

A scenario (YAML, `Scenario`) names the sites it runs, a start time, a duration, a seed, a
timeline of incidents (physical models below) and sensor faults, and the expected and forbidden
alerts. `ScenarioFeed` turns it into readings step by step — the same seed gives the same
readings, byte for byte. The runner (`liaowang.scenario`) pushes them through the production
ingest → rules → alerting code on a fake clock. docs/scenarios.md documents the format.

Physical models (simple on purpose; documented in docs/scenarios.md):

* ``ramp``: a trapezoid added to one sensor (cooling failure, filling, a generic excursion).
* ``runaway``: an accelerating rise of a vessel's temperature (rate doubling every ``doubling_s``),
  pressure following as a closed vessel (ideal gas, p ∝ T in kelvin).
* ``overfill``: a tank level rising at ``rate_m_per_min`` from ``start_s`` (a transfer not stopped).
* ``gas_leak``: a continuous source of ``strength`` (%LEL at 1 m) at a position; each detector sees
  a Gaussian-plume-like concentration, diluted with downwind distance and wind speed and spread
  crosswind, arriving after the travel time distance / wind speed.
* ``ignition``: a fire at a forest station: smoke, air temperature and flame rise there, and at
  stations downwind within ``spread_m`` after their travel time at ``spread_m_per_min``.
* ``weather``: forest weather: daily cycles of temperature and RH (opposite), wind, rain events,
  and a dry spell that warms and dries day by day (raising the fire danger over days).

Besides the readings, a scenario may hold people's actions (acknowledge, shelve, close) at set
times, and what the alarms must have gone through (``expect_events``) and be at the end
(``end_state``), so a scenario can pin the alarm semantics of docs/alarms.md, not only detection.
"""

from __future__ import annotations

import math
import random
import zlib
from dataclasses import dataclass
from typing import Annotated, Iterator, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, model_validator

from foundation.config import Fleet, Sensor
from foundation.domain import parse_time
from foundation.riskspec import OperatingKind
from foundation.rulespec import TierName
from foundation.warningspec import WarningLevel
from simulators.models import baseline, ramp

OVERTAKEN_LAG_S = 0.25
"""How long after the newer reading that overtook it an ``overtaken`` reading arrives (seconds on the
clock): a fraction of a second, less than the live ticker's beat of 0.5 s."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# ---------------------------------------------------------------- incidents

class RampIncident(_Strict):
    kind: Literal["ramp"]
    sensor: str
    start_s: float = Field(ge=0)
    rise_s: float = Field(gt=0)
    hold_s: float = Field(default=0, ge=0)
    fall_s: float = Field(default=0, ge=0)
    delta: float


class RunawayIncident(_Strict):
    kind: Literal["runaway"]
    temperature: str
    pressure: str | None = None
    start_s: float = Field(ge=0)
    initial_rate_per_min: float = Field(default=0.5, gt=0, description="°C/min at the start")
    doubling_s: float = Field(default=300, gt=0, description="the rate doubles this often")
    max_delta: float = Field(default=120, gt=0)


class OverfillIncident(_Strict):
    kind: Literal["overfill"]
    sensor: str
    start_s: float = Field(ge=0)
    rate_m_per_min: float = Field(gt=0)


class GasLeakIncident(_Strict):
    kind: Literal["gas_leak"]
    at_sensor: str = Field(description="the leak is at this detector's position")
    start_s: float = Field(ge=0)
    duration_s: float = Field(gt=0)
    strength: float = Field(gt=0, description="concentration at 1 m from the source, %LEL")
    wind_speed_m_s: float = Field(default=2.0, gt=0)
    wind_from_deg: float = Field(default=270.0, ge=0, lt=360, description="where the wind blows from (270 = west)")
    rise_s: float = Field(default=30.0, gt=0, description="time for the source to reach full strength")


class IgnitionIncident(_Strict):
    kind: Literal["ignition"]
    station: str = Field(description="a forest station, e.g. LC-DEHH-WS1")
    start_s: float = Field(ge=0)
    duration_s: float = Field(default=1800, gt=0)
    wind_from_deg: float = Field(default=270.0, ge=0, lt=360)
    spread_m_per_min: float = Field(default=20.0, gt=0)
    spread_m: float = Field(default=3000.0, ge=0)


class RainEvent(_Strict):
    day: int = Field(ge=0)
    mm: float = Field(gt=0)


class WeatherIncident(_Strict):
    kind: Literal["weather"]
    sites: list[str] = []
    temp_mean: float = 18.0
    temp_amplitude: float = 7.0
    rh_mean: float = 45.0
    rh_amplitude: float = 20.0
    wind_km_h: float = 15.0
    rain: list[RainEvent] = []
    dry_spell_warming_per_day: float = Field(default=0.0, description="°C warmer each day")
    dry_spell_drying_per_day: float = Field(default=0.0, description="RH points drier each day")


Incident = Annotated[Union[RampIncident, RunawayIncident, OverfillIncident, GasLeakIncident, IgnitionIncident,
                           WeatherIncident], Field(discriminator="kind")]


# ---------------------------------------------------------------- faults

class Fault(_Strict):
    """A sensor fault over [start_s, start_s + duration_s): stuck, drift (unit/h), spikes, dropout
    (silence), bad quality, clock skew (s), duplicated or out-of-order messages, readings overtaken
    by a newer one, or the site's gateway going offline (Last Will).

    ``overtaken``: after each of the sensor's readings in the window, an extra reading stamped
    ``amount`` seconds *earlier* arrives `OVERTAKEN_LAG_S` later in a message of its own — a retried
    or hand-published reading that the next poll overtook. Below ``rules.lateness_s`` it is within
    the lateness and must be evaluated in its place (or counted late if its newer neighbour was
    already evaluated); it carries ``value`` when given, else the sensor's value at its time.
    """

    kind: Literal["stuck", "drift", "spikes", "dropout", "bad_quality", "clock_skew", "duplicate", "out_of_order",
                  "overtaken", "gateway_offline"]
    sensor: str | None = None
    site: str | None = None
    start_s: float = Field(ge=0)
    duration_s: float = Field(gt=0)
    amount: float = Field(default=0.0, description=(
        "drift per hour, spike size, skew seconds, delay seconds, or how much older an overtaken reading is"))
    value: float | None = Field(default=None, description="overtaken only: the value the extra readings carry")

    @model_validator(mode="after")
    def _target(self) -> "Fault":
        if self.kind == "gateway_offline" and self.site is None:
            raise ValueError("gateway_offline needs site")
        if self.kind != "gateway_offline" and self.sensor is None:
            raise ValueError(f"{self.kind} needs sensor")
        if self.kind == "overtaken" and self.amount <= 0:
            raise ValueError("overtaken needs amount > 0: how many seconds older than the newer reading it is")
        if self.value is not None and self.kind != "overtaken":
            raise ValueError("value is only for overtaken readings")
        return self


# ---------------------------------------------------------------- expectations

class Expected(_Strict):
    """An alert that must be raised (or escalated to ``tier``) within [after_s, before_s] of the start."""

    rule: str
    subject: str
    tier: TierName
    after_s: float = Field(default=0, ge=0)
    before_s: float = Field(gt=0)
    reference_s: float | None = Field(default=None, description=(
        "when the danger materialises (e.g. the HH crossing): the report gives the detection lead before it"))


class Forbidden(_Strict):
    """No alert may match (empty fields match anything); ``min_tier`` matches that tier and above."""

    rule: str | None = None
    subject: str | None = None
    min_tier: TierName | None = None


AlertEvent = Literal["raised", "escalated", "deescalated", "returned", "reactivated", "resolved", "acknowledged",
                     "closed", "shelved", "unshelved"]


class ExpectedEvent(_Strict):
    """An alert of (rule, subject) must go through ``event`` within [after_s, before_s] of the start.

    ``tier``: the priority the alert had at that event; ``announced``: true, the entry must have
    been announced (not muted by a shelf or a suppression); false, it must have been muted.
    """

    rule: str
    subject: str
    event: AlertEvent
    after_s: float = Field(default=0, ge=0)
    before_s: float = Field(gt=0)
    tier: TierName | None = None
    announced: bool | None = None

    @model_validator(mode="after")
    def _window(self) -> "ExpectedEvent":
        if self.before_s <= self.after_s:
            raise ValueError(f"before_s {self.before_s:g} must be after after_s {self.after_s:g}")
        return self


IsaState = Literal["normal", "unacknowledged", "acknowledged", "returned_unacknowledged", "shelved", "suppressed"]


class EndState(_Strict):
    """At the end of the run, the last episode of (rule, subject) must be so (unset fields are not checked).

    ``isa_state`` as docs/alarms.md names it; ``peak_tier`` the highest priority the episode
    reached; ``episodes`` how many episodes (rule, subject) had in the whole run.
    """

    rule: str
    subject: str
    isa_state: IsaState | None = None
    peak_tier: TierName | None = None
    episodes: int | None = Field(default=None, ge=0)


class Action(_Strict):
    """A person's action at ``at_s`` on the open (or last) episode of (rule, subject).

    ``shelve`` needs ``reason`` and ``duration_s``; ``close`` needs ``note``; ``role`` is the
    actor's role for the shelving protection (docs/alarms.md).
    """

    at_s: float = Field(ge=0)
    action: Literal["acknowledge", "shelve", "unshelve", "close"]
    rule: str
    subject: str
    by: str = "scenario"
    role: Literal["viewer", "operator", "duty_officer", "admin"] | None = None
    note: str | None = None
    reason: str | None = None
    duration_s: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _complete(self) -> "Action":
        if self.action == "shelve" and (not self.reason or self.duration_s is None):
            raise ValueError("shelve needs reason and duration_s")
        if self.action == "close" and not self.note:
            raise ValueError("close needs note")
        return self


WarningEventName = Literal["proposed", "updated", "verified", "rejected", "issued", "adjusted", "lifted", "overdue"]
WarningStateName = Literal["proposed", "verified", "rejected", "issued", "adjusted", "lifted"]


class Operation(_Strict):
    """An operating state an enterprise registers at ``at_s`` (开停车, 检修, GB 30871 特殊作业 such as 动火),
    lasting ``duration_s`` from then; as through ``POST /api/v1/operations`` (docs/risk.md)."""

    at_s: float = Field(ge=0)
    site: str
    unit: str | None = Field(default=None, description="a hazard unit of the site; none: the whole site")
    kind: OperatingKind
    duration_s: float = Field(gt=0)
    by: str = "scenario"
    permit: str | None = None
    note: str | None = None


class WarningAction(_Strict):
    """A duty officer's step at ``at_s`` on the open (or, for lift and adjust, the newest) warning about
    ``subject`` (a site, hazard unit or zone id), of ``category`` when given (研判, 发布, 调整, 解除).

    ``verify``, ``reject``, ``adjust`` and ``lift`` need ``reason``; ``adjust`` needs ``level``.
    """

    at_s: float = Field(ge=0)
    action: Literal["verify", "reject", "issue", "adjust", "lift"]
    subject: str
    category: str | None = None
    by: str = "scenario"
    reason: str | None = None
    level: WarningLevel | None = None

    @model_validator(mode="after")
    def _complete(self) -> "WarningAction":
        if self.action in ("verify", "reject", "adjust", "lift") and not (self.reason and self.reason.strip()):
            raise ValueError(f"{self.action} needs reason")
        if (self.action == "adjust") != (self.level is not None):
            raise ValueError("adjust needs level (and only adjust takes one)")
        return self


class ExpectedWarning(_Strict):
    """A warning step expected within [after_s, before_s]: about ``subject`` (of ``category`` when given),
    ``event``; optionally at ``level`` (the warning's level after the step), proposing ``proposed_level``
    (an in-force warning a higher grade wants raised), by ``by`` (e.g. ``risk:grading``)."""

    subject: str
    event: WarningEventName
    category: str | None = None
    level: WarningLevel | None = None
    proposed_level: WarningLevel | None = None
    by: str | None = None
    after_s: float = Field(default=0, ge=0)
    before_s: float = Field(gt=0)


class WarningEndState(_Strict):
    """Where the newest warning about ``subject`` ends the run: its state, and the CAP message types
    published for it in order (``Alert``, ``Update``, ``Cancel``; empty: never published)."""

    subject: str
    category: str | None = None
    state: WarningStateName | None = None
    published: list[Literal["Alert", "Update", "Cancel"]] | None = None
    warnings: int | None = Field(default=None, ge=0, description="how many warnings about the subject the run made")


class Scenario(_Strict):
    """One scenario file."""

    name: str
    description: str = ""
    sites: list[str] = Field(min_length=1)
    start: str = Field(description="RFC 3339 with offset")
    duration_s: float = Field(gt=0, le=30 * 86_400)
    seed: int = 1
    step_s: float = Field(default=10.0, gt=0, description="readings are delivered in batches of this much event time")
    incidents: list[Incident] = []
    faults: list[Fault] = []
    actions: list[Action] = []
    expect: list[Expected] = []
    expect_events: list[ExpectedEvent] = []
    end_state: list[EndState] = []
    forbid: list[Forbidden] = []
    operations: list[Operation] = []
    warning_actions: list[WarningAction] = []
    expect_warnings: list[ExpectedWarning] = []
    warning_end_state: list[WarningEndState] = []

    @property
    def start_ts(self) -> float:
        return parse_time(self.start)

    @model_validator(mode="after")
    def _within_run(self) -> "Scenario":
        try:
            parse_time(self.start)
        except ValueError as err:
            raise ValueError(f"start: {err}") from None
        for what, items in (("actions", self.actions), ("operations", self.operations),
                            ("warning_actions", self.warning_actions)):
            for i, item in enumerate(items):
                if item.at_s > self.duration_s:
                    raise ValueError(f"{what}[{i}].at_s {item.at_s:g} is after the end of the run ({self.duration_s:g} s)")
        return self


def check_references(scenario: Scenario, fleet: Fleet) -> list[str]:
    """Problems with sites and sensors the scenario names (empty when all exist and are in its sites)."""
    problems = []
    for site in scenario.sites:
        if site not in fleet.sites:
            problems.append(f"sites: unknown site {site!r}")
    sensors = [(f"incidents[{i}]", getattr(inc, name)) for i, inc in enumerate(scenario.incidents)
               for name in ("sensor", "temperature", "pressure", "at_sensor") if getattr(inc, name, None)]
    sensors += [(f"faults[{i}]", f.sensor) for i, f in enumerate(scenario.faults) if f.sensor]
    for i, op in enumerate(scenario.operations):
        if op.site not in scenario.sites:
            problems.append(f"operations[{i}]: site {op.site!r} is not one of the scenario's sites")
        elif op.unit is not None and op.site in fleet.sites and op.unit not in {u.id for u in fleet.sites[op.site].hazard_units}:
            problems.append(f"operations[{i}]: {op.site} has no hazard unit {op.unit!r}")
    for where, sensor_id in sensors:
        sensor = fleet.sensors.get(sensor_id)
        if sensor is None:
            problems.append(f"{where}: unknown sensor {sensor_id!r}")
        elif sensor.site_id not in scenario.sites:
            problems.append(f"{where}: sensor {sensor_id!r} is not at one of the scenario's sites")
    return problems


# ---------------------------------------------------------------- the feed

@dataclass(frozen=True, slots=True)
class SimReading:
    sensor_id: str
    ts: float
    value: float
    quality: str = "good"


def _metres(a: Sensor, b: Sensor) -> tuple[float, float]:
    """(east, north) metres from a to b (equirectangular; fine within a plant or a forest)."""
    lat = math.radians((a.lat + b.lat) / 2)
    return (b.lon - a.lon) * 111_320 * math.cos(lat), (b.lat - a.lat) * 110_540


def plume(source: Sensor, detector: Sensor, leak: GasLeakIncident, elapsed: float) -> float:
    """Concentration (%LEL) at ``detector`` ``elapsed`` s after the leak started (Gaussian-plume-like).

    Downwind distance x and crosswind distance y from the source; σ = 0.2·x + 2 m (a neutral
    stability spread); centreline dilution ∝ 1 / (1 + x · u / 2); arrival after x / u seconds.
    """
    east, north = _metres(source, detector)
    toward = math.radians((leak.wind_from_deg + 180) % 360)  # the direction the wind blows to
    wx, wy = math.sin(toward), math.cos(toward)
    x = east * wx + north * wy
    y = -east * wy + north * wx
    if x < -1:
        return 0.0
    x = max(x, 0.0)
    arrival = x / leak.wind_speed_m_s
    if elapsed < arrival or elapsed - arrival > leak.duration_s:
        return 0.0
    grow = min(1.0, (elapsed - arrival) / leak.rise_s)
    sigma = 0.2 * x + 2.0
    return leak.strength * grow * math.exp(-y * y / (2 * sigma * sigma)) / (1 + x * leak.wind_speed_m_s / 2)


def _station(sensor_id: str) -> str:
    return sensor_id.rsplit("-", 1)[0]


class ScenarioFeed:
    """The readings of a scenario, step by step (deterministic in the seed)."""

    def __init__(self, scenario: Scenario, fleet: Fleet) -> None:
        self.scenario = scenario
        self.fleet = fleet
        self.sensors = [s for s in fleet.sensors.values() if s.site_id in scenario.sites]
        self.start = scenario.start_ts
        self._weather = [i for i in scenario.incidents if isinstance(i, WeatherIncident)]

    def _noise(self, sensor_id: str, t: float) -> random.Random:
        return random.Random((self.scenario.seed << 40) ^ (zlib.crc32(sensor_id.encode()) << 8) ^ int(t * 10))

    def value(self, sensor: Sensor, t: float) -> float:
        """A healthy sensor's value plus every incident's effect at event time ``t``."""
        elapsed = t - self.start
        value = self._weathered(sensor, t) if self._weather and sensor.family.value == "forest" else baseline(
            sensor, t, self.scenario.seed)
        for inc in self.scenario.incidents:
            value += self._effect(inc, sensor, elapsed)
        return value

    def _weathered(self, sensor: Sensor, t: float) -> float:
        w = next((w for w in self._weather if not w.sites or sensor.site_id in w.sites), None)
        if w is None:
            return baseline(sensor, t, self.scenario.seed)
        day = (t - self.start) / 86_400
        hour = ((t + 8 * 3600) % 86_400) / 3600
        daily = math.sin(2 * math.pi * (hour - 9) / 24)
        rng = self._noise(sensor.id, t)
        q = sensor.quantity
        if q == "temperature":
            return round(w.temp_mean + w.dry_spell_warming_per_day * day + w.temp_amplitude * daily + rng.gauss(0, 0.2), 1)
        if q == "relative_humidity":
            rh = w.rh_mean - w.dry_spell_drying_per_day * day - w.rh_amplitude * daily + rng.gauss(0, 1)
            return round(min(100.0, max(5.0, rh)), 1)
        if q == "wind_speed":
            return round(max(0.0, w.wind_km_h + rng.gauss(0, 2)), 1)
        if q == "rain":
            today = int(day)
            total = sum(r.mm for r in w.rain if r.day == today)
            return round(total * sensor.period_s / 86_400, 4) if total else 0.0
        return baseline(sensor, t, self.scenario.seed)

    def _effect(self, inc: object, sensor: Sensor, elapsed: float) -> float:
        if isinstance(inc, RampIncident) and inc.sensor == sensor.id:
            return ramp(elapsed, inc.start_s, inc.rise_s, inc.hold_s, inc.fall_s, inc.delta)
        if isinstance(inc, RunawayIncident) and sensor.id in (inc.temperature, inc.pressure):
            x = elapsed - inc.start_s
            if x <= 0:
                return 0.0
            k = math.log(2) / inc.doubling_s  # rate r0·e^{kx}: rise = r0/k·(e^{kx} − 1)
            rise = min(inc.max_delta, inc.initial_rate_per_min / 60 / k * (math.exp(k * x) - 1))
            if sensor.id == inc.temperature:
                return rise
            return 0.5 * rise / 297.15  # closed vessel at about 0.5 MPa and 24 °C: p ∝ T (kelvin)
        if isinstance(inc, OverfillIncident) and inc.sensor == sensor.id:
            return max(0.0, elapsed - inc.start_s) * inc.rate_m_per_min / 60
        if isinstance(inc, GasLeakIncident) and sensor.family.value == "gas":
            source = self.fleet.sensors[inc.at_sensor]
            if source.site_id == sensor.site_id and source.quantity == sensor.quantity:
                return min(plume(source, sensor, inc, elapsed - inc.start_s), 100.0)  # a detector saturates at full scale
        if isinstance(inc, IgnitionIncident) and sensor.family.value == "forest":
            return self._fire(inc, sensor, elapsed)
        return 0.0

    def _fire(self, inc: IgnitionIncident, sensor: Sensor, elapsed: float) -> float:
        station = _station(sensor.id)
        origin = next((s for s in self.sensors if _station(s.id) == inc.station), None)
        if origin is None:
            return 0.0
        east, north = _metres(origin, sensor)
        toward = math.radians((inc.wind_from_deg + 180) % 360)
        downwind = east * math.sin(toward) + north * math.cos(toward)
        distance = math.hypot(east, north)
        if station != inc.station and (downwind <= 0 or distance > inc.spread_m):
            return 0.0
        x = elapsed - inc.start_s - (0 if station == inc.station else distance / inc.spread_m_per_min * 60)
        if x <= 0 or x > inc.duration_s:
            return 0.0
        near = 1.0 if station == inc.station else 0.6
        if sensor.quantity == "smoke":
            return near * min(30.0, x / 10)
        if sensor.quantity == "temperature":
            return near * min(15.0, x / 20)
        if sensor.quantity == "flame":
            return 0.9 if station == inc.station and x > 300 else 0.0
        if sensor.quantity == "co":
            return near * min(200.0, x / 2)
        return 0.0

    def steps(self) -> Iterator[tuple[float, list[SimReading], list[tuple[str, bool]]]]:
        """``(step end, readings in arrival order, gateway changes [(site, online)])`` for each step.

        The readings a step's deliveries hold, merged (a recording keeps them in arrival order).
        """
        current: Delivery | None = None
        for delivery in self.deliveries():
            if delivery.step_end:
                if current is not None:
                    yield current.at, current.readings, current.gateways
                current = delivery
            else:  # an overtaken message after the step's own: the same step, later in arrival order
                assert current is not None
                current = Delivery(current.at, current.readings + delivery.readings, current.gateways, True)
        if current is not None:
            yield current.at, current.readings, current.gateways

    def deliveries(self) -> Iterator["Delivery"]:
        """Every message batch in arrival order: one per step at its end, plus one `OVERTAKEN_LAG_S`
        later when an ``overtaken`` fault sends readings older than ones just delivered."""
        scenario, start = self.scenario, self.start
        due = {s.id: start + (zlib.crc32(s.id.encode()) % 1000) / 1000 * s.period_s for s in self.sensors}
        faults = scenario.faults
        held: list[tuple[float, SimReading]] = []  # delayed (out-of-order) readings: (release time, reading)
        gateway_down: set[str] = set()
        t_end = start + scenario.duration_s
        step_end = start
        while step_end < t_end:
            step_end = min(step_end + scenario.step_s, t_end)
            out: list[SimReading] = []
            overtaken: list[SimReading] = []
            changes: list[tuple[str, bool]] = []
            for fault in faults:
                if fault.kind == "gateway_offline":
                    on = start + fault.start_s <= step_end < start + fault.start_s + fault.duration_s
                    if on and fault.site not in gateway_down:
                        gateway_down.add(fault.site)  # type: ignore[arg-type]
                        changes.append((fault.site, False))  # type: ignore[arg-type]
                    elif not on and fault.site in gateway_down:
                        gateway_down.discard(fault.site)  # type: ignore[arg-type]
                        changes.append((fault.site, True))  # type: ignore[arg-type]
            for sensor in self.sensors:
                while due[sensor.id] < step_end:
                    t = due[sensor.id]
                    due[sensor.id] += sensor.period_s
                    if sensor.site_id in gateway_down:
                        continue
                    self._emit(sensor, round(t, 3), out, held, overtaken)
            ready = [r for at, r in held if at < step_end]
            held = [(at, r) for at, r in held if at >= step_end]
            yield Delivery(step_end, out + ready, changes, True)
            if overtaken:
                yield Delivery(step_end + OVERTAKEN_LAG_S, overtaken, [], False)

    def _emit(self, sensor: Sensor, t: float, out: list[SimReading], held: list[tuple[float, SimReading]],
              overtaken: list[SimReading]) -> None:
        value, quality, ts, copies, delay = self.value(sensor, t), "good", t, 1, 0.0
        elapsed = t - self.start
        older: list[SimReading] = []
        for fault in self.scenario.faults:
            if fault.sensor != sensor.id or not fault.start_s <= elapsed < fault.start_s + fault.duration_s:
                continue
            if fault.kind == "dropout":
                return
            if fault.kind == "stuck":
                value = self.value(sensor, self.start + fault.start_s)
            elif fault.kind == "drift":
                value += fault.amount * (elapsed - fault.start_s) / 3600
            elif fault.kind == "spikes":
                if self._noise(sensor.id, t).random() < 0.05:
                    value += fault.amount
            elif fault.kind == "bad_quality":
                quality = "bad"
            elif fault.kind == "clock_skew":
                ts = t + fault.amount
            elif fault.kind == "duplicate":
                copies = 2
            elif fault.kind == "out_of_order":
                delay = fault.amount or 3.0
            elif fault.kind == "overtaken":
                at = t - fault.amount
                extra = fault.value if fault.value is not None else self.value(sensor, at)
                older.append(SimReading(sensor.id, round(at, 3), round(extra, 4), "good"))
        reading = SimReading(sensor.id, round(ts, 3), round(value, 4), quality)
        for _ in range(copies):
            if delay:
                held.append((t + delay, reading))
            else:
                out.append(reading)
        for extra in older:  # after the newer reading: in its own message, or right behind a delayed one
            if delay:
                held.append((t + delay, extra))
            else:
                overtaken.append(extra)


@dataclass(frozen=True, slots=True)
class Delivery:
    """One message batch: arrives at ``at`` (on the clock) with readings and gateway changes;
    ``step_end`` marks the step's own delivery (time-driven checks and actions run after it)."""

    at: float
    readings: list[SimReading]
    gateways: list[tuple[str, bool]]
    step_end: bool = True

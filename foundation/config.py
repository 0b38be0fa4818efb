"""Validated configuration: runtime settings and the fleet (sites, sensors, setpoints, tiers).

Everything a user tunes is loaded once, at start, into frozen pydantic models with
``extra="forbid"``, so a typo is an error naming its file and key, never a silent default.
Every setpoint carries the ``source`` it came from (a standard's clause or "site choice").

A configuration folder holds::

    liaowang.yaml   runtime settings (MQTT, HTTP, storage, ingest limits, auth tokens)
    tiers.yaml      device alarm level (gas 一级/二级, process H/HH/L/LL, fire) → alarm priority (tier colour)
    setpoints.yaml  named setpoint profiles, each rung with its source
    sites.yaml      sites with county, kind, GB 18218 major-hazard grade and hazard units (foundation.hazardunits)
    sensors.yaml    sensors with site, family, quantity, unit, position, period, setpoints
    rules.yaml      rule specifications (foundation.rulespec); optional: without it, thresholds only

This module imports only `foundation.domain` and `foundation.rulespec`, so every stage may import it.
"""

from __future__ import annotations

import hashlib
import os
import sys
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Iterable, Literal

import yaml
from pydantic import (AfterValidator, BaseModel, ConfigDict, Field, SecretStr, TypeAdapter, ValidationError,
                      ValidationInfo, field_validator, model_validator)
from pydantic.dataclasses import dataclass as pydantic_dataclass

from foundation.database import validate_database_url
from foundation.domain import Family, Reading, ReadingBatch, Tier, parse_time
from foundation.guidancespec import GuidanceBook, GuidanceError, load_alarm_guidance
from foundation.alertspec import AlertingSettings
from foundation.hazardunits import (HazardIndex, HazardUnit, Members, ResponsibleContact, site_unit_problems,
                                  unit_sensor_problems)
from foundation.riskspec import RiskSettings, load_risk_settings
from foundation.warningspec import WarningSettings, load_warning_settings
from foundation.wording import Wording, load_wording, merged
from foundation.rulespec import (ConfirmationSpec, FireDetectionSpec, PredictiveSpec, RuleBook, ThresholdSpec)

COUNTIES = ("东昌府区", "茌平区", "临清市", "阳谷县", "莘县", "东阿县", "冠县", "高唐县")
"""Liaocheng's eight county-level areas (DOMAIN.md); development zones lie inside them."""

ROLES = ("viewer", "operator", "duty_officer", "admin")
"""API roles, lowest to highest (CONTRACT §4)."""

DEMO_TOKENS = {"demo-viewer": "viewer", "demo-operator": "operator", "demo-duty": "duty_officer", "demo-admin": "admin"}
"""The demo bearer tokens of CONTRACT §5; a server holding any of them listens on loopback only."""

DEMO_PASSWORDS = {"duty": "demo-duty-pass", "admin": "demo-admin-pass", "luxi-operator": "demo-luxi-pass"}
"""The demo users' passwords (README); a server where any still holds it listens on loopback only."""


class ConfigError(Exception):
    """A configuration problem, naming the file, the key and the reason."""

    def __init__(self, file: str, key: str, reason: str) -> None:
        super().__init__(f"{file}: {key}: {reason}")
        self.file, self.key, self.reason = file, key, reason


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# ---------------------------------------------------------------- setpoints and tiers

class Setpoint(_Strict):
    """One rung of a setpoint ladder: trips at ``set``, clears at ``reset`` (the deadband between).

    A ``high`` rung trips when the value reaches ``set`` and clears when it falls to ``reset`` or
    below; a ``low`` rung mirrors that. ``source`` records where the number comes from.
    """

    level: str = Field(description="device alarm level: level1/level2 (gas), H/HH/L/LL (process), fire_suspected/fire_confirmed")
    direction: Literal["high", "low"]
    set: float
    reset: float
    source: str = Field(min_length=3, description="standard and clause, or 'site choice'")

    @model_validator(mode="after")
    def _deadband_points_back(self) -> "Setpoint":
        if self.direction == "high" and not self.reset < self.set:
            raise ValueError(f"high rung {self.level}: reset {self.reset} must be below set {self.set}")
        if self.direction == "low" and not self.reset > self.set:
            raise ValueError(f"low rung {self.level}: reset {self.reset} must be above set {self.set}")
        return self


def _check_ladder(setpoints: list[Setpoint]) -> list[Setpoint]:
    highs = [s.set for s in setpoints if s.direction == "high"]
    lows = [s.set for s in setpoints if s.direction == "low"]
    if highs != sorted(highs) or len(set(highs)) != len(highs):
        raise ValueError(f"high rungs must rise strictly from first to last, got {highs}")
    if lows != sorted(lows, reverse=True) or len(set(lows)) != len(lows):
        raise ValueError(f"low rungs must fall strictly from first to last (L before LL), got {lows}")
    if highs and lows and min(highs) <= max(lows):
        raise ValueError("every high rung must lie above every low rung")
    return setpoints


class SetpointProfile(_Strict):
    """A named, reusable setpoint ladder for one quantity in one unit."""

    quantity: str
    unit: str
    setpoints: list[Setpoint]
    range: tuple[float, float] | None = Field(default=None, description="instrument range (min, max)")
    molar_mass_g_mol: float | None = Field(default=None, gt=0, description=(
        "molar mass of the gas species (g/mol): ingest converts ppm ↔ mg/m3 with it (IngestSettings.molar_volume_l_mol)"))
    molar_mass_source: str | None = None

    _ladder = field_validator("setpoints")(_check_ladder)


class TierMapping(_Strict):
    """Maps device alarm levels to alarm priorities (tiers), by rule, not by colour (DOMAIN.md).

    ``grade_overrides`` lets a major hazard source of a GB 18218 grade map a level to another
    tier; a key is a level (``H``) or, for one quantity only, ``quantity.level``
    (``temperature.HH``), which wins over the plain level. ``levels`` may also hold
    ``quantity.level`` keys (``h2s.level1``: toxic gases outrank combustible ones at every site),
    below the grade overrides and above the plain level. ``notes`` say why, with sources.

    >>> m = TierMapping(levels={"H": "blue", "HH": "orange"},
    ...                 grade_overrides={1: {"H": "yellow", "temperature.HH": "red"}})
    >>> [m.tier_for("HH", 1, "temperature").priority, m.tier_for("HH", 1, "tank_level").priority,
    ...  m.tier_for("H", 1, "tank_level").priority, m.tier_for("H").priority]
    ['urgent', 'high', 'medium', 'low']
    """

    @field_validator("levels", mode="after")
    @classmethod
    def _quantity_keys_name_levels(cls, value: dict[str, Tier]) -> dict[str, Tier]:
        for key in value:
            if "." in key and key.rpartition(".")[2] not in value:
                raise ValueError(f"{key}: level {key.rpartition('.')[2]!r} is not one of levels")
        return value

    levels: dict[str, Tier]
    grade_overrides: dict[Literal[1, 2, 3, 4], dict[str, Tier]] = {}
    notes: dict[str, str] = {}

    @field_validator("levels", mode="before")
    @classmethod
    def _parse_levels(cls, value: Any) -> Any:
        return {k: Tier.parse(v) if isinstance(v, str) else v for k, v in (value or {}).items()}

    @field_validator("grade_overrides", mode="before")
    @classmethod
    def _parse_overrides(cls, value: Any) -> Any:
        return {g: {k: Tier.parse(v) if isinstance(v, str) else v for k, v in m.items()} for g, m in (value or {}).items()}

    @field_validator("grade_overrides", mode="after")
    @classmethod
    def _overrides_name_levels(cls, value: dict[int, dict[str, Tier]], info: ValidationInfo) -> dict[int, dict[str, Tier]]:
        levels = info.data.get("levels", {})
        for grade, mapping in value.items():
            for key in mapping:
                level = key.rpartition(".")[2]
                if level not in levels:
                    raise ValueError(f"{grade}.{key}: level {level!r} is not one of levels")
        return value

    def tier_for(self, level: str, hazard_grade: int | None = None, quantity: str | None = None) -> Tier:
        """The tier a device alarm ``level`` of a ``quantity`` maps to at a site of ``hazard_grade``."""
        override = self.grade_overrides.get(hazard_grade, {}) if hazard_grade is not None else {}  # type: ignore[call-overload]
        if quantity is not None and f"{quantity}.{level}" in override:
            return override[f"{quantity}.{level}"]
        if level in override:
            return override[level]
        if quantity is not None and f"{quantity}.{level}" in self.levels:
            return self.levels[f"{quantity}.{level}"]
        return self.levels[level]


# ---------------------------------------------------------------- fleet

class Site(_Strict):
    """A monitored site: an enterprise, a chemical park, a forest area or a lifeline asset."""

    id: str = Field(pattern=r"^[A-Z0-9][A-Z0-9-]{1,39}$")
    name: str
    name_en: str | None = Field(default=None, pattern=r"^[\x20-\x7e]+$", description=(
        "the English name alarm texts use (alerting/messages.py); without it they say the site's kind and id tail"))
    county: Literal[COUNTIES]  # type: ignore[valid-type]
    zone: str | None = None
    kind: Literal["chemical_park", "enterprise", "forest", "lifeline"]
    lon: float = Field(ge=115.0, le=117.0)
    lat: float = Field(ge=35.5, le=37.2)
    hazard_grade: Literal[1, 2, 3, 4] | None = Field(default=None, description=(
        "GB 18218-2018 grade of its highest hazard unit (kept for compatibility: tiers map by it)"))
    hazard_r: float | None = Field(default=None, ge=0, description="GB 18218-2018 R value behind the grade")
    responsible: list[str] = []
    position_source: str = "approximate, for the demo"
    hazard_units: list[HazardUnit] = Field(default=[], exclude=True, description=(
        "major hazard sources (生产/储存单元) with their own grade, R, substances, sensors and 包保责任人; "
        "left out of model_dump: phone numbers are served by the hazard-unit API only"))

    @model_validator(mode="after")
    def _grade_matches_r(self) -> "Site":
        if self.hazard_r is not None and self.hazard_grade is not None:
            expected = 1 if self.hazard_r >= 100 else 2 if self.hazard_r >= 50 else 3 if self.hazard_r >= 10 else 4
            if expected != self.hazard_grade:
                raise ValueError(f"hazard_r {self.hazard_r} gives GB 18218 grade {expected}, not {self.hazard_grade}")
        problem = site_unit_problems(self.kind, self.hazard_grade, self.hazard_r, self.hazard_units)
        if problem is not None:
            raise ValueError(problem)
        return self


def _intern(value: str) -> str:
    return sys.intern(value)


Shared = Annotated[str, AfterValidator(_intern)]
"""A string that repeats across sensors (site, quantity, unit, profile): stored once."""


@pydantic_dataclass(frozen=True, slots=True, config=ConfigDict(extra="forbid"))
class Sensor:
    """A registered sensor. Setpoints come from ``profile`` unless ``setpoints`` overrides them.

    A slotted dataclass rather than a model: a fleet holds 100,000 of these (docs/BENCHMARKS.md).
    """

    id: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{1,63}$")]
    site_id: Shared
    name: str
    family: Family
    quantity: Shared
    unit: Shared
    lon: Annotated[float, Field(ge=115.0, le=117.0)]
    lat: Annotated[float, Field(ge=35.5, le=37.2)]
    period_s: Annotated[float, Field(gt=0, le=86400, description="expected reporting period")]
    profile: Shared | None = None
    setpoints: list[Setpoint] | None = None
    range: tuple[float, float] | None = None
    capacity: float | None = Field(default=None, gt=0, description="tank height or vessel capacity, for level sensors")
    name_en: Annotated[str, Field(pattern=r"^[\x20-\x7e]+$")] | None = Field(default=None, description=(
        "the English name alarm texts use; without it they say the quantity and the id's tag (alerting/messages.py)"))

    _ladder = field_validator("setpoints")(lambda v: v if v is None else _check_ladder(v))

    @field_validator("family")
    @classmethod
    def _sensor_family(cls, value: Family) -> Family:
        if value is Family.SYSTEM:
            raise ValueError("a sensor's family is hazard, gas or forest")
        return value


class Fleet(_Strict):
    """Sites, sensors, setpoint profiles and the tier mapping, cross-checked at load."""

    sites: dict[str, Site]
    sensors: dict[str, Sensor]
    profiles: dict[str, SetpointProfile]
    tiers: TierMapping

    @cached_property
    def sensor_ids(self) -> tuple[str, ...]:
        """Every sensor id in a fixed order: the index space of `ReadingBatch.sensor`."""
        return tuple(self.sensors)

    @cached_property
    def sensor_index(self) -> dict[str, int]:
        """Sensor id → its position in `sensor_ids`."""
        return {sensor_id: i for i, sensor_id in enumerate(self.sensor_ids)}

    @cached_property
    def sensor_sites(self) -> tuple[str, ...]:
        """The site of each sensor, in `sensor_ids` order."""
        return tuple(self.sensors[s].site_id for s in self.sensor_ids)

    def batch(self, readings: Iterable[Reading]) -> ReadingBatch:
        """A `ReadingBatch` of readings from this fleet's sensors (tests, tools)."""
        return ReadingBatch.from_readings(readings, self.sensor_ids, self.sensor_index, self.sensor_sites)

    def setpoints_for(self, sensor: Sensor) -> list[Setpoint]:
        """The setpoint ladder in force for ``sensor`` (its own, else its profile's, else none)."""
        if sensor.setpoints is not None:
            return sensor.setpoints
        if sensor.profile is not None:
            return self.profiles[sensor.profile].setpoints
        return []

    def molar_mass(self, sensor: Sensor) -> float | None:
        """The molar mass (g/mol) of the gas ``sensor`` measures, from its profile, or None."""
        return self.profiles[sensor.profile].molar_mass_g_mol if sensor.profile else None

    def instrument_range(self, sensor: Sensor) -> tuple[float, float] | None:
        """The instrument range of ``sensor`` (its own, else its profile's)."""
        if sensor.range is not None:
            return sensor.range
        return self.profiles[sensor.profile].range if sensor.profile else None

    @cached_property
    def hazards(self) -> HazardIndex:
        """Lookups over the hazard units (major hazard sources) of every site."""
        return HazardIndex(self.sites)

    def hazard_unit(self, unit_id: str) -> HazardUnit | None:
        """The hazard unit ``unit_id`` (any site), or None; its site is ``hazards.site_of[unit_id]``."""
        return self.hazards.unit(unit_id)

    def units_of(self, site_id: str) -> tuple[HazardUnit, ...]:
        """The hazard units of a site (none for a site without them)."""
        return self.hazards.units_of(site_id)

    def unit_of_sensor(self, sensor_id: str) -> HazardUnit | None:
        """The hazard unit a sensor watches, or None."""
        return self.hazards.unit_of_sensor(sensor_id)

    def responsible_persons(self, site_id: str, unit_id: str | None = None) -> list[ResponsibleContact]:
        """The 包保责任人 (role, name, phone) of one unit, or of every unit of the site."""
        return self.hazards.responsible(site_id, unit_id)

    def responsible_for(self, site_id: str, subject: str, members: Members | None = None) -> list[ResponsibleContact]:
        """The 包保责任人 for an alarm's ``subject`` (a sensor, a zone through ``members``, ``site:{id}``)."""
        return self.hazards.responsible_for(site_id, subject, members)


# ---------------------------------------------------------------- runtime settings

DEMO_MQTT_GATEWAY = ("demo-gateway", "demo-gateway")
"""The demo gateway's user name and password (README's `mosquitto_pub`); held, the broker stays on loopback."""

OWN_MQTT_PREFIX = "liaowang"
"""User names and client ids starting with this belong to Liaowang's own clients, never to a gateway."""

_MQTT_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$"  # no '/', '+', '#': names appear in ACLs and logs


class MqttGateway(_Strict):
    """An enterprise gateway the embedded broker lets in: it may publish only for its ``sites``.

    It connects with ``username`` and exactly the client id ``client_id`` (default: the user
    name), so it can never take another client's session. Give ``password`` or, to keep it out of
    the file, ``password_hash`` as ``mosquitto_passwd`` writes it (``$7$…``, PBKDF2-SHA512).
    """

    username: str = Field(pattern=_MQTT_NAME)
    password: SecretStr | None = None
    password_hash: str | None = Field(default=None, pattern=r"^\$7\$\d+\$[A-Za-z0-9+/]+=*\$[A-Za-z0-9+/]+=*$")
    client_id: str | None = Field(default=None, pattern=_MQTT_NAME)
    sites: list[Annotated[str, Field(pattern=_MQTT_NAME)]] = Field(min_length=1)

    @model_validator(mode="after")
    def _one_secret(self) -> "MqttGateway":
        if (self.password is None) == (self.password_hash is None):
            raise ValueError("give exactly one of password and password_hash")
        for name in (self.username, self.bound_client_id):
            if name.lower().startswith(OWN_MQTT_PREFIX):
                raise ValueError(f"{name!r}: names starting with {OWN_MQTT_PREFIX!r} are Liaowang's own clients")
        return self

    @property
    def bound_client_id(self) -> str:
        """The only client id this gateway may connect with."""
        return self.client_id or self.username

    def is_demo(self) -> bool:
        """Whether this is the public demo credential (its password is printed in the README)."""
        return (self.username == DEMO_MQTT_GATEWAY[0] and self.password is not None
                and self.password.get_secret_value() == DEMO_MQTT_GATEWAY[1])


class MqttSettings(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(default=1883, ge=1, le=65535)
    client_id: str = "liaowang-ingest"
    username: str | None = Field(default=None, description=(
        "for an external broker; `liaowang run` fills in the embedded broker's own credentials"))
    password: SecretStr | None = None
    embedded_broker: Literal["auto", "mosquitto", "amqtt", "none"] = Field(
        default="auto", description="`liaowang run` starts a broker: mosquitto if on PATH, else amqtt; 'none' uses an external one")
    keepalive_s: int = 30
    gateways: list[MqttGateway] = Field(default=[], description=(
        "who besides Liaowang may connect to the embedded broker (docs/broker.md); without any, it stays on loopback"))
    connect_timeout_s: float = Field(default=10.0, gt=0, description=(
        "the embedded amqtt broker closes a connection that sends no CONNECT within this (mosquitto does it itself)"))

    @model_validator(mode="after")
    def _gateways_apart(self) -> "MqttSettings":
        users = [g.username for g in self.gateways]
        ids = [g.bound_client_id for g in self.gateways]
        for kind, names in (("user name", users), ("client id", ids)):
            twice = sorted({n for n in names if names.count(n) > 1})
            if twice:
                raise ValueError(f"gateways: {kind} {twice[0]!r} given twice")
        for own in (self.client_id, f"{self.client_id}-alerts"):
            if own in ids:
                raise ValueError(f"gateways: client id {own!r} is Liaowang's own (mqtt.client_id)")
        return self

    def holds_demo_gateway(self) -> bool:
        """Whether the public demo gateway credential is configured."""
        return any(g.is_demo() for g in self.gateways)


class HttpSettings(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)


class StorageSettings(_Strict):
    data_dir: str = "data"
    retention_days: int = Field(default=30, ge=30, description="law's minimum for major hazard records is 30 days")
    min_free_bytes: int = Field(default=200 * 1024**2, ge=0, description=(
        "below this much free space on the data dir's (or a watched) volume: a `_system` disk alarm and "
        "/healthz 503 (degraded); production should set at least an hour of readings and the broker's backlog"))
    min_free_fraction: float = Field(default=0.0, ge=0, lt=1, description="also low below this share of the volume (0: off)")
    watch_paths: dict[str, str] = Field(default_factory=dict, description=(
        "more volumes to watch by name, e.g. an external broker's persistence: {broker: /var/lib/mosquitto}"))
    disk_check_every_s: float = Field(default=5.0, gt=0, description="how often free space is measured")
    database_url: SecretStr | None = Field(default=None, description=(
        "PostgreSQL for the shared state (alarms, history, audit, outbox, warnings, users, the partition fence, "
        "rule snapshots per partition): postgresql://user:password@host:5432/dbname (env "
        "LIAOWANG_STORAGE__DATABASE_URL); None: alerts.db, a SQLite file in the data dir (the embedded default). "
        "Readings stay in the sinks (InfluxDB, or readings.db)"))

    @field_validator("database_url")
    @classmethod
    def _postgresql_url(cls, url: SecretStr | None) -> SecretStr | None:
        if url is not None:
            validate_database_url(url.get_secret_value())
        return url

    def alerts_target(self, data_dir: Path) -> Path | str:
        """Where the alerting tables live: the PostgreSQL URL when one is set, else ``data_dir/alerts.db``."""
        return self.database_url.get_secret_value() if self.database_url is not None else data_dir / "alerts.db"


class IngestSettings(_Strict):
    max_payload_bytes: int = Field(default=256 * 1024, gt=0)
    future_skew_s: float = Field(default=300.0, ge=0)
    molar_volume_l_mol: float = Field(default=24.06, gt=0, description=(
        "molar volume for ppm ↔ mg/m3 (mg/m3 = ppm × M / V): 24.06 L/mol at 20 °C, 101.325 kPa, the convention "
        "DOMAIN.md [S] gives; 24.45 would be 25 °C"))
    queue_size: int = Field(default=20_000, gt=0)
    batch_size: int = Field(default=2_000, gt=0)
    batch_wait_s: float = Field(default=0.0, ge=0, description=(
        "how long a batch may linger for more messages; 0 = take what is queued and go (natural "
        "batching: under load batches grow by themselves, when idle each message goes at once)"))
    deadletter_log_interval_s: float = Field(default=60.0, gt=0)
    receiver: Literal["process", "thread"] = Field(default="process", description=(
        "where the MQTT client runs: 'process' (a child process, so paho does not share the GIL with decode, "
        "store and rules; ingest/receiver.py) or 'thread' (paho's network thread in this process)"))


class InfluxV2Sink(_Strict):
    """InfluxDB 2.x (or 1.8+/3.x through their v2 compatibility API) through influxdb-client."""

    url: str = Field(pattern=r"^https?://")
    org: str
    bucket: str
    token: SecretStr
    timeout_s: float = Field(default=10.0, gt=0)


class InfluxV1Sink(_Strict):
    """InfluxDB 1.x through its ``/write`` endpoint (InfluxQL era servers)."""

    url: str = Field(pattern=r"^https?://")
    database: str
    retention_policy: str | None = None
    username: str | None = None
    password: SecretStr | None = None
    timeout_s: float = Field(default=10.0, gt=0)


class SpoolSettings(_Strict):
    """The local disk spool in front of every InfluxDB sink: batches wait here until accepted."""

    max_bytes: int = Field(default=2 * 1024**3, gt=0, description="beyond this, ingest stops acknowledging (broker holds data)")
    warn_fraction: float = Field(default=0.8, gt=0, lt=1, description="spool fill that raises a pipeline-health alert")
    max_batch_readings: int = Field(default=5000, gt=0)
    backoff_initial_s: float = Field(default=0.5, gt=0)
    backoff_max_s: float = Field(default=30.0, gt=0)


class SinkSettings(_Strict):
    """Where readings are stored. SQLite is always on (it serves the API); InfluxDB sinks add to it."""

    influx_v2: InfluxV2Sink | None = None
    influx_v1: InfluxV1Sink | None = None
    spool: SpoolSettings = SpoolSettings()


class RuleSettings(_Strict):
    stale_periods: float = Field(default=3.0, gt=1, description="a sensor is stale after this many missed periods")
    stale_tier: Tier = Field(default=Tier.YELLOW, description="tier of a sensor-fault (stale) alert")
    lateness_s: float = Field(default=1.0, ge=0, le=3600, description=(
        "readings are held this long (event time) so out-of-order ones are placed in order; "
        "older ones are counted and dead-lettered as `late` (they are still stored)"))
    max_hold_s: float = Field(default=1.5, gt=0, description=(
        "wall-clock bound on holding a reading when the feed goes quiet (or runs ahead of the clock)"))
    first_report_grace_s: float = Field(default=60.0, ge=0, description=(
        "sensors never heard since start are reported together, per site (site.not_reporting), once their stale "
        "limit and at least this long has passed"))
    snapshot_every_s: float = Field(default=60.0, gt=0, description="how often rule state is saved to SQLite")
    recovery_window_s: float = Field(default=86_400.0, ge=0, description=(
        "on start, readings stored since the last snapshot (at most this far back) are re-run through the rules"))

    @field_validator("stale_tier", mode="before")
    @classmethod
    def _parse_tier(cls, value: Any) -> Any:
        return Tier.parse(value) if isinstance(value, str) else value

    @model_validator(mode="after")
    def _hold_covers_lateness(self) -> "RuleSettings":
        if self.max_hold_s < self.lateness_s:
            raise ValueError(f"max_hold_s ({self.max_hold_s}) must be at least lateness_s ({self.lateness_s}), "
                             "or readings are let go before late ones can be placed")
        return self


class TokenEntry(_Strict):
    """A bearer token, stored as its SHA-256 hex digest; ``sites`` scopes it (empty: all sites)."""

    name: str
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    role: Literal[ROLES]  # type: ignore[valid-type]
    sites: list[str] = []


class UserEntry(_Strict):
    """A person seeded into the user store at start (created if absent; the store owns it afterwards).

    Only the password's hash is configured (``liaowang users hash-password`` prints one), never the password.
    """

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{1,63}$")
    display_name: str = Field(min_length=1, max_length=64)
    role: Literal[ROLES]  # type: ignore[valid-type]
    sites: list[str] = []
    password_hash: str = Field(pattern=r"^\$argon2id?\$", description="an argon2 hash (pwdlib), never a clear password")


class SessionSettings(_Strict):
    """How long a person's sign-in lasts: idle (no request) and absolute (whatever the activity)."""

    idle_s: float = Field(default=2 * 3600, gt=0, description=(
        "a session not used for this long ends; open pages check their session every minute, so this ends "
        "the sessions of closed pages and lost devices"))
    absolute_s: float = Field(default=12 * 3600, gt=0, description="a session ends this long after sign-in: one shift")
    cookie_secure: bool | None = Field(default=None, description=(
        "mark the session cookie Secure; default: when the sign-in came over https"))

    @model_validator(mode="after")
    def _idle_within_absolute(self) -> "SessionSettings":
        if self.idle_s > self.absolute_s:
            raise ValueError(f"idle_s ({self.idle_s}) must not exceed absolute_s ({self.absolute_s})")
        return self


class LockoutSettings(_Strict):
    """Failed sign-ins lock a user name, and an address, for a while (liaowang.users.Throttle)."""

    failures: int = Field(default=5, ge=1, description="failed sign-ins of one user name within window_s that lock it")
    address_failures: int = Field(default=20, ge=1, description=(
        "failed sign-ins from one address within window_s that lock the address (behind a reverse proxy every "
        "caller shares its address: raise this)"))
    window_s: float = Field(default=300.0, gt=0)
    lock_s: float = Field(default=300.0, gt=0, description="how long a locked name or address is refused")


class AuthSettings(_Strict):
    public_read: bool = Field(default=False, description="reads without a token (the demo sets true)")
    tokens: list[TokenEntry] = Field(default=[], description="service tokens, for machines (people sign in: users)")
    users: list[UserEntry] = Field(default=[], description="people seeded into the user store (data dir alerts.db)")
    sessions: SessionSettings = SessionSettings()
    lockout: LockoutSettings = LockoutSettings()
    min_password_length: int = Field(default=10, ge=8, le=128)
    metrics_token_sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$", description=(
        "SHA-256 of a bearer token good for GET /metrics only (a Prometheus scraper); without public_read, "
        "/metrics otherwise needs a viewer-or-above token that is not scoped to sites"))

    def holds_demo_tokens(self) -> bool:
        """Whether any configured token is one of the public demo tokens."""
        demo = {hash_token(t) for t in DEMO_TOKENS}
        return any(t.sha256 in demo for t in self.tokens)

    def holds_demo_users(self) -> bool:
        """Whether any configured user still has its public demo password (README)."""
        from foundation.passwords import verify  # argon2: only when asked (at `liaowang run`), not at every load

        return any(verify(DEMO_PASSWORDS[u.name], u.password_hash) for u in self.users if u.name in DEMO_PASSWORDS)

    @model_validator(mode="after")
    def _unique_user_names(self) -> "AuthSettings":
        names = [u.name for u in self.users]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"users: name {twice[0]!r} given twice")
        return self


class Settings(_Strict):
    mqtt: MqttSettings = MqttSettings()
    http: HttpSettings = HttpSettings()
    storage: StorageSettings = StorageSettings()
    ingest: IngestSettings = IngestSettings()
    sinks: SinkSettings = SinkSettings()
    rules: RuleSettings = RuleSettings()
    auth: AuthSettings = AuthSettings()


class Config(_Strict):
    """Everything loaded from one configuration folder."""

    folder: str
    settings: Settings
    fleet: Fleet
    rules: RuleBook = RuleBook.thresholds_only()
    alerting: AlertingSettings = AlertingSettings()
    warnings: WarningSettings = WarningSettings()
    risk: RiskSettings = RiskSettings()
    guidance: GuidanceBook = Field(default_factory=GuidanceBook, description=(
        "measures to take per alarm kind and level (alarm_guidance.yaml), shown with each alarm"))
    wording: Wording = Field(default_factory=load_wording, description=(
        "alarm texts' words and templates: the shipped ones with the folder's messages.yaml laid over them"))


def hash_token(token: str) -> str:
    """The SHA-256 hex digest under which a bearer token is stored in configuration."""
    return hashlib.sha256(token.encode()).hexdigest()


# ---------------------------------------------------------------- loading

def _read_yaml(path: Path) -> Any:
    if not path.exists():
        raise ConfigError(str(path), "-", "file is missing")
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as err:
        raise ConfigError(str(path), "-", f"not valid YAML: {err}") from None


_ADAPTERS: dict[type, TypeAdapter] = {}


def _adapter(kind: type) -> TypeAdapter:
    if kind not in _ADAPTERS:
        _ADAPTERS[kind] = TypeAdapter(kind)
    return _ADAPTERS[kind]


def _key(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "-"


def _validate(model: type, data: Any, path: Path, prefix: tuple[Any, ...] = ()) -> Any:
    try:
        if isinstance(model, type) and issubclass(model, BaseModel):
            return model.model_validate(data)
        return _adapter(model).validate_python(data)
    except ValidationError as err:
        first = err.errors()[0]
        message = first["msg"]
        if first["type"] in ("extra_forbidden", "unexpected_keyword_argument"):
            message = "unknown key (a typo? see the documented keys)"
        raise ConfigError(str(path), _key(prefix + tuple(first["loc"])), message) from None


def _by_id(path: Path, section: str, items: Any, model: type[BaseModel]) -> dict[str, Any]:
    if not isinstance(items, list):
        raise ConfigError(str(path), section, "must be a list")
    out: dict[str, Any] = {}
    for index, raw in enumerate(items):
        item = _validate(model, raw, path, (section, index))
        if item.id in out:
            raise ConfigError(str(path), f"{section}[{index}].id", f"duplicate id {item.id!r}")
        out[item.id] = item
    return out


def _env_overrides(data: dict[str, Any]) -> dict[str, Any]:
    """Apply ``LIAOWANG_SECTION__KEY[__SUBKEY]=value`` environment overrides on top of the file.

    >>> import os
    >>> os.environ["LIAOWANG_SINKS__INFLUX_V2__TOKEN"] = "t"
    >>> _env_overrides({"sinks": {"influx_v2": {"url": "http://x"}}})["sinks"]["influx_v2"]
    {'url': 'http://x', 'token': 't'}
    >>> del os.environ["LIAOWANG_SINKS__INFLUX_V2__TOKEN"]
    """
    for name, value in os.environ.items():
        if not name.startswith("LIAOWANG_") or "__" not in name:
            continue
        *path, key = name[len("LIAOWANG_"):].lower().split("__")
        node = data
        for part in path:
            child = node.get(part)
            if not isinstance(child, dict):
                child = node[part] = {}
            node = child
        node[key] = value
    return data


def load_settings(folder: Path) -> Settings:
    """Load ``liaowang.yaml`` with environment overrides; raise ConfigError naming file and key."""
    path = folder / "liaowang.yaml"
    raw = _read_yaml(path)
    if not isinstance(raw, dict):
        raise ConfigError(str(path), "-", "must be a mapping")
    return _validate(Settings, _env_overrides(raw), path)


def load_fleet(folder: Path) -> Fleet:
    """Load and cross-check tiers, setpoint profiles, sites and sensors of ``folder``."""
    tiers_path, prof_path = folder / "tiers.yaml", folder / "setpoints.yaml"
    sites_path, sensors_path = folder / "sites.yaml", folder / "sensors.yaml"
    tiers = _validate(TierMapping, _read_yaml(tiers_path), tiers_path)
    raw_profiles = _read_yaml(prof_path).get("profiles", {})
    profiles = {pid: _validate(SetpointProfile, p, prof_path, ("profiles", pid)) for pid, p in raw_profiles.items()}
    sites = _by_id(sites_path, "sites", _read_yaml(sites_path).get("sites"), Site)
    sensors = _by_id(sensors_path, "sensors", _read_yaml(sensors_path).get("sensors"), Sensor)

    for pid, profile in profiles.items():
        for i, rung in enumerate(profile.setpoints):
            if rung.level not in tiers.levels:
                raise ConfigError(str(prof_path), f"profiles.{pid}.setpoints[{i}].level",
                                  f"level {rung.level!r} is not mapped in tiers.yaml")
    for index, sensor in enumerate(sensors.values()):
        where = f"sensors[{index}]"
        if sensor.site_id not in sites:
            raise ConfigError(str(sensors_path), f"{where}.site_id", f"unknown site {sensor.site_id!r}")
        if sensor.profile is not None:
            profile = profiles.get(sensor.profile)
            if profile is None:
                raise ConfigError(str(sensors_path), f"{where}.profile", f"unknown setpoint profile {sensor.profile!r}")
            if profile.unit != sensor.unit or profile.quantity != sensor.quantity:
                raise ConfigError(str(sensors_path), f"{where}.profile",
                                  f"profile {sensor.profile!r} is for {profile.quantity} in {profile.unit}, "
                                  f"sensor measures {sensor.quantity} in {sensor.unit}")
        for i, rung in enumerate(sensor.setpoints or []):
            if rung.level not in tiers.levels:
                raise ConfigError(str(sensors_path), f"{where}.setpoints[{i}].level",
                                  f"level {rung.level!r} is not mapped in tiers.yaml")
    for key, reason in unit_sensor_problems(sites, sensors)[:1]:
        raise ConfigError(str(sites_path), key, reason)
    return Fleet(sites=sites, sensors=sensors, profiles=profiles, tiers=tiers)


def load_config(folder: str | Path) -> Config:
    """Load a whole configuration folder; raise ConfigError naming the file, key and reason."""
    path = Path(folder)
    if not path.is_dir():
        raise ConfigError(str(path), "-", "configuration folder does not exist")
    fleet = load_fleet(path)
    alerting = load_alerting(path, fleet)
    return Config(folder=str(path), settings=load_settings(path), fleet=fleet, rules=load_rules(path, fleet),
                  alerting=alerting, warnings=load_warning_settings(path, alerting=alerting, fleet=fleet),
                  risk=load_risk_settings(path, fleet), wording=load_messages(path), guidance=load_guidance(path))


def load_guidance(folder: Path) -> GuidanceBook:
    """The alarm response guidance (``alarm_guidance.yaml``, optional), checked with the rest of the folder."""
    try:
        return load_alarm_guidance(folder)
    except GuidanceError as err:
        file, _, rest = str(err).partition(": ")
        key, _, reason = rest.partition(": ")
        raise ConfigError(file, key or "-", reason or rest) from None


def load_messages(folder: Path) -> Wording:
    """The alarm texts' wording: shipped, with ``messages.yaml`` of the folder (optional) laid over it."""
    path = folder / "messages.yaml"
    if not path.exists():
        return load_wording()
    try:
        raw = merged(_read_yaml(path))
    except ValueError as err:
        raise ConfigError(str(path), "-", str(err)) from None
    return _validate(Wording, raw, path)


def load_alerting(folder: Path, fleet: Fleet) -> AlertingSettings:
    """Load ``alerting.yaml`` (defaults when absent) and check its sites and sensors exist."""
    path = folder / "alerting.yaml"
    if not path.exists():
        return AlertingSettings()
    raw = _read_yaml(path)
    if not isinstance(raw, dict):
        raise ConfigError(str(path), "-", "must be a mapping")
    settings = _validate(AlertingSettings, raw, path)
    for i, window in enumerate(settings.maintenance):
        if window.site_id is not None and window.site_id not in fleet.sites:
            raise ConfigError(str(path), f"maintenance[{i}].site_id", f"unknown site {window.site_id!r}")
        if window.sensor_id is not None and window.sensor_id not in fleet.sensors:
            raise ConfigError(str(path), f"maintenance[{i}].sensor_id", f"unknown sensor {window.sensor_id!r}")
        for key in ("start", "end"):
            try:
                parse_time(getattr(window, key))
            except ValueError as err:
                raise ConfigError(str(path), f"maintenance[{i}].{key}", str(err)) from None
    for i, sensor in enumerate(settings.out_of_service):
        if sensor not in fleet.sensors:
            raise ConfigError(str(path), f"out_of_service[{i}]", f"unknown sensor {sensor!r}")

    def check(routes: list, where: str) -> None:
        for r, route in enumerate(routes):
            for site in route.match.sites:
                if site not in fleet.sites:
                    raise ConfigError(str(path), f"{where}[{r}].match.sites", f"unknown site {site!r}")
            for county in route.match.counties:
                if county not in COUNTIES:
                    raise ConfigError(str(path), f"{where}[{r}].match.counties", f"unknown county {county!r}")
            check(route.routes, f"{where}[{r}].routes")

    check(settings.routes, "routes")
    return settings


def load_rules(folder: Path, fleet: Fleet) -> RuleBook:
    """Load ``rules.yaml`` (or the thresholds-only book when absent) and check it against the fleet."""
    path = folder / "rules.yaml"
    if not path.exists():
        return RuleBook.thresholds_only()
    raw = _read_yaml(path)
    if not isinstance(raw, dict):
        raise ConfigError(str(path), "-", "must be a mapping with a `rules` list")
    book = _validate(RuleBook, raw, path)
    ids = {r.id for r in book.rules}
    for index, spec in enumerate(book.rules):
        where = f"rules[{index}]"
        for site in spec.match.sites:
            if site not in fleet.sites:
                raise ConfigError(str(path), f"{where}.match.sites", f"unknown site {site!r}")
        for sensor in spec.match.sensors:
            if sensor not in fleet.sensors:
                raise ConfigError(str(path), f"{where}.match.sensors", f"unknown sensor {sensor!r}")
        if isinstance(spec, ThresholdSpec):
            for key in ("on_delay_s", "off_delay_s"):
                for level in getattr(spec, key):
                    if level not in fleet.tiers.levels:
                        raise ConfigError(str(path), f"{where}.{key}.{level}", "level is not mapped in tiers.yaml")
        if isinstance(spec, PredictiveSpec) and spec.target_level not in fleet.tiers.levels:
            raise ConfigError(str(path), where, f"level {spec.target_level!r} is not mapped in tiers.yaml")
        if isinstance(spec, ConfirmationSpec):
            for r, rung in enumerate(spec.ladder):
                if rung.level not in fleet.tiers.levels:
                    raise ConfigError(str(path), f"{where}.rungs[{r}]" if spec.rungs else where,
                                      f"level {rung.level!r} is not mapped in tiers.yaml")
        if isinstance(spec, ConfirmationSpec):
            for z, zone in enumerate(spec.zones):
                for sensor in zone.sensors:
                    if sensor not in fleet.sensors:
                        raise ConfigError(str(path), f"{where}.zones[{z}].sensors", f"unknown sensor {sensor!r}")
        if isinstance(spec, FireDetectionSpec):
            for key in ("danger_rule", "jump_rule"):
                ref = getattr(spec, key)
                if ref is not None and ref not in ids:
                    raise ConfigError(str(path), f"{where}.{key}", f"no rule has id {ref!r}")
    return book


def default_config_dir() -> Path:
    """Where the configuration lives when no ``--config`` is given.

    ``$LIAOWANG_CONFIG``, else ``./config``, else the demo configuration beside the source tree.
    """
    if env := os.environ.get("LIAOWANG_CONFIG"):
        return Path(env)
    here = Path("config")
    if (here / "liaowang.yaml").exists():
        return here
    return Path(__file__).resolve().parent.parent / "config"

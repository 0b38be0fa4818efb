"""Rule specifications: what each rule watches and with which parameters (``rules.yaml``).

A spec is pure configuration, validated at load and separate from a rule's running state (which
lives in `rules/`). Every number that decides a tier records its ``source``. Kinds::

    threshold       the sensors' setpoint ladders (setpoints.yaml) with on/off delays per level
    rate_of_change  least-squares slope over an event-time window, per minute, tiered
    predictive      time until a setpoint is reached on the window's trend, under a horizon
    stuck           a value that does not move over a window where noise is expected (fault)
    out_of_range    a value outside the instrument's range (fault); above the range of a gas detector
                    it is a 超量程 alarm instead (rule ``over_range_rule_id``, kind ``over_range``)
    held            a value held at or above a set value for longer than ``hold_s`` (a bypass left in place)
    confirmation    k of n detectors of a zone at a level → a higher tier (a confirmed leak), one rung or a ladder
    fire_danger     a daily fire-danger index per forest station (FWI), tiered by class limits
    fire_detection  direct detection (smoke, flame, CO, temperature jump) above the danger tier

The stale (deadman) rule covers every sensor and is set in ``liaowang.yaml`` (``rules.stale_*``).
This module imports only `foundation.domain` and pydantic.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from foundation.domain import Family, Tier


def _tier(value: Any) -> Any:
    return Tier.parse(value) if isinstance(value, str) else value


TierName = Annotated[Tier, BeforeValidator(_tier)]
"""A tier written by colour name in YAML (``yellow``)."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Match(_Strict):
    """Which sensors a rule watches. Every non-empty list must match; all empty selects every sensor."""

    families: list[Family] = []
    quantities: list[str] = []
    profiles: list[str] = []
    site_kinds: list[str] = []
    sites: list[str] = []
    sensors: list[str] = []
    hazard_grades: list[Literal[1, 2, 3, 4, None]] = Field(
        default=[], description="GB 18218 grades of the sensor's site; null matches sites that are no major hazard source")

    def selects(self, sensor: Any, site: Any) -> bool:
        """Whether ``sensor`` (at ``site``) is watched."""
        return ((not self.families or sensor.family in self.families)
                and (not self.quantities or sensor.quantity in self.quantities)
                and (not self.profiles or sensor.profile in self.profiles)
                and (not self.site_kinds or site.kind in self.site_kinds)
                and (not self.sites or sensor.site_id in self.sites)
                and (not self.sensors or sensor.id in self.sensors)
                and (not self.hazard_grades or site.hazard_grade in self.hazard_grades))


class TierRung(_Strict):
    """One rung of a derived-metric ladder: trips at ``set``, clears at ``reset``, raises ``tier``."""

    tier: TierName
    set: float
    reset: float
    source: str = Field(min_length=3)


class _Rule(_Strict):
    id: str = Field(pattern=r"^[a-z0-9_.]{3,64}$", description="the alert's rule_id")
    match: Match = Match()
    description: str = ""


class ThresholdSpec(_Rule):
    """The setpoint ladders of the matched sensors, with delays (seconds of event time) per level.

    Alerts carry the rule id ``{family}.{quantity}.threshold`` (CONTRACT §6), so one spec can
    cover many quantities; ``id`` names the spec.
    """

    kind: Literal["threshold"]
    on_delay_s: dict[str, float] = Field(default={}, description="level → the value must hold that long before the rung trips")
    off_delay_s: dict[str, float] = Field(default={}, description="level → the value must stay back that long before the rung clears")


class _Windowed(_Rule):
    window_s: float = Field(gt=0, le=86_400, description="event-time window of the least-squares fit")
    min_points: int = Field(default=5, ge=3, description="fewer readings in the window: no verdict (the rule holds)")
    min_coverage: float = Field(default=0.5, gt=0, le=1, description="the window's readings must span this fraction of window_s")
    capacity: int = Field(default=600, ge=3, le=10_000, description="most readings kept per window (the newest)")


class RateOfChangeSpec(_Windowed):
    """Least-squares slope over ``window_s``, in the sensor's unit per minute, through a tiered ladder."""

    kind: Literal["rate_of_change"]
    direction: Literal["rise", "fall"] = "rise"
    rungs: list[TierRung] = Field(min_length=1, description="slope magnitude per minute, lowest rung first")

    @model_validator(mode="after")
    def _rungs_rise(self) -> "RateOfChangeSpec":
        sets = [r.set for r in self.rungs]
        if sets != sorted(sets) or len(set(sets)) != len(sets) or any(r.reset >= r.set for r in self.rungs):
            raise ValueError("rungs must rise strictly, each with reset below set")
        if any(s <= 0 for s in sets):
            raise ValueError("rate rungs are magnitudes per minute and must be positive")
        return self


class PredictiveSpec(_Windowed):
    """Warn when the window's trend reaches setpoint ``target_level`` within ``horizon_s``.

    Raised before the threshold, kept while the trend carries on past it, resolved when the
    trend turns (the predicted time grows beyond ``horizon_s × reset_factor``). A trend must be
    significant (slope over its standard error ≥ ``min_t_stat``), so noise on a flat level near
    the setpoint predicts nothing.
    """

    kind: Literal["predictive"]
    target_level: str = Field(description="a level of the sensors' ladders, e.g. HH")
    horizon_s: float = Field(gt=0)
    reset_factor: float = Field(default=1.5, gt=1)
    tier: TierName
    min_t_stat: float = Field(default=4.0, ge=0)
    source: str = Field(min_length=3)


class StuckSpec(_Windowed):
    """A sensor whose readings over a full window vary by less than ``min_std`` (a frozen transmitter)."""

    kind: Literal["stuck"]
    min_std: float = Field(gt=0, description="standard deviation below which the value counts as frozen, sensor unit")
    tier: TierName = Tier.YELLOW
    min_coverage: float = Field(default=0.9, gt=0, le=1)


class OutOfRangeSpec(_Rule):
    """A value outside the instrument range (profile or sensor ``range``) is a sensor fault.

    Above the range of a detector of ``over_range_families`` (gas by default) it is a 超量程 alarm
    instead: a catalytic sensor can roll over above its LEL span and read low or in range while the
    gas is rich, so the top of the scale is a process alarm (DOMAIN.md "Gas" [S]), raised under
    ``over_range_rule_id`` with kind ``over_range`` at ``over_range_tier``. Below the range it
    stays a fault for every family.
    """

    kind: Literal["out_of_range"]
    tier: TierName = Tier.YELLOW
    margin_fraction: float = Field(default=0.005, ge=0, lt=0.5, description="tolerance beyond the range, fraction of its span")
    over_range_families: list[Family] = Field(default=[Family.GAS], description="families whose over-range is an alarm")
    over_range_tier: TierName = Field(default=Tier.ORANGE, description="tier of the 超量程 alarm (at least high)")
    over_range_rule_id: str = Field(default="gas.over_range", pattern=r"^[a-z0-9_.]{3,64}$")
    over_range_source: str = ""


class HeldSpec(_Rule):
    """A value held at or above ``set`` for ``hold_s`` of event time → an alert of ``tier`` (level ``level``);
    it clears when the value falls to ``reset``. For 0/1 states held too long: an interlock bypass."""

    kind: Literal["held"]
    level: str = Field(pattern=r"^[a-z0-9_]{2,32}$")
    tier: TierName
    set: float
    reset: float
    hold_s: float = Field(gt=0)
    source: str = Field(min_length=3)

    @model_validator(mode="after")
    def _reset_below_set(self) -> "HeldSpec":
        if not self.reset < self.set:
            raise ValueError(f"reset {self.reset} must be below set {self.set}")
        return self


class Zone(_Strict):
    """A configured group of detectors that watch the same area."""

    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{1,63}$")
    sensors: list[str] = Field(min_length=2)
    name: str | None = Field(default=None, description="the zone's name in alarm texts (default: quantity and number)")
    name_en: str | None = Field(default=None, pattern=r"^[\x20-\x7e]+$", description="its English name")


class ConfirmationRung(_Strict):
    """One rung of a confirmation ladder: k detectors at ``level`` or above → ``tier``."""

    level: str = Field(description="the ladder level each detector must reach")
    tier: TierName
    source: str = Field(min_length=3)


class ConfirmationSpec(_Rule):
    """k of n detectors of one zone at a level → a tier for the zone (a confirmed leak).

    Either one rung (``level`` and ``tier``) or a ladder of ``rungs``, lowest first: the zone
    shows the highest rung that k of its detectors reach, as one alert that escalates (two
    detectors at the first level → high, two at the second → urgent). Zones are listed, or built
    from ``radius_m``: matched detectors of one site and quantity within that distance of each
    other (transitively) form a zone.
    """

    kind: Literal["confirmation"]
    k: int = Field(default=2, ge=2)
    level: str = Field(default="level1", description="one rung: the ladder level each detector must reach")
    tier: TierName | None = Field(default=None, description="one rung: the zone's tier when confirmed")
    rungs: list[ConfirmationRung] = Field(default=[], description="a ladder of rungs instead of level and tier")
    zones: list[Zone] = []
    radius_m: float | None = Field(default=None, gt=0)
    source: str = Field(min_length=3)

    @model_validator(mode="after")
    def _zones_or_radius(self) -> "ConfirmationSpec":
        if bool(self.zones) == (self.radius_m is not None):
            raise ValueError("give either zones or radius_m")
        if (self.tier is None) == (not self.rungs):
            raise ValueError("give either tier (with level) or rungs")
        if self.rungs:
            if "level" in self.model_fields_set:
                raise ValueError("with rungs, each rung names its level (drop level)")
            tiers = [r.tier for r in self.rungs]
            if tiers != sorted(tiers) or len(set(tiers)) != len(tiers):
                raise ValueError("rungs must rise strictly in tier, lowest first")
            levels = [r.level for r in self.rungs]
            if len(set(levels)) != len(levels):
                raise ValueError("rungs must name different levels")
        return self

    @property
    def ladder(self) -> list[ConfirmationRung]:
        """The rungs, lowest first (one rung when ``level`` and ``tier`` are given)."""
        if self.rungs:
            return list(self.rungs)
        assert self.tier is not None
        return [ConfirmationRung(level=self.level, tier=self.tier, source=self.source)]


class DangerClass(_Strict):
    """A fire-danger class: from ``min`` up to the next class; ``tier`` None raises nothing."""

    name: str
    min: float
    tier: TierName | None = None
    source: str = Field(min_length=3)


class FireDangerSpec(_Rule):
    """A daily fire-danger index per forest station, mapped to tiers by class limits.

    ``index: lyt1172`` (the default) is LY/T 1172-95's points index (rules/lyt1172.py): its day
    closes at ``day_close_hour`` CST (20:00, the Chinese meteorological day) and takes the day's
    maximum temperature, the 14:00 RH (else the day's minimum), the consecutive dry days (24 h rain
    below ``dry_day_rain_mm``) and the largest 10-minute mean wind, less the month's ``phenology``.
    ``index: fwi`` is the Canadian FWI: its day closes at noon CST and takes the last temperature,
    RH and wind at or before noon and the 24 h rain. ``warnings`` names the classes that propose a
    warning (class name → yellow/orange/red); no other class ever does.
    """

    kind: Literal["fire_danger"]
    index: Literal["lyt1172", "fwi"] = "lyt1172"
    classes: list[DangerClass] = Field(min_length=2)
    start_ffmc: float = 85.0
    start_dmc: float = 6.0
    start_dc: float = 15.0
    day_close_hour: int | None = Field(default=None, ge=0, le=23, description=(
        "CST hour that closes a danger day (none: the index's own, FWI 12, LY/T 1172 20)"))
    dry_day_rain_mm: float = Field(default=0.1, gt=0, description="a day with 24 h rain below this is dry (LY/T 1172's C)")
    dry_day_source: str | None = Field(default=None, min_length=3)
    phenology: dict[int, float] = Field(default_factory=dict, description=(
        "LY/T 1172's E per month 1-12 (subtracted; a missing month is 0)"))
    phenology_source: str | None = Field(default=None, min_length=3)
    warnings: dict[str, Literal["yellow", "orange", "red"]] = Field(default_factory=dict, description=(
        "class name → the warning it proposes about the station's forest zone (QX/T 77: only 三–五级)"))
    quantities: dict[str, str] = Field(
        default={"temperature": "temperature", "relative_humidity": "relative_humidity",
                 "wind_speed": "wind_speed", "rain": "rain"},
        description="index input → sensor quantity (wind in km/h, rain in mm per reading)")

    @model_validator(mode="after")
    def _classes_rise(self) -> "FireDangerSpec":
        limits = [c.min for c in self.classes]
        if limits != sorted(limits) or len(set(limits)) != len(limits):
            raise ValueError("class limits must rise strictly")
        names = {c.name for c in self.classes}
        if unknown := sorted(set(self.warnings) - names):
            raise ValueError(f"warnings name unknown classes: {unknown}")
        if bad := sorted(m for m in self.phenology if not 1 <= m <= 12):
            raise ValueError(f"phenology months must be 1-12: {bad}")
        return self


class FireDetectionSpec(_Rule):
    """Direct detection at a station: its detectors' alarms, or a temperature jump, raise a station alert.

    The tier is the detector's own tier, at least one above the station's current danger tier
    (evidence of a fire outranks weather danger), at most ``unconfirmed_max_tier``. With
    ``confirm_k``, that many detection signals at the station at once (detectors in alarm and the
    temperature jump: independent principles agreeing) confirm the fire: ``confirmed_tier``.
    """

    kind: Literal["fire_detection"]
    danger_rule: str = Field(description="id of the fire_danger rule whose tier this one outranks")
    jump_rule: str | None = Field(default=None, description="id of a rate_of_change rule on station temperature")
    jump_tier: TierName = Tier.ORANGE
    unconfirmed_max_tier: TierName = Field(default=Tier.RED, description=(
        "the highest tier a detection reaches without confirmation, whatever the danger"))
    confirm_k: int | None = Field(default=None, ge=2, description=(
        "detection signals at one station at once that confirm a fire (none: no confirmation step)"))
    confirmed_tier: TierName = Tier.RED
    source: str | None = Field(default=None, min_length=3, description="where the tiers and the confirmation come from")


RuleSpec = Annotated[Union[ThresholdSpec, RateOfChangeSpec, PredictiveSpec, StuckSpec, OutOfRangeSpec, HeldSpec,
                           ConfirmationSpec, FireDangerSpec, FireDetectionSpec], Field(discriminator="kind")]


class RuleBook(_Strict):
    """Every configured rule (``rules.yaml``), ids unique."""

    rules: list[RuleSpec] = []

    @model_validator(mode="after")
    def _unique_ids(self) -> "RuleBook":
        seen: set[str] = set()
        for rule in self.rules:
            if rule.id in seen:
                raise ValueError(f"duplicate rule id {rule.id!r}")
            seen.add(rule.id)
        return self

    @classmethod
    def thresholds_only(cls) -> "RuleBook":
        """The book used when a configuration has no ``rules.yaml``: every setpoint ladder, no delays."""
        return cls(rules=[ThresholdSpec(kind="threshold", id="threshold.all")])

    def get(self, rule_id: str) -> Any:
        """The spec with ``rule_id``, or None."""
        return next((r for r in self.rules if r.id == rule_id), None)

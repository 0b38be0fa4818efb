"""Warning configuration (``warnings.yaml``): the taxonomy, guidance, issuers, zones, routes and CAP profile.

Warnings (预警) are issued by the bureau about an enterprise, a hazard unit or a forest zone, in
the legal levels Ⅰ–Ⅳ of the Emergency Response Law (art. 63: 红 橙 黄 蓝, Ⅰ highest); they are not
alarm priorities (docs/alarms.md). Everything a bureau tunes about them lives here, validated
once at load, every number with its ``source`` (docs/warnings.md explains each key).

This module imports only `foundation.domain` and pydantic at import time, so `foundation.config` may
import it; `load_warning_settings` imports `foundation.config` when it runs.
"""

from __future__ import annotations

import enum
import re
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

if TYPE_CHECKING:  # only for annotations: foundation.config imports this module
    from foundation.alertspec import AlertingSettings
    from foundation.config import Fleet

__all__ = ["CAP_CATEGORIES", "CapProfile", "CategorySpec", "Circle", "Guidance", "GuidanceMatch", "Issuer", "Measure",
           "Verification", "WarningLevel", "WarningRoute", "WarningRouteMatch", "WarningSettings", "Zone",
           "load_warning_settings"]


class WarningLevel(str, enum.Enum):
    """A legal warning level (预警级别, Emergency Response Law art. 63), Ⅰ the highest.

    Parsed from ``I``…``IV``, the Roman numerals ``Ⅰ``…``Ⅳ``, ``1``…``4`` or the colours.

    >>> WarningLevel("Ⅱ").colour, WarningLevel("red").label_zh
    ('orange', '红色预警(Ⅰ级 特别严重)')
    >>> WarningLevel.I.rank > WarningLevel.II.rank
    True
    >>> WarningLevel.IV.cap_severity
    'Minor'
    """

    I = "I"
    II = "II"
    III = "III"
    IV = "IV"

    @classmethod
    def _missing_(cls, value: object) -> "WarningLevel | None":
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str):
            return None
        return _ALIASES.get(value.strip().lower())

    @property
    def rank(self) -> int:
        """4 for Ⅰ … 1 for Ⅳ: higher is more serious (raising a warning moves toward Ⅰ)."""
        return _FACTS[self][0]

    @property
    def roman(self) -> str:
        """The level as written in Chinese documents: ``Ⅰ``…``Ⅳ``."""
        return _FACTS[self][1]

    @property
    def colour(self) -> str:
        """``red``, ``orange``, ``yellow``, ``blue`` (art. 63)."""
        return _FACTS[self][2]

    @property
    def colour_zh(self) -> str:
        """``红色``…``蓝色``."""
        return _FACTS[self][3]

    @property
    def name_zh(self) -> str:
        """``特别严重``, ``严重``, ``较重``, ``一般`` (art. 63)."""
        return _FACTS[self][4]

    @property
    def label_zh(self) -> str:
        """How a duty officer reads the level: ``橙色预警(Ⅱ级 严重)``."""
        return f"{self.colour_zh}预警({self.roman}级 {self.name_zh})"

    @property
    def cap_severity(self) -> str:
        """The CAP 1.2 ``severity``: Ⅰ Extreme, Ⅱ Severe, Ⅲ Moderate, Ⅳ Minor (docs/warnings.md: how sure)."""
        return _FACTS[self][5]


_FACTS = {
    WarningLevel.I: (4, "Ⅰ", "red", "红色", "特别严重", "Extreme"),
    WarningLevel.II: (3, "Ⅱ", "orange", "橙色", "严重", "Severe"),
    WarningLevel.III: (2, "Ⅲ", "yellow", "黄色", "较重", "Moderate"),
    WarningLevel.IV: (1, "Ⅳ", "blue", "蓝色", "一般", "Minor"),
}
_ALIASES = {alias.lower(): level for level, facts in _FACTS.items()
            for alias in (level.value, facts[1], str(5 - facts[0]), facts[2], facts[3], facts[3][0])}

CAP_CATEGORIES = ("Geo", "Met", "Safety", "Security", "Rescue", "Fire", "Health", "Env", "Transport", "Infra", "CBRNE",
                  "Other")
"""CAP 1.2's ``category`` values."""

CapCategory = Literal["Geo", "Met", "Safety", "Security", "Rescue", "Fire", "Health", "Env", "Transport", "Infra",
                      "CBRNE", "Other"]
Urgency = Literal["Immediate", "Expected", "Future", "Past", "Unknown"]
Certainty = Literal["Observed", "Likely", "Possible", "Unlikely", "Unknown"]
Source = Annotated[str, Field(min_length=3, description=(
    "where it comes from: a standard and clause, a law, or 'site choice'"))]
_CAP_TOKEN = r"^[^\s,<&]+$"  # CAP: identifiers and sender contain no spaces, commas, '<' or '&'
_CATEGORY = re.compile(r"^[^/\s]+(/[^/\s]+)+$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CategorySpec(_Strict):
    """One category of the taxonomy (a key such as ``事故灾难/危险化学品``)."""

    event: str = Field(min_length=2, description="the event's name in documents (CAP info.event), e.g. 危险化学品事故")
    cap_categories: list[CapCategory] = Field(min_length=1, description="CAP 1.2 info.category values")
    levels: list[WarningLevel] = Field(default_factory=lambda: list(WarningLevel), min_length=1, description=(
        "the levels a warning of this category may have (forest danger: Ⅰ–Ⅲ only, red/orange/yellow)"))
    levels_source: str | None = Field(default=None, description="why the levels are restricted")
    radius_km: float = Field(default=1.0, gt=0, le=100, description="default radius of the area possibly affected")
    radius_source: Source = "site choice (unconfirmed): set by the bureau's plan"
    event_code: str | None = Field(default=None, pattern=r"^[0-9A-Za-z._-]{1,32}$", description=(
        "an event type code (e.g. from GB/T 35561 突发事件分类与编码) when the bureau has one; CAP info.eventCode"))
    event_code_source: str | None = None

    @model_validator(mode="after")
    def _code_has_source(self) -> "CategorySpec":
        if self.event_code is not None and not self.event_code_source:
            raise ValueError("event_code needs event_code_source")
        if len(set(self.levels)) != len(self.levels):
            raise ValueError("levels repeat")
        return self


class Measure(_Strict):
    """One measure to take (应当采取的措施) or thing to watch, with its source; unconfirmed unless said."""

    text: str = Field(min_length=2)
    source: Source
    confirmed: bool = Field(default=False, description="true only when the wording was read in the source itself")


def _category_matches(pattern: str, category: str) -> bool:
    """Whether ``category`` is ``pattern`` or lies under it (``事故灾难`` covers ``事故灾难/燃气``)."""
    return category == pattern or category.startswith(pattern + "/")


def _hazard_matches(pattern: str, hazard: str | None) -> bool:
    """Whether ``hazard`` is ``pattern`` or lies under it (``gas`` covers ``gas.toxic_release``)."""
    return hazard is not None and (hazard == pattern or hazard.startswith(pattern + "."))


class GuidanceMatch(_Strict):
    """Which warnings guidance applies to; empty lists match everything."""

    categories: list[str] = Field(default=[], description="category keys or prefixes (事故灾难 covers 事故灾难/燃气)")
    hazards: list[str] = Field(default=[], description=(
        "alarm kinds or families the proposal names: gas.toxic_release, gas.combustible_release, forest.fire_danger …; "
        "a family (gas) covers its kinds"))
    levels: list[WarningLevel] = []

    def covers(self, category: str, hazard: str | None, level: WarningLevel) -> bool:
        """Whether a warning of this category, hazard and level gets the guidance."""
        return ((not self.categories or any(_category_matches(c, category) for c in self.categories))
                and (not self.hazards or any(_hazard_matches(h, hazard) for h in self.hazards))
                and (not self.levels or level in self.levels))


class Guidance(_Strict):
    """What to watch (警示事项) and measures to take (应当采取的措施) for the warnings it matches."""

    match: GuidanceMatch = GuidanceMatch()
    watch: list[Measure] = []
    measures: list[Measure] = []


class Issuer(_Strict):
    """A desk that issues warnings (发布单位): the city bureau, or a county bureau for its counties."""

    id: str = Field(pattern=r"^[a-z0-9_.-]{2,64}$")
    name: str = Field(min_length=2, description="CAP info.senderName, e.g. 聊城市应急管理局")
    sender: str = Field(pattern=_CAP_TOKEN, max_length=128, description="CAP alert.sender: the bureau's sender id")
    sender_code: str | None = Field(default=None, pattern=r"^[0-9]{14}$", description=(
        "the 14-digit issuer code ZZZZZZDDDUUUXX (GB/T 2260 area code, GB/T 4657 agency code, 000, 00) of the "
        "national warning system's identifier form, when the bureau has one (unconfirmed: docs/warnings.md)"))
    counties: list[str] = Field(default=[], description="the counties it issues for; empty: every other county")


class Circle(_Strict):
    """A point and a radius (CAP ``circle``)."""

    lon: float = Field(ge=-180, le=180)
    lat: float = Field(ge=-90, le=90)
    radius_km: float = Field(gt=0, le=500)


class Zone(_Strict):
    """A forest zone (or any named area) a warning may be about, with its outline or a circle."""

    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{1,63}$")
    name: str = Field(min_length=2)
    county: str | None = None
    site_id: str | None = Field(default=None, description="the site whose tokens may see its warnings")
    polygon: list[tuple[float, float]] | None = Field(default=None, description="[[lon, lat], …], not closed")
    circle: Circle | None = None
    source: Source = "approximate, for the demo"

    @model_validator(mode="after")
    def _one_shape(self) -> "Zone":
        if (self.polygon is None) == (self.circle is None):
            raise ValueError("give polygon or circle")
        if self.polygon is not None:
            if len(set(self.polygon)) < 3:
                raise ValueError("a polygon needs at least 3 distinct points")
            if any(not (-180 <= lon <= 180 and -90 <= lat <= 90) for lon, lat in self.polygon):
                raise ValueError("polygon points are [lon, lat] in degrees")
        return self


class WarningRouteMatch(_Strict):
    categories: list[str] = Field(default=[], description="category keys or prefixes")
    levels: list[WarningLevel] = []
    counties: list[str] = []
    sites: list[str] = []
    subject_kinds: list[Literal["enterprise", "hazard_unit", "forest_zone"]] = []


class WarningRoute(_Strict):
    """Who is told about the warnings it matches; the first matching route wins.

    ``desk`` receives proposals to verify (研判); a proposal nobody verifies in time goes to the
    next ``escalation`` receiver, one per deadline; ``recipients`` receive published warnings
    (issued, adjusted, lifted) besides everyone already told. Receiver ids are alerting.yaml's.
    """

    match: WarningRouteMatch = WarningRouteMatch()
    desk: list[str] = Field(min_length=1)
    escalation: list[str] = []
    recipients: list[str] = []

    def covers(self, category: str, level: WarningLevel, county: str | None, site_id: str | None, kind: str) -> bool:
        m = self.match
        return ((not m.categories or any(_category_matches(c, category) for c in m.categories))
                and (not m.levels or level in m.levels) and (not m.counties or county in m.counties)
                and (not m.sites or site_id in m.sites) and (not m.subject_kinds or kind in m.subject_kinds))


class Verification(_Strict):
    """How long a proposal may wait for a duty officer's verification (研判) before it escalates."""

    deadline_s: dict[WarningLevel, float] = Field(default_factory=lambda: {
        WarningLevel.I: 600.0, WarningLevel.II: 600.0, WarningLevel.III: 1800.0, WarningLevel.IV: 1800.0})
    source: Source = ("DOMAIN.md [C]: a county rule — phone the leader on duty within 10 min of a warning, forward to "
                      "the responsible section within 30 min; applied to verification by Liaowang (site choice)")
    rejection_hold_s: float = Field(default=7200.0, ge=0, description=(
        "after a duty officer rejects a proposal, rules and the risk grading do not propose the same subject and "
        "category again at the same or a lower level for this long (a higher level proposes at once; a person may "
        "always propose); 0: no hold"))
    rejection_hold_source: Source = ("Liaowang calibration (site choice): a duty officer's 研判 stands for two hours "
                                     "unless the situation worsens, so the desk is not asked the same question each "
                                     "time a new alarm adds evidence")

    @model_validator(mode="after")
    def _every_level(self) -> "Verification":
        missing = [level.value for level in WarningLevel if level not in self.deadline_s]
        if missing:
            raise ValueError(f"deadline_s needs every level; missing {missing}")
        if any(not v > 0 for v in self.deadline_s.values()):
            raise ValueError("deadlines must be positive")
        return self


class CapProfile(_Strict):
    """Constant parts of the published documents (GB/T 35965.1 / CAP 1.2; docs/warnings.md)."""

    status: Literal["Actual", "Exercise", "System", "Test", "Draft"] = Field(default="Actual", description=(
        "Exercise for drills: receivers must not act on them"))
    scope: Literal["Public", "Restricted", "Private"] = "Public"
    restriction: str | None = None
    addresses: str | None = None
    language: str = Field(default="zh-CN", pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")
    urgency: dict[WarningLevel, Urgency] = Field(default_factory=lambda: {level: "Expected" for level in WarningLevel},
                                                 description="per level; a lifted warning is always Past")
    certainty: Certainty = Field(default="Likely", description="a verified warning: Likely (site choice)")
    web: str | None = Field(default=None, pattern=r"^https?://", description=(
        "a page for the warning, with {warning_id} (e.g. https://…/api/v1/warnings/{warning_id})"))
    contact: str | None = None

    @model_validator(mode="after")
    def _scope_parts(self) -> "CapProfile":
        if self.scope == "Restricted" and not self.restriction:
            raise ValueError("scope Restricted needs restriction")
        if self.scope == "Private" and not self.addresses:
            raise ValueError("scope Private needs addresses")
        missing = [level.value for level in WarningLevel if level not in self.urgency]
        if missing:
            raise ValueError(f"urgency needs every level; missing {missing}")
        return self


_GBZ223 = "GBZ/T 223-2009 (quoted in issue 13; the standard's text was not read here)"
_QXT77 = "QX/T 77-2007 (quoted in issue 13; the standard's text was not read here)"
_DEMO = "Liaowang demo guidance (site choice; the bureau replaces it with its plan)"


def _default_categories() -> dict[str, CategorySpec]:
    law = "Emergency Response Law art. 63 (DOMAIN.md [C])"
    forest = "DOMAIN.md [S]: QX/T 77 warning signals only for danger 三–五级 (yellow/orange/red)"
    return {
        "事故灾难/危险化学品": CategorySpec(event="危险化学品事故", cap_categories=["CBRNE", "Safety"],
                                      levels_source=law, radius_km=3.0),
        "事故灾难/燃气": CategorySpec(event="燃气事故", cap_categories=["Safety", "Infra"], levels_source=law,
                                 radius_km=1.0),
        "事故灾难/工矿商贸": CategorySpec(event="生产安全事故", cap_categories=["Safety"], levels_source=law,
                                   radius_km=1.0),
        "自然灾害/森林火险": CategorySpec(event="森林火险", cap_categories=["Fire"], levels_source=forest,
                                   levels=[WarningLevel.I, WarningLevel.II, WarningLevel.III], radius_km=5.0),
    }


def _default_guidance() -> list[Guidance]:
    return [
        Guidance(match=GuidanceMatch(hazards=["gas.toxic_release", "gas.combustible_release"]),
                 watch=[Measure(text="可燃或有毒气体可能泄漏扩散，注意下风向人员安全", source=_DEMO)],
                 measures=[Measure(text="立即寻查释放点", source=_GBZ223)]),
        Guidance(match=GuidanceMatch(categories=["自然灾害/森林火险"], levels=[WarningLevel.I]),
                 measures=[Measure(text="严禁一切林内用火", source=_QXT77)]),
        Guidance(match=GuidanceMatch(categories=["事故灾难/危险化学品"]),
                 measures=[Measure(text="企业包保责任人到岗履职，组织排查并在规定时限内反馈原因和措施",
                                   source="应急厅〔2021〕12号 (包保责任制, DOMAIN.md [C]); wording: Liaowang")]),
    ]


class WarningSettings(_Strict):
    """Everything ``warnings.yaml`` holds; every key has a default, so the file is optional."""

    categories: dict[str, CategorySpec] = Field(default_factory=_default_categories, description=(
        "the taxonomy: key 大类/小类 (e.g. 事故灾难/危险化学品) → its spec"))
    guidance: list[Guidance] = Field(default_factory=_default_guidance, description=(
        "every matching entry adds its watch items and measures, in order"))
    issuers: list[Issuer] = Field(default_factory=lambda: [Issuer(
        id="city", name="聊城市应急管理局", sender="liaocheng.yjj")], min_length=1)
    zones: list[Zone] = []
    routes: list[WarningRoute] = []
    verification: Verification = Verification()
    cap: CapProfile = CapProfile()

    @model_validator(mode="after")
    def _references(self) -> "WarningSettings":
        for key in self.categories:
            if not _CATEGORY.match(key):
                raise ValueError(f"category {key!r}: write it as 大类/小类 (e.g. 事故灾难/危险化学品)")
        for spec in self.categories.values():
            if len(set(spec.levels)) != len(spec.levels):
                raise ValueError("levels repeat")
        known = list(self.categories)

        def check(patterns: list[str], where: str) -> None:
            for pattern in patterns:
                if not any(_category_matches(pattern, key) for key in known):
                    raise ValueError(f"{where}: no category is or lies under {pattern!r}")

        for i, entry in enumerate(self.guidance):
            check(entry.match.categories, f"guidance[{i}]")
        for i, route in enumerate(self.routes):
            check(route.match.categories, f"routes[{i}]")
        ids = [i.id for i in self.issuers]
        if len(set(ids)) != len(ids):
            raise ValueError("issuer ids must be unique")
        if sum(1 for i in self.issuers if not i.counties) != 1:
            raise ValueError("exactly one issuer must have no counties: it issues for every county the others do not")
        counties = [c for i in self.issuers for c in i.counties]
        if len(set(counties)) != len(counties):
            raise ValueError("a county belongs to one issuer")
        zone_ids = [z.id for z in self.zones]
        if len(set(zone_ids)) != len(zone_ids):
            raise ValueError("zone ids must be unique")
        return self

    def category(self, key: str) -> CategorySpec | None:
        """The spec of category ``key``, or None."""
        return self.categories.get(key)

    def issuer_for(self, county: str | None) -> Issuer:
        """The issuer of warnings in ``county``: the one naming it, else the one without counties."""
        for issuer in self.issuers:
            if county is not None and county in issuer.counties:
                return issuer
        return next(i for i in self.issuers if not i.counties)

    def zone(self, zone_id: str) -> Zone | None:
        """The configured zone ``zone_id``, or None."""
        return next((z for z in self.zones if z.id == zone_id), None)


def load_warning_settings(folder: Path, alerting: "AlertingSettings | None" = None,
                          fleet: "Fleet | None" = None) -> WarningSettings:
    """Load ``warnings.yaml`` of ``folder`` (defaults when absent) and check it; raise ConfigError naming file and key.

    With ``alerting`` its routes' receivers must be alerting.yaml's; with ``fleet`` the sites
    named by zones and routes must exist. Counties are always checked.
    """
    from foundation.config import COUNTIES, ConfigError, _read_yaml, _validate  # config imports this module

    path = Path(folder) / "warnings.yaml"
    if not path.exists():
        return WarningSettings()
    raw: Any = _read_yaml(path)
    if not isinstance(raw, dict):
        raise ConfigError(str(path), "-", "must be a mapping")
    settings: WarningSettings = _validate(WarningSettings, raw, path)
    for i, issuer in enumerate(settings.issuers):
        for county in issuer.counties:
            if county not in COUNTIES:
                raise ConfigError(str(path), f"issuers[{i}].counties", f"unknown county {county!r}")
    for i, zone in enumerate(settings.zones):
        if zone.county is not None and zone.county not in COUNTIES:
            raise ConfigError(str(path), f"zones[{i}].county", f"unknown county {zone.county!r}")
        if fleet is not None and zone.site_id is not None and zone.site_id not in fleet.sites:
            raise ConfigError(str(path), f"zones[{i}].site_id", f"unknown site {zone.site_id!r}")
    receivers = {r.id for r in alerting.receivers} if alerting is not None else None
    for i, route in enumerate(settings.routes):
        for county in route.match.counties:
            if county not in COUNTIES:
                raise ConfigError(str(path), f"routes[{i}].match.counties", f"unknown county {county!r}")
        if fleet is not None:
            for site in route.match.sites:
                if site not in fleet.sites:
                    raise ConfigError(str(path), f"routes[{i}].match.sites", f"unknown site {site!r}")
        if receivers is not None:
            for key in ("desk", "escalation", "recipients"):
                for receiver in getattr(route, key):
                    if receiver not in receivers:
                        raise ConfigError(str(path), f"routes[{i}].{key}",
                                          f"unknown receiver {receiver!r} (receivers are alerting.yaml's)")
    return settings

"""Risk grading configuration (``risk.yaml``): the MEM-style dynamic risk grade of enterprises and hazard units.

Every weight and threshold here carries its ``source`` and DOMAIN.md's ``certainty`` tag: **C** read
in a primary text, **S** a secondary source, **U** unconfirmed. MEM's hazchem early-warning model
grades 重大/较大/一般/低 risk from inherent risk, real-time alarms, data quality and operating state
(DOMAIN.md [S]); **its weights were not available here, so every number below is Liaowang's own
calibration, tagged U**, for a bureau to replace with its province's model. docs/risk.md explains
each key; `earlywarning.risk` applies them.

The model is additive: each rule adds non-negative points, each group of rules is capped, the
score is the sum of the groups, and the grade is the highest band the score reaches. More
alarms, more special work or worse data quality can therefore never lower a grade.

This module imports only pydantic at import time; `load_risk_settings` imports `foundation.config`
when it runs.
"""

from __future__ import annotations

import enum
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from foundation.warningspec import WarningLevel

if TYPE_CHECKING:  # annotations only
    from foundation.config import Fleet

__all__ = ["AlarmRules", "Band", "Certainty", "CommitmentRules", "DataQualityRules", "GradeBands", "InherentRules",
           "OperatingKind", "OperatingRules", "PRIORITIES", "ProposalRules", "RiskSettings", "load_risk_settings"]

Certainty = Literal["C", "S", "U"]
"""DOMAIN.md's tags: C read in a primary text, S secondary source, U unconfirmed."""
Priority = Literal["urgent", "high", "medium", "low"]
PRIORITIES: tuple[str, ...] = ("urgent", "high", "medium", "low")
GradeName = Literal["major", "significant", "general", "low"]
Problem = Literal["offline", "not_reporting", "stale", "frozen", "out_of_range"]
SensorProblem = Literal["stale", "frozen", "out_of_range"]

_U = "Liaowang's own calibration (site choice): MEM's weights were not available here"
_MEM = "DOMAIN.md [S]: MEM hazchem early warning grades from this input"


class OperatingKind(str, enum.Enum):
    """What an enterprise registers about its operation: 开停车, 检修, and the eight 特殊作业 of GB 30871.

    Parsed from the English value or the Chinese name, with or without 作业.

    >>> OperatingKind("hot_work").zh, OperatingKind.HOT_WORK.special_work, OperatingKind("动火").value
    ('动火作业', True, 'hot_work')
    """

    STARTUP = "startup"
    SHUTDOWN = "shutdown"
    MAINTENANCE = "maintenance"
    HOT_WORK = "hot_work"
    CONFINED_SPACE = "confined_space"
    BLIND_PLATE = "blind_plate"
    WORK_AT_HEIGHT = "work_at_height"
    LIFTING = "lifting"
    TEMPORARY_POWER = "temporary_power"
    EXCAVATION = "excavation"
    ROAD_CLOSURE = "road_closure"

    @classmethod
    def _missing_(cls, value: object) -> "OperatingKind | None":
        if not isinstance(value, str):
            return None
        text = value.strip()
        return next((k for k, zh in _KIND_ZH.items() if text in (zh, zh.removesuffix("作业"))), None)

    @property
    def zh(self) -> str:
        return _KIND_ZH[self]

    @property
    def special_work(self) -> bool:
        """One of GB 30871's eight special work types (特殊作业)."""
        return self not in (OperatingKind.STARTUP, OperatingKind.SHUTDOWN, OperatingKind.MAINTENANCE)


_KIND_ZH = {OperatingKind.STARTUP: "开车", OperatingKind.SHUTDOWN: "停车", OperatingKind.MAINTENANCE: "检修",
            OperatingKind.HOT_WORK: "动火作业", OperatingKind.CONFINED_SPACE: "受限空间作业",
            OperatingKind.BLIND_PLATE: "盲板抽堵作业", OperatingKind.WORK_AT_HEIGHT: "高处作业",
            OperatingKind.LIFTING: "吊装作业", OperatingKind.TEMPORARY_POWER: "临时用电作业",
            OperatingKind.EXCAVATION: "动土作业", OperatingKind.ROAD_CLOSURE: "断路作业"}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Sourced(_Strict):
    source: str = Field(min_length=3, description="where the number comes from")
    certainty: Certainty = Field(description="DOMAIN.md's tag: C, S or U")


Points = float
_points = Field(ge=0)


class Band(_Sourced):
    """A score from which a grade starts."""

    min_score: float = Field(gt=0)


class GradeBands(_Strict):
    """Score → grade: the highest band reached; below ``general``: 低风险 (blue)."""

    general: Band = Band(min_score=45, source=_U, certainty="U")
    significant: Band = Band(min_score=75, source=_U, certainty="U")
    major: Band = Band(min_score=100, source=_U, certainty="U")

    @model_validator(mode="after")
    def _rising(self) -> "GradeBands":
        if not self.general.min_score < self.significant.min_score < self.major.min_score:
            raise ValueError("min_score must rise: general < significant < major")
        return self

    def grade(self, score: float) -> str:
        """``major``, ``significant``, ``general`` or ``low``.

        >>> GradeBands().grade(44.9), GradeBands().grade(75), GradeBands().grade(120)
        ('low', 'significant', 'major')
        """
        for name in ("major", "significant", "general"):
            if score >= getattr(self, name).min_score:
                return name
        return "low"


class Cap(_Sourced):
    """The most points a group of rules may add."""

    points: float = Field(gt=0)


# ---------------------------------------------------------------- inherent risk

class UnitGradePoints(_Sourced):
    """Points for a hazard unit's GB 18218 grade (an enterprise takes its highest-scoring unit)."""

    points: dict[Literal[1, 2, 3, 4], Points] = {1: 40, 2: 30, 3: 20, 4: 10}

    @model_validator(mode="after")
    def _every_grade(self) -> "UnitGradePoints":
        if set(self.points) != {1, 2, 3, 4} or any(v < 0 for v in self.points.values()):
            raise ValueError("points needs grades 1, 2, 3 and 4, none negative")
        return self


class RStep(_Sourced):
    """Extra points for a unit whose R reaches ``min_r`` (the highest step reached counts)."""

    min_r: float = Field(ge=0)
    points: Points = _points


class SubstanceBand(_Sourced):
    """Extra points for a unit holding a substance whose β reaches ``min_beta`` (the highest band counts)."""

    min_beta: float = Field(gt=0)
    points: Points = _points


class FlatPoints(_Sourced):
    points: Points = _points


class InherentRules(_Strict):
    """固有风险: what the unit is, whatever happens today."""

    unit_grade: UnitGradePoints = UnitGradePoints(
        source="GB 18218-2018 grade [S] (DOMAIN.md: higher grade, stricter rules); the points: " + _U, certainty="U")
    r_steps: list[RStep] = [RStep(min_r=200, points=5, source="R far above grade 1's 100; " + _U, certainty="U")]
    substances: list[SubstanceBand] = [
        SubstanceBand(min_beta=2, points=5, source="GB 18218-2018 β ≥ 2: toxic gases such as 氨, 二氧化硫 [S]; " + _U,
                      certainty="U"),
        SubstanceBand(min_beta=4, points=10, source="GB 18218-2018 β ≥ 4: 氯 and more toxic gases [S]; " + _U,
                      certainty="U")]
    key_process: FlatPoints = FlatPoints(points=10, source=(
        "重点监管危险化工工艺 (安监总管三〔2009〕116号, 〔2013〕3号 [S]) as a MEM input (DOMAIN.md [S]); " + _U),
        certainty="U")


# ---------------------------------------------------------------- alarms

def _every_priority(values: dict[str, float], name: str) -> None:
    if set(values) != set(PRIORITIES):
        raise ValueError(f"{name} needs urgent, high, medium and low")
    if any(v < 0 for v in values.values()):
        raise ValueError(f"{name} may not be negative")


class OpenAlarms(_Sourced):
    """Points per open alarm by priority (count and concurrency of over-limit alarms)."""

    points: dict[Priority, Points] = {"urgent": 10, "high": 4, "medium": 2, "low": 1}
    max_points: float = Field(default=30, gt=0)

    @model_validator(mode="after")
    def _check(self) -> "OpenAlarms":
        _every_priority(self.points, "points")  # type: ignore[arg-type]
        return self


class UnacknowledgedAlarms(_Sourced):
    """Points per alarm nobody has acknowledged for ``after_s`` of its priority (unacknowledged time)."""

    after_s: dict[Priority, float] = {"urgent": 300, "high": 600, "medium": 1800, "low": 3600}
    points: dict[Priority, Points] = {"urgent": 10, "high": 4, "medium": 2, "low": 1}
    max_points: float = Field(default=30, gt=0)

    @model_validator(mode="after")
    def _check(self) -> "UnacknowledgedAlarms":
        _every_priority(self.points, "points")  # type: ignore[arg-type]
        _every_priority(self.after_s, "after_s")  # type: ignore[arg-type]
        if any(v <= 0 for v in self.after_s.values()):
            raise ValueError("after_s must be positive")
        return self


class LongAlarms(_Sourced):
    """Points per alarm open for ``after_s`` or longer (alarm duration)."""

    after_s: float = Field(default=3600, gt=0)
    points: Points = Field(default=3, ge=0)
    max_points: float = Field(default=15, gt=0)


class ConcurrencyStep(_Sourced):
    """Points when ``min_alarms`` or more alarms are open at once (the highest step reached counts)."""

    min_alarms: int = Field(ge=2)
    points: Points = _points


class AlarmRules(_Strict):
    """实时报警: over-limit alarms of the subject (not data-quality alarms: those are `DataQualityRules`)."""

    open: OpenAlarms = OpenAlarms(source=_MEM + " (count, concurrency); points: " + _U, certainty="U")
    unacknowledged: UnacknowledgedAlarms = UnacknowledgedAlarms(source=(
        _MEM + " (unacknowledged time); the delays follow the priorities' meaning in docs/alarms.md (urgent: at "
        "once; high: within minutes; medium: within the shift); points: " + _U), certainty="U")
    long_open: LongAlarms = LongAlarms(source=_MEM + " (duration); 1 h and the points: " + _U, certainty="U")
    concurrent: list[ConcurrencyStep] = [
        ConcurrencyStep(min_alarms=3, points=5, source=_MEM + " (concurrency); " + _U, certainty="U"),
        ConcurrencyStep(min_alarms=5, points=10, source=_MEM + " (concurrency); " + _U, certainty="U")]
    cap: Cap = Cap(points=45, source=_U + "; alarms alone take a plain grade-1 unit (40) to 较大 at most",
                   certainty="U")


# ---------------------------------------------------------------- data quality

class SensorProblemPoints(_Sourced):
    points: dict[SensorProblem, Points] = {"stale": 3, "frozen": 3, "out_of_range": 3}
    max_points: float = Field(default=15, gt=0)


class DataQualityRules(_Strict):
    """数据质量: a blind or lying monitoring system raises risk (offline, frozen, out of range)."""

    alarm_kinds: dict[str, Problem] = Field(default={
        "comm_loss": "offline", "not_reporting": "not_reporting", "stale": "stale", "stuck": "frozen",
        "out_of_range": "out_of_range"}, description=(
        "alarm kind → the data-quality problem it reports; alarms of these kinds count here, not as alarms"))
    offline: FlatPoints = FlatPoints(points=20, source=_MEM + " (offline); " + _U, certainty="U")
    not_reporting: FlatPoints = FlatPoints(points=10, source=_MEM + " (sensors not reporting); " + _U, certainty="U")
    sensors: SensorProblemPoints = SensorProblemPoints(source=_MEM + " (frozen, stale, out of range); " + _U,
                                                       certainty="U")
    cap: Cap = Cap(points=30, source=_U, certainty="U")


# ---------------------------------------------------------------- operating state

class KindRule(_Sourced):
    """Points per registered entry of one kind while it lasts, and the longest an entry may last."""

    points: Points = _points
    max_duration_s: float = Field(gt=0, le=366 * 86400)


_GB30871 = "GB 30871-2022 特殊作业 (DOMAIN.md; issue 13) as a MEM input (DOMAIN.md [S]); points: " + _U
_PERMIT = "; the longest entry: " + _U


def _default_kinds() -> dict[OperatingKind, KindRule]:
    day, week = 86400.0, 7 * 86400.0
    state = _MEM + " (开停车, 检修 raise risk); points: " + _U + _PERMIT
    return {
        OperatingKind.STARTUP: KindRule(points=15, max_duration_s=week, source=state, certainty="U"),
        OperatingKind.SHUTDOWN: KindRule(points=10, max_duration_s=week, source=state, certainty="U"),
        OperatingKind.MAINTENANCE: KindRule(points=10, max_duration_s=30 * day, source=state, certainty="U"),
        OperatingKind.HOT_WORK: KindRule(points=15, max_duration_s=3 * day, source=_GB30871 + _PERMIT, certainty="U"),
        OperatingKind.CONFINED_SPACE: KindRule(points=15, max_duration_s=3 * day, source=_GB30871 + _PERMIT,
                                               certainty="U"),
        OperatingKind.BLIND_PLATE: KindRule(points=10, max_duration_s=3 * day, source=_GB30871 + _PERMIT,
                                            certainty="U"),
        OperatingKind.WORK_AT_HEIGHT: KindRule(points=5, max_duration_s=3 * day, source=_GB30871 + _PERMIT,
                                               certainty="U"),
        OperatingKind.LIFTING: KindRule(points=5, max_duration_s=3 * day, source=_GB30871 + _PERMIT, certainty="U"),
        OperatingKind.TEMPORARY_POWER: KindRule(points=5, max_duration_s=30 * day, source=_GB30871 + _PERMIT,
                                                certainty="U"),
        OperatingKind.EXCAVATION: KindRule(points=5, max_duration_s=7 * day, source=_GB30871 + _PERMIT,
                                           certainty="U"),
        OperatingKind.ROAD_CLOSURE: KindRule(points=5, max_duration_s=7 * day, source=_GB30871 + _PERMIT,
                                             certainty="U"),
    }


class OperatingRules(_Strict):
    """运行状态: 开停车, 检修, 特殊作业 registered through the API or the daily 研判与承诺. They raise risk only."""

    kinds: dict[OperatingKind, KindRule] = Field(default_factory=_default_kinds)
    cap: Cap = Cap(points=40, source=_U, certainty="U")

    @model_validator(mode="after")
    def _every_kind(self) -> "OperatingRules":
        missing = [k.value for k in OperatingKind if k not in self.kinds]
        if missing:
            raise ValueError(f"kinds needs every kind; missing {missing}")
        return self


class CommitmentRules(_Strict):
    """The daily 安全风险研判与承诺公告: none by ``due`` (local time, +08:00), or one declaring risks not under
    control, raises the enterprise's risk."""

    due: str = Field(default="09:00", pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$", description="HH:MM, +08:00")
    due_source: str = Field(default="the hour a day's commitment is due: " + _U, min_length=3)
    due_certainty: Certainty = "U"
    missing: FlatPoints = FlatPoints(points=5, source=(
        "DOMAIN.md [S]: the enterprise's daily 安全风险研判与承诺公告 is a MEM input; points: " + _U), certainty="U")
    not_controlled: FlatPoints = FlatPoints(points=20, source=(
        "the enterprise itself declares its risks not under control; points: " + _U), certainty="U")

    @property
    def due_minutes(self) -> int:
        hours, minutes = self.due.split(":")
        return int(hours) * 60 + int(minutes)


class ProposalRules(_Sourced):
    """When a grade proposes a warning (预警) through the warning desk, in which category and at which level."""

    enterprise: GradeName | None = Field(default="significant", description=(
        "an enterprise at this grade or above proposes a warning about the enterprise; null: never"))
    hazard_unit: GradeName | None = Field(default=None, description=(
        "a hazard unit at this grade or above proposes a warning about the unit; null (default): never — the "
        "enterprise's warning carries the unit's alarms, and two warnings for one event would each need 研判"))
    category: str = Field(default="事故灾难/危险化学品", description="a category of warnings.yaml")
    levels: dict[GradeName, WarningLevel] = Field(default={
        "major": WarningLevel.I, "significant": WarningLevel.II, "general": WarningLevel.III, "low": WarningLevel.IV},
        description="grade → warning level")

    @model_validator(mode="after")
    def _every_grade(self) -> "ProposalRules":
        needed = {g for g in (self.enterprise, self.hazard_unit) if g is not None}
        grades = ("low", "general", "significant", "major")
        lowest = min((grades.index(g) for g in needed), default=4)
        missing = [g for g in grades[lowest:] if g not in self.levels]
        if missing:
            raise ValueError(f"levels needs every grade that proposes; missing {missing}")
        return self


class RiskSettings(_Strict):
    """Everything ``risk.yaml`` holds; every key has a default, so the file is optional."""

    site_kinds: list[Literal["enterprise", "chemical_park", "lifeline", "forest"]] = Field(
        default=["enterprise"], min_length=1, description="sites of these kinds are graded")
    sites: list[str] = Field(default=[], description="grade only these sites (empty: every site of site_kinds)")
    grades: GradeBands = GradeBands()
    inherent: InherentRules = InherentRules()
    alarms: AlarmRules = AlarmRules()
    data_quality: DataQualityRules = DataQualityRules()
    operating: OperatingRules = OperatingRules()
    commitment: CommitmentRules = CommitmentRules()
    proposals: ProposalRules = ProposalRules(source=(
        "issue 13: a grade above a configured level proposes a warning; 较大 → Ⅱ (orange) follows DOMAIN.md [S] "
        "(risk grades use the warning colours); the threshold: " + _U), certainty="U")

    def graded(self, site_id: str, kind: str) -> bool:
        """Whether a site is graded."""
        return kind in self.site_kinds and (not self.sites or site_id in self.sites)


def load_risk_settings(folder: Path, fleet: "Fleet | None" = None) -> RiskSettings:
    """Load ``risk.yaml`` of ``folder`` (defaults when absent); raise ConfigError naming file, key and reason.

    With ``fleet``, the sites it names must exist.
    """
    from foundation.config import ConfigError, _read_yaml, _validate  # config may import this module

    path = Path(folder) / "risk.yaml"
    if not path.exists():
        return RiskSettings()
    raw: Any = _read_yaml(path)
    if not isinstance(raw, dict):
        raise ConfigError(str(path), "-", "must be a mapping")
    settings: RiskSettings = _validate(RiskSettings, raw, path)
    if fleet is not None:
        for i, site in enumerate(settings.sites):
            if site not in fleet.sites:
                raise ConfigError(str(path), f"sites[{i}]", f"unknown site {site!r}")
    return settings

"""Major hazard sources as MEM registers them: hazard units (生产/储存单元) inside an enterprise.

GB 18218-2018 [S] grades a **unit**, not the enterprise (DOMAIN.md [C]): a production or storage
unit is a major hazard source when S = Σ qᵢ/Qᵢ ≥ 1, and its grade follows from
R = α · Σ βᵢ·qᵢ/Qᵢ — 一级 R ≥ 100, 二级 50 ≤ R < 100, 三级 10 ≤ R < 50, 四级 R < 10. A unit here
stores those inputs (each substance's quantity q, critical quantity Q and correction factor β; the
exposure factor α) and, when they are all given, checks the R it is registered with. Each unit
names its three 包保责任人 (主要负责人 / 技术负责人 / 操作负责人, 应急厅〔2021〕12号 [C]), with phone
numbers, and the sensors that watch it; whether it runs a 重点监管危险化工工艺 is a list of the
processes it runs.

A site keeps ``hazard_grade`` for compatibility (rules map alarm priorities by it): it is the
grade of its highest unit, checked at load.

>>> persons = {"main": {"name": "张三 (演示)", "phone": "138-0000-0001"},
...            "technical": {"name": "李四 (演示)", "phone": "138-0000-0002"},
...            "operational": {"name": "王五 (演示)", "phone": "138-0000-0003"}}
>>> unit = HazardUnit(id="LC-X-U1", name="液氯储罐区", kind="storage", grade=2, alpha=2.0, responsible=persons,
...                   substances=[{"name": "氯", "cas": "7782-50-5", "quantity_t": 60, "critical_t": 5, "beta": 4}])
>>> unit.s, unit.r_computed, unit.r_value
(12.0, 96.0, 96.0)

This module imports only pydantic, so `foundation.config` may import it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Iterable, Literal, Mapping

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

if TYPE_CHECKING:  # annotations only: foundation.config imports this module
    from foundation.config import Sensor, Site

__all__ = ["KEY_PROCESSES", "KEY_PROCESSES_SOURCE", "RESPONSIBLE_ROLES", "HazardIndex", "HazardUnit",
           "ResponsibleContact", "ResponsiblePerson", "ResponsiblePersons", "Substance", "gb18218_grade",
           "site_unit_problems", "unit_sensor_problems"]

KEY_PROCESSES = ("光气及光气化工艺", "电解工艺(氯碱)", "氯化工艺", "硝化工艺", "合成氨工艺", "裂解(裂化)工艺", "氟化工艺",
                 "加氢工艺", "重氮化工艺", "氧化工艺", "过氧化工艺", "胺基化工艺", "磺化工艺", "聚合工艺", "烷基化工艺",
                 "新型煤化工工艺", "电石生产工艺", "偶氮化工艺")
"""The 18 重点监管危险化工工艺: 15 of the first list and 3 of the second."""
KEY_PROCESSES_SOURCE = ("安监总管三〔2009〕116号 (first 15) and 安监总管三〔2013〕3号 (last 3) [S]: names as commonly "
                        "cited; the notices' own text was not read here")

KeyProcess = Literal[KEY_PROCESSES]  # type: ignore[valid-type]

RESPONSIBLE_ROLES = {"main": "主要负责人", "technical": "技术负责人", "operational": "操作负责人"}
"""The three 包保责任人 of a major hazard source (应急厅〔2021〕12号 [C]), role key → Chinese title."""

R_TOLERANCE = 0.01
"""How far a registered R may lie from α·Σβq/Q (relative): registries round R."""


def gb18218_grade(r: float) -> int:
    """The GB 18218-2018 grade of a unit with R = ``r`` [S].

    >>> [gb18218_grade(r) for r in (150, 100, 99.9, 50, 10, 9.99)]
    [1, 1, 2, 2, 3, 4]
    """
    return 1 if r >= 100 else 2 if r >= 50 else 3 if r >= 10 else 4


def _cas_ok(cas: str) -> bool:
    """Whether a CAS number's check digit is right (the digits before it, weighted 1, 2, … from the right).

    >>> _cas_ok("7782-50-5"), _cas_ok("7782-50-4")
    (True, False)
    """
    digits = cas.replace("-", "")
    body, check = digits[:-1], int(digits[-1])
    return sum((i + 1) * int(d) for i, d in enumerate(reversed(body))) % 10 == check


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Substance(_Strict):
    """A hazardous chemical held in a unit: how much (q) against its critical quantity (Q), and β."""

    name: str = Field(min_length=1)
    cas: str | None = Field(default=None, pattern=r"^[0-9]{2,7}-[0-9]{2}-[0-9]$", description="CAS registry number")
    quantity_t: float = Field(gt=0, description="q: the largest quantity present in the unit, tonnes")
    critical_t: float = Field(gt=0, description="Q: its critical quantity, tonnes (GB 18218-2018 表1/表2)")
    beta: float | None = Field(default=None, gt=0, description="β: its correction factor (GB 18218-2018 表3/表4)")
    source: str = Field(default="demo data (illustrative)", min_length=3, description="where q, Q and β come from")

    @field_validator("cas")
    @classmethod
    def _check_digit(cls, value: str | None) -> str | None:
        if value is not None and not _cas_ok(value):
            raise ValueError(f"CAS number {value}: the check digit is wrong")
        return value


class ResponsiblePerson(_Strict):
    """One 包保责任人: a name and a phone number (and a job title, if known)."""

    name: str = Field(min_length=1)
    phone: str = Field(pattern=r"^\+?[0-9][0-9 -]{5,23}[0-9]$", description="e.g. 138-0000-0001")
    title: str | None = Field(default=None, description="job title, e.g. 总经理")


class ResponsiblePersons(_Strict):
    """The three 包保责任人 of a major hazard source (应急厅〔2021〕12号 [C])."""

    main: ResponsiblePerson = Field(description="主要负责人")
    technical: ResponsiblePerson = Field(description="技术负责人")
    operational: ResponsiblePerson = Field(description="操作负责人")


@dataclass(frozen=True, slots=True)
class ResponsibleContact:
    """Who to call about a hazard unit: role (``main``/``technical``/``operational``), name, phone, and the unit."""

    role: str
    name: str
    phone: str
    unit_id: str
    unit_name: str
    site_id: str
    title: str | None = None

    @property
    def role_zh(self) -> str:
        """主要负责人, 技术负责人 or 操作负责人."""
        return RESPONSIBLE_ROLES[self.role]

    def to_json(self) -> dict[str, Any]:
        return {"role": self.role, "role_zh": self.role_zh, "name": self.name, "phone": self.phone,
                "title": self.title, "unit_id": self.unit_id, "unit_name": self.unit_name, "site_id": self.site_id}


class HazardUnit(_Strict):
    """A production or storage unit (生产单元/储存单元) registered as a major hazard source.

    ``grade`` is its own GB 18218-2018 grade. ``r`` is the R it is registered with; with ``alpha``
    and every substance's ``beta`` given, R is also computed (``r_computed``) and the two must agree
    within 1 %. With substances, S = Σ q/Q must be at least 1 (else it is no major hazard source).
    """

    id: str = Field(pattern=r"^[A-Z0-9][A-Z0-9-]{1,63}$", description="unique across the fleet, e.g. LC-XFPVC-U1")
    name: str = Field(min_length=1)
    name_en: str | None = Field(default=None, pattern=r"^[\x20-\x7e]+$", description="the English name alarm texts use")
    kind: Literal["production", "storage"] = Field(description="生产单元 or 储存单元")
    grade: Literal[1, 2, 3, 4] = Field(description="GB 18218-2018 grade (一级 highest)")
    r: float | None = Field(default=None, ge=0, description="R = α·Σβq/Q as registered")
    alpha: float | None = Field(default=None, gt=0, le=2.0, description=(
        "α: exposure correction by people within 500 m (GB 18218-2018 表5 [S]: 0.5 … 2.0)"))
    substances: list[Substance] = []
    key_processes: list[KeyProcess] = Field(default=[], description=(  # type: ignore[valid-type]
        "重点监管危险化工工艺 the unit runs (names of KEY_PROCESSES)"))
    sensors: list[str] = Field(default=[], description="ids of the site's sensors that watch this unit")
    responsible: ResponsiblePersons = Field(description="the three 包保责任人")
    source: str = Field(default="demo registration (illustrative): replace with the bureau's 重大危险源 registry",
                        min_length=3)

    @model_validator(mode="after")
    def _consistent(self) -> "HazardUnit":
        if len(set(self.sensors)) != len(self.sensors):
            raise ValueError("sensors repeat")
        if len(set(self.key_processes)) != len(self.key_processes):
            raise ValueError("key_processes repeat")
        if self.substances and self.s < 1:
            raise ValueError(f"S = Σ q/Q = {self.s:.3g} < 1: not a major hazard source (GB 18218-2018)")
        computed = self.r_computed
        if computed is not None and self.r is not None and not math.isclose(computed, self.r, rel_tol=R_TOLERANCE):
            raise ValueError(f"r {self.r} differs from α·Σβq/Q = {computed:.4g}")
        r = self.r_value
        if r is not None and gb18218_grade(r) != self.grade:
            raise ValueError(f"R {r:.4g} gives GB 18218 grade {gb18218_grade(r)}, not {self.grade}")
        return self

    @property
    def s(self) -> float:
        """S = Σ q/Q (0 without substances)."""
        return round(sum(x.quantity_t / x.critical_t for x in self.substances), 6)

    @property
    def r_computed(self) -> float | None:
        """α·Σβq/Q when α and every β are given, else None."""
        if self.alpha is None or not self.substances or any(x.beta is None for x in self.substances):
            return None
        return round(self.alpha * sum(x.beta * x.quantity_t / x.critical_t for x in self.substances), 6)  # type: ignore[operator]

    @property
    def r_value(self) -> float | None:
        """The registered R, else the computed one, else None."""
        return self.r if self.r is not None else self.r_computed

    @property
    def kind_zh(self) -> str:
        return "生产单元" if self.kind == "production" else "储存单元"

    @property
    def max_beta(self) -> float | None:
        """The largest β among its substances (None when none is given)."""
        betas = [x.beta for x in self.substances if x.beta is not None]
        return max(betas) if betas else None

    def contacts(self, site_id: str) -> list[ResponsibleContact]:
        """Its three 包保责任人, 主要 first."""
        return [ResponsibleContact(role, person.name, person.phone, self.id, self.name, site_id, person.title)
                for role in RESPONSIBLE_ROLES for person in (getattr(self.responsible, role),)]

    def to_json(self, site_id: str, with_persons: bool = False) -> dict[str, Any]:
        """The API's view; phone numbers only ``with_persons``."""
        out = {"id": self.id, "site_id": site_id, "name": self.name, "name_en": self.name_en, "kind": self.kind,
               "kind_zh": self.kind_zh,
               "grade": self.grade, "r": self.r_value, "r_registered": self.r, "r_computed": self.r_computed,
               "s": self.s if self.substances else None, "alpha": self.alpha,
               "substances": [x.model_dump() for x in self.substances], "key_processes": list(self.key_processes),
               "runs_key_process": bool(self.key_processes), "sensors": list(self.sensors), "source": self.source}
        if with_persons:
            out["responsible"] = [c.to_json() for c in self.contacts(site_id)]
        return out


def site_unit_problems(kind: str, hazard_grade: int | None, hazard_r: float | None,
                       units: list[HazardUnit]) -> str | None:
    """What is wrong between a site's own grade and R and its units (None: nothing).

    The site's ``hazard_grade`` must be its highest unit's grade; its ``hazard_r``, when given with
    units that carry R, the largest of theirs.
    """
    if not units:
        return None
    if kind != "enterprise":
        return f"hazard units belong to an enterprise, not a {kind}"
    ids = [u.id for u in units]
    if len(set(ids)) != len(ids):
        return "hazard unit ids repeat"
    highest = min(u.grade for u in units)
    if hazard_grade != highest:
        return (f"hazard_grade must be the highest unit's grade ({highest}), got {hazard_grade}"
                if hazard_grade is not None else f"give hazard_grade: {highest}, the highest unit's grade")
    rs = [u.r_value for u in units if u.r_value is not None]
    if hazard_r is not None and rs and not math.isclose(hazard_r, max(rs), rel_tol=R_TOLERANCE):
        return f"hazard_r must be the largest unit R ({max(rs):.4g}), got {hazard_r}"
    return None


def unit_sensor_problems(sites: Mapping[str, "Site"], sensors: Mapping[str, "Sensor"]) -> list[tuple[str, str]]:
    """(key, reason) for every unit id used twice in the fleet and every unit sensor that does not exist,
    belongs to another site or to another unit; keys as sites.yaml writes them."""
    problems: list[tuple[str, str]] = []
    seen_units: dict[str, str] = {}
    seen_sensors: dict[str, str] = {}
    for i, site in enumerate(sites.values()):
        for j, unit in enumerate(site.hazard_units):
            where = f"sites[{i}].hazard_units[{j}]"
            if unit.id in seen_units:
                problems.append((f"{where}.id", f"unit id {unit.id!r} is also used at {seen_units[unit.id]}"))
            seen_units[unit.id] = site.id
            for k, sensor_id in enumerate(unit.sensors):
                sensor = sensors.get(sensor_id)
                if sensor is None:
                    problems.append((f"{where}.sensors[{k}]", f"unknown sensor {sensor_id!r}"))
                elif sensor.site_id != site.id:
                    problems.append((f"{where}.sensors[{k}]",
                                     f"sensor {sensor_id!r} belongs to site {sensor.site_id}, not {site.id}"))
                elif sensor_id in seen_sensors:
                    problems.append((f"{where}.sensors[{k}]",
                                     f"sensor {sensor_id!r} already watches unit {seen_sensors[sensor_id]}"))
                else:
                    seen_sensors[sensor_id] = unit.id
    return problems


Members = Callable[[str], Iterable[str]] | Mapping[str, Iterable[str]]
"""A confirmation zone's id → the sensors in it (rules' zones), to place a zone's alarm in its units."""


class HazardIndex:
    """Lookups over the fleet's hazard units: by id, by site, by sensor; their 包保责任人.

    Built once per fleet (`Fleet.hazards`).
    """

    def __init__(self, sites: Mapping[str, "Site"]) -> None:
        self.units: dict[str, HazardUnit] = {}
        self.site_of: dict[str, str] = {}
        self.by_site: dict[str, tuple[HazardUnit, ...]] = {}
        self.by_sensor: dict[str, str] = {}
        for site in sites.values():
            self.by_site[site.id] = tuple(site.hazard_units)
            for unit in site.hazard_units:
                self.units[unit.id] = unit
                self.site_of[unit.id] = site.id
                for sensor_id in unit.sensors:
                    self.by_sensor.setdefault(sensor_id, unit.id)

    def unit(self, unit_id: str) -> HazardUnit | None:
        return self.units.get(unit_id)

    def units_of(self, site_id: str) -> tuple[HazardUnit, ...]:
        return self.by_site.get(site_id, ())

    def unit_of_sensor(self, sensor_id: str) -> HazardUnit | None:
        unit_id = self.by_sensor.get(sensor_id)
        return self.units[unit_id] if unit_id is not None else None

    def units_of_subject(self, site_id: str, subject: str, members: Members | None = None) -> tuple[HazardUnit, ...]:
        """The units an alarm's ``subject`` lies in: a sensor's unit, a zone's units (through ``members``);
        none for a site-wide subject (``site:{id}``) or one outside every unit."""
        unit = self.unit_of_sensor(subject)
        if unit is not None:
            return (unit,)
        if members is None or subject.startswith("site:"):
            return ()
        sensors = members.get(subject, ()) if isinstance(members, Mapping) else members(subject)
        found = {u.id: u for s in sensors if (u := self.unit_of_sensor(s)) is not None
                 and self.site_of[u.id] == site_id}
        return tuple(found.values())

    def responsible(self, site_id: str, unit_id: str | None = None) -> list[ResponsibleContact]:
        """The 包保责任人 of one unit, or of every unit of the site (each person once, by role then unit)."""
        units = self.units_of(site_id) if unit_id is None else tuple(
            u for u in self.units_of(site_id) if u.id == unit_id)
        contacts = [c for u in units for c in u.contacts(site_id)]
        contacts.sort(key=lambda c: list(RESPONSIBLE_ROLES).index(c.role))
        seen: set[tuple[str, str, str]] = set()
        out = []
        for c in contacts:
            if (c.role, c.name, c.phone) not in seen:
                seen.add((c.role, c.name, c.phone))
                out.append(c)
        return out

    def responsible_for(self, site_id: str, subject: str, members: Members | None = None) -> list[ResponsibleContact]:
        """Who answers for an alarm about ``subject`` at ``site_id``: the 包保责任人 of the unit(s) it lies in,
        else (a site-wide alarm, a sensor outside every unit) those of every unit of the site; [] for a
        site without units."""
        units = self.units_of_subject(site_id, subject, members)
        if not units:
            return self.responsible(site_id)
        out: list[ResponsibleContact] = []
        for unit in units:
            out += [c for c in self.responsible(site_id, unit.id) if c not in out]
        out.sort(key=lambda c: list(RESPONSIBLE_ROLES).index(c.role))
        return out

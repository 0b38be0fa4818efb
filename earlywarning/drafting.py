"""From a proposal to a warning draft: the subject resolved, the area, the issuer and the guidance.

A `Proposal` is what a rule, the risk grading or a person hands to `WarningDesk.propose`. The
`Drafter` fills in what configuration and the fleet know: the subject's name, site and county;
the area possibly affected (a zone's outline, or the site's position with the category's radius);
the issuing desk; what to watch and the measures to take (``guidance`` of warnings.yaml, each with
its source), so a warning carries the art. 64 fields from the moment it is proposed.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

from earlywarning.model import (Area, EarlyWarning, Evidence, HistoryEntry, Origin, RiskGrade, Subject, SubjectKind,
                                WarningEvent, WarningState)
from earlywarning.states import InvalidWarning, WarningNotFound
from foundation.config import Fleet
from foundation.domain import CST
from foundation.warningspec import Circle, Measure, WarningLevel, WarningSettings

__all__ = ["Drafter", "Proposal", "SubjectRef"]


@dataclass(frozen=True, slots=True)
class SubjectRef:
    """What a proposal names: ``kind`` and ``id``; a hazard unit also names its ``site_id``."""

    kind: SubjectKind
    id: str
    site_id: str | None = None

    @property
    def key(self) -> str:
        return f"{self.kind.value}:{self.id}"


@dataclass(frozen=True, slots=True)
class Proposal:
    """A request to warn: about ``subject``, in ``category``, at ``level``, from ``by`` (a rule id, the risk
    grading, a person's name).

    ``hazard`` names the alarm kind or family behind it (``gas.toxic_release``, ``forest.fire_danger``)
    for the guidance; ``alarm_ids`` and ``risk_grade`` are the evidence; ``watch`` and ``measures``
    add to the guidance; ``area`` replaces the default one; ``onset`` is the expected start time.
    """

    subject: SubjectRef
    category: str
    level: WarningLevel
    by: str
    origin: Origin = Origin.RULE
    reason: str | None = None
    hazard: str | None = None
    alarm_ids: tuple[str, ...] = ()
    risk_grade: RiskGrade | None = None
    watch: tuple[Measure, ...] = ()
    measures: tuple[Measure, ...] = ()
    area: Area | None = None
    onset: float | None = None
    expires: float | None = None

    @property
    def evidence(self) -> Evidence:
        return Evidence(tuple(dict.fromkeys(self.alarm_ids)), self.risk_grade)



class Drafter:
    """Resolves subjects and fills in a warning's configured fields."""

    def __init__(self, settings: WarningSettings, fleet: Fleet) -> None:
        self.settings = settings
        self.fleet = fleet

    def subject(self, ref: SubjectRef) -> Subject:
        """The subject ``ref`` names; `WarningNotFound` when no such site or zone exists."""
        sites = self.fleet.sites
        if ref.kind is SubjectKind.ENTERPRISE:
            site = sites.get(ref.id)
            if site is None:
                raise WarningNotFound(f"no site {ref.id}")
            if site.kind == "forest":
                raise InvalidWarning(f"site {ref.id} is a forest: name it as a forest_zone")
            return Subject(ref.kind, ref.id, site.name, site.id, site.county)
        if ref.kind is SubjectKind.HAZARD_UNIT:
            if ref.site_id is None:
                raise InvalidWarning("a hazard unit needs the site_id of its enterprise")
            site = sites.get(ref.site_id)
            if site is None:
                raise WarningNotFound(f"no site {ref.site_id}")
            unit = next((u for u in site.hazard_units if u.id == ref.id), None)  # a registered unit has a name
            return Subject(ref.kind, ref.id, f"{site.name} {unit.name if unit else ref.id}", site.id, site.county)
        zone = self.settings.zone(ref.id)
        if zone is not None:
            county = zone.county or (sites[zone.site_id].county if zone.site_id in sites else None)
            return Subject(ref.kind, zone.id, zone.name, zone.site_id, county)
        site = sites.get(ref.id)
        if site is None or site.kind != "forest":
            raise WarningNotFound(f"no forest zone {ref.id}")
        return Subject(ref.kind, site.id, site.name, site.id, site.county)

    def area(self, subject: Subject, category: str) -> Area:
        """The default area possibly affected: the zone's shape, else the site's position with the category's radius."""
        spec = self.settings.categories[category]
        zone = self.settings.zone(subject.id) if subject.kind is SubjectKind.FOREST_ZONE else None
        where = f"{subject.county}" if subject.county else "聊城市"
        if zone is not None and zone.polygon is not None:
            return Area(f"{subject.name} ({where})", polygon=tuple(zone.polygon))
        if zone is not None and zone.circle is not None:
            return Area(f"{subject.name} ({where}) 周边 {zone.circle.radius_km:g} 公里", circle=zone.circle)
        site = self.fleet.sites[subject.site_id]  # type: ignore[index]  # every other subject has a site
        return Area(f"{subject.name} ({where}) 周边 {spec.radius_km:g} 公里",
                    circle=Circle(lon=site.lon, lat=site.lat, radius_km=spec.radius_km))

    def guidance(self, category: str, hazard: str | None, level: WarningLevel,
                 extra_watch: tuple[Measure, ...] = (), extra_measures: tuple[Measure, ...] = ()
                 ) -> tuple[tuple[Measure, ...], tuple[Measure, ...]]:
        """What to watch and the measures to take at ``level``: every matching guidance entry, then the extras."""
        watch: list[Measure] = []
        measures: list[Measure] = []
        for entry in self.settings.guidance:
            if entry.match.covers(category, hazard, level):
                watch += [m for m in entry.watch if m not in watch]
                measures += [m for m in entry.measures if m not in measures]
        watch += [m for m in extra_watch if m not in watch]
        measures += [m for m in extra_measures if m not in measures]
        return tuple(watch), tuple(measures)

    def reguide(self, warning: EarlyWarning, level: WarningLevel, extra_watch: tuple[Measure, ...] = (),
                extra_measures: tuple[Measure, ...] = ()) -> tuple[tuple[Measure, ...], tuple[Measure, ...]]:
        """The guidance for ``warning`` at a new ``level``: the configured entries for that level, then what
        people added (the items no guidance entry gives) and the extras."""
        given_watch = {m for entry in self.settings.guidance for m in entry.watch}
        given_measures = {m for entry in self.settings.guidance for m in entry.measures}
        own_watch = tuple(m for m in warning.watch if m not in given_watch) + extra_watch
        own_measures = tuple(m for m in warning.measures if m not in given_measures) + extra_measures
        return self.guidance(warning.category, warning.hazard, level, own_watch, own_measures)

    def levels(self, category: str) -> tuple[WarningLevel, ...]:
        """The levels ``category`` allows (none for a category no longer configured)."""
        spec = self.settings.category(category)
        return tuple(spec.levels) if spec else ()

    def check_level(self, category: str, level: WarningLevel) -> tuple[WarningLevel, ...]:
        """The levels ``category`` allows; `InvalidWarning` for an unknown category or a level it lacks."""
        spec = self.settings.category(category)
        if spec is None:
            raise InvalidWarning(f"unknown category {category!r}; known: {sorted(self.settings.categories)}")
        if level not in spec.levels:
            raise InvalidWarning(f"category {category} has no level {level.value} "
                                 f"(allowed: {', '.join(lv.value for lv in spec.levels)})")
        return tuple(spec.levels)

    def draft(self, proposal: Proposal, subject: Subject, at: float, sequence: int) -> EarlyWarning:
        """A new proposed warning; ``sequence`` counts the earlier warnings of the same (subject, category)."""
        self.check_level(proposal.category, proposal.level)
        spec = self.settings.categories[proposal.category]
        if proposal.expires is not None and proposal.expires <= (proposal.onset if proposal.onset is not None else at):
            raise InvalidWarning("expires must be after the start time")
        watch, measures = self.guidance(proposal.category, proposal.hazard, proposal.level, proposal.watch,
                                        proposal.measures)
        warning_id = warning_id_for(subject.key, proposal.category, at, sequence)
        entry = HistoryEntry(at, WarningEvent.PROPOSED, proposal.by, proposal.level, WarningState.PROPOSED,
                             (proposal.reason or "").strip() or None)
        return EarlyWarning(
            id=warning_id, category=proposal.category, event=spec.event, level=proposal.level,
            state=WarningState.PROPOSED, subject=subject, area=proposal.area or self.area(subject, proposal.category),
            watch=watch, measures=measures, issuer=self.settings.issuer_for(subject.county), origin=proposal.origin,
            proposed_at=at, proposed_by=proposal.by, updated_at=at, evidence=proposal.evidence,
            hazard=proposal.hazard, onset=proposal.onset, expires=proposal.expires, history=(entry,))


def warning_id_for(subject_key: str, category: str, at: float, sequence: int) -> str:
    """A warning id, the same on every replay: ``W`` + the proposal's local time + a digest.

    >>> warning_id_for("enterprise:LC-LUXI", "事故灾难/危险化学品", 1795564800.0, 0)[:16]
    'W20261125080000-'
    """
    digest = hashlib.sha1(f"{subject_key}|{category}|{at!r}|{sequence}".encode()).hexdigest()[:8]
    return f"W{datetime.fromtimestamp(at, CST):%Y%m%d%H%M%S}-{digest}"

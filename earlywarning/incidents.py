"""Forest fire incidents (火情): a detected fire is an incident to check and fight, not a danger warning.

An incident opens from a ``forest.fire_detected`` alarm (`IncidentDesk.open_from_alarm`, which the
lead calls with the alarm) and walks DOMAIN.md's steps [S]::

    reported ──核查 real fire──▶ checked ──报告──▶ reported_up ──扑救──▶ fighting ──扑灭──▶ extinguished
        └────核查 农事用火 / false alarm──▶ dismissed

Each step records who and when (and the 核查 verdict); closing as extinguished needs the burned
area and grades the fire by it (森林防火条例 art. 40 [C]: 一般 < 1 ha, 较大 1–100 ha, 重大 100–1000 ha,
特别重大 ≥ 1000 ha; an area on an edge takes the higher grade). A station has at most one open
incident: a second alarm there while one is open returns it. Incidents live in ``alerts.db``
(table ``incidents``); each step and its audit record (`alerting.audit.AuditLog`, action
``incident_<step>``) commit in one transaction.

>>> grade_for(0.5).value, grade_for(1.0).value, grade_for(250).value, grade_for(1000).value
('一般', '较大', '重大', '特别重大')
"""

from __future__ import annotations

import enum
import secrets
import threading
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Callable, Iterable

import orjson

from alerting.audit import AuditLog
from alerting.db import AlertDB

__all__ = ["FireGrade", "Incident", "IncidentDesk", "IncidentNotFound", "IncidentState", "StepNotAllowed",
           "Verdict", "grade_for"]


class IncidentState(enum.StrEnum):
    REPORTED = "reported"          # detected and reported (森林防火条例 art. 31: at once)
    CHECKED = "checked"            # 核查: a real fire
    REPORTED_UP = "reported_up"    # 报告: reported up the chain
    FIGHTING = "fighting"          # 扑救
    EXTINGUISHED = "extinguished"  # 扑灭: closed, graded
    DISMISSED = "dismissed"        # 核查: 农事用火 or a false alarm: closed

    @property
    def open(self) -> bool:
        return self not in (IncidentState.EXTINGUISHED, IncidentState.DISMISSED)


class Verdict(enum.StrEnum):
    """What 核查 found."""

    REAL_FIRE = "real_fire"
    AGRICULTURAL_BURNING = "agricultural_burning"  # 农事用火
    FALSE_ALARM = "false_alarm"


class FireGrade(enum.StrEnum):
    """森林防火条例 art. 40 grades by burned forest area."""

    GENERAL = "一般"
    LARGER = "较大"
    MAJOR = "重大"
    ESPECIALLY_MAJOR = "特别重大"


def grade_for(burned_ha: float) -> FireGrade:
    """The art. 40 grade of a fire that burned ``burned_ha`` hectares of forest."""
    if burned_ha < 1:
        return FireGrade.GENERAL
    if burned_ha < 100:
        return FireGrade.LARGER
    if burned_ha < 1000:
        return FireGrade.MAJOR
    return FireGrade.ESPECIALLY_MAJOR


class IncidentNotFound(LookupError):
    """No incident with that id."""


class StepNotAllowed(ValueError):
    """The incident's state does not allow the step (or its input is missing)."""


@dataclass(frozen=True, slots=True)
class Step:
    at: float
    by: str
    step: str
    note: str | None = None


@dataclass(frozen=True, slots=True)
class Incident:
    id: str
    station: str
    site_id: str
    alarm_id: str
    opened_at: float
    state: IncidentState = IncidentState.REPORTED
    verdict: Verdict | None = None
    burned_ha: float | None = None
    grade: FireGrade | None = None
    message: str = ""
    history: tuple[Step, ...] = field(default=())

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["history"] = [asdict(s) for s in self.history]
        data["open"] = self.state.open
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Incident":
        data = {k: v for k, v in data.items() if k != "open"}
        return cls(**{**data, "state": IncidentState(data["state"]),
                      "verdict": Verdict(data["verdict"]) if data["verdict"] else None,
                      "grade": FireGrade(data["grade"]) if data["grade"] else None,
                      "history": tuple(Step(**s) for s in data["history"])})


_SCHEMA = """
CREATE TABLE IF NOT EXISTS incidents (
    id TEXT PRIMARY KEY,
    station TEXT NOT NULL,
    site_id TEXT NOT NULL,
    state TEXT NOT NULL,
    open BIGINT NOT NULL,
    opened_at DOUBLE PRECISION NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL,
    record {blob} NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS incidents_one_open ON incidents (station) WHERE open = 1;
CREATE INDEX IF NOT EXISTS incidents_site ON incidents (site_id);
"""

_NEXT = {  # step → (from state, to state)
    "report": (IncidentState.CHECKED, IncidentState.REPORTED_UP),
    "fight": (IncidentState.REPORTED_UP, IncidentState.FIGHTING),
}


class IncidentDesk:
    """Opens incidents from fire alarms and walks them through their steps; one writer of ``incidents``.

    ``clock`` stamps people's steps; ``rule_id`` is the detection rule whose alarms open incidents.
    """

    def __init__(self, db: AlertDB | str, audit: AuditLog, clock: Callable[[], float],
                 rule_id: str = "forest.fire_detected") -> None:
        self.db = AlertDB.of(db)
        self.audit, self._clock, self.rule_id = audit, clock, rule_id
        self._lock = threading.RLock()
        with self.db.transaction() as conn:
            for statement in filter(str.strip, self.db.dialect.schema(_SCHEMA).split(";")):
                conn.execute(statement)

    # ------------------------------------------------------------ reads
    def get(self, incident_id: str) -> Incident:
        with self.db.lock:
            row = self.db.conn.execute("SELECT record FROM incidents WHERE id = ?", (incident_id,)).fetchone()
        if row is None:
            raise IncidentNotFound(f"no incident {incident_id}")
        return Incident.from_json(orjson.loads(row[0]))

    def query(self, states: Iterable[IncidentState] | None = None, sites: Iterable[str] | None = None,
              limit: int = 200) -> list[Incident]:
        """Incidents newest first, in ``states`` and at ``sites`` when given."""
        sql, args = "SELECT record FROM incidents WHERE 1 = 1", []
        if states is not None:
            states = [s.value for s in states]
            sql += f" AND state IN ({','.join('?' * len(states))})"
            args += states
        if sites is not None:
            sites = list(sites)
            sql += f" AND site_id IN ({','.join('?' * len(sites))})"
            args += sites
        sql += " ORDER BY opened_at DESC, id LIMIT ?"
        with self.db.lock:
            rows = self.db.conn.execute(sql, (*args, limit)).fetchall()
        return [Incident.from_json(orjson.loads(r[0])) for r in rows]

    # ------------------------------------------------------------ steps
    def open_from_alarm(self, alarm: Any) -> Incident | None:
        """Open an incident for a fire-detection alarm (``rule_id``, ``id``, ``subject`` = station, ``site_id``,
        ``raised_at``, ``message``); None for any other alarm; the open one when its station has one."""
        if getattr(alarm, "rule_id", None) != self.rule_id or getattr(alarm, "tier", None) is None:
            return None
        with self._lock, self.db.transaction() as conn:
            row = conn.execute("SELECT record FROM incidents WHERE station = ? AND open = 1", (alarm.subject,)).fetchone()
            if row is not None:
                return Incident.from_json(orjson.loads(row[0]))
            at = float(alarm.raised_at)
            incident = Incident(id=f"F{secrets.token_hex(6)}", station=alarm.subject, site_id=alarm.site_id,
                                alarm_id=alarm.id, opened_at=at, message=alarm.message,
                                history=(Step(at, "system", "reported", f"alarm {alarm.id}"),))
            self._save(incident, "reported")
            return incident

    def check(self, incident_id: str, by: str, verdict: Verdict | str, note: str | None = None,
              at: float | None = None) -> Incident:
        """核查: a real fire goes on to 报告; 农事用火 or a false alarm closes the incident as dismissed."""
        verdict = Verdict(verdict)
        to = IncidentState.CHECKED if verdict is Verdict.REAL_FIRE else IncidentState.DISMISSED
        return self._step(incident_id, by, "check", IncidentState.REPORTED, to, note, at, verdict=verdict)

    def report(self, incident_id: str, by: str, note: str | None = None, at: float | None = None) -> Incident:
        """报告: reported up the chain (county, city forest fire command)."""
        return self._step(incident_id, by, "report", *_NEXT["report"], note, at)

    def fight(self, incident_id: str, by: str, note: str | None = None, at: float | None = None) -> Incident:
        """扑救: crews engaged."""
        return self._step(incident_id, by, "fight", *_NEXT["fight"], note, at)

    def extinguish(self, incident_id: str, by: str, burned_ha: float, note: str | None = None,
                   at: float | None = None) -> Incident:
        """扑灭: closed; graded by the burned forest area (art. 40)."""
        if burned_ha is None or not burned_ha >= 0:
            raise StepNotAllowed("extinguishing needs the burned area in hectares (>= 0)")
        return self._step(incident_id, by, "extinguish", IncidentState.FIGHTING, IncidentState.EXTINGUISHED, note,
                          at, burned_ha=float(burned_ha), grade=grade_for(burned_ha))

    def _step(self, incident_id: str, by: str, step: str, want: IncidentState, to: IncidentState,
              note: str | None, at: float | None, **changes: Any) -> Incident:
        at = self._clock() if at is None else at
        with self._lock, self.db.transaction():
            incident = self.get(incident_id)
            if incident.state is not want:
                raise StepNotAllowed(f"incident {incident_id} is {incident.state.value}: {step} needs {want.value}")
            after = replace(incident, state=to, history=incident.history + (Step(at, by, step, note),), **changes)
            self._save(after, step)
            return after

    def _save(self, incident: Incident, step: str) -> None:
        """Inside a transaction: the record and its audit entry."""
        last = incident.history[-1]
        self.db.conn.execute(
            "INSERT INTO incidents (id, station, site_id, state, open, opened_at, updated_at, record) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET state = excluded.state, "
            "open = excluded.open, updated_at = excluded.updated_at, record = excluded.record",
            (incident.id, incident.station, incident.site_id, incident.state.value, int(incident.state.open),
             incident.opened_at, last.at, orjson.dumps(incident.to_json())))
        self.audit.append(last.at, last.by, f"incident_{step}", incident.alarm_id, incident.site_id,
                          incident_id=incident.id, station=incident.station, state=incident.state.value,
                          verdict=incident.verdict.value if incident.verdict else None,
                          burned_ha=incident.burned_ha, grade=incident.grade.value if incident.grade else None,
                          note=last.note)

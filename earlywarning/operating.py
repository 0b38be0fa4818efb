"""Operating state (运行状态) and the daily 安全风险研判与承诺: what enterprises declare, kept in ``alerts.db``.

An enterprise registers, through the API or its daily commitment upload, what it is doing that
raises its risk: 开车/停车 (start-up, shutdown), 检修 (maintenance) and the eight 特殊作业 of GB 30871
(动火, 受限空间, 盲板抽堵, 高处, 吊装, 临时用电, 动土, 断路). Each entry names the site, optionally the
hazard unit, the kind, from and until, who registered it and why. These entries **raise** the
risk grade (`earlywarning.risk`); nothing here touches an alarm — special work never silences one.

`OperatingStates` is the only writer of two tables on the shared `AlertDB`: ``operating_states``
and ``risk_commitments``. Every change is one transaction with its audit record (`AuditLog`,
actions ``operating_state_registered``, ``operating_state_withdrawn``, ``commitment_uploaded``);
a commitment and the entries it declares commit together. Times are injected (``at``).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from datetime import date as Date
from datetime import datetime, timedelta
from typing import Any, Iterable

import orjson

from alerting.audit import AuditLog
from alerting.db import AlertDB
from foundation.config import Fleet
from foundation.domain import CST, iso
from foundation.riskspec import OperatingKind, RiskSettings

__all__ = ["Commitment", "CommitmentDraft", "Devices", "EntryConflict", "EntryNotFound", "InvalidEntry",
           "OperatingEntry", "OperatingError", "OperatingStates", "OperationDraft", "day_bounds", "local_date"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS operating_states (
    id TEXT PRIMARY KEY,
    site_id TEXT NOT NULL,
    unit_id TEXT,
    kind TEXT NOT NULL,
    starts DOUBLE PRECISION NOT NULL,
    ends DOUBLE PRECISION NOT NULL,
    withdrawn_at DOUBLE PRECISION,
    registered_at DOUBLE PRECISION NOT NULL,
    record {blob} NOT NULL
);
CREATE INDEX IF NOT EXISTS operating_states_site ON operating_states (site_id);
CREATE INDEX IF NOT EXISTS operating_states_ends ON operating_states (ends);
CREATE TABLE IF NOT EXISTS risk_commitments (
    id TEXT PRIMARY KEY,
    site_id TEXT NOT NULL,
    date TEXT NOT NULL,
    uploaded_at DOUBLE PRECISION NOT NULL,
    superseded_by TEXT,
    record {blob} NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS risk_commitments_current ON risk_commitments (site_id, date)
    WHERE superseded_by IS NULL;
"""


class OperatingError(Exception):
    """Something about an operating-state entry or a commitment is not right."""


class EntryNotFound(OperatingError, LookupError):
    """No such entry, commitment, site or unit (HTTP 404)."""


class InvalidEntry(OperatingError, ValueError):
    """The request breaks a rule (HTTP 422): until before from, too long, a unit of another site …"""


class EntryConflict(OperatingError):
    """The request conflicts with what is stored (HTTP 409): withdrawn already, a commitment for the day exists."""


def local_date(ts: float) -> str:
    """The local (+08:00) date of ``ts``, ``YYYY-MM-DD``.

    >>> local_date(1795564800.0)
    '2026-11-25'
    """
    return datetime.fromtimestamp(ts, CST).date().isoformat()


def day_bounds(day: str) -> tuple[float, float]:
    """The local (+08:00) day ``YYYY-MM-DD`` as [start, end) epoch seconds.

    >>> day_bounds("2026-11-25")
    (1795536000.0, 1795622400.0)
    """
    start = datetime.combine(Date.fromisoformat(day), datetime.min.time(), CST)
    return start.timestamp(), (start + timedelta(days=1)).timestamp()


@dataclass(frozen=True, slots=True)
class OperatingEntry:
    """One registered 开停车, 检修 or 特殊作业: active from ``starts`` until ``ends`` (or its withdrawal)."""

    id: str
    site_id: str
    unit_id: str | None
    kind: OperatingKind
    starts: float
    ends: float
    by: str
    registered_at: float
    note: str | None = None
    permit: str | None = None          # the work permit (作业票) number, GB 30871
    origin: str = "api"                # api, or commitment:{id}
    withdrawn_at: float | None = None
    withdrawn_by: str | None = None
    withdraw_reason: str | None = None

    @property
    def until(self) -> float:
        """When it stops counting: its end, or its withdrawal if earlier."""
        return self.ends if self.withdrawn_at is None else min(self.ends, self.withdrawn_at)

    def active(self, now: float) -> bool:
        """Whether it raises risk at ``now``."""
        return self.starts <= now < self.until

    def to_json(self, now: float | None = None) -> dict[str, Any]:
        out = {"id": self.id, "site_id": self.site_id, "unit_id": self.unit_id, "kind": self.kind.value,
               "kind_zh": self.kind.zh, "special_work": self.kind.special_work, "from": iso(self.starts),
               "until": iso(self.ends), "by": self.by, "registered_at": iso(self.registered_at), "note": self.note,
               "permit": self.permit, "origin": self.origin, "withdrawn_at": iso(self.withdrawn_at),
               "withdrawn_by": self.withdrawn_by, "withdraw_reason": self.withdraw_reason}
        if now is not None:
            out["active"] = self.active(now)
        return out

    def to_record(self) -> dict[str, Any]:
        return {"id": self.id, "site_id": self.site_id, "unit_id": self.unit_id, "kind": self.kind.value,
                "starts": self.starts, "ends": self.ends, "by": self.by, "registered_at": self.registered_at,
                "note": self.note, "permit": self.permit, "origin": self.origin, "withdrawn_at": self.withdrawn_at,
                "withdrawn_by": self.withdrawn_by, "withdraw_reason": self.withdraw_reason}

    @classmethod
    def from_record(cls, data: dict[str, Any]) -> "OperatingEntry":
        return cls(**{**data, "kind": OperatingKind(data["kind"])})


@dataclass(frozen=True, slots=True)
class Devices:
    """How many production units (装置) run, stand still and are under maintenance, as declared."""

    running: int = 0
    stopped: int = 0
    maintenance: int = 0


@dataclass(frozen=True, slots=True)
class OperationDraft:
    """An operation declared in a commitment; without times it covers the commitment's whole day."""

    kind: OperatingKind
    unit_id: str | None = None
    starts: float | None = None
    ends: float | None = None
    note: str | None = None
    permit: str | None = None


@dataclass(frozen=True, slots=True)
class CommitmentDraft:
    """A daily 安全风险研判与承诺 as uploaded: who commits, for which day, what they declare."""

    site_id: str
    date: str                           # YYYY-MM-DD, local
    committed_by: str                   # 承诺人: normally the 主要负责人
    statement: str                      # the commitment text
    risks_controlled: bool = True       # "安全风险得到有效管控"
    devices: Devices = Devices()
    trial_production: bool = False      # 试生产
    operations: tuple[OperationDraft, ...] = ()
    role: str = "main"                  # the committer's 包保 role
    amends: str | None = None           # the commitment of the same day this one replaces
    note: str | None = None


@dataclass(frozen=True, slots=True)
class Commitment:
    """A stored commitment: the draft, who uploaded it when, and the entries it registered."""

    id: str
    site_id: str
    date: str
    committed_by: str
    role: str
    statement: str
    risks_controlled: bool
    devices: Devices
    trial_production: bool
    uploaded_at: float
    uploaded_by: str
    entries: tuple[str, ...] = ()
    special_work: dict[str, int] = field(default_factory=dict)   # declared operations by kind
    amends: str | None = None
    superseded_by: str | None = None
    note: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "site_id": self.site_id, "date": self.date, "committed_by": self.committed_by,
                "role": self.role, "statement": self.statement, "risks_controlled": self.risks_controlled,
                "devices": {"running": self.devices.running, "stopped": self.devices.stopped,
                            "maintenance": self.devices.maintenance},
                "trial_production": self.trial_production, "uploaded_at": iso(self.uploaded_at),
                "uploaded_by": self.uploaded_by, "entries": list(self.entries), "operations": dict(self.special_work),
                "amends": self.amends, "superseded_by": self.superseded_by, "note": self.note}

    def to_record(self) -> dict[str, Any]:
        out = self.to_json()
        out["uploaded_at"] = self.uploaded_at
        return out

    @classmethod
    def from_record(cls, data: dict[str, Any]) -> "Commitment":
        return cls(id=data["id"], site_id=data["site_id"], date=data["date"], committed_by=data["committed_by"],
                   role=data["role"], statement=data["statement"], risks_controlled=data["risks_controlled"],
                   devices=Devices(**data["devices"]), trial_production=data["trial_production"],
                   uploaded_at=data["uploaded_at"], uploaded_by=data["uploaded_by"], entries=tuple(data["entries"]),
                   special_work=dict(data["operations"]), amends=data["amends"],
                   superseded_by=data["superseded_by"], note=data["note"])


class OperatingStates:
    """The registry of operating-state entries and daily commitments; the only writer of their tables.

    Thread-safe: it writes through the `AlertDB`'s connection under its lock, one transaction per change.
    """

    def __init__(self, db: AlertDB, fleet: Fleet, settings: RiskSettings, audit: AuditLog | None = None) -> None:
        if audit is not None and audit.db is not db:
            raise ValueError("the audit log must share the registry's AlertDB: one transaction spans them")
        self.db = db
        self.fleet = fleet
        self.settings = settings
        self.audit = audit or AuditLog(db)
        self._conn = db.conn
        self._lock = db.lock
        with self._lock:
            self._conn.executescript(self.db.dialect.schema(_SCHEMA))

    # ------------------------------------------------------------------ entries

    def register(self, site_id: str, kind: OperatingKind | str, starts: float, ends: float, by: str, at: float,
                 unit_id: str | None = None, note: str | None = None, permit: str | None = None) -> OperatingEntry:
        """Register one entry (`EntryNotFound` for an unknown site or unit, `InvalidEntry` for a bad one)."""
        entry = self._entry(site_id, OperatingKind(kind), starts, ends, by, at, unit_id, note, permit, "api")
        with self.db.transaction():
            self._insert(entry)
        return entry

    def withdraw(self, entry_id: str, by: str, at: float, reason: str | None = None) -> OperatingEntry:
        """End an entry now (it stops raising risk); `EntryConflict` when it is withdrawn or over already."""
        with self.db.transaction():
            entry = self.get(entry_id)
            if entry.withdrawn_at is not None:
                raise EntryConflict(f"entry {entry_id} was withdrawn at {iso(entry.withdrawn_at)}")
            if entry.ends <= at:
                raise EntryConflict(f"entry {entry_id} ended at {iso(entry.ends)}")
            after = replace(entry, withdrawn_at=at, withdrawn_by=by, withdraw_reason=(reason or "").strip() or None)
            self._save(after)
            self.audit.append(at, by, "operating_state_withdrawn", None, after.site_id, entry_id=after.id,
                              kind=after.kind.value, unit_id=after.unit_id, reason=after.withdraw_reason)
        return after

    def get(self, entry_id: str) -> OperatingEntry:
        with self._lock:
            row = self._conn.execute("SELECT record FROM operating_states WHERE id = ?", (entry_id,)).fetchone()
        if row is None:
            raise EntryNotFound(f"no operating-state entry {entry_id}")
        return OperatingEntry.from_record(orjson.loads(row[0]))

    def query(self, sites: Iterable[str] | None = None, unit_id: str | None = None, active_at: float | None = None,
              include_withdrawn: bool = True, limit: int = 500) -> list[OperatingEntry]:
        """Entries, latest start first: of ``sites``, of one unit, active at a time, withdrawn ones or not."""
        sql, args = "SELECT record FROM operating_states WHERE 1=1", []
        if sites is not None:
            sites = list(sites)
            sql += f" AND site_id IN ({','.join('?' * len(sites))})"
            args += sites
        if unit_id is not None:
            sql += " AND unit_id = ?"
            args.append(unit_id)
        if active_at is not None:
            sql += " AND starts <= ? AND ends > ? AND (withdrawn_at IS NULL OR withdrawn_at > ?)"
            args += [active_at] * 3
        if not include_withdrawn:
            sql += " AND withdrawn_at IS NULL"
        sql += " ORDER BY starts DESC, id LIMIT ?"
        args.append(limit)
        with self._lock:
            rows = self._conn.execute(sql, args).fetchall()
        return [OperatingEntry.from_record(orjson.loads(r[0])) for r in rows]

    def active(self, now: float) -> list[OperatingEntry]:
        """Every entry raising risk at ``now``."""
        return self.query(active_at=now, limit=1_000_000)

    # ------------------------------------------------------------------ commitments

    def commit(self, draft: CommitmentDraft, by: str, at: float) -> Commitment:
        """Store a daily commitment and register the operations it declares, in one transaction.

        A second commitment for the same site and day is an `EntryConflict` unless it ``amends`` the
        current one; then the current one is superseded and the entries it registered are withdrawn.
        """
        site = self._site(draft.site_id)
        try:
            day_start, day_end = day_bounds(draft.date)
        except ValueError:
            raise InvalidEntry(f"date {draft.date!r}: expected YYYY-MM-DD") from None
        today = Date.fromisoformat(local_date(at))
        if abs((Date.fromisoformat(draft.date) - today).days) > 1:
            raise InvalidEntry(f"date {draft.date}: a commitment is for yesterday, today or tomorrow ({today})")
        if not draft.committed_by.strip() or not draft.statement.strip():
            raise InvalidEntry("committed_by and statement must not be blank")
        with self.db.transaction():
            current = self._current_commitment(site.id, draft.date)
            if draft.amends is None and current is not None:
                raise EntryConflict(f"{site.id} has a commitment for {draft.date} ({current.id}); send amends to "
                                    "replace it")
            if draft.amends is not None:
                amended = self.commitment(draft.amends)
                if (amended.site_id, amended.date) != (site.id, draft.date):
                    raise InvalidEntry(f"commitment {draft.amends} is for {amended.site_id} on {amended.date}")
                if amended.superseded_by is not None:
                    raise EntryConflict(f"commitment {draft.amends} was replaced by {amended.superseded_by}")
            number = self._conn.execute("SELECT count(*) FROM risk_commitments WHERE site_id = ? AND date = ?",
                                        (site.id, draft.date)).fetchone()[0] + 1
            commitment_id = f"C{draft.date.replace('-', '')}-{site.id}-{number}"
            entries = [self._entry(site.id, op.kind, op.starts if op.starts is not None else day_start,
                                   op.ends if op.ends is not None else day_end, draft.committed_by, at, op.unit_id,
                                   op.note, op.permit, f"commitment:{commitment_id}", sequence=i)
                       for i, op in enumerate(draft.operations)]
            if draft.amends is not None:
                self._supersede(self.commitment(draft.amends), commitment_id, by, at)
            counts: dict[str, int] = {}
            for entry in entries:
                counts[entry.kind.value] = counts.get(entry.kind.value, 0) + 1
                self._insert(entry)
            commitment = Commitment(
                id=commitment_id, site_id=site.id, date=draft.date, committed_by=draft.committed_by.strip(),
                role=draft.role, statement=draft.statement.strip(), risks_controlled=draft.risks_controlled,
                devices=draft.devices, trial_production=draft.trial_production, uploaded_at=at, uploaded_by=by,
                entries=tuple(e.id for e in entries), special_work=counts, amends=draft.amends, note=draft.note)
            self._conn.execute("INSERT INTO risk_commitments VALUES (?, ?, ?, ?, NULL, ?)",
                               (commitment.id, site.id, draft.date, at, orjson.dumps(commitment.to_record())))
            self.audit.append(at, by, "commitment_uploaded", None, site.id, commitment_id=commitment.id,
                              date=draft.date, committed_by=commitment.committed_by,
                              risks_controlled=draft.risks_controlled, operations=counts, amends=draft.amends)
        return commitment

    def commitment(self, commitment_id: str) -> Commitment:
        with self._lock:
            row = self._conn.execute("SELECT record, superseded_by FROM risk_commitments WHERE id = ?",
                                     (commitment_id,)).fetchone()
        if row is None:
            raise EntryNotFound(f"no commitment {commitment_id}")
        return replace(Commitment.from_record(orjson.loads(row[0])), superseded_by=row[1])

    def commitments(self, sites: Iterable[str] | None = None, date: str | None = None, current_only: bool = False,
                    limit: int = 500) -> list[Commitment]:
        """Commitments, newest upload first."""
        sql, args = "SELECT record, superseded_by FROM risk_commitments WHERE 1=1", []
        if sites is not None:
            sites = list(sites)
            sql += f" AND site_id IN ({','.join('?' * len(sites))})"
            args += sites
        if date is not None:
            sql += " AND date = ?"
            args.append(date)
        if current_only:
            sql += " AND superseded_by IS NULL"
        sql += " ORDER BY uploaded_at DESC, id DESC LIMIT ?"
        args.append(limit)
        with self._lock:
            rows = self._conn.execute(sql, args).fetchall()
        return [replace(Commitment.from_record(orjson.loads(r[0])), superseded_by=r[1]) for r in rows]

    def current(self, date: str) -> dict[str, Commitment]:
        """The commitment in force for ``date`` per site."""
        return {c.site_id: c for c in self.commitments(date=date, current_only=True, limit=1_000_000)}

    # ------------------------------------------------------------------ internals

    def _site(self, site_id: str):
        site = self.fleet.sites.get(site_id)
        if site is None:
            raise EntryNotFound(f"no site {site_id}")
        if not self.settings.graded(site.id, site.kind):
            raise InvalidEntry(f"site {site_id} ({site.kind}) is not risk-graded (risk.yaml site_kinds, sites)")
        return site

    def _entry(self, site_id: str, kind: OperatingKind, starts: float, ends: float, by: str, at: float,
               unit_id: str | None, note: str | None, permit: str | None, origin: str,
               sequence: int = 0) -> OperatingEntry:
        site = self._site(site_id)
        if unit_id is not None:
            unit = self.fleet.hazard_unit(unit_id)
            if unit is None:
                raise EntryNotFound(f"no hazard unit {unit_id}")
            if self.fleet.hazards.site_of[unit_id] != site.id:
                raise InvalidEntry(f"hazard unit {unit_id} belongs to {self.fleet.hazards.site_of[unit_id]}, "
                                   f"not {site.id}")
        if not ends > starts:
            raise InvalidEntry("until must be after from")
        longest = self.settings.operating.kinds[kind].max_duration_s
        if ends - starts > longest:
            raise InvalidEntry(f"{kind.zh} may be registered for at most {longest:g} s at a time (risk.yaml "
                               f"operating.kinds.{kind.value}.max_duration_s); register it again when it goes on")
        if not by.strip():
            raise InvalidEntry("who registers it (by) must not be blank")
        with self._lock:
            count = self._conn.execute("SELECT count(*) FROM operating_states").fetchone()[0]
        digest = hashlib.sha1(f"{site.id}|{unit_id}|{kind.value}|{starts!r}|{at!r}|{count}|{sequence}".encode())
        entry_id = f"OS{datetime.fromtimestamp(at, CST):%Y%m%d%H%M%S}-{digest.hexdigest()[:8]}"
        return OperatingEntry(entry_id, site.id, unit_id, kind, float(starts), float(ends), by.strip(), at,
                              (note or "").strip() or None, (permit or "").strip() or None, origin)

    def _insert(self, entry: OperatingEntry) -> None:
        self._save(entry)
        self.audit.append(entry.registered_at, entry.by, "operating_state_registered", None, entry.site_id,
                          entry_id=entry.id, kind=entry.kind.value, unit_id=entry.unit_id, starts=iso(entry.starts),
                          ends=iso(entry.ends), note=entry.note, permit=entry.permit, origin=entry.origin)

    def _save(self, entry: OperatingEntry) -> None:
        with self._lock:
            self._conn.execute("INSERT INTO operating_states VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE "
                               "SET site_id = excluded.site_id, unit_id = excluded.unit_id, kind = excluded.kind, "
                               "starts = excluded.starts, ends = excluded.ends, withdrawn_at = excluded.withdrawn_at, "
                               "registered_at = excluded.registered_at, record = excluded.record",
                               (entry.id, entry.site_id, entry.unit_id, entry.kind.value, entry.starts, entry.ends,
                                entry.withdrawn_at, entry.registered_at, orjson.dumps(entry.to_record())))

    def _current_commitment(self, site_id: str, date: str) -> Commitment | None:
        found = self.commitments([site_id], date, current_only=True, limit=1)
        return found[0] if found else None

    def _supersede(self, old: Commitment, new_id: str, by: str, at: float) -> None:
        self._conn.execute("UPDATE risk_commitments SET superseded_by = ? WHERE id = ?", (new_id, old.id))
        for entry_id in old.entries:
            entry = self.get(entry_id)
            if entry.withdrawn_at is None and entry.ends > at:
                after = replace(entry, withdrawn_at=at, withdrawn_by=by, withdraw_reason=f"commitment amended by {new_id}")
                self._save(after)
                self.audit.append(at, by, "operating_state_withdrawn", None, after.site_id, entry_id=after.id,
                                  kind=after.kind.value, unit_id=after.unit_id, reason=after.withdraw_reason)

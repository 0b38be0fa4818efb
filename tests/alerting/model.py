"""An executable reference model of the alarm state table of docs/alarms.md, written from the document.

It knows nothing of stores, ids, routing or notification channels, and shares no code with
`alerting.states`: per alarm — a (rule, subject) — it keeps the open episode (its state, current
and peak priority, the priority it was acknowledged at, shelf and suppression), the alarm's own
shelf, the latest signal applied, and which sensors are out of service. Every event returns the
`Record`s the document says must be stored — one per history entry (or audit row, for what has
no alert) — each saying whether it is announced and, when it is not, which named rule muted it.

Walk-through (a gas alarm, which latches at every priority)::

    >>> from foundation.domain import Tier
    >>> m = AlarmModel(ModelConfig())
    >>> gas = Alarm("gas.x", "GD-01", "SITE", "gas", "threshold")
    >>> [r.event for r in m.signal(gas, Tier.YELLOW, 10.0)]
    ['raised']
    >>> [r.event for r in m.signal(gas, Tier.ORANGE, 11.0)], [r.event for r in m.signal(gas, Tier.YELLOW, 12.0)]
    (['escalated'], ['deescalated'])
    >>> m.signal(gas, None, 13.0)[0].event, m.episodes[0].state.value, m.episodes[0].peak.colour
    ('returned', 'returned_unacknowledged', 'orange')
    >>> m.signal(gas, Tier.ORANGE, 9.0)          # older than the last applied signal: skipped
    []
    >>> [r.event for r in m.acknowledge(0, "op", "checked", now=20.0)]
    ['acknowledged', 'resolved']
    >>> [(r.event, r.episode) for r in m.signal(gas, Tier.YELLOW, 30.0)]   # after normal: a new episode
    [('raised', 1)]

A person's action the table forbids raises `Refused` with the HTTP codes it may answer (409 for
the state, 422 for bad parameters, 403 for a role): where several reasons apply at once the
document does not order them, so any of their codes is right.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Mapping

from foundation.domain import Tier

ROLES = ("viewer", "operator", "duty_officer", "admin")
"""Roles, lowest first (docs/alarms.md: ack is for operator or above, close for duty_officer or above)."""

ANNOUNCEABLE = frozenset({"raised", "reactivated", "escalated", "deescalated", "returned", "resolved",
                          "acknowledged", "closed", "unshelved"})
"""History events that reach receivers when announced (a shelf's own ``shelved`` entry never does)."""


class Refused(Exception):
    """An action the table answers with an error: ``codes`` are the HTTP statuses that may say so."""

    def __init__(self, why: str, *codes: int) -> None:
        super().__init__(why)
        self.codes = frozenset(codes)


class State(enum.StrEnum):
    """The ISA-18.2 state underneath a shelf or a suppression."""

    NORMAL = "normal"
    UNACKNOWLEDGED = "unacknowledged"
    ACKNOWLEDGED = "acknowledged"
    RETURNED_UNACKNOWLEDGED = "returned_unacknowledged"


NEEDS_PERSON = (State.UNACKNOWLEDGED, State.RETURNED_UNACKNOWLEDGED)


@dataclass(frozen=True, slots=True)
class Alarm:
    """One alarm point: a rule on a subject (a sensor here), of a family and rule kind."""

    rule_id: str
    subject: str
    site_id: str
    family: str
    kind: str


@dataclass(frozen=True, slots=True)
class Window:
    """A maintenance window over a site or one sensor, [start, end) in event time."""

    start: float
    end: float
    reason: str
    site_id: str | None = None
    sensor_id: str | None = None
    include_gas: bool = False

    def covers(self, alarm: Alarm, at: float) -> bool:
        """A site-wide window never covers gas detectors unless it says so; a sensor's window names it."""
        if not self.start <= at < self.end:
            return False
        if self.sensor_id is not None:
            return self.sensor_id == alarm.subject
        return self.site_id == alarm.site_id and (alarm.family != "gas" or self.include_gas)


@dataclass(frozen=True)
class ModelConfig:
    """The configuration the table refers to (alerting.yaml), with the document's defaults."""

    latch_tiers: frozenset[Tier] = frozenset({Tier.ORANGE, Tier.RED})
    latch_families: Mapping[str, frozenset[Tier]] = field(
        default_factory=lambda: {"gas": frozenset({Tier.BLUE, Tier.YELLOW, Tier.ORANGE, Tier.RED})})
    latch_exempt_kinds: frozenset[str] = frozenset({"stale", "comm_loss", "not_reporting"})
    ack_note_required: bool = False
    shelve_max_s: float = 8 * 3600.0
    protected_tiers: frozenset[Tier] = frozenset({Tier.RED})
    protected_role: str = "admin"
    windows: tuple[Window, ...] = ()

    def latches(self, alarm: Alarm, peak: Tier) -> bool:
        """Latching is decided on the peak: latch_tiers, or the family's list unless the kind is exempt."""
        if peak in self.latch_tiers:
            return True
        return peak in self.latch_families.get(alarm.family, ()) and alarm.kind not in self.latch_exempt_kinds


@dataclass(frozen=True, slots=True)
class Record:
    """What one event must store: a history entry of ``episode`` (its ``entry``-th) or, without an
    episode, an audit row only. ``muted`` names why it is not announced (``shelved``, ``suppressed``,
    ``out_of_service``); ``actor`` is ``system`` for automatic transitions."""

    event: str
    episode: int | None
    entry: int | None
    announced: bool
    muted: str | None
    actor: str


@dataclass
class Episode:
    """One episode of one alarm, as the table sees it."""

    number: int
    alarm: Alarm
    tier: Tier
    value: float
    at: float
    message: str
    suppressed: str | None
    shelved_until: float | None
    state: State = State.UNACKNOWLEDGED
    condition: bool = True
    peak: Tier = Tier.BLUE
    peak_value: float = 0.0
    peak_at: float = 0.0
    acked_tier: Tier | None = None       # A: the priority it had when acknowledged
    acknowledged: bool = False           # somebody has acknowledged this episode
    closed: bool = False
    latching: bool = False
    history: list[Record] = field(default_factory=list)

    @property
    def open(self) -> bool:
        return self.state is not State.NORMAL

    @property
    def mute(self) -> str | None:
        """Why its changes are not announced right now: a shelf first, then a designed suppression."""
        return "shelved" if self.shelved_until is not None else "suppressed" if self.suppressed else None


@dataclass
class Point:
    """What the model keeps per alarm besides its episodes."""

    horizon: float | None = None          # event time of the latest signal applied
    calls_for: Tier | None = None         # what that signal called for
    not_raised: bool = False              # it called for a priority and out of service kept it from being raised
    shelf_until: float | None = None      # the alarm's shelf, which outlives an episode
    open: Episode | None = None


class AlarmModel:
    """The state table of docs/alarms.md over any number of alarms."""

    def __init__(self, config: ModelConfig) -> None:
        self.config = config
        self.points: dict[Alarm, Point] = {}
        self.episodes: list[Episode] = []
        self.out_of_service: dict[str, float | None] = {}  # sensor → until (None: until returned)
        self.not_raised = 0

    def point(self, alarm: Alarm) -> Point:
        return self.points.setdefault(alarm, Point())

    # ------------------------------------------------------------------ signals

    def signal(self, alarm: Alarm, tier: Tier | None, ts: float, value: float = 0.0, message: str = "") -> list[Record]:
        """activate(tier) or clear (tier None) at event time ``ts``; older than the last applied: skipped."""
        point = self.point(alarm)
        if point.horizon is not None and ts < point.horizon:
            return []
        point.horizon, point.calls_for, point.not_raised = ts, tier, False
        episode = point.open
        if episode is None:
            return [] if tier is None else self._open_episode(alarm, point, tier, ts, value, message)
        return self._activate(episode, tier, ts, value) if tier is not None else self._clear(episode, point, ts)

    def _open_episode(self, alarm: Alarm, point: Point, tier: Tier, ts: float, value: float,
                      message: str) -> list[Record]:
        """Row normal, activate(p): out of service → nothing (audited); a running shelf → shelved; a
        maintenance window → suppressed; else a new unacknowledged episode, announced."""
        if alarm.subject in self.out_of_service:
            until = self.out_of_service[alarm.subject]
            if until is None or ts < until:
                point.not_raised = True
                self.not_raised += 1
                return [Record("not_raised", None, None, False, "out_of_service", "system")]
        shelf = point.shelf_until if point.shelf_until is not None and ts < point.shelf_until else None
        window = next((w for w in self.config.windows if w.covers(alarm, ts)), None)
        episode = Episode(len(self.episodes), alarm, tier, value, ts, message, window.reason if window else None, shelf,
                          peak=tier, peak_value=value, peak_at=ts)
        episode.latching = self._latching(episode)
        self.episodes.append(episode)
        point.open = episode
        return [self._record(episode, "raised", "system", episode.mute)]

    def _activate(self, episode: Episode, tier: Tier, ts: float, value: float) -> list[Record]:
        """activate(p) on an open episode (rows unacknowledged, acknowledged, returned-unacknowledged,
        and the same under a shelf or a suppression: there it is stored, not announced)."""
        episode.condition, episode.value = True, value
        if tier > episode.peak:
            episode.peak, episode.peak_value, episode.peak_at = tier, value, ts
            episode.latching = self._latching(episode)
        if episode.state is State.RETURNED_UNACKNOWLEDGED:
            episode.state, episode.tier = State.UNACKNOWLEDGED, tier
            return [self._record(episode, "reactivated", "system", episode.mute)]
        if tier == episode.tier:
            return []  # the same priority again only updates the value
        event = "escalated" if tier > episode.tier else "deescalated"
        if episode.state is State.ACKNOWLEDGED and episode.acked_tier is not None and tier > episode.acked_tier:
            episode.state = State.UNACKNOWLEDGED  # above what was taken: a person must take it again
        episode.tier = tier
        return [self._record(episode, event, "system", episode.mute)]

    def _clear(self, episode: Episode, point: Point, ts: float) -> list[Record]:
        """clear: unacknowledged and latching → returned-unacknowledged; acknowledged or not latching → normal."""
        episode.condition = False
        if episode.state is State.RETURNED_UNACKNOWLEDGED:
            return []
        if episode.state is State.UNACKNOWLEDGED and episode.latching:
            episode.state = State.RETURNED_UNACKNOWLEDGED
            return [self._record(episode, "returned", "system", episode.mute)]
        return [self._end(episode, point, "system")]

    def _end(self, episode: Episode, point: Point, actor: str) -> Record:
        """The episode is over: resolved, announced (even under a shelf, whose alarm shelf keeps running),
        not when suppressed."""
        episode.state, episode.shelved_until = State.NORMAL, None
        point.open = None
        return self._record(episode, "resolved", actor, "suppressed" if episode.suppressed else None)

    def _latching(self, episode: Episode) -> bool:
        """Suppressed episodes never latch; the others on their peak."""
        return episode.suppressed is None and self.config.latches(episode.alarm, episode.peak)

    @staticmethod
    def _record(episode: Episode, event: str, actor: str, muted: str | None, *, announce: bool = True) -> Record:
        """Append one history entry: announced unless ``muted`` names a rule, or ``announce`` is False
        (stored only, with no rule to name: the shelf's own entries)."""
        record = Record(event, episode.number, len(episode.history), announce and muted is None, muted, actor)
        episode.history.append(record)
        return record

    # ------------------------------------------------------------------ people's actions

    def _episode(self, number: int) -> Episode:
        return self.episodes[number]

    def acknowledge(self, number: int, by: str, note: str | None, now: float) -> list[Record]:
        """确认: unacknowledged → acknowledged; returned-unacknowledged → normal (acknowledged, resolved);
        a resolved episode never acknowledged → acknowledged. Announced to those told (not when suppressed)."""
        episode = self._episode(number)
        problems = []
        if self.config.ack_note_required and not (note and note.strip()):
            problems.append(422)
        if episode.closed or episode.state is State.ACKNOWLEDGED or (
                episode.state is State.NORMAL and episode.acknowledged):
            problems.append(409)
        if problems:
            raise Refused("acknowledge", *problems)
        mute = "suppressed" if episode.suppressed else None  # a shelf does not keep news of an acknowledgement back
        episode.acknowledged, episode.acked_tier = True, episode.tier
        records = [self._record(episode, "acknowledged", by, mute)]
        if episode.state is State.UNACKNOWLEDGED:
            episode.state = State.ACKNOWLEDGED
        elif episode.state is State.RETURNED_UNACKNOWLEDGED:
            records.append(self._end(episode, self.point(episode.alarm), "system"))
        return records

    def close(self, number: int, by: str, note: str, now: float) -> list[Record]:
        """消警: only a resolved episode, with a note; announced to those told."""
        episode = self._episode(number)
        problems = []
        if not note.strip():
            problems.append(422)
        if episode.closed or episode.open:
            problems.append(409)
        if problems:
            raise Refused("close", *problems)
        episode.closed = True
        return [self._record(episode, "closed", by, "suppressed" if episode.suppressed else None)]

    def shelve(self, number: int, by: str, role: str, until: float, reason: str, now: float) -> list[Record]:
        """Shelve an open episode that is neither shelved nor suppressed: reason and duration ≤ max
        required; a protected priority (on the episode's peak) only for the protected role. Stored."""
        episode = self._episode(number)
        problems = []
        if not reason.strip() or until - now > self.config.shelve_max_s:
            problems.append(422)
        if until <= now:
            problems += [409, 422]  # a shelf that ends before it starts: the document names no status
        if episode.peak in self.config.protected_tiers and ROLES.index(role) < ROLES.index(self.config.protected_role):
            problems.append(403)
        if not episode.open or episode.shelved_until is not None or episode.suppressed:
            problems.append(409)
        if problems:
            raise Refused("shelve", *problems)
        episode.shelved_until = until
        self.point(episode.alarm).shelf_until = until
        return [self._record(episode, "shelved", by, None, announce=False)]

    def unshelve(self, number: int, by: str, now: float) -> list[Record]:
        """End a shelf early: back to the state underneath, announced when that needs a person."""
        episode = self._episode(number)
        if episode.shelved_until is None:
            raise Refused("unshelve", 409)
        self.point(episode.alarm).shelf_until = None
        return [self._unshelve(episode, by)]

    def _unshelve(self, episode: Episode, actor: str) -> Record:
        episode.shelved_until = None
        return self._record(episode, "unshelved", actor, None,
                            announce=episode.state in NEEDS_PERSON and not episode.suppressed)

    def expire(self, now: float) -> list[Record]:
        """Shelves whose time is up end; an open episode under one comes back as `unshelve` says."""
        records = []
        for point in self.points.values():
            if point.shelf_until is not None and point.shelf_until <= now:
                point.shelf_until = None
                if point.open is not None and point.open.shelved_until is not None:
                    records.append(self._unshelve(point.open, "system"))
        return records

    def take_out(self, sensor: str, by: str, reason: str, until: float | None, now: float) -> list[Record]:
        """Out of service (with who, why and until, audited): nothing is raised for the sensor."""
        if not reason.strip() or (until is not None and until <= now):
            raise Refused("out of service", 422)
        self.out_of_service[sensor] = until
        return [Record("out_of_service", None, None, False, None, by)]

    def put_back(self, sensor: str, by: str, now: float) -> tuple[bool, list[Record]]:
        """Return a sensor to service (audited); False when it was not out."""
        if sensor not in self.out_of_service:
            return False, []
        del self.out_of_service[sensor]
        return True, [Record("returned_to_service", None, None, False, None, by)]

    # ------------------------------------------------------------------ reading the model

    def open_episodes(self) -> list[Episode]:
        return [p.open for p in self.points.values() if p.open is not None]

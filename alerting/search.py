"""The alarm history search: which stored episodes match a person's filters (history page, its exports).

`AlarmQuery.matches` says what a filter means, on one episode; `search` gives the same answer from
the store without reading every episode into Python (most filters run in SQLite). The list, the
CSV and the Excel file all come from `search`, so a filter means the same in each.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import orjson

from alerting.model import Alert
from alerting.store import AlertStore
from foundation.database import Dialect
from foundation.domain import Tier

__all__ = ["AlarmQuery", "Found", "UNSPECIFIED", "search"]

UNSPECIFIED = "unspecified"
"""The cause filter value for episodes closed without a 消警 cause (as ``closed_by_cause`` counts them)."""


@dataclass(frozen=True, slots=True)
class AlarmQuery:
    """A history search; every given filter must hold (a tuple: any of its values). None: no filter.

    ``priorities`` match the episode's *peak* priority (``low``…``urgent``), as the statistics
    count it; ``causes`` are `CloseCause` values or ``unspecified``; ``text`` is matched,
    case-insensitively, against the message, the subject and site names and ids, the rule and the notes.

    >>> AlarmQuery(priorities=("urgent",), text="GD-01").text
    'GD-01'
    """

    start: float | None = None
    end: float | None = None
    sites: tuple[str, ...] | None = None
    counties: tuple[str, ...] | None = None
    families: tuple[str, ...] | None = None
    priorities: tuple[str, ...] | None = None
    states: tuple[str, ...] | None = None
    causes: tuple[str, ...] | None = None
    text: str | None = None

    def matches(self, alert: Alert, name_of: Callable[[str], str], site_name: Callable[[str], str]) -> bool:
        """Whether ``alert`` passes every filter: the meaning `search` must reproduce from the store."""
        priority = (alert.peak_tier or alert.tier).priority
        cause = alert.close_cause or (UNSPECIFIED if alert.closed_at is not None else None)
        checks = ((self.families, alert.family), (self.priorities, priority), (self.causes, cause),
                  (self.states, alert.state), (self.counties, alert.county), (self.sites, alert.site_id))
        if any(allowed is not None and value not in allowed for allowed, value in checks):
            return False
        if self.start is not None and alert.raised_at < self.start or self.end is not None and alert.raised_at > self.end:
            return False
        if self.text:
            needle = self.text.casefold()
            haystack = [alert.message, alert.raise_message or "", alert.subject, name_of(alert.subject), alert.site_id,
                        site_name(alert.site_id), alert.rule_id, alert.note or "", alert.ack_note or "",
                        alert.shelve_reason or ""] + [h.note or "" for h in alert.history]
            return any(needle in field.casefold() for field in haystack)
        return True


@dataclass(frozen=True, slots=True)
class _Fields:
    """The stored record's JSON fields the filters read, spelled for one backend."""

    family: str
    peak: str
    cause: str
    closed: str
    false: str

    @classmethod
    def of(cls, dialect: Dialect) -> "_Fields":
        record = dialect.text_of("a.record")
        return cls(family=dialect.json_field(record, "family"),
                   peak=f"coalesce({dialect.json_number(record, 'peak_tier')}, a.tier)",  # records older than peaks
                   cause=dialect.json_field(record, "close_cause"),
                   closed=dialect.json_field(record, "closed_at"), false=dialect.false)


def _marks(values: Sequence[object]) -> str:
    return ",".join("?" * len(values))


def _where(query: AlarmQuery, sites: set[str] | None, dialect: Dialect) -> tuple[str, list[object]]:
    """The SQL condition of every filter but the text (which needs the fleet's names), with its arguments."""
    f = _Fields.of(dialect)
    where: list[str] = []
    args: list[object] = []

    def add(sql: str, *values: object) -> None:
        where.append(sql)
        args.extend(values)

    if query.start is not None:
        add("a.raised_at >= ?", query.start)
    if query.end is not None:
        add("a.raised_at <= ?", query.end)
    for column, values in (("a.site_id", None if sites is None else sorted(sites)), ("a.county", query.counties),
                           ("a.state", query.states), (f.family, query.families),
                           (f.peak, None if query.priorities is None else [int(Tier.parse(p)) for p in query.priorities])):
        if values is not None:
            add(f"{column} IN ({_marks(values)})" if values else f.false, *values)
    if query.causes is not None:
        named = [c for c in query.causes if c != UNSPECIFIED]
        either = [f"{f.cause} IN ({_marks(named)})"] if named else []
        if UNSPECIFIED in query.causes:
            either.append(f"({f.cause} IS NULL AND {f.closed} IS NOT NULL)")
        add("(" + " OR ".join(either) + ")" if either else f.false, *named)
    return " AND ".join(where) or "1=1", args


def _text_hit(record: dict, needle: str, name_of: Callable[[str], str], site_name: Callable[[str], str]) -> bool:
    """`AlarmQuery.matches`'s text rule on a stored record (a dict: no `Alert` built for the rows that miss)."""
    fields = [record.get("message"), record.get("raise_message"), record["subject"], name_of(record["subject"]),
              record["site_id"], site_name(record["site_id"]), record["rule_id"], record.get("note"),
              record.get("ack_note"), record.get("shelve_reason")] + [h.get("note") for h in record.get("history", ())]
    return any(needle in field.casefold() for field in fields if field)


@dataclass(frozen=True, slots=True)
class Found:
    """One page of a search: how many episodes match in all, and the page's episodes."""

    total: int
    alerts: list[Alert]


def search(store: AlertStore, query: AlarmQuery, scope: frozenset[str] | None, name_of: Callable[[str], str],
           site_name: Callable[[str], str], limit: int | None = None, offset: int = 0) -> Found:
    """The episodes of the ``scope`` sites (None: every site) matching ``query``, newest raised first:
    ``limit`` of them (None: all) from ``offset``, with the total.

    Every filter but the text runs in the database (the stored JSON read there); the text is then matched
    here on the remaining records, so only the page's episodes become `Alert` objects. The result is
    the same as filtering every stored episode with `AlarmQuery.matches` (tests/alerting/test_search.py).
    """
    sites: set[str] | None = None if query.sites is None else set(query.sites)
    if scope is not None:
        sites = set(scope) if sites is None else sites & scope
    where, args = _where(query, sites, store.db.dialect)
    if not query.text:
        total = store.count(where, args)
        return Found(total, store.select(where, args, limit, offset))
    needle = query.text.casefold()
    hits = [i for i, record in store.select_columns("a.id, a.record", where, args)
            if _text_hit(orjson.loads(record), needle, name_of, site_name)]
    page = hits[offset:] if limit is None else hits[offset:offset + limit]
    return Found(len(hits), store.by_ids(page))

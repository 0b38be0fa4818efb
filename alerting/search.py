"""The alarm history search: which stored episodes match a person's filters (history page, its exports).

The store narrows by the columns it indexes (raise time, site, state, county); the rest — peak
priority, family, 消警 cause, free text — is judged here on the episode itself, so every filter
means the same in the list, the CSV and the Excel file.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from alerting.model import Alert
from alerting.store import AlertStore

__all__ = ["AlarmQuery", "search"]

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
        """Whether ``alert`` passes the filters the store does not apply (the others are checked again too)."""
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


def search(store: AlertStore, query: AlarmQuery, scope: frozenset[str] | None, name_of: Callable[[str], str],
           site_name: Callable[[str], str]) -> list[Alert]:
    """Every episode of the ``scope`` sites (None: every site) matching ``query``, newest raised first."""
    sites: set[str] | None = None if query.sites is None else set(query.sites)
    if scope is not None:
        sites = set(scope) if sites is None else sites & scope
    candidates = store.raised_between(query.start, query.end, sites,
                                      states=list(query.states) if query.states is not None else None,
                                      counties=list(query.counties) if query.counties is not None else None)
    return [a for a in candidates if query.matches(a, name_of, site_name)]

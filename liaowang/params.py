"""Parameters the HTTP API parses itself (times, comma-separated choices): every failure is a 422 naming
the parameter, never a 500.

Times are RFC 3339 with a UTC offset, or epoch seconds, between `EARLIEST` and `LATEST`; pydantic
parses the bodies' datetimes, `body_time` checks their offset and range the same way.
"""

from __future__ import annotations

import math
import re
from datetime import datetime

from fastapi import HTTPException

from foundation.domain import parse_time

__all__ = ["EARLIEST", "LATEST", "body_time", "parse_time_param", "split_choices"]

EARLIEST, LATEST = 0.0, 32_503_680_000.0
"""The times the API takes: 1970-01-01 to 3000-01-01 UTC (every one of them can be written in +08:00)."""

_EPOCH = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


def parse_time_param(value: str | None, name: str) -> float | None:
    """A query's time, RFC 3339 with a UTC offset or epoch seconds, as epoch seconds; None when absent.

    Anything else is a 422 naming the parameter, never a 500: text, NaN, infinities, numbers too
    big for a float and times outside `EARLIEST`..`LATEST` alike.

    >>> parse_time_param("2026-11-25T08:00:00+08:00", "since"), parse_time_param("1795564800", "until")
    (1795564800.0, 1795564800.0)
    >>> parse_time_param("1e400", "since")
    Traceback (most recent call last):
    ...
    fastapi.exceptions.HTTPException: 422: since: 1e400 is not between 1970-01-01T00:00:00Z and 3000-01-01T00:00:00Z
    """
    if value is None:
        return None
    text = value.strip().replace(" ", "+")  # an unescaped '+' of the UTC offset arrives as a space
    shown = text if len(text) <= 40 else text[:40] + "…"
    if _EPOCH.fullmatch(text):
        return _in_range(float(text), name, shown)  # float() of a huge number is inf, which _in_range refuses
    try:
        ts = parse_time(text)
    except OverflowError:  # year 1 with a positive offset lies before year 1 in UTC
        ts = -math.inf
    except ValueError:
        raise HTTPException(422, f"{name}: expected RFC 3339 with a UTC offset (2026-11-25T08:00:00+08:00) "
                                 f"or epoch seconds, got {shown!r}") from None
    return _in_range(ts, name, shown)


def _in_range(ts: float, name: str, shown: str) -> float:
    if not (math.isfinite(ts) and EARLIEST <= ts < LATEST):
        raise HTTPException(422, f"{name}: {shown} is not between 1970-01-01T00:00:00Z and 3000-01-01T00:00:00Z")
    return ts


def body_time(moment: datetime, name: str) -> float:
    """A body's datetime as epoch seconds: 422 without a UTC offset or outside `EARLIEST`..`LATEST`."""
    if moment.tzinfo is None:
        raise HTTPException(422, f"{name}: needs a UTC offset")
    try:
        ts = moment.timestamp()
    except OverflowError:  # year 1 with a positive offset lies before year 1 in UTC
        ts = -math.inf
    return _in_range(ts, name, moment.isoformat())


def split_choices(value: str | None, allowed: tuple[str, ...], name: str) -> list[str] | None:
    """A comma-separated list of ``allowed`` values; None when empty, a 422 naming ``name`` for any other value.

    >>> split_choices("orange, red", ("blue", "yellow", "orange", "red"), "tier")
    ['orange', 'red']
    """
    if not value:
        return None
    items = [v.strip() for v in value.split(",") if v.strip()]
    bad = [v for v in items if v not in allowed]
    if bad:
        raise HTTPException(422, f"{name}: unknown value(s) {bad}; allowed: {list(allowed)}")
    return items

"""Waking ``liaowang api`` processes when the event log grows on PostgreSQL (LISTEN/NOTIFY).

`EventLog.append` sends ``NOTIFY liaowang_events`` in the appending transaction; PostgreSQL delivers
it at commit. `listener` returns the ``wait`` an `EventFeed` runs between pumps: it returns as soon as
a notification arrives (or after the timeout), so a change reaches the SSE clients in milliseconds
rather than at the next poll. A lost notification costs at most one poll interval: the feed reads the
log after every wait, notified or not.
"""

from __future__ import annotations

from typing import Callable

import structlog

from alerting.eventlog import EVENTS_CHANNEL

__all__ = ["listener"]

log = structlog.get_logger("api")


def listener(conninfo: str) -> Callable[[float], bool]:
    """A ``wait(timeout) -> notified`` on its own autocommit connection listening on ``liaowang_events``.

    A broken connection raises from ``wait`` (the feed reports it in /healthz and keeps polling) and is
    opened again at the next call.
    """
    import psycopg

    state: dict[str, psycopg.Connection | None] = {"conn": None}

    def connect() -> psycopg.Connection:
        conn = psycopg.connect(conninfo, autocommit=True)
        conn.execute(f"LISTEN {EVENTS_CHANNEL}")
        return conn

    def wait(timeout: float) -> bool:
        if state["conn"] is None or state["conn"].closed:
            state["conn"] = connect()
        try:
            for _ in state["conn"].notifies(timeout=timeout, stop_after=1):
                return True
            return False
        except psycopg.OperationalError:
            conn, state["conn"] = state["conn"], None
            conn.close()
            raise

    return wait

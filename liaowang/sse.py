"""Resuming a Server-Sent-Event stream from the event log (``Last-Event-ID``), with no gap and no duplicate.

A stream subscribes to the `EventHub` FIRST, then reads the `EventLog` after the client's last id
page by page until it is caught up, then forwards the hub's live frames, dropping any whose ``seq``
it already sent. Nothing is missed: an event committed after the subscription reaches the hub's
queue, one committed before it is in the log. Nothing is doubled: ``Resume.admit`` drops what the
backlog already sent. A client whose id is older than the log's window (or from another log, or
unreadable) gets an explicit ``reset`` event and continues from the head: it reloads its state.

>>> from alerting.db import AlertDB
>>> from alerting.eventlog import EventLog
>>> log = EventLog(AlertDB(":memory:"))
>>> _ = [log.append("site", "A", {"n": n}, at=0.0) for n in range(3)]
>>> resume = Resume(log, None, "1")
>>> resume.start({}).split(b"\\n")[1]
b'id: 1'
>>> [frame_seq(f) for f in resume.next_page()], resume.next_page()
([2, 3], [])
>>> resume.admit(b"id: 3\\nevent: site\\ndata: {}\\n\\n"), resume.admit(b"id: 4\\nevent: site\\ndata: {}\\n\\n")
(False, True)
"""

from __future__ import annotations

from typing import Any, Collection

import orjson
import structlog
from starlette.requests import Request

from alerting.eventlog import EventLog, EventsExpired
from liaowang.events import frame_seq

__all__ = ["PAGE", "Resume", "last_event_id"]

log = structlog.get_logger("api")

PAGE = 500
"""Backlog events read per database query (a long-disconnected client is caught up in pages)."""


def last_event_id(request: Request) -> str | None:
    """The id a reconnecting client last saw: the ``Last-Event-ID`` header (EventSource sends it by itself),
    else the ``last_event_id`` query parameter (for polyfills and fetch readers that cannot set it)."""
    return request.headers.get("last-event-id") or request.query_params.get("last_event_id") or None


class Resume:
    """Where one SSE connection starts, the backlog it still needs, and which live frames are new to it.

    ``sites``: the principal's scope (None: every event). ``last_id``: the client's ``Last-Event-ID``
    (None for a first connection: it starts at the log's head).
    """

    def __init__(self, log: EventLog, sites: Collection[str] | None, last_id: str | None) -> None:
        self.log = log
        self.sites = None if sites is None else frozenset(sites)
        self.last_id = last_id
        self.sent = 0
        """The highest ``seq`` this stream has sent (or skipped by a reset); live frames at or below it are dropped."""
        self._reset: str | None = None

    def start(self, hello: dict[str, Any]) -> bytes:
        """The opening frames: ``hello`` (with the position it starts from as its id), and a ``reset`` when the
        client's id cannot be resumed. Reads the database: call it off the event loop."""
        head = self.log.head()
        if self.last_id is None:
            self.sent = head
        else:
            try:
                after = int(self.last_id)
                if after < 0:
                    raise ValueError("negative")
                self.log.since(after, self.sites, limit=1)  # raises when the window no longer holds it
                self.sent = after
            except ValueError:
                self._reset = f"Last-Event-ID {self.last_id[:40]!r} is not an event id of this server"
            except EventsExpired as err:
                self._reset = str(err)
        out = b"retry: 2000\nid: %d\nevent: hello\ndata: %s\n\n" % (
            head if self._reset else self.sent, orjson.dumps(hello))
        if self._reset is not None:
            self.sent = head
            log.info("sse_resume_reset", last_event_id=self.last_id[:40] if self.last_id else None, head=head)
            out += self._reset_frame(head, self._reset)
        return out

    @staticmethod
    def _reset_frame(head: int, reason: str) -> bytes:
        return b"id: %d\nevent: reset\ndata: %s\n\n" % (head, orjson.dumps({"head": head, "reason": reason}))

    def next_page(self) -> list[bytes]:
        """The next backlog frames after what was sent (empty when caught up); reads the database.

        If the log is pruned past this stream while it catches up, a ``reset`` frame takes their place.
        """
        try:
            events = self.log.since(self.sent, self.sites, limit=PAGE)
        except EventsExpired as err:
            self.sent = err.head
            return [self._reset_frame(err.head, str(err))]
        if events:
            self.sent = events[-1].seq
        return [e.frame() for e in events]

    def admit(self, frame: bytes) -> bool:
        """Whether a live frame from the hub is new to this stream (frames without an id always are)."""
        seq = frame_seq(frame)
        if seq is None:
            return True
        if seq <= self.sent:
            return False
        self.sent = seq
        return True

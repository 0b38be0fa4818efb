"""An in-process hub that fans alert and site events out to Server-Sent-Event clients.

Each client may be scoped to sites: it then gets only the events whose ``site_id`` is one of
them (the pipeline publishes alert and site dicts, each with its ``site_id``); an event without
a site goes to unscoped clients only.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any, Callable, Collection

import orjson
import structlog

from alerting.eventlog import EventLog, EventsExpired, LoggedEvent

log = structlog.get_logger("api")


class EventHub:
    """Thread-safe broadcast from the pipeline's threads to each SSE client's asyncio queue.

    A client that falls ``max_backlog`` events behind is disconnected (its browser reconnects and
    reloads the state), so one stalled screen never grows memory without bound.
    """

    def __init__(self, max_backlog: int = 1000) -> None:
        self._lock = threading.Lock()
        self._clients: list[tuple[asyncio.AbstractEventLoop, asyncio.Queue[bytes | None], frozenset[str] | None]] = []
        self._max_backlog = max_backlog
        self._closed = False

    def subscribe(self, sites: Collection[str] | None = None) -> asyncio.Queue[bytes | None]:
        """Register the calling coroutine's client; returns its queue (None means: close).

        With ``sites`` the client gets only the events of those sites; without, every event.
        """
        q: asyncio.Queue[bytes | None] = asyncio.Queue(maxsize=self._max_backlog)
        with self._lock:
            if self._closed:  # shutting down: a browser reconnecting now is told to go at once
                q.put_nowait(None)
                return q
            self._clients.append((asyncio.get_running_loop(), q, None if sites is None else frozenset(sites)))
        return q

    def count(self) -> int:
        """How many SSE clients are subscribed (a gauge for the duty engineer)."""
        with self._lock:
            return len(self._clients)

    def unsubscribe(self, q: asyncio.Queue[bytes | None]) -> None:
        """Forget a client's queue."""
        with self._lock:
            self._clients = [client for client in self._clients if client[1] is not q]

    def publish(self, event: str, data: Any) -> None:
        """Send one SSE event (``event:`` name and JSON ``data:``) to every client whose sites cover its
        ``site_id``; callable from any thread. Events that must survive a reconnect go through the
        `EventLog` and `EventFeed` instead (they carry an ``id:``)."""
        frame = b"event: " + event.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"
        self.broadcast(frame, data.get("site_id") if isinstance(data, dict) else None)

    def publish_logged(self, event: LoggedEvent) -> None:
        """Send one logged event (with its ``id: seq``) to the clients of its site; any thread."""
        self.broadcast(event.frame(), event.site_id)

    def broadcast(self, frame: bytes, site: str | None) -> None:
        """Put a ready SSE frame on the queue of every client whose sites cover ``site`` (None: unscoped only)."""
        with self._lock:
            clients = list(self._clients)
        for loop, q, sites in clients:
            if sites is not None and site not in sites:
                continue
            try:
                loop.call_soon_threadsafe(self._offer, q, frame)
            except RuntimeError:  # the client's loop is closed
                self.unsubscribe(q)

    def broadcast_reset(self, head: int, reason: str) -> None:
        """Tell every client to reload its state and continue after ``head`` (events it would need are gone)."""
        frame = b"id: %d\nevent: reset\ndata: %s\n\n" % (head, orjson.dumps({"head": head, "reason": reason}))
        with self._lock:
            clients = list(self._clients)
        for loop, q, _ in clients:
            try:
                loop.call_soon_threadsafe(self._offer, q, frame)
            except RuntimeError:
                self.unsubscribe(q)

    def _offer(self, q: asyncio.Queue[bytes | None], frame: bytes) -> None:
        try:
            q.put_nowait(frame)
        except asyncio.QueueFull:
            log.warning("sse_client_dropped", reason="backlog_full")
            self.unsubscribe(q)
            while not q.empty():
                q.get_nowait()
            q.put_nowait(None)

    def close_all(self) -> None:
        """Ask every client stream to end, and every later one at once (at shutdown: an open SSE stream
        would otherwise keep the HTTP server waiting for its connection to finish)."""
        with self._lock:
            self._closed = True
            clients, self._clients = list(self._clients), []
        for loop, q, _ in clients:
            try:
                loop.call_soon_threadsafe(self._end, q)
            except RuntimeError:  # the client's loop is already closed: its stream is gone with it
                pass

    @staticmethod
    def _end(q: asyncio.Queue[bytes | None]) -> None:
        """Put the end marker on a client's queue, making room for it if the client is behind."""
        while q.full():
            q.get_nowait()
        q.put_nowait(None)


def frame_seq(frame: bytes) -> int | None:
    r"""The ``seq`` of a logged event's frame (it starts with ``id: <seq>``), None for other frames.

    >>> frame_seq(b"id: 42\nevent: alert\ndata: {}\n\n"), frame_seq(b": keep-alive\n\n")
    (42, None)
    """
    if not frame.startswith(b"id: "):
        return None
    return int(frame[4:frame.index(b"\n")])


class EventFeed:
    """Tails the `EventLog` and hands every new event, in ``seq`` order, to the `EventHub`.

    In ``liaowang run`` the pipeline calls `pump` right after each commit (no delay); a ``liaowang api``
    process runs `run` in a thread, woken by PostgreSQL's NOTIFY (``wait``) or polling every ``poll_s``.
    """

    def __init__(self, log: EventLog, hub: EventHub, poll_s: float = 0.25) -> None:
        self.log = log
        self.hub = hub
        self.poll_s = poll_s
        self.position = log.head()
        self._lock = threading.Lock()
        self.problem: str | None = None
        """Why the last read of the log failed (None: it worked); /healthz of the api role reports it."""

    def pump(self) -> int:
        """Publish every event after the last one published; returns how many. Thread-safe.

        If the log was pruned past our position (this process stalled for longer than the window), the
        clients cannot be given what they missed: each gets a ``reset`` event and reloads.
        """
        published = 0
        # the store's lock first, then ours: a desk that publishes while holding the store's lock (warnings)
        # and pumps must not wait on us while we wait on the store
        with self.log.db.lock, self._lock:
            while True:
                try:
                    events = self.log.since(self.position, None, 1000)
                except EventsExpired as err:
                    log.error("event_feed_fell_behind", position=self.position, head=err.head)
                    self.position = err.head
                    self.hub.broadcast_reset(err.head, "the live feed fell behind the event log's window")
                    continue
                for event in events:
                    self.hub.publish_logged(event)
                    self.position = event.seq
                published += len(events)
                if len(events) < 1000:
                    return published

    def run(self, stop: threading.Event, wait: Callable[[float], object] | None = None) -> None:
        """Pump until ``stop``: after each ``wait(poll_s)`` (a LISTEN/NOTIFY waiter) or every ``poll_s``."""
        while not stop.is_set():
            try:
                self.pump()
                self.problem = None
            except Exception as err:  # a database that does not answer: said in /healthz, tried again
                self.problem = f"{type(err).__name__}: {str(err)[:200]}"
                log.error("event_feed_failed", error=self.problem)
            if wait is None:
                stop.wait(self.poll_s)
            else:
                try:
                    wait(self.poll_s)
                except Exception as err:
                    self.problem = f"listen: {type(err).__name__}: {str(err)[:200]}"
                    log.error("event_feed_listen_failed", error=self.problem)
                    stop.wait(self.poll_s)

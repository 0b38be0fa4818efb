"""An in-process hub that fans alert and site events out to Server-Sent-Event clients.

Each client may be scoped to sites: it then gets only the events whose ``site_id`` is one of
them (the pipeline publishes alert and site dicts, each with its ``site_id``); an event without
a site goes to unscoped clients only.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any, Collection

import orjson
import structlog

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

    def unsubscribe(self, q: asyncio.Queue[bytes | None]) -> None:
        """Forget a client's queue."""
        with self._lock:
            self._clients = [client for client in self._clients if client[1] is not q]

    def publish(self, event: str, data: Any) -> None:
        """Send one SSE event (``event:`` name and JSON ``data:``) to every client whose sites cover its
        ``site_id``; callable from any thread."""
        self.publish_bytes(event, orjson.dumps(data), data.get("site_id") if isinstance(data, dict) else None)

    def publish_bytes(self, event: str, body: bytes, site: str | None) -> None:
        """`publish` with the JSON already serialised (an alert change's bytes, shared with MQTT)."""
        frame = b"event: " + event.encode() + b"\ndata: " + body + b"\n\n"
        with self._lock:
            clients = list(self._clients)
        for loop, q, sites in clients:
            if sites is not None and site not in sites:
                continue
            try:
                loop.call_soon_threadsafe(self._offer, q, frame)
            except RuntimeError:  # the client's loop is closed
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

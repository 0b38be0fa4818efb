"""uvicorn's server, taught to end the map pages' event streams when it is asked to stop.

An SSE response never finishes by itself, and uvicorn's graceful shutdown waits for every open
response: with a map page open, Ctrl-C of ``liaowang run`` hung until the browser went away. The
server here ends every stream of the `EventHub` the moment a stop is asked for (signal or
`HttpServer.stop`), and bounds whatever else is still running by ``timeout_graceful_shutdown``.
"""

from __future__ import annotations

from types import FrameType

import structlog
import uvicorn

from liaowang.events import EventHub

__all__ = ["HttpServer", "GRACEFUL_SHUTDOWN_S"]

log = structlog.get_logger("api")

GRACEFUL_SHUTDOWN_S = 2.0
"""How long requests still running at a stop may take before they are cancelled (the 3 s budget of a
Ctrl-C, less the pipeline's own stop)."""


class HttpServer(uvicorn.Server):
    """A `uvicorn.Server` that closes ``hub``'s streams on stop.

    >>> # server = HttpServer(uvicorn.Config(app, port=8000, timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S), hub)
    >>> # server.run()   # Ctrl-C (or server.stop() from another thread) ends it within about a second
    """

    def __init__(self, config: uvicorn.Config, hub: EventHub) -> None:
        super().__init__(config)
        self._hub = hub

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        """uvicorn's signal handler: stop as uvicorn does, and end the event streams now."""
        super().handle_exit(sig, frame)
        self._end_streams()

    def stop(self) -> None:
        """Ask the server to stop from any thread (tests, embedding)."""
        self.should_exit = True
        self._end_streams()

    def _end_streams(self) -> None:
        log.info("sse_streams_closing")
        self._hub.close_all()

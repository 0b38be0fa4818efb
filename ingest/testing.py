"""Test doubles for ingest that users need too.

`InfluxV2WriteDouble` is an HTTP-level double of InfluxDB 2's ``POST /api/v2/write`` (a test
double, not InfluxDB: no InfluxDB 2 server can be installed on our CI machines). It parses line
protocol, keeps points by (series, time) as InfluxDB does, records every request, and injects
the failures a sink must survive: 503, 429 with Retry-After, slow answers and refused connections.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse


@dataclass
class Request:
    """One write request as the double saw it."""

    at: float
    status: int
    lines: int


@dataclass
class _Plan:
    mode: str = "ok"            # ok | 503 | 429 | slow
    retry_after_s: float = 1.0
    slow_s: float = 3.0


@dataclass
class InfluxV2WriteDouble:
    """A local HTTP server answering ``/api/v2/write`` like InfluxDB 2 would (or failing on purpose)."""

    port: int
    token: str = "test-token"
    points: dict[tuple[str, int], str] = field(default_factory=dict)
    first_arrival: list[tuple[str, int]] = field(default_factory=list)
    requests: list[Request] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._plan = _Plan()
        self._lock = threading.RLock()
        self._server: ThreadingHTTPServer | None = None
        self.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def fail_with(self, mode: str, *, retry_after_s: float = 1.0, slow_s: float = 3.0) -> None:
        """Answer every write with ``mode`` (``503``, ``429``, ``slow``) until `recover`."""
        self._plan = _Plan(mode, retry_after_s, slow_s)

    def recover(self) -> None:
        """Answer writes normally again."""
        self._plan = _Plan()

    def refuse_connections(self) -> None:
        """Close the listening socket: clients get 'connection refused'."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def start(self) -> None:
        """(Re)open the listening socket on the same port."""
        double = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # quiet
                pass

            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                double._handle(self)

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        """Close the server for good."""
        self.refuse_connections()

    def _answer(self, handler: BaseHTTPRequestHandler, status: int, lines: int, headers: dict[str, str] | None = None,
                body: bytes = b"") -> None:
        with self._lock:
            self.requests.append(Request(time.monotonic(), status, lines))
        handler.send_response(status)
        for key, value in (headers or {}).items():
            handler.send_header(key, value)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        url = urlparse(handler.path)
        body = handler.rfile.read(int(handler.headers.get("Content-Length", 0)))
        if url.path != "/api/v2/write":
            return self._answer(handler, 404, 0, body=b'{"code":"not found"}')
        if handler.headers.get("Authorization") != f"Token {self.token}":
            return self._answer(handler, 401, 0, body=b'{"code":"unauthorized"}')
        query = parse_qs(url.query)
        if query.get("precision", ["ns"])[0] != "ns" or not query.get("bucket"):
            return self._answer(handler, 400, 0, body=b'{"code":"invalid"}')
        lines = [ln for ln in body.decode("utf-8").split("\n") if ln]
        plan = self._plan
        if plan.mode == "503":
            return self._answer(handler, 503, len(lines), body=b'{"code":"unavailable"}')
        if plan.mode == "429":
            return self._answer(handler, 429, len(lines), {"Retry-After": f"{plan.retry_after_s:g}"},
                                b'{"code":"too many requests"}')
        if plan.mode == "slow":
            time.sleep(plan.slow_s)
        with self._lock:
            for line in lines:
                try:
                    head, _, stamp = line.rpartition(" ")
                    series = head.split(" ", 1)[0]
                    key = (series, int(stamp))
                except ValueError:
                    return self._answer(handler, 400, len(lines), body=b'{"code":"invalid","message":"bad line"}')
                if key not in self.points:
                    self.first_arrival.append(key)
                self.points[key] = head
        self._answer(handler, 204, len(lines))

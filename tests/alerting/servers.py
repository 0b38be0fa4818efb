"""Real local servers for channel tests: an HTTP endpoint that records JSON posts and answers as told."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable


class Recorder:
    """A ThreadingHTTPServer on 127.0.0.1 recording (path, headers, JSON body); ``answer`` picks the reply.

    It stands in for the WeCom and DingTalk servers (a test double at a boundary no real part can
    reach here: their servers are on the internet) and is the real receiver of generic webhooks.
    """

    def __init__(self, answer: Callable[[int, dict], tuple[int, dict]] | None = None) -> None:
        self.posts: list[tuple[str, dict[str, str], Any]] = []
        self.answer = answer or (lambda n, body: (200, {"errcode": 0, "errmsg": "ok"}))
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length) or b"null")
                recorder.posts.append((self.path, dict(self.headers), body))
                status, reply = recorder.answer(len(recorder.posts), body)
                data = json.dumps(reply).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

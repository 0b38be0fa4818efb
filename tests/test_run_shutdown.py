"""Ctrl-C of `liaowang run` stops within 3 s while map pages hold their event streams open (issue 14 §6).

Before: uvicorn's graceful shutdown waited for every open response, and an SSE stream never ends by
itself, so `liaowang run` hung for as long as a map page stayed open.
"""

from __future__ import annotations

import http.client
import signal
import time

from liaowang.broker import port_free



def open_event_stream(port: int) -> http.client.HTTPResponse:
    """An SSE connection as a browser holds it, read up to its hello event."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.request("GET", "/api/v1/events", headers={"Accept": "text/event-stream"})
    response = connection.getresponse()
    assert response.status == 200
    assert b"event: hello" in response.read1(4096)
    return response


def test_ctrl_c_stops_within_3_s_with_event_streams_open(liaowang_process):
    process, http_port, mqtt_port = liaowang_process.process, liaowang_process.http_port, liaowang_process.mqtt_port
    streams = [open_event_stream(http_port) for _ in range(3)]  # three map pages open
    asked = time.monotonic()
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=15) == 0
    took = time.monotonic() - asked
    print(f"stopped {took:.2f} s after SIGINT")
    assert took < 3.0, f"liaowang run took {took:.2f} s to stop with event streams open"
    for stream in streams:  # each stream was ended by the server, not cut by the process dying
        assert stream.read() is not None
    output = process.stdout.read()
    assert "liaowang_stopped" in output
    assert port_free("127.0.0.1", mqtt_port), "the broker was left running"

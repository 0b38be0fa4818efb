"""SSE resume from the event log (liaowang/sse.py, liaowang/events.py EventFeed): whatever the interleaving of
commits, feed pumps, connects, backlog pages, live deliveries and drops, a client that always reconnects with
the last id it saw gets every event of its sites exactly once, in order."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import liaowang.sse
from alerting.db import AlertDB
from alerting.eventlog import EventLog, LoggedEvent
from liaowang.events import EventFeed, frame_seq
from liaowang.sse import Resume


class Wire:
    """A stand-in for the EventHub with one subscriber at most: the frames the feed broadcast to it."""

    def __init__(self) -> None:
        self.queue: list[bytes] | None = None
        self.sites: frozenset[str] | None = None

    def publish_logged(self, event: LoggedEvent) -> None:
        if self.queue is not None and (self.sites is None or event.site_id in self.sites):
            self.queue.append(event.frame())

    def broadcast_reset(self, head: int, reason: str) -> None:
        raise AssertionError("nothing is pruned in this test")


class Client:
    """What a map page does: remembers the last id it was sent and the events it got."""

    def __init__(self) -> None:
        self.last_id: str | None = None
        self.got: list[int] = []

    def receive(self, frames: bytes) -> None:
        for frame in frames.split(b"\n\n"):
            for line in frame.split(b"\n"):
                if line.startswith(b"id: "):
                    self.last_id = line[4:].decode()
            if b"event: reset" in frame:
                raise AssertionError("no reset expected: the log keeps everything here")
            if frame_seq(frame + b"\n") is not None and b"event: hello" not in frame:
                self.got.append(frame_seq(frame + b"\n"))


OPS = st.lists(st.sampled_from(["append_a", "append_b", "append_none", "pump", "connect", "page", "deliver",
                                "drop"]), max_size=60)


@settings(max_examples=300, deadline=None)
@given(ops=OPS, scoped=st.booleans())
def test_any_interleaving_delivers_each_event_once_in_order(ops, scoped, monkeypatch_module):
    log = EventLog(AlertDB(":memory:"))
    wire = Wire()
    feed = EventFeed(log, wire)
    sites = frozenset({"A"}) if scoped else None
    client = Client()
    resume: Resume | None = None
    caught_up = False
    appended: list[tuple[int, str | None]] = []

    origin: list[int] = []  # the head at the first connection: every event after it is owed to the page

    def connect() -> None:
        nonlocal resume, caught_up
        if not origin:
            origin.append(log.head())
        wire.queue, wire.sites = [], sites      # subscribe first, as the route does
        resume = Resume(log, sites, client.last_id)
        client.receive(resume.start({}))
        caught_up = False

    def page() -> None:
        nonlocal caught_up
        frames = resume.next_page()
        caught_up = not frames
        client.receive(b"".join(frames))

    for op in ops:
        if op.startswith("append"):
            site = {"append_a": "A", "append_b": "B", "append_none": None}[op]
            appended.append((log.append("alert", site, {"site_id": site}, at=0.0), site))
        elif op == "pump":
            feed.pump()
        elif op == "connect" and resume is None:
            connect()
        elif op == "page" and resume is not None and not caught_up:
            page()
        elif op == "deliver" and resume is not None and caught_up and wire.queue:
            frame = wire.queue.pop(0)
            if resume.admit(frame):
                client.receive(frame)
        elif op == "drop" and resume is not None:
            resume, wire.queue = None, None
    # the page stays open at the end: it reconnects if needed and everything is pumped and read
    if resume is None:
        connect()
    while not caught_up:
        page()
    feed.pump()
    while wire.queue:
        frame = wire.queue.pop(0)
        if resume.admit(frame):
            client.receive(frame)
    wanted = [seq for seq, site in appended if seq > origin[0] and (sites is None or site in sites)]
    assert client.got == wanted, "a gap, a duplicate or a reordering"

@pytest.fixture(scope="module")
def monkeypatch_module():
    """Small backlog pages, so the interleavings reach pages in the middle of a catch-up."""
    saved = liaowang.sse.PAGE
    liaowang.sse.PAGE = 2
    yield
    liaowang.sse.PAGE = saved

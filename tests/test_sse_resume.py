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
    """What a map page does: remembers the last id it was sent; records each connection's start and events."""

    def __init__(self) -> None:
        self.last_id: str | None = None
        self.connections: list[tuple[int, list[int]]] = []  # (the position it starts after, the seqs it got)

    def receive(self, frames: bytes) -> None:
        for frame in frames.split(b"\n\n"):
            fields = dict(line.split(b": ", 1) for line in frame.split(b"\n") if b": " in line)
            if b"id" not in fields:
                continue
            self.last_id = fields[b"id"].decode()
            if fields.get(b"event") in (b"hello", b"reset"):  # where this connection (re)starts
                self.connections[-1] = (int(self.last_id), [])
            else:
                self.connections[-1][1].append(int(self.last_id))


OPS = st.lists(st.one_of(st.sampled_from(["append_a", "append_b", "append_none", "pump", "connect", "page",
                                          "deliver", "drop"]),
                         st.tuples(st.just("connect_at"), st.integers(-1, 70))), max_size=60)


@settings(max_examples=300, deadline=None)
@given(ops=OPS, scoped=st.booleans())
def test_any_interleaving_delivers_each_event_once_in_order(ops, scoped, monkeypatch_module):
    """Appends, feed pumps, backlog pages, live deliveries, drops and reconnects — with the last id seen or an
    arbitrary one (older, newer than the head, negative) — in any order: every connection gets exactly the
    events of its sites after the position it starts from (its id, or the head after a reset), in order, and
    the last one, drained, everything up to the head."""
    log = EventLog(AlertDB(":memory:"))
    wire = Wire()
    feed = EventFeed(log, wire)
    sites = frozenset({"A"}) if scoped else None
    client = Client()
    resume: Resume | None = None
    caught_up = False
    appended: list[tuple[int, str | None]] = []

    def connect(last_id: str | None) -> None:
        nonlocal resume, caught_up
        wire.queue, wire.sites = [], sites      # subscribe first, as the route does
        resume = Resume(log, sites, last_id)
        client.connections.append((-1, []))
        client.receive(resume.start({}))
        caught_up = False

    def page() -> None:
        nonlocal caught_up
        frames = resume.next_page()
        caught_up = not frames
        client.receive(b"".join(frames))

    for op in ops:
        if isinstance(op, tuple):
            if resume is None:
                connect(str(op[1]))
        elif op.startswith("append"):
            site = {"append_a": "A", "append_b": "B", "append_none": None}[op]
            appended.append((log.append("alert", site, {"site_id": site}, at=0.0), site))
        elif op == "pump":
            feed.pump()
        elif op == "connect" and resume is None:
            connect(client.last_id)
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
        connect(client.last_id)
    while not caught_up:
        page()
    feed.pump()
    while wire.queue:
        frame = wire.queue.pop(0)
        if resume.admit(frame):
            client.receive(frame)
    mine = [seq for seq, site in appended if sites is None or site in sites]
    for after, got in client.connections:
        assert after >= 0, "every connection says where it starts"
        expected = [s for s in mine if s > after][:len(got)]
        assert got == expected, "a gap, a duplicate or a reordering"
    after, got = client.connections[-1]
    assert got == [s for s in mine if s > after], "the open page is caught up"


@pytest.fixture(scope="module")
def monkeypatch_module():
    """Small backlog pages, so the interleavings reach pages in the middle of a catch-up."""
    saved = liaowang.sse.PAGE
    liaowang.sse.PAGE = 2
    yield
    liaowang.sse.PAGE = saved


# ------------------------------------------------------------------ over the API (examples)

import orjson  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402

from liaowang.api import create_app  # noqa: E402
from liaowang.pipeline import Pipeline  # noqa: E402


@pytest.fixture
def served(tmp_path, demo_config):
    pipeline = Pipeline(demo_config, tmp_path / "data")
    yield TestClient(create_app(pipeline)), pipeline
    pipeline.stop()


def opening(client: TestClient, path: str, headers: dict, frames: int) -> list[dict[str, str]]:
    """The first ``frames`` SSE frames of a stream, each as its fields."""
    out, current = [], {}
    with client.stream("GET", path, headers={"Authorization": "Bearer demo-duty", **headers}) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            if line == "":
                out.append(current)
                current = {}
                if len(out) == frames:
                    break
            elif not line.startswith(":"):
                key, _, value = line.partition(": ")
                current[key] = value
    return out


def test_a_reconnect_gets_what_it_missed_then_an_id_beyond_the_window_gets_reset(served):
    client, pipeline = served
    for n in range(6):
        pipeline.event_log.append("site", "LC-LUXI", {"site_id": "LC-LUXI", "n": n}, at=pipeline.clock())
    frames = opening(client, "/api/v1/events", {"Last-Event-ID": "3"}, 4)
    assert [(f["event"], f["id"]) for f in frames] == [("hello", "3"), ("site", "4"), ("site", "5"), ("site", "6")]
    frames = opening(client, "/api/v1/events?last_event_id=5", {}, 2)  # for readers that cannot set the header
    assert [(f["event"], f["id"]) for f in frames] == [("hello", "5"), ("site", "6")]
    pipeline.event_log.keep_rows = 2
    pipeline.event_log.prune(pipeline.clock())
    frames = opening(client, "/api/v1/events", {"Last-Event-ID": "3"}, 2)  # 4 was pruned: no silent gap
    assert [(f["event"], f["id"]) for f in frames] == [("hello", "6"), ("reset", "6")]
    assert orjson.loads(frames[1]["data"])["head"] == 6
    for garbage in ("abc", "-1", "999"):  # not an id of this log (another server's, a wiped data dir)
        assert [f["event"] for f in opening(client, "/api/v1/events", {"Last-Event-ID": garbage}, 2)] == ["hello", "reset"]


def test_the_site_stream_resumes_with_that_sites_events_only(served):
    client, pipeline = served
    for site in ("LC-LUXI", "LC-XFHG", "LC-LUXI"):
        pipeline.event_log.append("site", site, {"site_id": site}, at=pipeline.clock())
    frames = opening(client, "/api/v1/sites/LC-LUXI/live", {"Last-Event-ID": "0"}, 3)
    assert [(f["event"], f.get("id")) for f in frames] == [("hello", "0"), ("site", "1"), ("site", "3")]

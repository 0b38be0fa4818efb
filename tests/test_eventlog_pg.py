"""The event log on a real PostgreSQL (alerting/eventlog.py's postgresql dialect, liaowang/pgnotify.py):
the same behaviour as on SQLite, appends from concurrent transactions become visible in seq order (a
tailing reader never skips one), and an append's NOTIFY wakes a listener."""

from __future__ import annotations

import random
import threading
import time
from contextlib import contextmanager
from typing import Iterator

import pytest

from alerting.eventlog import EventLog, EventsExpired
from liaowang.pgnotify import listener
from tests.pgserver import postgres  # noqa: F401  (a fixture)

psycopg = pytest.importorskip("psycopg")


class PgDB:
    """The slice of `AlertDB` the event log uses, on one psycopg connection (h-pg's backend is the real one)."""

    dialect = "postgresql"

    def __init__(self, conninfo: str) -> None:
        self.conn = psycopg.connect(conninfo, autocommit=True)
        self.lock = threading.RLock()
        self._depth = 0

    @contextmanager
    def transaction(self) -> Iterator[object]:
        with self.lock:
            if self._depth:
                self._depth += 1
                try:
                    yield self.conn
                finally:
                    self._depth -= 1
                return
            self._depth = 1
            try:
                with self.conn.transaction():
                    yield self.conn
            finally:
                self._depth = 0


@pytest.fixture
def pg(postgres):
    admin = psycopg.connect(postgres, autocommit=True)
    admin.execute("DROP TABLE IF EXISTS events, events_pruned")
    admin.close()
    return postgres


def test_the_log_behaves_on_postgresql_as_on_sqlite(pg):
    log = EventLog(PgDB(pg), keep_rows=3, keep_s=100.0)
    for n, site in enumerate(["A", "B", None, "A", "B"]):
        assert log.append("site", site, {"site_id": site, "status": f"s{n}"}, at=float(n)) == n + 1
    assert [e.seq for e in log.since(1, sites={"A"})] == [4]
    assert log.latest("site") == {"A": {"site_id": "A", "status": "s3"}, "B": {"site_id": "B", "status": "s4"}}
    assert log.prune(now=50.0) == 2 and log.pruned_through() == 2
    with pytest.raises(EventsExpired):
        log.since(1)
    with pytest.raises(EventsExpired):
        log.since(99)
    assert [e.seq for e in log.since(2)] == [3, 4, 5] and log.head() == 5


@pytest.mark.slow
def test_concurrent_appenders_never_let_a_tailing_reader_skip_an_event(pg):
    """Four writers append in transactions that stay open a random while; a reader tails since(position)
    the whole time. Sequence values are handed out before commit, so without the append lock a later seq
    could commit first and the reader would move past an earlier one for ever."""
    EventLog(PgDB(pg))  # the schema
    writers = [EventLog(PgDB(pg)) for _ in range(4)]
    reader = EventLog(PgDB(pg))
    done = threading.Event()
    seen: list[int] = []

    def write(log: EventLog, seed: int) -> None:
        rnd = random.Random(seed)
        for _ in range(40):
            with log.db.transaction():
                log.append("alert", "A", {}, at=0.0)
                time.sleep(rnd.random() * 0.004)  # the rest of the alarm transaction

    def tail() -> None:
        position = 0
        while True:
            finished = done.is_set()
            for event in reader.since(position, limit=1000):
                seen.append(event.seq)
                position = event.seq
            if finished:
                return

    threads = [threading.Thread(target=write, args=(w, i)) for i, w in enumerate(writers)]
    tailer = threading.Thread(target=tail)
    tailer.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    done.set()
    tailer.join()
    assert seen == list(range(1, 161))


def test_an_append_wakes_a_listener(pg):
    log = EventLog(PgDB(pg))
    wait = listener(pg)
    assert wait(0.05) is False  # nothing yet (and the LISTEN is in place before the append below)
    threading.Timer(0.2, lambda: log.append("alert", "A", {}, at=0.0)).start()
    started = time.monotonic()
    assert wait(10.0) is True
    assert time.monotonic() - started < 10.0

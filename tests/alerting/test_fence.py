"""The fence: once a transaction of a higher lease epoch has committed for a partition, no transaction of a
lower epoch commits for it again — on a real PostgreSQL, with writers on their own connections."""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alerting.db import AlertDB, Fenced
from alerting.store import AlertStore
from foundation.database import StoreError

PROBE = "CREATE TABLE IF NOT EXISTS probe (seq BIGINT GENERATED ALWAYS AS IDENTITY, writer BIGINT, epoch BIGINT, k BIGINT)"


def test_a_lower_epoch_is_fenced_off_after_a_higher_one_committed(pg_url):
    old = AlertDB(pg_url).fence(7, epoch=3)
    new = AlertDB(pg_url).fence(7, epoch=4)
    with old.transaction():
        pass  # the partition's first writer: its epoch is recorded
    with new.transaction():
        pass  # a takeover: the higher epoch replaces it
    with pytest.raises(Fenced) as refused:
        with old.transaction():
            raise AssertionError("never reached: the fence refuses before the body runs")
    assert (refused.value.partition, refused.value.epoch, refused.value.recorded) == (7, 3, 4)
    assert isinstance(refused.value, StoreError)  # the pipeline's "alerts.db cannot commit" handling covers it
    assert new.conn.execute('SELECT epoch FROM partition_fence WHERE "partition" = 7').fetchone() == (4,)


def test_a_fenced_store_cannot_write_even_outside_a_transaction(pg_url, fleet):
    """A store's single statements (``AlertStore.set_horizon``) run as fenced transactions of their own."""
    stale = AlertStore(AlertDB(pg_url).fence(1, epoch=1))
    AlertStore(AlertDB(pg_url).fence(1, epoch=2)).set_horizon("r", "s", 5.0)
    with pytest.raises(Fenced):
        stale.set_horizon("r", "s", 9.0)
    assert stale.horizons() == {("r", "s"): 5.0}  # reads still work: they change nothing


def test_other_partitions_are_not_fenced(pg_url):
    AlertDB(pg_url).fence(1, epoch=9).conn.execute(PROBE)
    with AlertDB(pg_url).fence(2, epoch=1).transaction():
        pass


def test_the_fence_works_on_sqlite_too(tmp_path):
    """The embedded store has one writer per file, but a fenced view behaves the same there."""
    path = tmp_path / "alerts.db"
    with AlertDB(path).fence(0, epoch=2).transaction():
        pass
    with pytest.raises(Fenced):
        with AlertDB(path).fence(0, epoch=1).transaction():
            pass


# ---------------------------------------------------------------------------- the property

@dataclass
class Writer:
    """One worker's connection, fenced at its epoch, driven one step at a time from its own thread."""

    index: int
    epoch: int
    commit: bool
    url: str
    acquired: list  # shared: (writer, epoch), appended while the fence row is held
    steps: queue.Queue = field(default_factory=queue.Queue)
    busy: threading.Event = field(default_factory=threading.Event)
    fenced: Fenced | None = None
    error: BaseException | None = None

    def start(self) -> None:
        self.db = AlertDB(self.url).fence(0, self.epoch)
        self.pid = self.db.conn.execute("SELECT pg_backend_pid()").fetchone()[0]
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def send(self, step: str) -> None:
        self.busy.set()
        self.steps.put(step)

    def _run(self) -> None:
        transaction, writes = None, 0
        while True:
            step = self.steps.get()
            try:
                if step == "stop":
                    return
                if self.fenced is not None or self.error is not None:
                    continue
                if step == "begin":
                    transaction = self.db.transaction()
                    try:
                        transaction.__enter__()
                    except Fenced as err:
                        self.fenced = err
                        continue
                    self.acquired.append((self.index, self.epoch))  # still holding the fence row: in order
                elif step == "write":
                    writes += 1
                    self.db.conn.execute("INSERT INTO probe (writer, epoch, k) VALUES (?, ?, ?)",
                                         (self.index, self.epoch, writes))
                elif step == "end":
                    if self.commit:
                        transaction.__exit__(None, None, None)
                    else:
                        abort = RuntimeError("abort")
                        transaction.__exit__(RuntimeError, abort, None)
            except BaseException as err:  # noqa: BLE001 - reported by the test, never swallowed
                self.error = err
            finally:
                if self.steps.empty():
                    self.busy.clear()


def _quiet(writers: list[Writer], monitor: AlertDB, deadline_s: float = 30.0) -> None:
    """Wait until every writer is idle or waiting for the fence row's lock (a real wait, seen by the server)."""
    deadline = time.monotonic() + deadline_s
    while True:
        running = [w for w in writers if w.busy.is_set()]
        if running:
            waiting = {pid for (pid,) in monitor.conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock'").fetchall()}
            if all(w.pid in waiting for w in running):
                return
        else:
            return
        assert time.monotonic() < deadline, "writers neither finished nor waited for a lock"
        time.sleep(0.002)


@st.composite
def runs(draw):
    """Two to four writers (epoch, commit or abort, 0–2 writes each) and an interleaving of their steps."""
    count = draw(st.integers(2, 4))
    writers = [(draw(st.integers(1, 4)), draw(st.booleans()), draw(st.integers(0, 2))) for _ in range(count)]
    pending = [["begin"] + ["write"] * writes + ["end"] for _, _, writes in writers]
    order = []
    while any(pending):
        who = draw(st.sampled_from([i for i, steps in enumerate(pending) if steps]))
        order.append((who, pending[who].pop(0)))
    return writers, order


@pytest.fixture
def fence_db(pg_url):
    db = AlertDB(pg_url)
    db.conn.execute(PROBE)
    db.fence(0, 0)  # creates partition_fence
    yield db, pg_url
    db.close()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(runs())
def test_no_lower_epoch_commits_after_a_higher_one(fence_db, run):
    """Random interleavings of fenced writers (blocking on the fence row as PostgreSQL makes them) agree with the
    reference model replayed in the order they held the fence: a writer passes iff its epoch is at least the
    highest committed before it; commits are in non-decreasing epoch order; the fence ends at the last committed."""
    db, url = fence_db
    db.conn.execute("TRUNCATE probe")
    db.conn.execute("DELETE FROM partition_fence")
    plan, order = run
    acquired: list[tuple[int, int]] = []
    writers = [Writer(i, epoch, commit, url, acquired) for i, (epoch, commit, _) in enumerate(plan)]
    for w in writers:
        w.start()
    try:
        for who, step in order:
            writers[who].send(step)
            _quiet(writers, db)
        for w in writers:
            w.send("stop")
            w.thread.join(30)
            assert not w.thread.is_alive()
    finally:
        for w in writers:
            w.db.close()
    assert [w.error for w in writers] == [None] * len(writers)

    # the reference model, replayed in the order the writers held the fence row
    recorded: int | None = None
    committed: list[int] = []
    for index, epoch in acquired:
        assert recorded is None or epoch >= recorded, f"writer {index} (epoch {epoch}) passed a fence at {recorded}"
        if writers[index].commit:
            recorded = epoch
            committed.append(index)
    for w in writers:
        assert (w.fenced is None) == ((w.index, w.epoch) in acquired), "every writer either held the fence or was fenced"
        if w.fenced is not None:
            assert w.fenced.recorded > w.epoch and w.fenced.recorded in {writers[i].epoch for i in committed}

    rows = db.conn.execute("SELECT writer, epoch FROM probe ORDER BY seq").fetchall()
    expected = [(i, writers[i].epoch) for i in committed for _ in range(order.count((i, "write")))]
    assert rows == expected
    epochs = [e for _, e in rows]
    assert epochs == sorted(epochs)
    fence = db.conn.execute('SELECT epoch FROM partition_fence WHERE "partition" = 0').fetchone()
    assert (fence[0] if fence else None) == recorded


def test_a_lost_connection_fails_one_write_and_the_next_one_reconnects(pg_url):
    """The server ends the store's session (a restart, a failover): that write raises a `StoreError` the
    pipeline keeps pending; the next one opens a new connection and commits."""
    store = AlertStore(AlertDB(pg_url).fence(4, epoch=1))
    store.set_horizon("r", "s", 1.0)
    pid = store.db.conn.execute("SELECT pg_backend_pid()").fetchone()[0]
    end_session(pg_url, pid)
    with pytest.raises(StoreError):
        store.set_horizon("r", "s", 2.0)
    store.set_horizon("r", "s", 3.0)
    assert store.horizons() == {("r", "s"): 3.0}
    assert store.count("1=1", []) == 0  # the long-read connection is another session


def test_a_connection_lost_inside_a_transaction_never_commits_the_rest_of_it(pg_url):
    """After the server ends the session mid-transaction, later statements of that transaction are refused (a
    fresh connection would commit them one by one); the caller's retry of the whole transaction commits."""
    db = AlertDB(pg_url).fence(6, epoch=1)
    store = AlertStore(db)
    pid = db.conn.execute("SELECT pg_backend_pid()").fetchone()[0]
    with pytest.raises(StoreError):
        with db.transaction():
            store.set_horizon("r", "a", 1.0)
            end_session(pg_url, pid)
            with pytest.raises(StoreError):
                store.set_horizon("r", "b", 2.0)  # the server is gone
            try:
                store.set_horizon("r", "c", 3.0)  # a caller that swallowed the error and went on
            except StoreError as err:
                assert "inside a transaction" in str(err)
                raise
    assert store.horizons() == {}  # nothing of it, not even "c" on a new connection
    with db.transaction():
        store.set_horizon("r", "a", 1.0)
    assert store.horizons() == {("r", "a"): 1.0}


def end_session(url: str, pid: int) -> None:
    """Have the server end one session, and wait until it is gone (pg_terminate_backend only signals it)."""
    admin = AlertDB(url)
    admin.conn.execute("SELECT pg_terminate_backend(?)", (pid,))
    deadline = time.monotonic() + 30
    while admin.conn.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = ?", (pid,)).fetchone()[0]:
        assert time.monotonic() < deadline, f"session {pid} outlived its termination"
        time.sleep(0.02)
    admin.close()

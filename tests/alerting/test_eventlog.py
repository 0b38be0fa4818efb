"""The live-event log (alerting/eventlog.py): appended in the change's transaction, read in order per scope,
bounded, and explicit (`EventsExpired`) about what it no longer keeps."""

from __future__ import annotations

import sqlite3

import pytest

from alerting.db import AlertDB
from alerting.eventlog import EventLog, EventsExpired


@pytest.fixture
def log(tmp_path) -> EventLog:
    return EventLog(AlertDB(tmp_path / "alerts.db"), keep_rows=5, keep_s=100.0)


def test_events_come_back_in_order_after_a_position_and_scoped_to_sites(log):
    for n, site in enumerate(["A", "B", None, "A"]):
        log.append("alert", site, {"n": n}, at=float(n))
    assert [e.seq for e in log.since(0)] == [1, 2, 3, 4]
    assert [e.seq for e in log.since(1, sites={"A"})] == [4]
    assert [e.seq for e in log.since(0, sites=set())] == []
    assert [e.seq for e in log.since(0, limit=2)] == [1, 2]
    assert log.since(4) == [] and log.head() == 4


def test_an_event_appended_in_a_transaction_that_rolls_back_is_not_kept_and_its_seq_is_reused_by_none(log):
    log.append("alert", "A", {}, at=0.0)
    with pytest.raises(RuntimeError):
        with log.db.transaction():
            log.append("alert", "A", {"lost": True}, at=0.0)
            raise RuntimeError("the alarm change failed")
    assert [e.payload for e in log.since(0)] == [b"{}"]
    assert log.append("alert", "A", {}, at=0.0) == 2  # no hole a reader could wait on for ever


def test_prune_keeps_the_window_and_resuming_before_it_is_an_explicit_expiry(log):
    for n in range(8):
        log.append("site", "A", {"n": n}, at=float(n))
    assert log.prune(now=50.0) == 3           # keep_rows=5: seqs 1..3 go
    assert [e.seq for e in log.since(3)] == [4, 5, 6, 7, 8]
    with pytest.raises(EventsExpired) as err:
        log.since(2)
    assert err.value.head == 8
    assert log.prune(now=105.5) == 3           # keep_s=100: at < 5.5 goes (seqs 4..6 are at 3..5)
    assert log.pruned_through() == 6 and log.head() == 8


def test_a_position_beyond_the_head_is_from_another_log_and_expired(log):
    log.append("site", "A", {}, at=0.0)
    with pytest.raises(EventsExpired):
        log.since(99)


def test_pruned_seqs_are_never_handed_out_again_even_when_the_log_is_emptied(log):
    for n in range(3):
        log.append("site", "A", {}, at=0.0)
    log.keep_rows = 0
    log.prune(now=0.0)
    assert log.head() == 3 and log.since(3) == []
    assert log.append("site", "A", {}, at=0.0) == 4


def test_a_second_process_connection_reads_what_the_writer_committed(tmp_path):
    writer = EventLog(AlertDB(tmp_path / "alerts.db"))
    reader = EventLog(AlertDB(tmp_path / "alerts.db"))
    writer.append("alert", "A", {"x": 1}, at=0.0)
    assert [e.payload for e in reader.since(0)] == [b'{"x":1}']


def test_an_append_that_cannot_be_stored_raises(tmp_path):
    db = AlertDB(tmp_path / "alerts.db")
    log = EventLog(db)
    db.conn.execute("DROP TABLE events")
    with pytest.raises(sqlite3.Error):
        log.append("alert", "A", {}, at=0.0)

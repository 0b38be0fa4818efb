"""Alarm transitions are never lost to a store that cannot write, and never half-stored.

alerts.db is made to refuse growth with SQLite's own ``max_page_count`` — the same
SQLITE_FULL error a full disk gives — while readings and the clock move on. The pipeline must
keep every signal pending, leave nothing half-written (an alert without its audit or outbox rows),
refuse to snapshot rule state ahead of the alarms, and catch up completely once the store can
write again.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from foundation.domain import Reading
from liaowang.pipeline import AlertingUnavailable, Pipeline
from liaowang.scenario import FakeClock

from .conftest import wait_until

T0 = 1_795_564_800.0


def freeze(pipeline: Pipeline) -> None:
    """alerts.db may not grow by a single page from now on (SQLITE_FULL, as on a full disk)."""
    conn = pipeline.alert_db.conn
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    conn.execute(f"PRAGMA max_page_count = {pages}")


def thaw(pipeline: Pipeline) -> None:
    pipeline.alert_db.conn.execute("PRAGMA max_page_count = 1073741823")


def counts(pipeline: Pipeline) -> tuple[int, int, int]:
    conn = pipeline.alert_db.conn
    return tuple(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # type: ignore[return-value]
                 for table in ("alerts", "audit", "outbox"))


def committed(pipeline: Pipeline) -> bool:
    try:
        pipeline.commit_signals([])
    except AlertingUnavailable:
        return False
    return True


@pytest.fixture
def pipeline(tmp_path: Path, demo_config):
    clock = FakeClock(T0)
    running = Pipeline(demo_config, tmp_path / "data", clock=clock)
    yield running
    running.stop()


def test_a_store_that_cannot_write_keeps_every_transition_pending_and_catches_up(pipeline, demo_config):
    fleet = demo_config.fleet
    gas = fleet.batch([Reading("LC-LUXI-GD-03", "LC-LUXI", T0 + 1, 60.0)])
    pipeline.handle_batch(fleet.batch([Reading(s, fleet.sensors[s].site_id, T0, 0.0 if fleet.sensors[s].family.value == "gas"
                                               else 1.0) for s in fleet.sensors]))
    pipeline.flush_rules(everything=True)
    before = counts(pipeline)
    open_before = {a.id: a.to_record() for a in pipeline.alerts.open_alerts()}

    freeze(pipeline)
    with pytest.raises(AlertingUnavailable):
        pipeline.handle_batch(gas)
        pipeline.flush_rules(everything=True)
    pipeline.clock.now = T0 + 86_400  # every site falls silent: one communication-loss alarm each
    with pytest.raises(AlertingUnavailable):
        pipeline.check_time_rules()
    assert counts(pipeline) == before, "nothing half-stored"
    assert {a.id: a.to_record() for a in pipeline.alerts.open_alerts()} == open_before, \
        "memory does not run ahead of the store"
    assert pipeline.health()["pending_alarm_transitions"] >= len(fleet.sites)
    assert pipeline.health()["ok"] is False
    pipeline.snapshot()  # deferred: rule state must not get ahead of its alarms
    assert pipeline.snapshots._conn.execute("SELECT count(*) FROM rule_state").fetchone()[0] == 0

    thaw(pipeline)
    wait_until(lambda: committed(pipeline), timeout=10)
    pipeline.flush_rules(everything=True)
    open_alerts = pipeline.alerts.open_alerts()
    lost = {a.subject for a in open_alerts if a.rule_id == "site.comm_loss"}
    assert lost == {f"site:{site}" for site in fleet.sites}
    gas_alerts = [a for a in open_alerts if a.subject == "LC-LUXI-GD-03" and a.rule_id != "sensor.stale"]
    assert gas_alerts and gas_alerts[0].tier.colour == "orange"
    # Every raised alert has its audit row and its outbox rows: one transaction held them all.
    conn = pipeline.alert_db.conn
    for alert in open_alerts:
        assert conn.execute("SELECT count(*) FROM audit WHERE alert_id = ? AND action = 'raised'",
                            (alert.id,)).fetchone()[0] == 1
    unrouted = [a.id for a in open_alerts if a.family != "system" and
                conn.execute("SELECT count(*) FROM outbox WHERE alert_id = ?", (a.id,)).fetchone()[0] == 0]
    assert not unrouted or all(not pipeline.notifier.router.chain(pipeline.alerts.get(i)) for i in unrouted)
    assert pipeline.health()["pending_alarm_transitions"] == 0


def test_a_retried_batch_is_not_evaluated_twice(pipeline, demo_config):
    fleet = demo_config.fleet
    freeze(pipeline)
    pipeline.clock.now = T0 + 86_400
    with pytest.raises(AlertingUnavailable):
        pipeline.check_time_rules()  # not-reporting transitions now wait: the next batch cannot commit either
    batch = fleet.batch([Reading("LC-LUXI-GD-03", "LC-LUXI", T0 + 86_399, 60.0)])
    with pytest.raises(AlertingUnavailable):
        pipeline.handle_batch(batch)
    duplicates = pipeline.engine.duplicate_readings
    thaw(pipeline)
    wait_until(lambda: committed(pipeline), timeout=10)
    pipeline.handle_batch(batch)  # ingest's retry of the same batch: not submitted again
    assert pipeline.engine.duplicate_readings == duplicates


def test_a_crash_while_transitions_wait_loses_none_of_them(tmp_path: Path, demo_config):
    """Killed while alarms could not be stored: the restart derives and stores every one of them."""
    fleet = demo_config.fleet
    first = Pipeline(demo_config, tmp_path / "data", clock=FakeClock(T0))
    first.snapshot()  # the last periodic snapshot while all was well
    first.clock.now = T0 + 86_400
    freeze(first)
    with pytest.raises(AlertingUnavailable):
        first.check_time_rules()
    assert counts(first)[0] == 0
    first.snapshot()  # what the ticker would try before the kill: deferred, so no rule state runs ahead
    first.alert_db.close()  # the kill: no orderly stop, nothing flushed
    again = Pipeline(demo_config, tmp_path / "data", clock=FakeClock(T0 + 86_401))
    try:
        again.clock.now += 86_400  # silence is counted from the restart (no start-up flood); still silent a day on
        again.check_time_rules()
        conn = again.alert_db.conn
        silent = conn.execute("SELECT id FROM alerts WHERE rule_id = 'site.not_reporting'").fetchall()
        assert len(silent) == len(fleet.sites)
        orphans = conn.execute("SELECT count(*) FROM alerts WHERE id NOT IN (SELECT alert_id FROM audit "
                               "WHERE alert_id IS NOT NULL)").fetchone()[0]
        assert orphans == 0
    finally:
        again.stop()

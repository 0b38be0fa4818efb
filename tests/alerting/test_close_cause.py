"""消警 with a cause category (误报/仪表故障/工艺波动/检修作业/真实险情): stored on the alert, audited,
restored from the store; an unknown cause is refused."""

from __future__ import annotations

import pytest

from alerting import AlertManager, AlertStore, InvalidAction
from alerting.audit import AuditLog
from alerting.model import Alert, CloseCause
from foundation.domain import Family, Tier
from rules.base import Signal

T0 = 1_795_564_800.0


def signal(tier, ts):
    return Signal("gas.combustible_gas.threshold", "threshold", "LC-LUXI-GD-01", "LC-LUXI", Family.GAS, tier,
                  "level1" if tier else None, 30.0, 20.0 if tier else None, "%LEL", ts, "msg")


@pytest.fixture
def manager(alerts_db_target, fleet):
    store = AlertStore(alerts_db_target)  # SQLite, then PostgreSQL
    m = AlertManager(store, fleet, lambda: T0 + 1000, audit=AuditLog(store.db))
    yield m
    store.close()


def resolved(manager):
    alert = manager.apply([signal(Tier.YELLOW, T0)])[0].alert
    manager.acknowledge(alert.id, "op", None)
    manager.apply([signal(None, T0 + 60)])
    return alert.id


def test_the_five_causes_by_english_and_chinese_name():
    assert [(c.value, c.zh) for c in CloseCause] == [
        ("false_alarm", "误报"), ("instrument_fault", "仪表故障"), ("process_upset", "工艺波动"),
        ("maintenance", "检修作业"), ("real_incident", "真实险情")]
    assert all(CloseCause.parse(c.zh) is c and CloseCause.parse(c.value) is c for c in CloseCause)
    with pytest.raises(ValueError, match="unknown close cause"):
        CloseCause.parse("其他")


@pytest.mark.parametrize("given", ["仪表故障", "instrument_fault"])
def test_close_stores_the_cause_and_audits_it(manager, given):
    alert_id = resolved(manager)
    closed = manager.close(alert_id, "值班长", "探头进水, 已更换", given)[-1].alert
    assert closed.state == "closed" and closed.close_cause == "instrument_fault"
    body = closed.to_json()
    assert (body["close_cause"], body["close_cause_zh"]) == ("instrument_fault", "仪表故障")
    assert Alert.from_record(closed.to_record()).close_cause == "instrument_fault"  # survives the store
    assert manager.get(alert_id).close_cause == "instrument_fault"
    rows = [r for r in manager.audit.records() if r.get("action") == "closed"]
    assert rows and any("仪表故障" in str(r) for r in rows)


def test_an_unknown_cause_is_refused_and_changes_nothing(manager):
    alert_id = resolved(manager)
    with pytest.raises(InvalidAction, match="unknown close cause"):
        manager.close(alert_id, "值班长", "note", "其他")
    assert manager.get(alert_id).state == "resolved" and manager.get(alert_id).close_cause is None


def test_without_a_cause_the_core_still_closes(manager):
    """The API requires the cause (alerting.yaml close_cause_required, default true); the core takes None."""
    alert_id = resolved(manager)
    assert manager.close(alert_id, "值班长", "note")[-1].alert.close_cause is None

"""The monitor wired as docs/risk.md tells the composition root: real alerts from a real pipeline, its warning desk.

The pipeline is built, not started (no broker); alarms are committed as the rules would commit them.
"""

from __future__ import annotations

from earlywarning import RiskMonitor, WarningLevel
from foundation.domain import Family, Tier
from liaowang.pipeline import Pipeline
from foundation.riskspec import RiskSettings
from liaowang.scenario import FakeClock
from rules.base import Signal
from tests.risk.support import SITE, T0, TANKS


def high(sensor_id: str, ts: float) -> Signal:
    return Signal("hazard.pressure.threshold", "threshold", sensor_id, SITE, Family.HAZARD, Tier.ORANGE, "HH", 1.9,
                  1.8, "MPa", ts, "储罐压力 高高报")


def test_real_alerts_and_the_pipelines_desk_give_issue_13s_orange_proposal(demo_config, tmp_path) -> None:
    clock = FakeClock(T0)
    pipeline = Pipeline(demo_config, tmp_path / "data", clock=clock)
    try:
        risk = RiskMonitor(pipeline.alert_db, RiskSettings(), pipeline.fleet, pipeline.clock,
                           alarms=pipeline.alerts.open_alerts, desk=pipeline.warnings, audit=pipeline.audit)
        pipeline.commit_signals([high("LC-XFPVC-T101-PT", T0), high("LC-XFPVC-T102-PT", T0 + 1)], publish=False)
        risk.states.register(SITE, "hot_work", T0, T0 + 3600, "xfpvc-operator", T0, unit_id=TANKS)
        clock.now = T0 + 700
        [proposal] = risk.tick().proposals
        open_ids = sorted(a.id for a in pipeline.alerts.open_alerts())
        assert proposal.warning.level is WarningLevel.II and sorted(proposal.warning.evidence.alarm_ids) == open_ids
        assert pipeline.warnings.query(subject=f"enterprise:{SITE}")[0].id == proposal.warning.id
        assert all(a.isa_state == "unacknowledged" for a in pipeline.alerts.open_alerts())
        contacts = pipeline.fleet.responsible_for(SITE, pipeline.alerts.open_alerts()[0].subject)
        assert [c.role for c in contacts] == ["main", "technical", "operational"] and contacts[0].unit_id == TANKS
    finally:
        pipeline.stop()

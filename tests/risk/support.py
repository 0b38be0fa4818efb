"""A risk monitor and a warning desk on a fake clock over one AlertDB, with alarms the test sets."""

from __future__ import annotations

from pathlib import Path

from alerting.audit import AuditLog
from alerting.db import AlertDB
from earlywarning import AlarmRecord, RiskMonitor, WarningDesk
from earlywarning.testing import RecordingOutbox, RecordingPublisher
from foundation.config import Fleet
from foundation.riskspec import RiskSettings
from liaowang.scenario import FakeClock
from foundation.warningspec import WarningSettings

T0 = 1_795_564_800.0  # 2026-11-25T08:00:00+08:00: before the day's commitment is due (09:00)
SITE = "LC-XFPVC"     # 信发聚氯乙烯: tank farm LC-XFPVC-U1 grade 1 (40), polymerisation LC-XFPVC-U2 scores 50
TANKS = "LC-XFPVC-U1"
POLY = "LC-XFPVC-U2"


def alarm(alarm_id: str, subject: str, priority: str = "high", raised_at: float = T0, site_id: str = SITE,
          acknowledged_at: float | None = None, state: str = "unacknowledged", kind: str = "threshold") -> AlarmRecord:
    return AlarmRecord(alarm_id, site_id, subject, priority, raised_at, acknowledged_at, state, kind)


class Room:
    """The monitor, the desk and what they talk to; ``alarms`` is what ``AlertManager.open_alerts`` would give."""

    def __init__(self, fleet: Fleet, path: Path | str = ":memory:", settings: RiskSettings | None = None,
                 desk: bool = True) -> None:
        self.clock = FakeClock(T0)
        self.db = AlertDB(path)
        self.audit = AuditLog(self.db)
        self.fleet = fleet
        self.alarms: list[AlarmRecord] = []
        self.publisher = RecordingPublisher()
        self.outbox = RecordingOutbox()
        self.desk = WarningDesk(self.db, WarningSettings(), fleet, self.clock, self.publisher, self.outbox,
                                self.audit) if desk else None
        self.monitor = RiskMonitor(self.db, settings or RiskSettings(), fleet, self.clock, lambda: list(self.alarms),
                                   self.desk, self.audit)
        self.states = self.monitor.states

    def later(self, seconds: float) -> float:
        self.clock.now += seconds
        return self.clock.now

    def actions(self) -> list[str]:
        return [r["action"] for r in self.audit.records()]

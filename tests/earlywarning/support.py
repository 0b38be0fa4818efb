"""A warning desk on a fake clock over a real SQLite file, with a recording publisher and outbox."""

from __future__ import annotations

from pathlib import Path

from alerting.audit import AuditLog
from alerting.db import AlertDB
from earlywarning import Proposal, SubjectKind, SubjectRef, WarningDesk, WarningLevel
from earlywarning.testing import RecordingOutbox, RecordingPublisher
from foundation.config import Fleet
from liaowang.scenario import FakeClock
from foundation.warningspec import WarningSettings

T0 = 1_795_564_800.0  # 2026-11-25T08:00:00+08:00
HAZCHEM = "事故灾难/危险化学品"
GAS = "事故灾难/燃气"
FOREST = "自然灾害/森林火险"

ROUTES = [
    {"match": {"categories": [FOREST]}, "desk": ["county-duty"], "escalation": ["city-duty"], "recipients": []},
    {"match": {}, "desk": ["county-duty"], "escalation": ["city-duty"], "recipients": ["plant-safety"]},
]


def settings(**overrides) -> WarningSettings:
    """The default taxonomy and guidance, the demo's routes and zones, and ``overrides``."""
    data = {"routes": ROUTES,
            "zones": [{"id": "LC-GTLC-Z1", "name": "高唐林场一号林区", "county": "高唐县", "site_id": "LC-GTLC",
                       "polygon": [[116.235, 36.84], [116.265, 36.84], [116.265, 36.86], [116.235, 36.86]]}]}
    return WarningSettings.model_validate({**data, **overrides})


class Room:
    """The desk and everything it talks to."""

    def __init__(self, fleet: Fleet, path: Path | str = ":memory:", notify=None, **overrides) -> None:
        self.clock = FakeClock(T0)
        self.publisher = RecordingPublisher()
        self.outbox = RecordingOutbox()
        self.db = AlertDB(path)
        self.audit = AuditLog(self.db)
        self.settings = settings(**overrides)
        self.fleet = fleet
        self.desk = WarningDesk(self.db, self.settings, fleet, self.clock, self.publisher, notify or self.outbox,
                                self.audit)

    def later(self, seconds: float) -> float:
        """Move the clock on; return the new time."""
        self.clock.now += seconds
        return self.clock.now

    def propose(self, site: str = "LC-LUXI", level: WarningLevel | str = WarningLevel.II, category: str = HAZCHEM,
                kind: SubjectKind = SubjectKind.ENTERPRISE, **options):
        ref = options.pop("subject", None) or SubjectRef(kind, site)
        options.setdefault("by", "rule:hazchem.enterprise")
        return self.desk.propose(Proposal(ref, category, WarningLevel(level), **options))

    def actions(self) -> list[tuple[str, str]]:
        """(actor, action) of every audit record, in order."""
        return [(r["actor"], r["action"]) for r in self.audit.records()]

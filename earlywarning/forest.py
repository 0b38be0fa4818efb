"""Forest fire danger → warning proposals: the adapter the lead wires into `rules.fire.FireDangerRule`.

`FireDangerRule` proposes a warning (a `rules.fire.DangerWarning`: zone, colour, level, value, event
time) the day a station enters a class its spec lists under ``warnings`` — 三–五级 in the default
pack, yellow/orange/red (QX/T 77-2007: no warning signal at 一–二级, DOMAIN.md [S]). This module turns
it into a `Proposal` about the station's forest zone (its forest site) and hands it to the desk::

    rule.propose_warning = danger_proposer(desk)

A proposal the desk cannot take (alerts.db cannot write) is kept and tried again by ``retry`` (the
pipeline's ticker calls it), since the rule proposes only on the day a class is entered: dropping it
would lose that day's warning.
"""

from __future__ import annotations

from typing import Protocol

import structlog

from earlywarning.drafting import Proposal, SubjectRef
from earlywarning.model import Origin, SubjectKind
from foundation.warningspec import WarningLevel

__all__ = ["FOREST_CATEGORY", "DangerProposer", "danger_proposer"]

log = structlog.get_logger("earlywarning.forest")

FOREST_CATEGORY = "自然灾害/森林火险"


class _DangerWarning(Protocol):  # rules.fire.DangerWarning, by shape
    rule_id: str
    zone: str
    colour: str
    level: str
    ts: float
    message: str


class DangerProposer:
    """A ``propose_warning`` callable for `FireDangerRule` that proposes to ``desk`` (a `WarningDesk`).

    The proposal is a rule's (``by`` = ``rule:<rule id>``), at the rule's event time, hazard
    ``forest.fire_danger``; the desk merges it into an open warning of the same zone and category.
    One the desk fails to take waits in ``pending`` until `retry` gets it through.
    """

    def __init__(self, desk, category: str = FOREST_CATEGORY) -> None:
        self.desk = desk
        self.category = category
        self.pending: list[tuple[Proposal, float, str]] = []  # (proposal, event time, why it failed last)

    def __call__(self, warning: _DangerWarning) -> object:
        if warning.colour not in ("yellow", "orange", "red"):  # 一–二级 never warn, whatever a pack says
            raise ValueError(f"a forest danger warning is yellow, orange or red, not {warning.colour}")
        proposal = Proposal(SubjectRef(SubjectKind.FOREST_ZONE, warning.zone), self.category,
                            WarningLevel(warning.colour), by=f"rule:{warning.rule_id}", origin=Origin.RULE,
                            reason=warning.message, hazard="forest.fire_danger")
        return self._propose(proposal, warning.ts)

    def retry(self) -> int:
        """Propose again what the desk could not take; returns how many still wait."""
        waiting, self.pending = self.pending, []
        for proposal, at, _ in waiting:
            self._propose(proposal, at)
        return len(self.pending)

    def _propose(self, proposal: Proposal, at: float) -> object:
        try:
            return self.desk.propose(proposal, at=at)
        except Exception as err:  # kept and retried: the rule will not propose this day again
            why = f"{type(err).__name__}: {str(err)[:200]}"
            self.pending.append((proposal, at, why))
            log.error("fire_danger_proposal_deferred", zone=proposal.subject.id, level=proposal.level.value,
                      error=why, pending=len(self.pending))
            return None


def danger_proposer(desk, category: str = FOREST_CATEGORY) -> DangerProposer:
    """The `DangerProposer` of ``desk`` (kept for callers of the function form)."""
    return DangerProposer(desk, category)

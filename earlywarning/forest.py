"""Forest fire danger → warning proposals: the adapter the lead wires into `rules.fire.FireDangerRule`.

`FireDangerRule` proposes a warning (a `rules.fire.DangerWarning`: zone, colour, level, value, event
time) the day a station enters a class its spec lists under ``warnings`` — 三–五级 in the default
pack, yellow/orange/red (QX/T 77-2007: no warning signal at 一–二级, DOMAIN.md [S]). This module turns
it into a `Proposal` about the station's forest zone (its forest site) and hands it to the desk::

    rule.propose_warning = danger_proposer(desk)
"""

from __future__ import annotations

from typing import Callable, Protocol

from earlywarning.drafting import Proposal, SubjectRef
from earlywarning.model import Origin, SubjectKind
from liaowang.warningspec import WarningLevel

__all__ = ["FOREST_CATEGORY", "danger_proposer"]

FOREST_CATEGORY = "自然灾害/森林火险"


class _DangerWarning(Protocol):  # rules.fire.DangerWarning, by shape
    rule_id: str
    zone: str
    colour: str
    level: str
    ts: float
    message: str


def danger_proposer(desk, category: str = FOREST_CATEGORY) -> Callable[[_DangerWarning], object]:
    """A ``propose_warning`` callable for `FireDangerRule` that proposes to ``desk`` (a `WarningDesk`).

    The proposal is a rule's (``by`` = ``rule:<rule id>``), at the rule's event time, hazard
    ``forest.fire_danger``; the desk merges it into an open warning of the same zone and category.
    """

    def propose(warning: _DangerWarning) -> object:
        if warning.colour not in ("yellow", "orange", "red"):  # 一–二级 never warn, whatever a pack says
            raise ValueError(f"a forest danger warning is yellow, orange or red, not {warning.colour}")
        proposal = Proposal(SubjectRef(SubjectKind.FOREST_ZONE, warning.zone), category, WarningLevel(warning.colour),
                            by=f"rule:{warning.rule_id}", origin=Origin.RULE, reason=warning.message,
                            hazard="forest.fire_danger")
        return desk.propose(proposal, at=warning.ts)

    return propose

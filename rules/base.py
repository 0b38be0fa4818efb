"""What leaves the rule engine: a `Signal`, the one type alerting consumes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from liaowang.domain import Family, ReadingBatch, Tier

LEVEL_ZH = {
    "level1": "一级报警", "level2": "二级报警", "H": "高报(H)", "HH": "高高报(HH)", "L": "低报(L)", "LL": "低低报(LL)",
    "fire_suspected": "疑似火情", "fire_confirmed": "确认火情",
}
"""Chinese names of device alarm levels, as the duty room says them."""


@dataclass(frozen=True, slots=True)
class Signal:
    """A rule's verdict on one subject at one event time.

    ``tier`` is the tier the condition now calls for, or None when the condition has cleared.
    Alerting turns a stream of signals into alert episodes (raise, escalate, resolve).
    """

    rule_id: str
    kind: str
    subject: str
    site_id: str
    family: Family
    tier: Tier | None
    level: str | None
    value: float
    threshold: float | None
    unit: str
    ts: float
    message: str


class Rule(Protocol):
    """A running rule: consumes readings in event time, emits signals when its verdict changes."""

    def evaluate(self, batch: ReadingBatch) -> list[Signal]:
        """Evaluate a micro-batch ordered by event time; return the changes it causes."""
        ...

"""The rule engine: runs every configured rule over each micro-batch in event time."""

from __future__ import annotations

from typing import Sequence

from liaowang.config import Fleet
from liaowang.domain import Reading
from rules.base import Rule, Signal
from rules.threshold import ThresholdRule


class RuleEngine:
    """Evaluates all rules over a batch; readings are put in event-time order first."""

    def __init__(self, fleet: Fleet) -> None:
        self.rules: list[Rule] = [ThresholdRule(fleet)]

    def evaluate(self, readings: Sequence[Reading]) -> list[Signal]:
        """Return the signals the batch causes, in event-time order."""
        ordered = sorted(readings, key=lambda r: r.ts)
        signals: list[Signal] = []
        for rule in self.rules:
            signals.extend(rule.evaluate(ordered))
        signals.sort(key=lambda s: s.ts)
        return signals

"""The rule engine: runs every configured rule over each micro-batch in event time."""

from __future__ import annotations

from liaowang.config import Fleet
from liaowang.domain import ReadingBatch
from rules.base import Rule, Signal
from rules.threshold import ThresholdRule


class RuleEngine:
    """Evaluates all rules over a batch; readings are put in event-time order first."""

    def __init__(self, fleet: Fleet) -> None:
        self.rules: list[Rule] = [ThresholdRule(fleet)]

    def evaluate(self, batch: ReadingBatch) -> list[Signal]:
        """Return the signals the batch causes, in event-time order."""
        ordered = batch.time_ordered()
        signals: list[Signal] = []
        for rule in self.rules:
            signals.extend(rule.evaluate(ordered))
        signals.sort(key=lambda s: s.ts)
        return signals

"""The rule engine: runs every configured rule over each micro-batch in event time."""

from __future__ import annotations

from liaowang.config import Fleet
from liaowang.domain import ReadingBatch, Tier
from rules.base import Rule, Signal
from rules.stale import StaleRule
from rules.threshold import ThresholdRule


class RuleEngine:
    """Evaluates all rules over a batch; readings are put in event-time order first.

    ``start`` is when the engine started watching (sensors never seen count as silent from then).
    """

    def __init__(self, fleet: Fleet, *, stale_periods: float = 3.0, stale_tier: Tier = Tier.YELLOW,
                 start: float = 0.0) -> None:
        self.stale = StaleRule(fleet, stale_periods, stale_tier, start)
        self.rules: list[Rule] = [ThresholdRule(fleet), self.stale]

    def evaluate(self, batch: ReadingBatch) -> list[Signal]:
        """Return the signals the batch causes, in event-time order."""
        ordered = batch.time_ordered()
        signals: list[Signal] = []
        for rule in self.rules:
            signals.extend(rule.evaluate(ordered))
        signals.sort(key=lambda s: s.ts)
        return signals

    def check(self, now: float) -> list[Signal]:
        """Time-driven rules (stale sensors) at ``now``: the wall clock live, event time in replay."""
        return self.stale.check(now)

    def gateway(self, site_id: str, online: bool) -> None:
        """A site's gateway went offline (Last Will) or came back."""
        self.stale.gateway(site_id, online)

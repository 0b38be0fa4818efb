"""Rules: turn readings into signals (threshold ladders, stale sensors; trends and more to come)."""

from rules.base import Rule, Signal
from rules.engine import RuleEngine
from rules.stale import StaleRule
from rules.threshold import ThresholdRule

__all__ = ["Rule", "RuleEngine", "Signal", "StaleRule", "ThresholdRule"]

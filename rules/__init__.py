"""Rules: turn readings into signals (threshold ladders now; trends, stale and more to come)."""

from rules.base import Rule, Signal
from rules.engine import RuleEngine
from rules.threshold import ThresholdRule

__all__ = ["Rule", "RuleEngine", "Signal", "ThresholdRule"]

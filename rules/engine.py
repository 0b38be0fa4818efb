"""The rule engine: every configured rule over each released micro-batch, in event time.

`submit` holds a batch in the reorder buffer (`rules.reorder`) and evaluates what the event-time
frontier releases; `flush` releases on the injected clock when the feed is quiet. Released
readings go through the rules in a fixed order — process thresholds, windowed trend and fault
rules, range faults, fire danger — and then the rules that listen to other rules' signals
(confirmation, fire detection). Signals come out sorted by event time.

Nothing here reads a clock: ``now`` is passed in (the wall clock live, event time in replay).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import orjson
import structlog

from foundation.config import Fleet, RuleSettings
from foundation.domain import ReadingBatch, Tier
from foundation.rulespec import (ConfirmationSpec, FireDangerSpec, FireDetectionSpec, HeldSpec, OutOfRangeSpec, PredictiveSpec,
                               RateOfChangeSpec, RuleBook, StuckSpec, ThresholdSpec)
from rules.base import Signal
from rules.confirm import ConfirmationRule
from rules.fault import HeldRule, OutOfRangeRule, StuckRule
from rules.fire import FireDangerRule, FireDetectionRule
from rules.reorder import ReorderBuffer
from rules.snapshot import SnapshotStore, Stateful
from rules.stale import StaleRule
from rules.threshold import ThresholdRule
from rules.trend import PredictiveRule, RateOfChangeRule

log = structlog.get_logger("rules")

RESUME_LOOKBACK_S = 3600.0
"""How far behind the newest release mark recovery looks for sensors whose readings must be re-run."""


@dataclass(slots=True)
class Evaluation:
    """The outcome of one submit or flush: signals in event-time order, and readings too late to place."""

    signals: list[Signal] = field(default_factory=list)
    late: ReadingBatch | None = None
    duplicates: int = 0
    evaluated: int = 0


class RuleEngine:
    """Builds the rules of a `RuleBook` over a fleet and runs them in event time.

    ``start`` is when the engine started watching (sensors never seen count as silent from then).
    """

    def __init__(self, fleet: Fleet, book: RuleBook | None = None, settings: RuleSettings | None = None, *,
                 start: float = 0.0, stale_periods: float | None = None, stale_tier: Tier | None = None) -> None:
        settings = settings or RuleSettings()
        self.fleet = fleet
        self.book = book or RuleBook.thresholds_only()
        self.settings = settings
        self.stale = StaleRule(fleet, stale_periods or settings.stale_periods, stale_tier or settings.stale_tier, start,
                               settings.first_report_grace_s)
        self.buffer = ReorderBuffer(fleet.sensor_ids, settings.lateness_s, settings.max_hold_s)
        self.thresholds: list[ThresholdRule] = []
        self.batch_rules: list = []          # evaluate(batch) -> signals
        self.listeners: list = []            # on_signals(signals) -> signals
        self.by_id: dict[str, object] = {}
        danger: dict[str, FireDangerRule] = {}
        threshold_specs = [s for s in self.book.rules if isinstance(s, ThresholdSpec)]
        if threshold_specs:
            self.thresholds.append(ThresholdRule(fleet, threshold_specs))
        for spec in self.book.rules:
            rule: object
            if isinstance(spec, ThresholdSpec):
                rule = self.thresholds[0]
            elif isinstance(spec, RateOfChangeSpec):
                rule = RateOfChangeRule(fleet, spec)
            elif isinstance(spec, PredictiveSpec):
                rule = PredictiveRule(fleet, spec)
            elif isinstance(spec, StuckSpec):
                rule = StuckRule(fleet, spec)
            elif isinstance(spec, OutOfRangeSpec):
                rule = OutOfRangeRule(fleet, spec)
            elif isinstance(spec, HeldSpec):
                rule = HeldRule(fleet, spec)
            elif isinstance(spec, FireDangerSpec):
                rule = danger[spec.id] = FireDangerRule(fleet, spec)
            elif isinstance(spec, ConfirmationSpec):
                rule = ConfirmationRule(fleet, spec)
            elif isinstance(spec, FireDetectionSpec):
                rule = FireDetectionRule(fleet, spec, None)
            else:  # pragma: no cover - the discriminated union admits nothing else
                raise TypeError(type(spec))
            self.by_id[spec.id] = rule
            if not isinstance(rule, ThresholdRule):
                (self.listeners if hasattr(rule, "on_signals") else self.batch_rules).append(rule)
        for rule in self.listeners:
            if isinstance(rule, FireDetectionRule):
                rule.danger = danger.get(rule.spec.danger_rule)
        self.late_readings = 0

    @property
    def duplicate_readings(self) -> int:
        """Readings dropped because one with the same sensor and time was already held or evaluated."""
        return self.buffer.duplicates

    # ------------------------------------------------------------------ readings

    def submit(self, batch: ReadingBatch, now: float) -> Evaluation:
        """Hold a stored batch for ordering and evaluate whatever the frontier releases."""
        back = self.stale.evaluate(batch)  # last-seen is about arrival: a held reading still proves the sensor alive
        admission = self.buffer.add(batch, now)
        self.late_readings += len(admission.late)
        result = self.flush(now)
        if back:
            result.signals = sorted(back + result.signals, key=lambda s: s.ts)
        late = [b for b in (admission.late if len(admission.late) else None, result.late) if b is not None]
        result.late = late[0] if len(late) == 1 else (
            ReadingBatch(*(np.concatenate([getattr(b, c) for b in late]) for c in ("sensor", "ts", "value", "quality")),
                         batch.sensor_ids, batch.site_ids) if late else None)
        result.duplicates = admission.duplicates
        return result

    def flush(self, now: float, everything: bool = False) -> Evaluation:
        """Evaluate the held readings the frontier or their hold time lets go (all of them with ``everything``)."""
        released = self.buffer.release(now, everything)
        late = self.buffer.take_late()
        if late is not None:
            self.late_readings += len(late)
        if released is None or not len(released):
            return Evaluation(late=late)
        return Evaluation(signals=self._run(released), evaluated=len(released), late=late)

    def evaluate(self, batch: ReadingBatch) -> list[Signal]:
        """Evaluate one batch at once, without holding (tests, tools, benchmarks): submit and release it all."""
        result = self.submit(batch, float("inf"))
        return sorted(result.signals + self.flush(float("inf"), everything=True).signals, key=lambda s: s.ts)

    def _run(self, batch: ReadingBatch) -> list[Signal]:
        signals: list[Signal] = []
        for rule in self.thresholds:
            signals += rule.evaluate(batch)
        for rule in self.batch_rules:
            signals += rule.evaluate(batch)
        signals.sort(key=lambda s: s.ts)
        for rule in self.listeners:
            derived = rule.on_signals(signals)
            if derived:
                signals = sorted(signals + derived, key=lambda s: s.ts)
        return signals

    # ------------------------------------------------------------------ time and gateways

    def check(self, now: float) -> list[Signal]:
        """Time-driven rules (stale sensors) at ``now``: the wall clock live, event time in replay."""
        return self.stale.check(now)

    def gateway(self, site_id: str, online: bool, at: float | None = None) -> None:
        """A site's gateway went offline (Last Will) or came back (at ``at``: its sensors get a fresh limit)."""
        self.stale.gateway(site_id, online, at)

    # ------------------------------------------------------------------ state

    def _parts(self) -> dict[str, tuple[str, Stateful]]:
        parts: dict[str, tuple[str, Stateful]] = {
            "_engine.reorder": (f"lateness={self.settings.lateness_s}", self.buffer),
            "_engine.stale": (f"periods={self.stale._periods}", self.stale),
        }
        for rule in self.thresholds:  # one rule for every threshold spec: one part, fingerprinted by them all
            parts["_threshold"] = (orjson.dumps([s.model_dump(mode="json") for s in rule.specs]).decode(), rule)
        for spec in self.book.rules:
            if not isinstance(spec, ThresholdSpec):
                parts[spec.id] = (orjson.dumps(spec.model_dump(mode="json")).decode(), self.by_id[spec.id])  # type: ignore[assignment]
        return parts

    def snapshot(self, store: SnapshotStore, now: float, stream_seq: int | None = None) -> int:
        """Save every rule's state (with the stream position it covers, on a `PartitionSnapshotStore`); the bytes
        written."""
        if stream_seq is None:
            return store.save(self._parts(), now)
        return store.save(self._parts(), now, stream_seq=stream_seq)  # type: ignore[call-arg]

    def restore(self, store: SnapshotStore) -> dict[str, str]:
        """Restore from a snapshot; rebuild the state derived from other rules. Returns rule id → outcome."""
        outcome = store.load(self._parts())
        for rule in self.listeners:
            if isinstance(rule, ConfirmationRule) and self.thresholds:
                rule.rebuild(self.thresholds[0])
        for rule_id, result in outcome.items():
            if result == "specification_changed":
                log.warning("rule_state_discarded", rule_id=rule_id, reason="specification changed since the snapshot")
        return outcome

    def resume_point(self) -> float:
        """The event time from which stored readings must be re-run after a restore (-inf: none released).

        The oldest release mark of the sensors heard in the last `RESUME_LOOKBACK_S` of event time: a
        sensor silent for a day must not make every restart re-run a day of the whole fleet. (Readings
        such a sensor sends later with times older than that window are stored, not re-evaluated.)
        """
        marks = self.buffer.last_released
        seen = marks[np.isfinite(marks)]
        if not len(seen):
            return float("-inf")
        return float(seen[seen >= seen.max() - RESUME_LOOKBACK_S].min())

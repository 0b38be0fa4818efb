"""Feeds on a fake clock for rule tests: build readings, deliver them in order, shuffled or at once."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Callable, Iterable

from alerting import AlertManager, AlertStore
from foundation.alertspec import AlertingSettings
from foundation.config import Config, Fleet
from foundation.domain import Quality, Reading
from foundation.rulespec import RuleBook
from rules import RuleEngine, Signal
from rules.snapshot import SnapshotStore

T0 = 1_795_564_800.0  # 2026-11-25 08:00 CST


def series(fleet: Fleet, sensor_id: str, start: float, stop: float, period: float,
           value: Callable[[float], float], quality: Quality = Quality.GOOD) -> list[Reading]:
    """Readings of one sensor every ``period`` seconds in [start, stop), value a function of seconds since T0."""
    site = fleet.sensors[sensor_id].site_id
    out, t = [], start
    while t < stop:
        out.append(Reading(sensor_id, site, T0 + t, float(value(t)), quality))
        t += period
    return out


def shuffled_within(readings: list[Reading], lateness: float, seed: int) -> list[Reading]:
    """An arrival order where each reading is delayed by up to 0.9 × lateness (so none is too late)."""
    rng = random.Random(seed)
    return [r for _, r in sorted(((r.ts + rng.uniform(0, 0.9 * lateness), r) for r in readings), key=lambda x: x[0])]


def key(signal: Signal) -> tuple:
    """What two runs must agree on: rule, subject, tier, level and event time."""
    return (signal.rule_id, signal.subject, signal.tier.colour if signal.tier else None, signal.level,
            round(signal.ts - T0, 6))


def deliver(engine: RuleEngine, arrival: Iterable[Reading], fleet: Fleet, batch: int = 7) -> list[Signal]:
    """Submit readings in arrival order, ``batch`` at a time, the clock at the newest event time; flush at the end."""
    arrival = list(arrival)
    signals: list[Signal] = []
    now = float("-inf")
    for i in range(0, len(arrival), batch):
        chunk = arrival[i:i + batch]
        now = max(now, max(r.ts for r in chunk))
        signals += engine.submit(fleet.batch(chunk), now).signals
    signals += engine.flush(now, everything=True).signals
    return signals


def engine_for(config: Config, *rule_ids: str, **settings: float) -> RuleEngine:
    """An engine with only the named rules of the demo book (all of them when none are named)."""
    book = config.rules if not rule_ids else RuleBook(rules=[r for r in config.rules.rules if r.id in rule_ids])
    rule_settings = config.settings.rules.model_copy(update=settings)
    return RuleEngine(config.fleet, book, rule_settings, start=T0)


def restart(engine: RuleEngine, config: Config, path: Path | SnapshotStore, stored: list[Reading],
            *rule_ids: str) -> tuple[RuleEngine, list[Signal]]:
    """Snapshot ``engine``, build a fresh one from the snapshot and re-run the stored readings since its resume point.

    ``path`` is a SQLite file for a `SnapshotStore`, or a snapshot store itself (a `PartitionSnapshotStore`)."""
    store = path if hasattr(path, "save") else SnapshotStore(path)
    engine.snapshot(store, 0.0)
    fresh = engine_for(config, *rule_ids)
    fresh.restore(store)
    store.close()
    since = fresh.resume_point()
    rerun = [r for r in stored if r.ts >= since]
    signals = fresh.evaluate(config.fleet.batch(sorted(rerun, key=lambda r: r.ts))) if rerun else []
    return fresh, signals


class Alerts:
    """An alert manager on a real SQLite file, recording every change as (event, rule, subject, tier, seconds after T0)."""

    def __init__(self, path: Path, fleet: Fleet) -> None:
        self.store = AlertStore(path)
        # rule scenarios watch what the rules say, so nothing latches here (alerting tests cover latching)
        self.manager = AlertManager(self.store, fleet, lambda: T0, AlertingSettings(latch_tiers=[], latch_families={}))
        self.log: list[tuple] = []

    def apply(self, signals: list[Signal]) -> None:
        """Apply signals and log the changes."""
        for change in self.manager.apply(signals):
            history = change.alert.history[-1]
            self.log.append((change.event, change.alert.rule_id, change.alert.subject, change.alert.tier.colour,
                             round(history.at - T0, 3)))

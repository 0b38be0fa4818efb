"""What leaves the rule engine: a `Signal`, the one type alerting consumes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

import numpy as np

from foundation.config import Fleet, Sensor
from foundation.domain import Family, ReadingBatch, Tier
from foundation.rulespec import Match

LEVEL_ZH = {
    "level1": "一级报警", "level2": "二级报警", "H": "高报(H)", "HH": "高高报(HH)", "L": "低报(L)", "LL": "低低报(LL)",
    "fire_suspected": "疑似火情(烟雾)", "fire_confirmed": "明火信号",
    "rate_rise": "上升速率报警", "rate_fall": "下降速率报警", "fault": "传感器故障", "confirmed": "多点确认",
    "fire_detected": "发现火情", "over_range": "超量程", "bypassed": "联锁旁路", "esd_tripped": "紧急切断动作",
}
"""Chinese names of device alarm levels, as the duty room says them."""


@dataclass(frozen=True, slots=True)
class Signal:
    """A rule's verdict on one subject at one event time.

    ``tier`` is the tier the condition now calls for, or None when the condition has cleared.
    Alerting turns a stream of signals into alert episodes (raise, escalate, resolve).

    ``message`` is the rule's own Chinese line; ``facts`` are the structured fields behind it (ids,
    numbers, words' keys — never prose) from which alerting/messages.py renders the alarm's title and
    text in Chinese and English. Each kind's keys are listed in `alerting.messages.FACTS`; an empty
    mapping still renders (from kind, level, value and unit).
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
    facts: dict[str, Any] = field(default_factory=dict)


class Rule(Protocol):
    """A running rule: consumes readings in event time, emits signals when its verdict changes."""

    def evaluate(self, batch: ReadingBatch) -> list[Signal]:
        """Evaluate a micro-batch ordered by event time; return the changes it causes."""
        ...


def members(fleet: Fleet, match: Match, keep: Callable[[Sensor], bool] = lambda sensor: True) -> np.ndarray:
    """Fleet indices of the sensors ``match`` selects (and ``keep`` accepts), ascending."""
    return np.array([i for i, sensor_id in enumerate(fleet.sensor_ids)
                     if match.selects(sensor := fleet.sensors[sensor_id], fleet.sites[sensor.site_id]) and keep(sensor)],
                    dtype=np.int64)


def station_of(sensor: Sensor) -> str:
    """The weather/lookout station a forest sensor belongs to: its id without the last ``-part``.

    >>> from types import SimpleNamespace
    >>> station_of(SimpleNamespace(id="LC-DEHH-WS1-TA"))
    'LC-DEHH-WS1'
    """
    return sensor.id.rsplit("-", 1)[0]

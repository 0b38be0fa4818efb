"""Test doubles for the warning desk: a recording MQTT publisher, a recording outbox, a sample warning.

Shipped in the package (as `ingest.testing` is) because the pipeline's and scenario tests need
them as much as ours.
"""

from __future__ import annotations

import threading

import orjson

from earlywarning.model import Area, EarlyWarning, HistoryEntry, Origin, Subject, SubjectKind, WarningEvent, \
    WarningState
from earlywarning.notices import Notice
from foundation.warningspec import Circle, Issuer, Measure, WarningLevel

__all__ = ["RecordingOutbox", "RecordingPublisher", "sample_warning"]


class RecordingPublisher:
    """A ``publish(topic, payload, retain)`` that records every message and keeps the broker's retained view.

    >>> p = RecordingPublisher()
    >>> p("liaowang/v1/warnings/W1", b'{"a": 1}', True), p("liaowang/v1/warnings/W1", b"", True)
    (True, True)
    >>> p.retained, len(p.messages)
    ({}, 2)
    """

    def __init__(self, fail: bool = False) -> None:
        self.messages: list[tuple[str, bytes, bool]] = []
        self.retained: dict[str, bytes] = {}
        self.fail = fail
        self._lock = threading.Lock()

    def __call__(self, topic: str, payload: bytes, retain: bool) -> bool:
        if self.fail:
            return False
        with self._lock:
            self.messages.append((topic, payload, retain))
            if retain:
                if payload:
                    self.retained[topic] = payload
                else:
                    self.retained.pop(topic, None)  # an empty retained message clears the topic (MQTT 3.1.1 §3.3.1.3)
        return True

    def bodies(self) -> list[dict]:
        """The non-empty payloads, decoded, in order."""
        with self._lock:
            return [orjson.loads(p) for _, p, _ in self.messages if p]


class RecordingOutbox:
    """A ``notify(notice)`` that keeps every notice, keyed as an outbox would (the same key twice: stored once)."""

    def __init__(self) -> None:
        self.notices: dict[str, Notice] = {}

    def __call__(self, notice: Notice) -> None:
        self.notices.setdefault(notice.key, notice)

    def receivers(self, event: str | None = None) -> list[str]:
        """Receivers notified, in order (of ``event`` only, e.g. ``warning_issued``)."""
        return [n.receiver for n in self.notices.values() if event is None or n.event == event]


def sample_warning(level: WarningLevel = WarningLevel.II, state: WarningState = WarningState.ISSUED,
                   at: float = 1_795_564_800.0) -> EarlyWarning:
    """A small warning about 鲁西集团, for doctests and examples."""
    subject = Subject(SubjectKind.ENTERPRISE, "LC-LUXI", "鲁西集团", "LC-LUXI", "东昌府区")
    return EarlyWarning(
        id="W20261125080000-sample", category="事故灾难/危险化学品", event="危险化学品事故", level=level, state=state,
        subject=subject, area=Area("鲁西集团 (东昌府区) 周边 3 公里", circle=Circle(lon=116.06, lat=36.47, radius_km=3)),
        watch=(Measure(text="可燃气体可能泄漏扩散", source="example"),),
        measures=(Measure(text="立即寻查释放点", source="example"),),
        issuer=Issuer(id="city", name="聊城市应急管理局", sender="liaocheng.yjj"), origin=Origin.RULE,
        proposed_at=at, proposed_by="rule:example", updated_at=at, onset=at, issued_at=at, issued_by="值班员",
        version=1, history=(HistoryEntry(at, WarningEvent.PROPOSED, "rule:example", level, WarningState.PROPOSED),))

"""Warnings on MQTT: ``liaowang/v1/warnings/{warning_id}``, retained while in force, cleared when lifted.

The payload is ``{"event", "warning", "document"}``: the step (issued, adjusted, lifted), the
warning as the API shows it, and the CAP document published for the step. A lifted warning is sent
once more, not retained (a live subscriber sees the Cancel), and then an empty retained message
clears the topic, so a new subscriber sees only warnings in force.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import orjson

from earlywarning.model import EarlyWarning, WarningEvent

__all__ = ["WARNINGS_TOPIC", "Message", "Publish", "messages"]

WARNINGS_TOPIC = "liaowang/v1/warnings/{warning_id}"

Publish = Callable[[str, bytes, bool], object]
"""``publish(topic, payload, retain)``: sends at QoS 1; returns False (or raises) when the broker did not take it."""


@dataclass(frozen=True, slots=True)
class Message:
    topic: str
    payload: bytes
    retain: bool


def messages(warning: EarlyWarning, event: WarningEvent, document: dict[str, Any]) -> list[Message]:
    """The MQTT messages of a published step, in the order they must be sent.

    >>> from earlywarning.testing import sample_warning
    >>> [(m.retain, len(m.payload) > 0) for m in messages(sample_warning(), WarningEvent.ISSUED, {})]
    [(True, True)]
    """
    topic = WARNINGS_TOPIC.format(warning_id=warning.id)
    body = orjson.dumps({"event": event.value, "warning": warning.to_json(), "document": document})
    if warning.in_force:
        return [Message(topic, body, True)]
    return [Message(topic, body, False), Message(topic, b"", True)]

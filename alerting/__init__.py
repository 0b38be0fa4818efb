"""Alerting: signals and people's actions become alarm episodes (docs/alarms.md), stored and announced."""

from alerting.messages import Messages, Rendered
from alerting.lifecycle import AlertChange, AlertManager, AlertNotFound, InvalidAction, LifecycleError, NotPermitted
from alerting.model import EVENTS, OPEN_STATES, STATES, AlarmState, Alert, Event
from alerting.publish import MqttAlertPublisher
from alerting.status import site_statuses
from alerting.store import AlertStore

__all__ = ["EVENTS", "OPEN_STATES", "STATES", "AlarmState", "Alert", "AlertChange", "AlertManager", "AlertNotFound",
           "AlertStore", "Event", "InvalidAction", "LifecycleError", "Messages", "MqttAlertPublisher", "NotPermitted", "Rendered",
           "site_statuses"]

"""Alerting: signals and people's actions become alert episodes, stored and announced."""

from alerting.lifecycle import AlertChange, AlertManager, AlertNotFound, LifecycleError
from alerting.model import OPEN_STATES, STATES, Alert
from alerting.publish import MqttAlertPublisher
from alerting.status import site_statuses
from alerting.store import AlertStore

__all__ = ["OPEN_STATES", "STATES", "Alert", "AlertChange", "AlertManager", "AlertNotFound", "AlertStore",
           "LifecycleError", "MqttAlertPublisher", "site_statuses"]

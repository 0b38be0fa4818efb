"""Announcing alert changes on MQTT (CONTRACT §2): every change at QoS 1, site status retained."""

from __future__ import annotations

import orjson
import paho.mqtt.client as mqtt

from alerting.lifecycle import AlertChange

ALERTS_TOPIC = "liaowang/v1/alerts/{site_id}"
SITE_STATUS_TOPIC = "liaowang/v1/site-status/{site_id}"


class MqttAlertPublisher:
    """Publishes alert changes and retained site statuses through a connected paho client."""

    def __init__(self, client: mqtt.Client) -> None:
        self._client = client

    def publish_change(self, change: AlertChange) -> None:
        """Publish one alert change (the alert JSON plus ``event``) at QoS 1, as the bytes the change holds."""
        self._client.publish(ALERTS_TOPIC.format(site_id=change.alert.site_id), change.payload(), qos=1)

    def publish_site_status(self, site_id: str, status: dict) -> None:
        """Publish a site's current status, retained, so a new subscriber sees it at once."""
        self._client.publish(SITE_STATUS_TOPIC.format(site_id=site_id), orjson.dumps({"site_id": site_id, **status}),
                             qos=1, retain=True)

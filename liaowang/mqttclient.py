"""One way to make a paho-mqtt client, shared by ingest, alerting and the simulators.

A leaf module (imports only paho and the settings model), so any stage may use it.
"""

from __future__ import annotations

import paho.mqtt.client as mqtt

from liaowang.config import MqttSettings


def make_client(settings: MqttSettings, client_id: str, *, persistent: bool = False,
                manual_ack: bool = False, max_inflight: int = 100) -> mqtt.Client:
    """A paho 2.x client (MQTT 3.1.1) configured from ``settings``; not yet connected.

    ``persistent`` keeps the broker-side session (clean_session=False) so QoS 1 messages wait for
    the client while it is away. Outgoing QoS 1 is flow-controlled: paho breaks past 65,535
    outstanding messages (TRAPS.md), so the queue is bounded and publishers wait on it.
    """
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=not persistent,
                         protocol=mqtt.MQTTv311, manual_ack=manual_ack)
    if settings.username:
        client.username_pw_set(settings.username,
                               settings.password.get_secret_value() if settings.password else None)
    client.max_inflight_messages_set(max_inflight)
    client.max_queued_messages_set(10_000)
    client.reconnect_delay_set(min_delay=1, max_delay=30)
    return client

"""Publishes the whole fleet's readings to MQTT per CONTRACT §1, in batches per site.

Event time starts at ``start`` (default: now) and advances one ``tick_s`` at a time; at speed 1
the loop keeps pace with the wall clock, at speed X it runs X times faster, at speed 0 as fast as
the broker takes it. Publishing is QoS 1 with flow control (paho breaks past 65,535 outstanding
messages: TRAPS.md).
"""

from __future__ import annotations

import threading
import time
from typing import Iterable, Iterator

import orjson
import structlog

from foundation.config import Fleet, MqttSettings
from foundation.mqttclient import BoundedPublisher, make_client
from simulators.incidents import DEMO_INCIDENTS, Incident
from simulators.models import baseline

log = structlog.get_logger("simulators")


class FleetSimulator:
    """Generates readings for every sensor at its period, plus the incidents on top."""

    def __init__(self, fleet: Fleet, *, seed: int = 1, incidents: Iterable[Incident] = DEMO_INCIDENTS,
                 cycle_s: float = 900.0) -> None:
        self._fleet = fleet
        self._seed = seed
        self._cycle_s = cycle_s
        self._incidents: dict[str, list[Incident]] = {}
        for incident in incidents:
            if incident.sensor_id in fleet.sensors:
                self._incidents.setdefault(incident.sensor_id, []).append(incident)

    def value(self, sensor_id: str, t: float, elapsed: float) -> float:
        """The reading of ``sensor_id`` at event time ``t``, ``elapsed`` seconds into the run."""
        sensor = self._fleet.sensors[sensor_id]
        value = baseline(sensor, t, self._seed)
        for incident in self._incidents.get(sensor_id, ()):
            value += incident.delta(elapsed, self._cycle_s)
        return round(value, 4)

    def batches(self, start: float, tick_s: float = 1.0) -> Iterator[tuple[float, dict[str, list[dict]]]]:
        """Endless ``(event time, {site_id: [reading, ...]})`` per tick, each sensor at its period."""
        due = {sensor_id: start for sensor_id in self._fleet.sensors}
        tick = 0
        while True:
            t = start + tick * tick_s
            by_site: dict[str, list[dict]] = {}
            for sensor_id, sensor in self._fleet.sensors.items():
                if due[sensor_id] <= t:
                    due[sensor_id] += sensor.period_s
                    by_site.setdefault(sensor.site_id, []).append(
                        {"sensor_id": sensor_id, "ts": round(t, 3), "value": self.value(sensor_id, t, t - start),
                         "unit": sensor.unit})
            yield t, by_site
            tick += 1


def run_simulator(fleet: Fleet, mqtt: MqttSettings, *, speed: float = 1.0, seed: int = 1,
                  start: float | None = None, duration_s: float | None = None,
                  stop: threading.Event | None = None) -> int:
    """Publish the fleet until ``stop`` is set or ``duration_s`` of event time has passed.

    Returns the number of readings published.
    """
    stop = stop or threading.Event()
    client = make_client(mqtt, f"liaowang-sim-{seed}-{int(time.time() * 1000) % 100000}")
    client.max_queued_messages_set(0)  # BoundedPublisher bounds the backlog; paho must not refuse
    client.connect_async(mqtt.host, mqtt.port, mqtt.keepalive_s)
    client.loop_start()
    out = BoundedPublisher(client, max_outstanding=1000)
    waited = 0
    while not client.is_connected() and not stop.wait(0.05):  # event time starts once we can publish
        waited += 1
        if waited % 200 == 0:  # every 10 s: say why nothing happens
            log.warning("simulator_waiting_for_broker", host=mqtt.host, port=mqtt.port, waited_s=waited // 20)
    start = time.time() if start is None else start
    wall0 = time.monotonic()
    published = 0
    sim = FleetSimulator(fleet, seed=seed)
    log.info("simulator_started", sensors=len(fleet.sensors), speed=speed, seed=seed)
    for site_id in fleet.sites:
        out.publish(f"liaowang/v1/status/{site_id}", b'{"state": "online"}', qos=1, retain=True)
    try:
        for t, by_site in sim.batches(start):
            if stop.is_set() or (duration_s is not None and t - start >= duration_s):
                break
            if speed > 0:
                lag = (t - start) / speed - (time.monotonic() - wall0)
                if lag > 0 and stop.wait(lag):
                    break
            for site_id, readings in by_site.items():
                out.publish(f"liaowang/v1/readings/{site_id}", orjson.dumps({"site_id": site_id, "readings": readings}))
                published += len(readings)
    finally:
        if not stop.is_set():
            out.flush(timeout=30)
        client.disconnect()
        client.loop_stop()
        log.info("simulator_stopped", readings=published)
    return published

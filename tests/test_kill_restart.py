"""kill -9 of a running `liaowang run` with active, acknowledged and shelved alerts and a pending
escalation; after the restart: the same alerts, no notification twice, the escalation still on time.
And a kill between an alarm and its notification: the alarm and its outbox rows are one
transaction, so after the restart every alarm is notified, once.

Notifications are watched on the MQTT channel (`liaowang/v1/notifications/#`) across both runs.
The configuration is the demo's with a yellow acknowledgement deadline of 15 s (so the escalation
falls after the kill) and stale detection pushed out of the test's way.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections import Counter

import orjson
import yaml

from liaowang.broker import stored_credentials
from tests.alerting.servers import Recorder
from tests.conftest import CONFIG_DIR, Subscriber, free_port, publisher, wait_until
from tests.test_cli_run import get_json, healthy

DETECTORS = {"active": "LC-QLQY-GD-01", "acknowledged": "LC-HTHG-GD-01", "shelved": "LC-CPHG-GD-01"}


def start(config, data, http_port, mqtt_port):
    process = subprocess.Popen(
        [sys.executable, "-m", "liaowang.cli", "--log-level", "warning", "run", "--config", str(config),
         "--data-dir", str(data), "--http-port", str(http_port), "--mqtt-port", str(mqtt_port), "--no-simulators"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_until(lambda: process.poll() is not None or healthy(f"http://127.0.0.1:{http_port}/healthz"), timeout=60)
    assert process.poll() is None
    return process


def post(url: str, token: str, body: dict) -> dict:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.loads(response.read())


def test_kill_9_and_restart_keeps_alerts_sends_nothing_twice_and_escalates_on_time(tmp_path):
    config = tmp_path / "config"
    shutil.copytree(CONFIG_DIR, config)
    alerting = yaml.safe_load((config / "alerting.yaml").read_text(encoding="utf-8"))
    alerting["ack_deadline_s"] = {"red": 300, "orange": 600, "yellow": 15}
    alerting["repeat_s"] = {"red": 86400, "orange": 86400, "yellow": 86400}
    (config / "alerting.yaml").write_text(yaml.safe_dump(alerting, allow_unicode=True), encoding="utf-8")
    settings = yaml.safe_load((config / "liaowang.yaml").read_text(encoding="utf-8"))
    settings["rules"]["stale_periods"] = 10_000
    (config / "liaowang.yaml").write_text(yaml.safe_dump(settings, allow_unicode=True), encoding="utf-8")
    http_port, mqtt_port, data = free_port(), free_port(), tmp_path / "data"
    base = f"http://127.0.0.1:{http_port}/api/v1"

    first = start(config, data, http_port, mqtt_port)
    try:
        own = stored_credentials(data)  # the embedded broker's own user, made by `liaowang run` in its data dir
        watcher = Subscriber("127.0.0.1", mqtt_port, "liaowang/v1/notifications/#", own)
        pub = publisher("127.0.0.1", mqtt_port, own)
        for sensor in DETECTORS.values():
            site = sensor.rsplit("-", 2)[0]
            body = {"sensor_id": sensor, "ts": time.time(), "value": 25.0, "unit": "%LEL"}
            pub.publish(f"liaowang/v1/readings/{site}/{sensor}", orjson.dumps(body), qos=1).wait_for_publish(5)
        alerts = wait_until(lambda: (found := get_json(base + "/alerts")) and len(found) == 3 and found, timeout=15)
        by_subject = {a["subject"]: a for a in alerts}
        post(f"{base}/alerts/{by_subject[DETECTORS['acknowledged']]['id']}/ack", "demo-operator", {})
        post(f"{base}/alerts/{by_subject[DETECTORS['shelved']]['id']}/shelve", "demo-duty",
             {"duration_s": 7200, "reason": "检修"})
        wait_until(lambda: sum(1 for n in watcher.json() if n["event"] == "raised") == 3, timeout=10)
        before = {a["id"]: a["state"] for a in get_json(base + "/alerts")}
    finally:
        first.kill()  # SIGKILL: no stop, no final snapshot; the embedded broker dies with it
        first.wait()
    assert not any(n["event"] == "notification_escalated" for n in watcher.json())

    second = start(config, data, http_port, mqtt_port)
    try:
        after = {a["id"]: a["state"] for a in get_json(base + "/alerts")}
        assert after == before
        assert sorted(before.values()) == ["acknowledged", "active", "shelved"]
        escalated = wait_until(lambda: [n for n in watcher.json() if n["event"] == "notification_escalated"], timeout=30)
        [note] = escalated
        assert note["alert_id"] == by_subject[DETECTORS["active"]]["id"] and note["receiver"] == "plant-safety"
        time.sleep(3)  # give a duplicate the chance to show itself
        ids = Counter(n["id"] for n in watcher.json())
        assert ids and max(ids.values()) == 1, [i for i, n in ids.items() if n > 1]
        assert sum(1 for n in watcher.json() if n["event"] == "raised") == 3
        active = get_json(f"{base}/alerts/{by_subject[DETECTORS['active']]['id']}")
        assert [h["event"] for h in active["history"]] == ["raised", "notification_escalated"]
    finally:
        second.kill()
        second.wait()
        watcher.close()


def test_a_kill_between_an_alarm_and_its_notification_loses_no_notification_and_sends_none_twice(tmp_path):
    """The webhook receiver is down (503) while three alarms are raised; liaowang is killed with their
    notifications still queued; after the restart (receiver up) each is delivered exactly once."""
    up = {"now": False}
    accepted: Counter = Counter()

    def answer(n: int, body: dict) -> tuple[int, dict]:
        if not up["now"]:
            return 503, {"error": "receiver down"}
        accepted[body["id"]] += 1
        return 200, {"ok": True}

    receiver = Recorder(answer)
    config = tmp_path / "config"
    shutil.copytree(CONFIG_DIR, config)
    alerting = yaml.safe_load((config / "alerting.yaml").read_text(encoding="utf-8"))
    for entry in alerting["receivers"]:
        entry["channels"] = [{"kind": "webhook", "url": f"{receiver.url}/{entry['id']}"}]
    alerting["retry_max_attempts"] = 50  # keep retrying the receiver, never hand over to the fallback
    (config / "alerting.yaml").write_text(yaml.safe_dump(alerting, allow_unicode=True), encoding="utf-8")
    settings = yaml.safe_load((config / "liaowang.yaml").read_text(encoding="utf-8"))
    settings["rules"]["stale_periods"] = 10_000
    (config / "liaowang.yaml").write_text(yaml.safe_dump(settings, allow_unicode=True), encoding="utf-8")
    http_port, mqtt_port, data = free_port(), free_port(), tmp_path / "data"
    base = f"http://127.0.0.1:{http_port}/api/v1"
    first = start(config, data, http_port, mqtt_port)
    try:
        pub = publisher("127.0.0.1", mqtt_port, stored_credentials(data))
        for sensor in DETECTORS.values():
            site = sensor.rsplit("-", 2)[0]
            body = {"sensor_id": sensor, "ts": time.time(), "value": 25.0, "unit": "%LEL"}
            pub.publish(f"liaowang/v1/readings/{site}/{sensor}", orjson.dumps(body), qos=1).wait_for_publish(5)
        alerts = wait_until(lambda: (found := get_json(base + "/alerts")) and len(found) == 3 and found, timeout=15)
        wait_until(lambda: len(receiver.posts) >= 3, timeout=15)  # the receiver refused at least one attempt
    finally:
        first.kill()  # between the alarm (stored) and its notification (queued, not delivered)
        first.wait()
    with sqlite3.connect(data / "alerts.db") as db:
        for alert in alerts:
            queued = db.execute("SELECT count(*) FROM outbox WHERE alert_id = ? AND status = 'pending'",
                                (alert["id"],)).fetchone()[0]
            assert queued >= 1, f"alarm {alert['id']} stored without its notification queued"
    assert not accepted

    up["now"] = True
    second = start(config, data, http_port, mqtt_port)
    try:
        raised = wait_until(lambda: {d for d in accepted if ":h0:" in d} if len(accepted) >= 3 else None, timeout=60)
        assert {d.split(":")[0] for d in raised} == {a["id"] for a in alerts}
        time.sleep(3)  # a duplicate would show itself now
        assert max(accepted.values()) == 1, [d for d, n in accepted.items() if n > 1]
    finally:
        second.kill()
        second.wait()
        receiver.close()

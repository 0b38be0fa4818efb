"""The embedded broker is never open (issue 11), on mosquitto and on amqtt, over real TCP:

nobody anonymous; a gateway neither takes ingest's client id nor its queued readings, nor publishes
for another site, nor subscribes; off loopback it starts only for configured gateways and never
with the demo one; amqtt closes sockets that send no CONNECT and keeps its logs short.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import stat
import struct
import subprocess
import sys
import threading
import time

import orjson
import paho.mqtt.client as mqtt
import pytest
import yaml
from pydantic import SecretStr

import liaowang.broker_amqtt as broker_amqtt
from liaowang.broker import (AmqttBroker, BrokerRefused, Credentials, exposure_problem, find_mosquitto,
                             start_broker)
from liaowang.broker_auth import hash_password, own_credentials, verify_password
from foundation.config import MqttGateway, MqttSettings
from foundation.mqttclient import ConnectRefused
from liaowang.pipeline import Pipeline

from .conftest import CONFIG_DIR, config_for, free_port, mqtt_client, start_test_broker, wait_until

KINDS = [pytest.param("mosquitto", marks=pytest.mark.skipif(find_mosquitto() is None, reason="mosquitto not installed")),
         "amqtt"]
GATEWAY = MqttGateway(username="gw-luxi", password=SecretStr("gw-luxi-secret"), sites=["LC-LUXI"])
GATEWAY_LOGIN = Credentials("gw-luxi", SecretStr("gw-luxi-secret"))
INGEST_ID = "liaowang-ingest"


def attempt(port: int, credentials: Credentials | None, client_id: str, *, clean_session: bool = True,
            anonymous: bool = False, on_message=None) -> tuple[mqtt.Client, mqtt.ReasonCode | None]:
    """Connect once; return the client (connected or not) and the CONNACK's reason code."""
    client = (mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=clean_session)
              if anonymous else mqtt_client(port, client_id, credentials, clean_session=clean_session))
    client.on_message = on_message
    answered = threading.Event()
    reason: list[mqtt.ReasonCode] = []
    client.on_connect = lambda c, u, f, rc, p: (reason.append(rc), answered.set())
    client.connect("127.0.0.1", port)
    client.loop_start()
    answered.wait(10)
    return client, (reason[0] if reason else None)


def close(client: mqtt.Client) -> None:
    client.disconnect()
    client.loop_stop()


def refused(port: int, credentials: Credentials | None, client_id: str, **options) -> bool:
    client, reason = attempt(port, credentials, client_id, **options)
    close(client)
    return reason is not None and reason.is_failure


@pytest.fixture(params=KINDS)
def guarded(request, tmp_path):
    """A broker of each kind, as `liaowang run` starts it, with one gateway for LC-LUXI."""
    running = start_test_broker(request.param, tmp_path / "broker", gateways=[GATEWAY])
    yield running
    running.running.stop()


def test_anonymous_and_wrong_passwords_are_refused(guarded):
    port, own = guarded.port, guarded.credentials
    assert refused(port, None, "anyone", anonymous=True)
    assert refused(port, Credentials(own.username, SecretStr("guess")), "anyone")
    assert refused(port, Credentials("nobody", SecretStr("x")), "anyone")
    assert refused(port, Credentials(GATEWAY_LOGIN.username, SecretStr("guess")), "gw-luxi")
    assert not refused(port, own, "any-client-id-of-liaowang")
    assert not refused(port, GATEWAY_LOGIN, "gw-luxi")


def test_a_gateway_can_neither_take_ingests_client_id_nor_its_queued_readings(guarded):
    port, own = guarded.port, guarded.credentials
    ingest, reason = attempt(port, own, INGEST_ID, clean_session=False)
    subscribed = threading.Event()
    ingest.on_subscribe = lambda *_: subscribed.set()
    ingest.subscribe("liaowang/v1/readings/#", qos=1)
    assert subscribed.wait(10)
    close(ingest)  # away: the broker queues its QoS 1 readings

    gateway, _ = attempt(port, GATEWAY_LOGIN, "gw-luxi")
    for i in range(5):
        gateway.publish(f"liaowang/v1/readings/LC-LUXI/LC-LUXI-GD-0{i + 1}", b'{"ts": 1, "value": 1}', qos=1
                        ).wait_for_publish(5)
    close(gateway)

    # with its own password, but ingest's client id: resuming (and on amqtt, discarding) the session fails
    assert refused(port, GATEWAY_LOGIN, INGEST_ID, clean_session=False)
    assert refused(port, GATEWAY_LOGIN, INGEST_ID, clean_session=True)
    # with its own client id it may not subscribe to readings at all
    spy, _ = attempt(port, GATEWAY_LOGIN, "gw-luxi")
    granted: list = []
    answered = threading.Event()
    spy.on_subscribe = lambda c, u, mid, codes, p: (granted.extend(codes), answered.set())
    spy.on_message = lambda *_: pytest.fail("the gateway received a reading")
    spy.subscribe("liaowang/v1/readings/#", qos=1)
    assert answered.wait(10) and all(code.is_failure for code in granted)
    close(spy)

    received: list[str] = []
    back, _ = attempt(port, own, INGEST_ID, clean_session=False, on_message=lambda c, u, msg: received.append(msg.topic))
    wait_until(lambda: len(received) >= 5, timeout=10)
    close(back)
    assert sorted(received) == [f"liaowang/v1/readings/LC-LUXI/LC-LUXI-GD-0{i}" for i in range(1, 6)]


def test_a_gateway_cannot_publish_for_another_site(guarded, tmp_path, demo_config):
    pipeline = Pipeline(config_for(demo_config, guarded.port), tmp_path / "data")
    pipeline.start()
    try:
        assert pipeline.ingest.wait_connected(10)
        gateway, _ = attempt(guarded.port, GATEWAY_LOGIN, "gw-luxi")
        now = time.time()
        for topic, sensor in (("liaowang/v1/readings/LC-XFHG/LC-XFHG-GD-01", "LC-XFHG-GD-01"),  # not its site
                              ("liaowang/v1/alerts/LC-XFHG", "LC-XFHG-GD-01"),                 # not readings at all
                              ("liaowang/v1/readings/LC-LUXI/LC-LUXI-GD-01", "LC-LUXI-GD-01")):
            gateway.publish(topic, orjson.dumps({"sensor_id": sensor, "ts": now, "value": 1.0}), qos=1
                            ).wait_for_publish(5)
        wait_until(lambda: pipeline.readings.count() >= 1)
        time.sleep(0.5)  # the refused ones were sent first; give a leak the chance to show itself
        assert pipeline.readings.count() == 1
        close(gateway)
    finally:
        pipeline.stop()


@pytest.mark.parametrize("kind", ["mosquitto", "amqtt"])
def test_off_loopback_it_starts_only_for_configured_gateways_and_never_with_the_demo_one(kind, tmp_path):
    demo = MqttGateway(username="demo-gateway", password=SecretStr("demo-gateway"), sites=["LC-LUXI"])
    for gateways in ([], [demo], [GATEWAY, demo]):
        with pytest.raises(BrokerRefused):
            start_broker(kind, "0.0.0.0", free_port(), tmp_path, gateways=gateways)
    assert not any(tmp_path.iterdir()), "nothing was written before refusing"


def test_exposure_rules_of_liaowang_run():
    assert exposure_problem(MqttSettings()) is None
    assert exposure_problem(MqttSettings(host="0.0.0.0"))[0] == "broker_off_loopback_without_gateways"
    assert exposure_problem(MqttSettings(host="0.0.0.0", gateways=[GATEWAY])) is None
    assert exposure_problem(MqttSettings(host="10.0.0.5", embedded_broker="none"))[0] == "mqtt_anonymous_off_loopback"
    assert exposure_problem(MqttSettings(host="10.0.0.5", embedded_broker="none", username="liaowang")) is None


@pytest.mark.parametrize("gateways, event", [
    (None, "demo_gateway_off_loopback"),  # the demo configuration holds the demo gateway
    ([], "broker_off_loopback_without_gateways"),
])
def test_liaowang_run_refuses_an_open_broker_off_loopback(tmp_path, gateways, event):
    config = tmp_path / "config"
    shutil.copytree(CONFIG_DIR, config)
    if gateways is not None:
        settings = yaml.safe_load((config / "liaowang.yaml").read_text(encoding="utf-8"))
        settings["mqtt"]["gateways"] = gateways
        (config / "liaowang.yaml").write_text(yaml.safe_dump(settings, allow_unicode=True), encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "liaowang.cli", "run", "--config", str(config), "--data-dir", str(tmp_path / "data"),
         "--http-port", str(free_port()), "--mqtt-port", str(free_port()), "--no-simulators"],
        env={**os.environ, "LIAOWANG_MQTT__HOST": "0.0.0.0"}, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, result.stderr
    assert event in result.stderr
    assert not (tmp_path / "data" / "broker").exists(), "refused before any broker file was written"


def test_own_credentials_are_made_once_per_data_dir_and_private(tmp_path):
    first = own_credentials(tmp_path)
    assert own_credentials(tmp_path) == first
    path = tmp_path / "broker" / "liaowang.password"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "broker").stat().st_mode) == 0o700
    assert own_credentials(tmp_path / "other") != first


@pytest.mark.skipif(shutil.which("mosquitto_passwd") is None, reason="mosquitto_passwd not installed")
@pytest.mark.parametrize("kind", KINDS)
def test_a_gateway_configured_with_a_mosquitto_passwd_hash_gets_in(kind, tmp_path):
    passwd = tmp_path / "passwd"
    subprocess.run(["mosquitto_passwd", "-c", "-b", str(passwd), "gw-hashed", "s3cret pass"], check=True)
    password_hash = passwd.read_text().strip().split(":", 1)[1]
    assert password_hash.startswith("$7$") and verify_password("s3cret pass", password_hash)
    gateway = MqttGateway(username="gw-hashed", password_hash=password_hash, sites=["LC-LUXI"])
    running = start_test_broker(kind, tmp_path / "broker", gateways=[gateway])
    try:
        assert not refused(running.port, Credentials("gw-hashed", SecretStr("s3cret pass")), "gw-hashed")
        assert refused(running.port, Credentials("gw-hashed", SecretStr("s3cret")), "gw-hashed")
    finally:
        running.running.stop()


def test_hash_password_is_what_mosquitto_passwd_verifies():
    assert verify_password("pw", hash_password("pw")) and not verify_password("pw2", hash_password("pw"))


def test_amqtt_closes_sockets_that_send_no_connect_and_lets_a_new_client_in(tmp_path):
    port = free_port()
    broker = AmqttBroker("127.0.0.1", port, tmp_path, connect_timeout_s=1.0, max_connections=10)
    idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(10)]  # every slot taken
    try:
        started = time.monotonic()
        client, reason = attempt(port, broker.credentials, "after-the-idle-ones")
        assert reason is not None and not reason.is_failure, "a new client got in once the idle ones were dropped"
        assert time.monotonic() - started < 8
        close(client)
        idle[0].settimeout(5)
        assert idle[0].recv(1) == b"", "the broker closed the idle socket"
    finally:
        for sock in idle:
            sock.close()
        broker.stop()


def _connect_packet(client_id: str, username: str, password: str) -> bytes:
    def text(value: str) -> bytes:
        return struct.pack("!H", len(value.encode())) + value.encode()

    body = text("MQTT") + bytes([4, 0xC2]) + struct.pack("!H", 30) + text(client_id) + text(username) + text(password)
    return bytes([0x10, len(body)]) + body


def test_amqtt_logs_a_stream_of_garbage_after_connect_a_few_times_only(tmp_path, monkeypatch):
    monkeypatch.setattr(broker_amqtt, "THROTTLE", broker_amqtt.Throttle(burst=5, window_s=60))
    records: list[logging.LogRecord] = []
    catcher = logging.Handler()
    catcher.emit = records.append  # type: ignore[method-assign]
    logging.getLogger().addHandler(catcher)
    port = free_port()
    broker = AmqttBroker("127.0.0.1", port, tmp_path)
    own = broker.credentials
    try:
        for i in range(20):
            with socket.create_connection(("127.0.0.1", port)) as sock:
                sock.sendall(_connect_packet(f"garbage-{i}", own.username, own.password.get_secret_value()))
                sock.recv(4)  # CONNACK
                sock.sendall(b"\xf0\x00")  # a reserved packet type: amqtt logs it, then closes
                sock.settimeout(5)
                sock.recv(10)  # closed by the broker
        time.sleep(0.5)
    finally:
        broker.stop()
        logging.getLogger().removeHandler(catcher)
    per_logger: dict[str, int] = {}
    for record in records:
        if record.name.startswith("amqtt"):
            per_logger[record.name] = per_logger.get(record.name, 0) + 1
    assert per_logger and max(per_logger.values()) <= 5, per_logger


def test_a_tool_refused_by_the_broker_says_so_instead_of_publishing_nothing(guarded):
    from simulators.load import run_load

    wrong = MqttSettings(port=guarded.port, username="liaowang", password=SecretStr("not-the-password"))
    with pytest.raises(ConnectRefused, match="refused liaowang"):
        run_load(wrong, sensors=10, rate_hz=1, batch=10, duration_s=1)

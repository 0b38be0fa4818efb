"""Notification channels against real local servers: SMTP (aiosmtpd), HTTP webhooks, robot formats.

WeCom and DingTalk run on the internet; their documented request formats are checked here and a
local HTTP server (`Recorder`, a test double at that boundary) answers with their documented
replies (``{"errcode": 0, "errmsg": "ok"}``, rate-limit codes).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import urllib.parse

import pytest
from aiosmtpd.controller import Controller

from alerting.db import AlertDB
from alerting.channels import (DingTalkSender, EmailSender, WebhookSender, WeComSender, dingtalk_body,
                               dingtalk_signed_url, wecom_body)
from alerting.notify import Notifier
from foundation.alertspec import AlertingSettings, DingTalkChannel, EmailChannel, WebhookChannel, WeComChannel
from foundation.domain import Family, Tier
from rules.base import Signal
from tests.alerting.servers import Recorder
from tests.conftest import free_port

NOTE = {"id": "a1:h0:op:0", "receiver": "op", "on_duty": None, "event": "raised", "alert_id": "a1", "tier": "red",
        "site_id": "LC-LUXI", "title": "【红色】鲁西集团 发布", "text": "可燃气体探测器01 45 %LEL\n告警号: a1",
        "markdown": "### 【红色】鲁西集团 发布\n> 可燃气体探测器01 45 %LEL", "alert": {"id": "a1"}}


@pytest.fixture
def recorder():
    r = Recorder()
    yield r
    r.close()


def test_email_reaches_a_real_smtp_server():
    received = []

    class Handler:
        async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's name
            received.append((envelope.mail_from, envelope.rcpt_tos, envelope.content.decode("utf-8", "replace")))
            return "250 Message accepted for delivery"

    port = free_port()
    controller = Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        spec = EmailChannel(kind="email", host="127.0.0.1", port=port, sender="liaowang@lc.example",
                            to=["duty@lc.example"])
        assert EmailSender(spec).send(NOTE).ok
    finally:
        controller.stop()
    [(sender, to, content)] = received
    assert sender == "liaowang@lc.example" and to == ["duty@lc.example"]
    assert "X-Liaowang-Notification-Id: a1:h0:op:0" in content


def test_email_to_a_closed_port_is_worth_a_retry():
    spec = EmailChannel(kind="email", host="127.0.0.1", port=free_port(), sender="a@b.c", to=["d@e.f"], timeout_s=2)
    result = EmailSender(spec).send(NOTE)
    assert not result.ok and result.retry


def test_webhook_posts_the_document_with_its_id(recorder):
    assert WebhookSender(WebhookChannel(kind="webhook", url=recorder.url + "/hook")).send(NOTE).ok
    [(path, headers, body)] = recorder.posts
    assert path == "/hook" and body == NOTE and headers["X-Liaowang-Notification-Id"] == NOTE["id"]


@pytest.mark.parametrize(("status", "retry"), [(503, True), (429, True), (400, False), (404, False)])
def test_webhook_failures_say_whether_to_retry(status, retry):
    server = Recorder(lambda n, body: (status, {}))
    try:
        result = WebhookSender(WebhookChannel(kind="webhook", url=server.url)).send(NOTE)
        assert (result.ok, result.retry) == (False, retry) and str(status) in result.detail
    finally:
        server.close()


def test_wecom_markdown_matches_the_documented_format(recorder):
    spec = WeComChannel(kind="wecom", url=recorder.url + "/cgi-bin/webhook/send?key=test", mentioned_mobiles=["13800000000"])
    assert WeComSender(spec).send(NOTE).ok
    [(path, _, body)] = recorder.posts
    assert path == "/cgi-bin/webhook/send?key=test"
    # WeCom group robot: {"msgtype": "markdown", "markdown": {"content": "<= 4096 bytes, UTF-8"}}
    assert set(body) == {"msgtype", "markdown"} and body["msgtype"] == "markdown"
    assert set(body["markdown"]) == {"content"} and len(body["markdown"]["content"].encode()) <= 4096
    assert "<@13800000000>" in body["markdown"]["content"]
    long = wecom_body({**NOTE, "markdown": "报警" * 3000}, [])
    assert len(long["markdown"]["content"].encode()) <= 4096


@pytest.mark.parametrize(("code", "retry"), [(45009, True), (93000, False)])
def test_wecom_error_codes(code, retry):
    server = Recorder(lambda n, body: (200, {"errcode": code, "errmsg": "x"}))
    try:
        result = WeComSender(WeComChannel(kind="wecom", url=server.url)).send(NOTE)
        assert (result.ok, result.retry) == (False, retry) and str(code) in result.detail
    finally:
        server.close()


def test_dingtalk_markdown_and_signature_match_the_documented_format(recorder):
    spec = DingTalkChannel(kind="dingtalk", url=recorder.url + "/robot/send?access_token=t", secret="SEC123",
                           at_mobiles=["13800000000"])
    assert DingTalkSender(spec, wall_clock=lambda: 1_700_000_000.123).send(NOTE).ok
    [(path, _, body)] = recorder.posts
    query = urllib.parse.parse_qs(urllib.parse.urlparse(path).query)
    assert query["access_token"] == ["t"] and query["timestamp"] == ["1700000000123"]
    # sign = Base64(HmacSHA256(secret, timestamp + "\n" + secret)), URL-encoded (DingTalk robot docs)
    expected = base64.b64encode(hmac.new(b"SEC123", b"1700000000123\nSEC123", hashlib.sha256).digest()).decode()
    assert query["sign"] == [expected]
    assert body["msgtype"] == "markdown" and set(body["markdown"]) == {"title", "text"}
    assert body["at"] == {"atMobiles": ["13800000000"], "isAtAll": False}
    assert "@13800000000" in body["markdown"]["text"]
    assert dingtalk_signed_url("https://x/robot/send?access_token=a", "s", 1).startswith("https://x/robot/send?access_token=a&timestamp=1&sign=")
    assert dingtalk_body(NOTE, [])["markdown"]["title"] == NOTE["title"]


def test_a_failing_channel_is_retried_with_backoff_then_the_fallback_takes_it(alerts_db_target, fleet):
    """The outbox's retries and fallback, with the outbox on SQLite and on PostgreSQL."""
    from alerting import AlertManager, AlertStore

    failing = Recorder(lambda n, body: (503, {}))
    fallback = Recorder()
    try:
        settings = AlertingSettings.model_validate({
            "retry_max_attempts": 3, "retry_initial_s": 2, "fallback_receiver": "backup",
            "receivers": [{"id": "op", "name": "op", "level": "plant_operator",
                           "channels": [{"kind": "webhook", "url": failing.url}]},
                          {"id": "backup", "name": "backup", "level": "city_duty_desk",
                           "channels": [{"kind": "webhook", "url": fallback.url}]}],
            "routes": [{"match": {}, "receivers": ["op"]}]})
        now = [1_795_564_800.0]
        db = AlertDB(alerts_db_target)
        manager = AlertManager(AlertStore(db), fleet, lambda: now[0], settings)
        notifier = Notifier(db, settings, fleet, manager, lambda: now[0])
        changes = manager.apply([Signal("gas.x", "threshold", "LC-LUXI-GD-01", "LC-LUXI", Family.GAS, Tier.YELLOW,
                                        "level1", 25.0, 20.0, "%LEL", now[0], "test")])
        notifier.on_changes(changes)
        for delay in (0, 1, 1, 3, 4, 0):  # attempts at +0, +2, +6 (backoff 2 s, then 4 s), then the fallback
            now[0] += delay
            notifier.deliver_due(now[0])
        alert_id = changes[0].alert.id
        log = [(d["receiver"], d["outcome"]) for d in notifier.deliveries(alert_id)]
        assert len(failing.posts) == 3
        assert log == [("op", "retry"), ("op", "retry"), ("op", "failed"), ("backup", "sent")]
        assert len(fallback.posts) == 1 and "转交" in fallback.posts[0][2]["title"]
        notifier.stop()
    finally:
        failing.close()
        fallback.close()


def test_the_log_channel_delivers():
    from alerting.channels import LogSender

    assert LogSender().send(NOTE).ok

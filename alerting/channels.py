"""Notification channels behind one interface: each send says whether a failure is worth a retry.

Channels: the log, MQTT (``liaowang/v1/notifications/{receiver}``), a generic JSON webhook, the
WeCom (企业微信) and DingTalk (钉钉) group-robot webhooks (markdown messages, their documented
formats), and email over SMTP. HTTP goes through the standard library (one request per message;
no connection pool is worth a dependency at a duty room's message rates).

Retry policy: timeouts, refused connections, HTTP 429 and 5xx, the robots' rate-limit error codes
and SMTP 4xx replies are worth a retry; HTTP 4xx, other robot error codes and SMTP 5xx refusals
are not (the message or the configuration is wrong; retrying would only repeat it).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import smtplib
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any, Callable, Protocol

import orjson
import structlog

from foundation.alertspec import (DingTalkChannel, EmailChannel, LogChannel, MqttChannel, WebhookChannel,
                                WeComChannel)

log = structlog.get_logger("notify")

NOTIFY_TOPIC = "liaowang/v1/notifications/{receiver}"
WECOM_RETRY_CODES = {45009, 45033, -1}  # 45009: API rate limit; -1: system busy (WeCom error codes)
DINGTALK_RETRY_CODES = {130101, 130102, -1}  # 130101: sending too fast; -1: system busy
MARKDOWN_LIMIT = 4000  # WeCom markdown content is at most 4096 bytes; keep room for the footer


@dataclass(frozen=True, slots=True)
class Delivery:
    """The outcome of one send: ``ok``; otherwise whether a retry may succeed, and why not."""

    ok: bool
    retry: bool = False
    detail: str = ""


class Channel(Protocol):
    """Sends one notification document (see `alerting.notify.Notifier`)."""

    kind: str

    def send(self, note: dict[str, Any]) -> Delivery:
        """Deliver ``note``; never raise."""
        ...


def _truncate(text: str, limit: int = MARKDOWN_LIMIT) -> str:
    data = text.encode()
    return text if len(data) <= limit else data[:limit].decode(errors="ignore") + "…"


def _post_json(url: str, body: dict[str, Any], timeout: float, headers: dict[str, str] | None = None
               ) -> tuple[Delivery | None, dict[str, Any] | None]:
    """POST JSON; return (a failed Delivery, None) or (None, the parsed JSON reply or {})."""
    request = urllib.request.Request(url, data=orjson.dumps(body), method="POST",
                                     headers={"Content-Type": "application/json; charset=utf-8", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            raw = response.read()
    except urllib.error.HTTPError as err:
        retry = err.code == 429 or err.code >= 500
        return Delivery(False, retry, f"HTTP {err.code}"), None
    except (urllib.error.URLError, TimeoutError, socket.timeout, ConnectionError, OSError) as err:
        return Delivery(False, True, f"{type(err).__name__}: {getattr(err, 'reason', err)}"), None
    try:
        return None, orjson.loads(raw) if raw.strip() else {}
    except orjson.JSONDecodeError:
        return None, {}


def _robot_reply(reply: dict[str, Any] | None, retry_codes: set[int]) -> Delivery:
    """A group robot's answer: errcode 0 is success; its rate-limit codes are worth a retry."""
    code = (reply or {}).get("errcode", 0)
    if code == 0:
        return Delivery(True)
    return Delivery(False, code in retry_codes, f"errcode {code}: {(reply or {}).get('errmsg', '')}")


class LogSender:
    """Writes the notification to the structured log (always available; the last resort)."""

    kind = "log"

    def __init__(self, spec: LogChannel | None = None) -> None:
        self.spec = spec

    def send(self, note: dict[str, Any]) -> Delivery:
        log.info("notification", receiver=note["receiver"], alert_id=note.get("alert_id"), alert_event=note["event"],
                    tier=note.get("tier"), title=note["title"])
        return Delivery(True)


class MqttSender:
    """Publishes on ``liaowang/v1/notifications/{receiver}`` at QoS 1 through ``publish(topic, payload) -> bool``."""

    kind = "mqtt"

    def __init__(self, spec: MqttChannel, publish: Callable[[str, bytes], bool]) -> None:
        self.spec, self._publish = spec, publish

    def send(self, note: dict[str, Any]) -> Delivery:
        ok = self._publish(NOTIFY_TOPIC.format(receiver=note["receiver"]), orjson.dumps(note))
        return Delivery(ok, not ok, "" if ok else "broker did not take the message")


class WebhookSender:
    """POSTs the notification document as JSON; 2xx is success."""

    kind = "webhook"

    def __init__(self, spec: WebhookChannel) -> None:
        self.spec = spec

    def send(self, note: dict[str, Any]) -> Delivery:
        failed, _ = _post_json(self.spec.url, note, self.spec.timeout_s,
                               {"X-Liaowang-Notification-Id": note["id"], **self.spec.headers})
        return failed or Delivery(True)


def wecom_body(note: dict[str, Any], mentioned_mobiles: list[str]) -> dict[str, Any]:
    """A WeCom group-robot markdown message (msgtype markdown, content ≤ 4096 bytes)."""
    content = _truncate(note["markdown"])
    if mentioned_mobiles:
        content += "\n" + " ".join(f"<@{m}>" for m in mentioned_mobiles)
    return {"msgtype": "markdown", "markdown": {"content": content}}


class WeComSender:
    kind = "wecom"

    def __init__(self, spec: WeComChannel) -> None:
        self.spec = spec

    def send(self, note: dict[str, Any]) -> Delivery:
        failed, reply = _post_json(self.spec.url, wecom_body(note, self.spec.mentioned_mobiles), self.spec.timeout_s)
        return failed or _robot_reply(reply, WECOM_RETRY_CODES)


def dingtalk_body(note: dict[str, Any], at_mobiles: list[str]) -> dict[str, Any]:
    """A DingTalk group-robot markdown message (msgtype markdown with title and text; optional @)."""
    text = _truncate(note["markdown"])
    if at_mobiles:
        text += "\n" + " ".join(f"@{m}" for m in at_mobiles)
    return {"msgtype": "markdown", "markdown": {"title": note["title"], "text": text},
            "at": {"atMobiles": at_mobiles, "isAtAll": False}}


def dingtalk_signed_url(url: str, secret: str, now_ms: int) -> str:
    """The robot URL with ``timestamp`` and ``sign`` = base64(HMAC-SHA256(secret, "{timestamp}\\n{secret}"))."""
    digest = hmac.new(secret.encode(), f"{now_ms}\n{secret}".encode(), hashlib.sha256).digest()
    sign = urllib.parse.quote_plus(base64.b64encode(digest))
    return f"{url}{'&' if '?' in url else '?'}timestamp={now_ms}&sign={sign}"


class DingTalkSender:
    kind = "dingtalk"

    def __init__(self, spec: DingTalkChannel, wall_clock: Callable[[], float] = time.time) -> None:
        self.spec, self._wall_clock = spec, wall_clock

    def send(self, note: dict[str, Any]) -> Delivery:
        url = self.spec.url
        if self.spec.secret is not None:  # DingTalk checks the signature against its own clock: real time
            url = dingtalk_signed_url(url, self.spec.secret.get_secret_value(), int(self._wall_clock() * 1000))
        failed, reply = _post_json(url, dingtalk_body(note, self.spec.at_mobiles), self.spec.timeout_s)
        return failed or _robot_reply(reply, DINGTALK_RETRY_CODES)


class EmailSender:
    kind = "email"

    def __init__(self, spec: EmailChannel) -> None:
        self.spec = spec

    def send(self, note: dict[str, Any]) -> Delivery:
        spec = self.spec
        message = EmailMessage()
        message["Subject"] = note["title"]
        message["From"] = spec.sender
        message["To"] = ", ".join(spec.to)
        message["X-Liaowang-Notification-Id"] = note["id"]
        message.set_content(note["text"])
        try:
            with smtplib.SMTP(spec.host, spec.port, timeout=spec.timeout_s) as smtp:
                if spec.starttls:
                    smtp.starttls()
                if spec.username:
                    smtp.login(spec.username, spec.password.get_secret_value() if spec.password else "")
                smtp.send_message(message)
        except smtplib.SMTPRecipientsRefused as err:
            return Delivery(False, False, f"recipients refused: {list(err.recipients)}")
        except smtplib.SMTPResponseException as err:
            return Delivery(False, 400 <= err.smtp_code < 500, f"SMTP {err.smtp_code}")
        except (smtplib.SMTPException, OSError) as err:
            return Delivery(False, True, f"{type(err).__name__}: {err}")
        return Delivery(True)


def make_sender(spec: Any, publish: Callable[[str, bytes], bool] | None = None) -> Channel:
    """The sender for a channel specification."""
    if isinstance(spec, LogChannel):
        return LogSender(spec)
    if isinstance(spec, MqttChannel):
        return MqttSender(spec, publish or (lambda topic, payload: False))
    if isinstance(spec, WebhookChannel):
        return WebhookSender(spec)
    if isinstance(spec, WeComChannel):
        return WeComSender(spec)
    if isinstance(spec, DingTalkChannel):
        return DingTalkSender(spec)
    if isinstance(spec, EmailChannel):
        return EmailSender(spec)
    raise TypeError(f"no sender for {type(spec).__name__}")

"""amqtt hardened for Liaowang's embedded broker: users and ACLs, a CONNECT deadline, quiet logs.

amqtt 0.12 as shipped (TRAPS.md, measured by attacking it):

- it decides about a CONNECT's session (deletes it on clean session, resumes it otherwise, takes
  over a connected one) *before* it asks the auth plugins, so even a refused client could end
  ingest's session; `GuardedAmqtt` checks the user table first and answers CONNACK 4/5 without
  touching any session;
- it waits for the first packet forever, so 1,000 idle sockets (its max_connections) lock
  everyone out; `GuardedAmqtt` closes a socket that sent no CONNECT within ``connect_timeout_s``;
- it logs a protocol error of one client several times over at WARNING/ERROR; `quiet_amqtt_logs`
  lets five records a minute per logger through and counts the rest (`Throttle`).

`LiaowangAuthPlugin` and `LiaowangTopicPlugin` apply the same `UserTable` inside amqtt (auth again,
publish, subscribe and receive ACLs).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

import structlog
from amqtt.broker import Broker
from amqtt.contexts import Action
from amqtt.errors import MQTTError, NoDataError
from amqtt.mqtt.connack import BAD_USERNAME_PASSWORD, NOT_AUTHORIZED, ConnackPacket
from amqtt.mqtt.protocol.broker_handler import BrokerProtocolHandler
from amqtt.plugins.base import BaseAuthPlugin, BaseTopicPlugin
from amqtt.session import Session
from amqtt.utils import gen_client_id

from liaowang.broker_auth import UserTable

log = structlog.get_logger("broker")

_REFUSAL_CODE = {"anonymous": NOT_AUTHORIZED, "unknown_user": BAD_USERNAME_PASSWORD,
                 "bad_password": BAD_USERNAME_PASSWORD, "client_id_not_bound_to_user": NOT_AUTHORIZED}


class LiaowangAuthPlugin(BaseAuthPlugin):
    """Admits a session only if the user table does (user, password, bound client id)."""

    @dataclass
    class Config:
        users: Any = None
        """The broker's `UserTable`."""

    async def authenticate(self, *, session: Session) -> bool | None:
        return self.config.users.admit(session.username, session.password, session.client_id) is None


class LiaowangTopicPlugin(BaseTopicPlugin):
    """Publish, subscribe and receive ACLs from the user table."""

    @dataclass
    class Config:
        users: Any = None

    async def topic_filtering(self, *, session: Session | None = None, topic: str | None = None,
                              action: Action | None = None) -> bool | None:
        users: UserTable = self.config.users
        username = session.username if session else None
        if not topic:
            return False
        if action == Action.PUBLISH:
            allowed = users.may_publish(username, topic)
            if not allowed and THROTTLE.allow("broker_publish_denied"):
                log.warning("broker_publish_denied", kind="amqtt", username=username, topic=topic)
            return allowed
        if action == Action.SUBSCRIBE:
            return users.may_subscribe(username, topic)
        return users.may_receive(username, topic)


class GuardedAmqtt(Broker):
    """amqtt's broker with a CONNECT deadline and the user table checked before any session is touched.

    ``_initialize_client_session`` replaces amqtt 0.12's own; the part after the CONNECT (new,
    resumed or replaced session) is amqtt's code unchanged.
    """

    def __init__(self, config: dict[str, Any], *, users: UserTable, connect_timeout_s: float,
                 loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(config, loop=loop)
        self._users = users
        self._connect_timeout_s = connect_timeout_s

    async def _initialize_client_session(self, reader, writer, remote_address: str, remote_port: int):  # type: ignore[no-untyped-def]
        try:
            async with asyncio.timeout(self._connect_timeout_s):
                handler, client_session = await BrokerProtocolHandler.init_from_connect(
                    reader, writer, self.plugins_manager)
        except TimeoutError:
            if THROTTLE.allow("broker_connect_timeout"):
                log.info("broker_connect_timeout", kind="amqtt", peer=f"{remote_address}:{remote_port}",
                         timeout_s=self._connect_timeout_s)
            await writer.close()
            raise NoDataError(f"no CONNECT within {self._connect_timeout_s} s") from None
        except Exception as err:  # garbage instead of CONNECT; amqtt would leak the connection slot on some
            await writer.close()
            raise NoDataError(f"unreadable CONNECT: {type(err).__name__}") from None

        refused = self._users.admit(client_session.username, client_session.password, client_session.client_id)
        if refused is not None and THROTTLE.allow("broker_connect_refused"):
            log.warning("broker_connect_refused", kind="amqtt", reason=refused, username=client_session.username,
                        client_id=client_session.client_id, peer=f"{remote_address}:{remote_port}")
        if refused is not None:
            await ConnackPacket.build(0, _REFUSAL_CODE[refused]).to_stream(writer)
            await writer.close()
            raise MQTTError(f"connection refused: {refused}")

        # From here on amqtt 0.12's own code (broker.py, Broker._initialize_client_session).
        if client_session.clean_session:
            if client_session.client_id is not None and client_session.client_id != "":
                await self._delete_session(client_session.client_id)
            else:
                client_session.client_id = gen_client_id()
            client_session.parent = 0
        elif client_session.client_id in self._sessions:
            existing, _ = self._sessions[client_session.client_id]
            existing.will_flag = client_session.will_flag
            existing.will_message = client_session.will_message
            existing.will_topic = client_session.will_topic
            existing.will_qos = client_session.will_qos
            existing.keep_alive = client_session.keep_alive
            existing.username = client_session.username
            existing.password = client_session.password
            client_session = existing
            client_session.parent = 1
        else:
            client_session.parent = 0
        timeout_disconnect_delay = self.config.get("timeout-disconnect-delay", 0)
        if client_session.keep_alive > 0 and isinstance(timeout_disconnect_delay, int):
            client_session.keep_alive += timeout_disconnect_delay
        return handler, client_session


class Throttle:
    """At most ``burst`` events per key per ``window_s``; the rest are counted, and reported once
    the window has ended (by the next event of that key, or by ``flush``).

    A misbehaving client makes amqtt log one failure several times over (reader, handler, broker),
    and 1,000 idle sockets time out together: one line says it, a count says how often.
    """

    def __init__(self, burst: int = 5, window_s: float = 60.0) -> None:
        self._burst, self._window_s = burst, window_s
        self._windows: dict[str, list[float]] = {}  # key -> [window start, passed, held back]
        self._lock = threading.Lock()

    def allow(self, key: str) -> bool:
        """Whether this event of ``key`` may be logged (else it is counted)."""
        now = time.monotonic()
        with self._lock:
            window = self._windows.get(key)
            if window is None or now - window[0] >= self._window_s:
                if window is not None:
                    self._report(key, int(window[2]))
                self._windows[key] = window = [now, 0, 0]
            if window[1] >= self._burst:
                window[2] += 1
                return False
            window[1] += 1
            return True

    def flush(self) -> None:
        """Report what was held back in windows that have ended."""
        now = time.monotonic()
        with self._lock:
            for key, window in list(self._windows.items()):
                if now - window[0] >= self._window_s:
                    self._report(key, int(window[2]))
                    del self._windows[key]

    def _report(self, key: str, held: int) -> None:
        if held:
            log.warning("broker_log_records_held_back", kind="amqtt", key=key, count=held, window_s=self._window_s)


THROTTLE = Throttle()
"""Shared by amqtt's own loggers and Liaowang's events about amqtt connections."""


class _RateLimitedForward(logging.Handler):
    """Forwards amqtt's records to the root logger's handlers, throttled per logger name."""

    def emit(self, record: logging.LogRecord) -> None:
        if THROTTLE.allow(record.name):
            logging.getLogger().handle(record)


_QUIET = _RateLimitedForward()


def quiet_amqtt_logs() -> None:
    """Route the ``amqtt`` loggers through the throttle (idempotent)."""
    amqtt_log = logging.getLogger("amqtt")
    if _QUIET not in amqtt_log.handlers:
        amqtt_log.addHandler(_QUIET)
    amqtt_log.propagate = False


def amqtt_config(host: str, port: int, users: UserTable, max_connections: int = 1000) -> dict[str, Any]:
    """amqtt's configuration: one TCP listener, Liaowang's auth and ACL plugins, nothing else."""
    return {
        "listeners": {"default": {"type": "tcp", "bind": f"{host}:{port}", "max_connections": max_connections}},
        "plugins": {f"{__name__}.LiaowangAuthPlugin": {"users": users},
                    f"{__name__}.LiaowangTopicPlugin": {"users": users}},
    }

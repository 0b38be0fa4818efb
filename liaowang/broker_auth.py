"""Who may use the embedded broker: Liaowang's own clients and the configured gateways, nobody else.

One table of users, rendered for mosquitto (its dynamic-security plugin: passwords, bound client
ids, topic ACLs) and checked in process for amqtt (liaowang.broker_amqtt). Per user:

- ``liaowang``: every client of Liaowang itself (ingest, the alert publisher, the simulators,
  record, replay, load and the benchmarks); any client id, publish and subscribe under
  ``liaowang/v1/#``. Its password is random, made once per data directory and kept in
  ``<data_dir>/broker/liaowang.password`` (mode 0600): whoever can read it can read the stores too.
- one user per configured gateway: exactly one client id (its user name unless configured), so it
  can neither take ingest's persistent session nor another gateway's; publish only
  ``liaowang/v1/readings/<site>/#`` and ``liaowang/v1/status/<site>`` for its sites; no subscribe.

Anonymous clients are refused. Passwords are stored as mosquitto does (``$7$``: PBKDF2-SHA512).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from pydantic import SecretStr

from foundation.config import OWN_MQTT_PREFIX, MqttGateway, MqttSettings

OWN_USERNAME = OWN_MQTT_PREFIX
"""The user name of Liaowang's own clients on the embedded broker."""

PBKDF2_ITERATIONS = 101
"""mosquitto_passwd's and dynamic-security's own default; a connect costs a hash, and the hashes
live in a 0600 file beside the configuration that holds the same passwords in clear."""

_OWN_TOPICS = ("liaowang/v1/#",)


@dataclass(frozen=True, slots=True)
class Credentials:
    """A user name and password for make_client (via MqttSettings.username/password)."""

    username: str
    password: SecretStr


@dataclass(frozen=True, slots=True)
class BrokerUser:
    """One user of the embedded broker and what it may do."""

    username: str
    password_hash: str
    """PBKDF2-SHA512 as ``$7$<iterations>$<salt b64>$<hash b64>`` (mosquitto_passwd's format)."""
    client_id: str | None
    """The only client id it may connect with; None: any (Liaowang's own clients)."""
    publish: tuple[str, ...]
    subscribe: tuple[str, ...]
    """Topic filters it may subscribe to (and receive from); a subscription must lie inside one."""


def hash_password(password: str, *, salt: bytes | None = None, iterations: int = PBKDF2_ITERATIONS) -> str:
    """The ``$7$`` PBKDF2-SHA512 hash mosquitto_passwd would write for ``password``.

    >>> hash_password("pw", salt=b"0" * 12).startswith("$7$101$MDAwMDAwMDAwMDAw$")
    True
    """
    salt = os.urandom(12) if salt is None else salt
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations, 64)
    return f"$7${iterations}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def _parse_hash(password_hash: str) -> tuple[int, bytes, bytes]:
    _, kind, iterations, salt, digest = password_hash.split("$")
    if kind != "7":
        raise ValueError(f"not a $7$ (PBKDF2-SHA512) hash: ${kind}$")
    return int(iterations), base64.b64decode(salt), base64.b64decode(digest)


def verify_password(password: str, password_hash: str) -> bool:
    """Whether ``password`` matches a ``$7$`` hash (constant-time comparison)."""
    iterations, salt, digest = _parse_hash(password_hash)
    return hmac.compare_digest(hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations, len(digest)), digest)


def own_credentials(data_dir: Path, mqtt: MqttSettings | None = None) -> Credentials:
    """Liaowang's own credentials for the embedded broker of ``data_dir``, made on first use.

    A configured ``mqtt.username``/``mqtt.password`` pair takes precedence (then no file is written).
    """
    if mqtt is not None and mqtt.username and mqtt.password is not None:
        return Credentials(mqtt.username, mqtt.password)
    folder = broker_dir(data_dir)
    path = folder / "liaowang.password"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        password = path.read_text(encoding="ascii").strip()
    else:
        password = secrets.token_urlsafe(24)
        with os.fdopen(fd, "w", encoding="ascii") as out:
            out.write(password + "\n")
    if not password:
        raise RuntimeError(f"{path} is empty; delete it and a new password is made")
    return Credentials(OWN_USERNAME, SecretStr(password))


def stored_credentials(data_dir: Path) -> Credentials | None:
    """The own credentials ``liaowang run`` made for ``data_dir``, if it made any (for the tools)."""
    path = data_dir / "broker" / "liaowang.password"
    try:
        password = path.read_text(encoding="ascii").strip()
    except OSError:
        return None
    return Credentials(OWN_USERNAME, SecretStr(password)) if password else None


def with_credentials(mqtt: MqttSettings, credentials: Credentials | None) -> MqttSettings:
    """``mqtt`` with ``credentials`` filled in, unless it names a user of its own."""
    if credentials is None or mqtt.username:
        return mqtt
    return mqtt.model_copy(update={"username": credentials.username, "password": credentials.password})


def broker_dir(data_dir: Path) -> Path:
    """``<data_dir>/broker``, private to this OS user: credentials and generated broker files."""
    folder = data_dir / "broker"
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o700)
    return folder


def gateway_user(gateway: MqttGateway) -> BrokerUser:
    """The broker user of a configured gateway: its own client id, publishing for its sites only."""
    password_hash = gateway.password_hash or hash_password(gateway.password.get_secret_value())  # type: ignore[union-attr]
    publish = tuple(t for site in gateway.sites for t in (f"liaowang/v1/readings/{site}/#", f"liaowang/v1/status/{site}"))
    return BrokerUser(gateway.username, password_hash, gateway.bound_client_id, publish, ())


class UserTable:
    """The users of one embedded broker; ``admit``, ``may_publish``, ``may_subscribe`` decide."""

    def __init__(self, own: Credentials, gateways: list[MqttGateway] | tuple[MqttGateway, ...] = ()) -> None:
        users = [BrokerUser(own.username, hash_password(own.password.get_secret_value()), None, _OWN_TOPICS, _OWN_TOPICS)]
        users += [gateway_user(g) for g in gateways]
        self.users = {u.username: u for u in users}
        if len(self.users) != len(users):
            raise ValueError(f"a gateway may not use Liaowang's own user name {own.username!r}")

    def admit(self, username: str | None, password: str | bytes | None, client_id: str | None) -> str | None:
        """None if this CONNECT may proceed, else why not (anonymous, unknown_user, ...)."""
        if not username:
            return "anonymous"
        user = self.users.get(username)
        if user is None:
            return "unknown_user"
        if isinstance(password, bytes):
            password = password.decode("utf-8", "replace")
        if password is None or not verify_password(password, user.password_hash):
            return "bad_password"
        if user.client_id is not None and client_id != user.client_id:
            return "client_id_not_bound_to_user"
        return None

    def may_publish(self, username: str | None, topic: str) -> bool:
        """Whether ``username`` may publish on ``topic``."""
        user = self.users.get(username or "")
        return user is not None and any(topic_matches(topic, f) for f in user.publish)

    def may_subscribe(self, username: str | None, topic_filter: str) -> bool:
        """Whether every topic ``topic_filter`` can match is one ``username`` may receive."""
        user = self.users.get(username or "")
        return user is not None and any(filter_within(topic_filter, f) for f in user.subscribe)

    def may_receive(self, username: str | None, topic: str) -> bool:
        """Whether ``username`` may be sent a message on ``topic``."""
        user = self.users.get(username or "")
        return user is not None and any(topic_matches(topic, f) for f in user.subscribe)

    def dynamic_security(self) -> dict:
        """The table as mosquitto's dynamic-security plugin reads it (plugin_opt_config_file).

        Everything not granted is denied (defaultACLAccess all false but unsubscribe).
        """
        clients, roles = [], []
        for user in self.users.values():
            iterations, salt, digest = _parse_hash(user.password_hash)
            client = {"username": user.username, "textname": "Liaowang" if user.client_id is None else "gateway",
                      "password": base64.b64encode(digest).decode(), "salt": base64.b64encode(salt).decode(),
                      "iterations": iterations, "roles": [{"rolename": user.username}]}
            if user.client_id is not None:
                client["clientid"] = user.client_id
            clients.append(client)
            acls = [{"acltype": "publishClientSend", "topic": t, "allow": True} for t in user.publish]
            acls += [{"acltype": kind, "topic": t, "allow": True} for t in user.subscribe
                     for kind in ("subscribePattern", "publishClientReceive")]
            roles.append({"rolename": user.username, "acls": acls})
        return {"defaultACLAccess": {"publishClientSend": False, "publishClientReceive": False, "subscribe": False,
                                     "unsubscribe": True},
                "clients": clients, "groups": [], "roles": roles}


def topic_matches(topic: str, topic_filter: str) -> bool:
    """MQTT matching of a topic name against a filter (``+`` one level, ``#`` the rest, parent too).

    >>> topic_matches("liaowang/v1/readings/LC-LUXI", "liaowang/v1/readings/LC-LUXI/#")
    True
    >>> topic_matches("liaowang/v1/readings/LC-LUXIX/a", "liaowang/v1/readings/LC-LUXI/#")
    False
    """
    names, filters = topic.split("/"), topic_filter.split("/")
    for i, part in enumerate(filters):
        if part == "#":
            return True
        if i >= len(names) or (part != "+" and part != names[i]):
            return False
    return len(names) == len(filters)


def filter_within(requested: str, allowed: str) -> bool:
    """Whether every topic ``requested`` can match is matched by ``allowed``.

    >>> filter_within("liaowang/v1/readings/#", "liaowang/v1/#"), filter_within("#", "liaowang/v1/#")
    (True, False)
    """
    wanted, granted = requested.split("/"), allowed.split("/")
    for i, part in enumerate(granted):
        if part == "#":
            return True
        if i >= len(wanted):
            return False
        if part == "+":
            if wanted[i] == "#":
                return False
            continue
        if wanted[i] != part:
            return False
    return len(wanted) == len(granted)

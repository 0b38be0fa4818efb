"""People: named users with passwords, roles and site scopes, and their sign-in sessions.

Users and sessions live in ``alerts.db`` (tables ``users`` and ``sessions``), written through the
same `AlertDB` connection as the audit trail: a user change and its audit row are one transaction,
the regulator's backup of that one file holds who could act and what they did, and the CLI
(`liaowang users …`) works on the data dir while the server runs (SQLite WAL).

A sign-in gives a random secret (``lws_…``, 256 bits) that is stored only as its SHA-256 — a
stolen database holds no usable session — and ends after ``sessions.idle_s`` without use or
``sessions.absolute_s`` after sign-in, whichever comes first; sign-out, a password change or reset,
disabling the user deletes it. A session resolves to its user on every request, so a change of
role, scope or a disable applies at once. Use is recorded at most every `touch_s` (a tenth of the
idle time, at most a minute), so reads do not write alerts.db on every request: the idle time counts
from the last *recorded* use.

Failed sign-ins lock the user name and the address for a while (`liaowang.throttle.Throttle`);
sign-in, failure, lockout, sign-out and every change to a user are audited under the person's name.

>>> from alerting.db import AlertDB
>>> from alerting.audit import AuditLog
>>> from foundation.config import AuthSettings
>>> from foundation.passwords import Passwords
>>> db = AlertDB(":memory:")
>>> now = [1000.0]
>>> people = People(db, AuditLog(db), AuthSettings(), lambda: now[0], Passwords(time_cost=1, memory_cost=1024))
>>> people.add("zhang", "张值班", "duty_officer", (), "a long password", by="admin").role
'duty_officer'
>>> from structlog.testing import capture_logs
>>> with capture_logs():                    # sign-in is logged (and audited)
...     secret, session = people.sign_in("zhang", "a long password", "127.0.0.1")
>>> people.resolve(secret).user.display_name
'张值班'
>>> now[0] += 2 * 3600                      # two idle hours (the default idle_s): signed out
>>> people.resolve(secret) is None
True
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
import secrets
import sqlite3
from dataclasses import dataclass
from typing import Any, Callable, Iterable

import structlog

from alerting.audit import AuditLog
from alerting.db import AlertDB
from foundation.config import ROLES, AuthSettings, UserEntry
from foundation.domain import iso
from foundation.passwords import Passwords
from liaowang.throttle import Throttle

__all__ = ["People", "User", "Session", "SignInRefused", "UserError", "UserNotFound", "UserExists", "LastAdmin",
           "SESSION_PREFIX"]

log = structlog.get_logger("users")

SESSION_PREFIX = "lws_"
"""Session secrets start with this, so the authenticator tells them from service tokens without a lookup."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    name TEXT PRIMARY KEY,
    display_name TEXT NOT NULL,
    role TEXT NOT NULL,
    sites TEXT NOT NULL,            -- comma-separated site ids; empty: every site
    password_hash TEXT NOT NULL,
    disabled BIGINT NOT NULL DEFAULT 0,
    created_at DOUBLE PRECISION NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL
);
CREATE TABLE IF NOT EXISTS sessions (
    id TEXT PRIMARY KEY,            -- SHA-256 of the secret; the secret itself is never stored
    "user" TEXT NOT NULL REFERENCES users (name),   -- quoted: USER is a keyword of PostgreSQL
    created_at DOUBLE PRECISION NOT NULL,
    last_seen DOUBLE PRECISION NOT NULL,
    address TEXT
);
CREATE INDEX IF NOT EXISTS sessions_user ON sessions ("user");
"""


class UserError(Exception):
    """A user change that cannot be made (the API answers 422 unless a subclass says otherwise)."""


class UserNotFound(UserError):
    """No user of that name (404)."""


class UserExists(UserError):
    """A user of that name exists already (409)."""


class LastAdmin(UserError):
    """The change would leave no enabled, unscoped admin to manage users (409)."""


class SignInRefused(Exception):
    """A sign-in that failed: ``reason`` is ``wrong`` (name or password; never says which), ``disabled``
    (the password was right) or ``locked`` (too many failures; ``retry_after`` seconds)."""

    def __init__(self, reason: str, retry_after: float = 0.0) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


@dataclass(frozen=True, slots=True)
class User:
    """A person who signs in: ``sites`` empty means every site."""

    name: str
    display_name: str
    role: str
    sites: tuple[str, ...]
    disabled: bool
    created_at: float
    updated_at: float

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "display_name": self.display_name, "role": self.role, "sites": list(self.sites),
                "disabled": self.disabled, "created_at": iso(self.created_at), "updated_at": iso(self.updated_at)}


@dataclass(frozen=True, slots=True)
class Session:
    """A live sign-in: its id is the SHA-256 of the secret the person holds."""

    id: str
    user: User
    created_at: float
    last_seen: float
    expires_at: float
    """When it ends unless used before: the earlier of idle and absolute expiry."""
    absolute_expires_at: float


def session_id(secret: str) -> str:
    """The stored id of a session secret."""
    return hashlib.sha256(secret.encode()).hexdigest()


class People:
    """The user store and the sessions of people signed in (one owner: every write goes through here)."""

    def __init__(self, db: AlertDB, audit: AuditLog, settings: AuthSettings, clock: Callable[[], float],
                 passwords: Passwords | None = None) -> None:
        self.db = db
        self._audit = audit
        self._settings = settings
        self._clock = clock
        self._passwords = passwords or Passwords()
        lockout = settings.lockout
        self._names = Throttle(lockout.failures, lockout.window_s, lockout.lock_s)
        self._addresses = Throttle(lockout.address_failures, lockout.window_s, lockout.lock_s)
        self._refused: OrderedDict[str, float] = OrderedDict()  # name|address → end of the lock last audited
        sessions = settings.sessions
        self.idle_s, self.absolute_s = sessions.idle_s, sessions.absolute_s
        self.touch_s = min(60.0, sessions.idle_s / 10)
        self.cookie_secure = sessions.cookie_secure
        with db.lock:
            db.conn.executescript(db.dialect.schema(_SCHEMA))

    # ------------------------------------------------------------------ users

    def seed(self, entries: Iterable[UserEntry]) -> list[str]:
        """Create the configured users that do not exist yet; the store owns them afterwards (a change made
        through the API or CLI survives a restart). Returns the names created."""
        created = []
        with self.db.transaction():
            for entry in entries:
                if self._row(entry.name) is None:
                    self._insert(entry.name, entry.display_name, entry.role, tuple(entry.sites), entry.password_hash,
                                 by="config")
                    created.append(entry.name)
        return created

    def users(self) -> list[User]:
        """Every user, by name."""
        with self.db.lock:
            rows = self.db.conn.execute(f"SELECT {_COLUMNS} FROM users ORDER BY name").fetchall()
        return [_user(r) for r in rows]

    def get(self, name: str) -> User:
        """One user; `UserNotFound` if none."""
        row = self._row(name)
        if row is None:
            raise UserNotFound(f"no user {name}")
        return _user(row)

    def add(self, name: str, display_name: str, role: str, sites: tuple[str, ...], password: str, by: str) -> User:
        """Create a user (`UserExists` if the name is taken); audited as ``user_created`` by ``by``."""
        self._check_role(role)
        self._check_password(password)
        hashed = self._passwords.hash(password)  # slow (argon2): outside the lock
        with self.db.transaction():
            if self._row(name) is not None:
                raise UserExists(f"user {name} exists already")
            self._insert(name, display_name, role, sites, hashed, by=by)
        return self.get(name)

    def change(self, name: str, by: str, *, display_name: str | None = None, role: str | None = None,
               sites: tuple[str, ...] | None = None, disabled: bool | None = None) -> User:
        """Change what is given; disabling ends the user's sessions. Audited as ``user_changed`` with the changes."""
        if role is not None:
            self._check_role(role)
        with self.db.transaction():
            before = self.get(name)
            changes = {k: v for k, v in (("display_name", display_name), ("role", role),
                                         ("sites", list(sites) if sites is not None else None),
                                         ("disabled", disabled)) if v is not None}
            after = User(name, display_name or before.display_name, role or before.role,
                         before.sites if sites is None else tuple(sites),
                         before.disabled if disabled is None else disabled, before.created_at, self._clock())
            if _manages_users(before) and not _manages_users(after) and self._admins() <= 1:
                raise LastAdmin(f"{name} is the last enabled admin of every site; make another one first")
            self.db.conn.execute(
                "UPDATE users SET display_name = ?, role = ?, sites = ?, disabled = ?, updated_at = ? WHERE name = ?",
                (after.display_name, after.role, ",".join(after.sites), int(after.disabled), after.updated_at, name))
            ended = self._end_sessions(name) if after.disabled else 0
            self._audit.append(after.updated_at, by, "user_changed", None, name, changes=changes,
                               sessions_ended=ended)
        return after

    def set_password(self, name: str, password: str, by: str) -> None:
        """Reset ``name``'s password (an admin, the CLI); ends every session of the user. Audited."""
        self._check_password(password)
        hashed = self._passwords.hash(password)
        with self.db.transaction():
            self.get(name)
            now = self._clock()
            self.db.conn.execute("UPDATE users SET password_hash = ?, updated_at = ? WHERE name = ?",
                                 (hashed, now, name))
            ended = self._end_sessions(name)
            self._audit.append(now, by, "password_reset", None, name, sessions_ended=ended)

    def change_own_password(self, name: str, current: str, new: str, keep_session: str | None) -> None:
        """A person changes their own password: ``current`` must match (`SignInRefused` ``wrong`` otherwise).
        Every other session of theirs ends; ``keep_session`` (the id of the one asking) stays."""
        self._check_password(new)
        row = self._row(name)
        if row is None or not self._passwords.check(current, row[4])[0]:
            self._audit.append(self._clock(), name, "password_change_refused", None, name)
            raise SignInRefused("wrong")
        hashed = self._passwords.hash(new)
        with self.db.transaction():
            now = self._clock()
            self.db.conn.execute("UPDATE users SET password_hash = ?, updated_at = ? WHERE name = ?", (hashed, now, name))
            ended = self.db.conn.execute('DELETE FROM sessions WHERE "user" = ? AND id != ?',
                                         (name, keep_session or "")).rowcount
            self._audit.append(now, name, "password_changed", None, name, sessions_ended=ended)

    # ------------------------------------------------------------------ sessions

    def sign_in(self, name: str, password: str, address: str | None) -> tuple[str, Session]:
        """Check ``name`` and ``password``; the new session's secret and the session. `SignInRefused` otherwise.

        A locked name or address is refused without looking at the password. Every outcome is audited.
        """
        now = self._clock()
        name_key, address_key = name.casefold(), f"address:{address or '?'}"
        wait = max(self._names.locked_for(name_key, now), self._addresses.locked_for(address_key, now))
        if wait:
            if self._first_refusal(f"{name_key}|{address_key}", round(now + wait, 3)):
                self._audit.append(now, name, "sign_in_locked", None, name, address=address, retry_after_s=round(wait))
                log.warning("sign_in_locked", user=name, address=address, retry_after_s=round(wait))
            raise SignInRefused("locked", wait)
        row = self._row(name)
        if row is None:
            self._passwords.burn(password)
            ok, rehashed = False, None
        else:
            ok, rehashed = self._passwords.check(password, row[4])
        now = self._clock()
        if not ok:
            self._names.fail(name_key, now)
            self._addresses.fail(address_key, now)
            self._audit.append(now, name, "sign_in_failed", None, name, address=address, reason="wrong")
            log.warning("sign_in_failed", user=name, address=address)
            raise SignInRefused("wrong")
        user = _user(row)
        if user.disabled:
            self._audit.append(now, name, "sign_in_failed", None, name, address=address, reason="disabled")
            raise SignInRefused("disabled")
        self._names.succeed(name_key)
        secret = SESSION_PREFIX + secrets.token_urlsafe(32)
        with self.db.transaction():
            if rehashed is not None:  # the hash used weaker parameters than today's: store the stronger one
                self.db.conn.execute("UPDATE users SET password_hash = ? WHERE name = ?", (rehashed, name))
            # ended ones go, to keep the table small (the same arithmetic as `session`, so no live one does)
            self.db.conn.execute("DELETE FROM sessions WHERE created_at + ? <= ? OR last_seen + ? <= ?",
                                 (self.absolute_s, now, self.idle_s, now))
            self.db.conn.execute('INSERT INTO sessions (id, "user", created_at, last_seen, address) VALUES (?, ?, ?, ?, ?)',
                                 (session_id(secret), name, now, now, address))
            self._audit.append(now, name, "sign_in", None, name, address=address, role=user.role)
        log.info("sign_in", user=name, address=address)
        return secret, self._session(session_id(secret), user, now, now)

    def resolve(self, secret: str) -> Session | None:
        """The live session of ``secret`` (its use recorded), or None: unknown, ended, or its user disabled."""
        session = self.session(session_id(secret))
        if session is None:
            return None
        now = self._clock()
        if now - session.last_seen >= self.touch_s:
            return self._session(session.id, session.user, session.created_at,
                                 self._touch(session.id, now, session.last_seen))
        return session

    def session(self, sid: str) -> Session | None:
        """The live session of id ``sid`` (not its secret), its use not recorded; None if it ended."""
        now = self._clock()
        with self.db.lock:
            row = self.db.conn.execute(
                f"SELECT s.created_at, s.last_seen, {_COLUMNS_U} FROM sessions s JOIN users u ON u.name = s.\"user\" "
                "WHERE s.id = ?", (sid,)).fetchone()
        if row is None:
            return None
        created, last_seen, user = row[0], row[1], _user(row[2:])
        if user.disabled or now >= created + self.absolute_s or now >= last_seen + self.idle_s:
            return None
        return self._session(sid, user, created, last_seen)

    def alive(self, sid: str) -> bool:
        """Whether the session ``sid`` (an id, not a secret) is still live; its use is not recorded."""
        return self.session(sid) is not None

    def sign_out(self, sid: str, by: str) -> bool:
        """End the session ``sid`` (a session's id, not its secret); whether it existed. Audited."""
        with self.db.transaction():
            ended = self.db.conn.execute("DELETE FROM sessions WHERE id = ?", (sid,)).rowcount
            if ended:
                self._audit.append(self._clock(), by, "sign_out", None, by)
        return bool(ended)

    # ------------------------------------------------------------------ private

    def _first_refusal(self, key: str, until: float) -> bool:
        """Whether this is the first refused attempt of ``key`` during the lock ending at ``until``: a locked
        attempt costs no password check, so auditing every one would let a script fill the append-only trail."""
        if self._refused.get(key) == until:
            return False
        self._refused[key] = until
        while len(self._refused) > 10_000:
            self._refused.popitem(last=False)
        return True

    def _session(self, sid: str, user: User, created: float, last_seen: float) -> Session:
        absolute = created + self.absolute_s
        return Session(sid, user, created, last_seen, min(absolute, last_seen + self.idle_s), absolute)

    def _touch(self, sid: str, now: float, last_seen: float) -> float:
        try:
            with self.db.transaction():
                self.db.conn.execute("UPDATE sessions SET last_seen = ? WHERE id = ?", (now, sid))
            return now
        except sqlite3.Error as err:
            # alerts.db cannot write (a full disk, raised as a _system alarm elsewhere). The session stays good
            # until its last recorded use plus idle_s; failing the duty room's reads for this would be worse.
            log.warning("session_use_not_recorded", error=str(err))
            return last_seen

    def _row(self, name: str) -> tuple | None:
        with self.db.lock:
            return self.db.conn.execute(f"SELECT {_COLUMNS} FROM users WHERE name = ?", (name,)).fetchone()

    def _insert(self, name: str, display_name: str, role: str, sites: tuple[str, ...], hashed: str, by: str) -> None:
        now = self._clock()
        self.db.conn.execute(
            "INSERT INTO users (name, display_name, role, sites, password_hash, disabled, created_at, updated_at) "
            "VALUES (?, ?, ?, ?, ?, 0, ?, ?)", (name, display_name, role, ",".join(sites), hashed, now, now))
        self._audit.append(now, by, "user_created", None, name, role=role, sites=list(sites),
                           display_name=display_name)

    def _end_sessions(self, name: str) -> int:
        return self.db.conn.execute('DELETE FROM sessions WHERE "user" = ?', (name,)).rowcount

    def _admins(self) -> int:
        return self.db.conn.execute(
            "SELECT count(*) FROM users WHERE role = 'admin' AND sites = '' AND disabled = 0").fetchone()[0]

    def _check_role(self, role: str) -> None:
        if role not in ROLES:
            raise UserError(f"role must be one of {', '.join(ROLES)}")

    def _check_password(self, password: str) -> None:
        least = self._settings.min_password_length
        if len(password) < least:
            raise UserError(f"a password needs at least {least} characters")
        if len(password) > 256:
            raise UserError("a password has at most 256 characters")


_COLUMNS = "name, display_name, role, sites, password_hash, disabled, created_at, updated_at"
_COLUMNS_U = ", ".join(f"u.{c.strip()}" for c in _COLUMNS.split(","))


def _user(row: tuple) -> User:
    name, display_name, role, sites, _hash, disabled, created, updated = row
    return User(name, display_name, role, tuple(s for s in sites.split(",") if s), bool(disabled), created, updated)


def _manages_users(user: User) -> bool:
    return user.role == "admin" and not user.sites and not user.disabled

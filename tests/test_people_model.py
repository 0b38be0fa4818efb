"""Sessions and lockout against small reference models (hypothesis), plus the examples that document them.

`Throttle` is checked against a model that recomputes every key's lock from the whole history of
attempts; `People`'s sessions (over a real alerts.db, on a fake clock) against a model that keeps
each session's sign-in time, last recorded use and whether something ended it.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import (RuleBasedStateMachine, initialize, invariant, precondition, rule,
                                 run_state_machine_as_test)
from structlog.testing import capture_logs

from alerting.audit import AuditLog
from alerting.db import AlertDB
from foundation.config import AuthSettings, LockoutSettings, SessionSettings
from foundation.passwords import Passwords
from liaowang.throttle import Throttle
from liaowang.users import People, SignInRefused, UserError
from tests.pgserver import schema_url

FAST = Passwords(time_cost=1, memory_cost=8, parallelism=1)
"""argon2id at its floor: the properties are about sessions, not about hashing cost."""


# ---------------------------------------------------------------------------- lockout

class ThrottleModel:
    """The lockout rule read off the whole history: a failure counts unless its key is locked then; counting
    restarts after a success and when a lock starts; ``failures`` counted ones within ``window_s`` lock
    the key for ``lock_s`` from the last of them."""

    def __init__(self, failures: int, window_s: float, lock_s: float) -> None:
        self.failures, self.window_s, self.lock_s = failures, window_s, lock_s
        self.history: list[tuple[str, str, float]] = []  # (kind, key, time)

    def locked_for(self, key: str, now: float) -> float:
        counted: list[float] = []
        lock_end = None
        for kind, k, t in self.history:
            if k != key:
                continue
            if kind == "succeed":
                counted = []
            elif lock_end is None or t >= lock_end:
                counted = [c for c in counted if c > t - self.window_s] + [t]
                if len(counted) >= self.failures:
                    lock_end, counted = t + self.lock_s, []
        return max(0.0, lock_end - now) if lock_end is not None else 0.0


steps = st.lists(st.tuples(st.sampled_from(["fail", "succeed", "check"]), st.sampled_from(["a", "b"]),
                           st.sampled_from([0, 1, 5, 10, 20, 30])), max_size=60)
"""Steps of a few sizes, so sums land exactly on window and lock boundaries."""


@settings(max_examples=400, deadline=None)
@given(failures=st.integers(1, 4), window=st.sampled_from([5, 10, 30]), lock=st.sampled_from([10, 20, 40]),
       steps=steps)
def test_the_throttle_locks_as_the_model_says(failures, window, lock, steps):
    throttle, model, now = Throttle(failures, window, lock), ThrottleModel(failures, window, lock), 0.0
    for kind, key, dt in steps:
        now += dt
        if kind == "fail":
            throttle.fail(key, now)
        elif kind == "succeed":
            throttle.succeed(key)
        if kind != "check":
            model.history.append((kind, key, now))
        for k in ("a", "b"):
            assert throttle.locked_for(k, now) == model.locked_for(k, now), (k, now, model.history)


def test_a_flood_of_names_forgets_the_oldest_counts_not_the_locks():
    throttle = Throttle(failures=2, window_s=60, lock_s=60, max_keys=3)
    throttle.fail("x", 0); throttle.fail("x", 1)  # locked
    for i in range(10):
        throttle.fail(f"invented-{i}", 2)
    assert throttle.locked_for("x", 3) == 58.0 and len(throttle._recent) == 3


# ---------------------------------------------------------------------------- sessions

@dataclass
class SessionModel:
    user: str
    created: float
    recorded: float  # the last recorded use
    ended: bool = False


class SessionMachine(RuleBasedStateMachine):
    """Sign-ins, uses, sign-outs, disables, password resets and time passing, against `SessionModel`s."""

    IDLE, ABSOLUTE = 100.0, 350.0
    store = staticmethod(lambda: ":memory:")  # where each run's users and sessions live
    USERS = ("zhang", "li")

    @initialize()
    def setup(self):
        self.now = 1_000.0
        settings_ = AuthSettings(sessions=SessionSettings(idle_s=self.IDLE, absolute_s=self.ABSOLUTE),
                                 lockout=LockoutSettings(failures=1000, address_failures=1000), min_password_length=8)
        self.db = AlertDB(self.store())
        self.people = People(self.db, AuditLog(self.db), settings_, lambda: self.now, FAST)
        self.disabled = {u: False for u in self.USERS}
        self.passwords = {}
        for user in self.USERS:
            self.passwords[user] = f"{user}-password"
            self.people.add(user, user.title(), "operator", (), self.passwords[user], by="test")
        self.secrets: list[str] = []
        self.model: list[SessionModel] = []

    def live(self, m: SessionModel) -> bool:
        return (not m.ended and not self.disabled[m.user] and self.now < m.created + self.ABSOLUTE
                and self.now < m.recorded + self.IDLE)

    @rule(user=st.sampled_from(USERS))
    def sign_in(self, user):
        with capture_logs():
            if self.disabled[user]:
                with pytest.raises(SignInRefused):
                    self.people.sign_in(user, self.passwords[user], "10.0.0.1")
                return
            secret, _ = self.people.sign_in(user, self.passwords[user], "10.0.0.1")
        self.secrets.append(secret)
        self.model.append(SessionModel(user, self.now, self.now))

    @rule(dt=st.sampled_from([0.5, 3.0, 9.0, 10.0, 40.0, 99.5, 100.0, 150.0]))
    def time_passes(self, dt):
        self.now += dt

    @precondition(lambda self: self.secrets)
    @rule(data=st.data())
    def use(self, data):
        i = data.draw(st.integers(0, len(self.secrets) - 1))
        m, session = self.model[i], self.people.resolve(self.secrets[i])
        assert (session is not None) == self.live(m)
        if session is not None:
            if self.now - m.recorded >= self.people.touch_s:
                m.recorded = self.now
            assert session.user.name == m.user and session.last_seen == m.recorded
            assert session.expires_at == min(m.created + self.ABSOLUTE, m.recorded + self.IDLE)

    @precondition(lambda self: self.secrets)
    @rule(data=st.data())
    def sign_out(self, data):
        i = data.draw(st.integers(0, len(self.secrets) - 1))
        m = self.model[i]
        ended = self.people.sign_out(self.people.resolve(self.secrets[i]).id, m.user) if self.live(m) else None
        if ended is not None:
            assert ended
            m.ended = True

    @rule(user=st.sampled_from(USERS), disabled=st.booleans())
    def disable(self, user, disabled):
        self.people.change(user, "admin", disabled=disabled)
        if disabled:
            for m in self.model:
                m.ended |= m.user == user  # disabling ends the sessions: enabling again does not revive them
        self.disabled[user] = disabled

    @rule(user=st.sampled_from(USERS))
    def reset_password(self, user):
        self.passwords[user] += "!"
        self.people.set_password(user, self.passwords[user], "admin")
        for m in self.model:
            m.ended |= m.user == user

    @invariant()
    def liveness_matches_without_recording_use(self):
        if hasattr(self, "people"):
            for secret, m in zip(self.secrets, self.model):
                from liaowang.users import session_id
                assert self.people.alive(session_id(secret)) == self.live(m)


TestSessions = SessionMachine.TestCase
TestSessions.settings = settings(max_examples=60, stateful_step_count=30, deadline=None,
                                 suppress_health_check=list(HealthCheck))


def test_sessions_on_postgresql_follow_the_model(pg_url):
    """The same machine with users and sessions in PostgreSQL (a fresh schema per run)."""
    runs = itertools.count()

    class OnPostgreSQL(SessionMachine):
        store = staticmethod(lambda: schema_url(pg_url, f"people{next(runs)}"))

        def teardown(self):
            if hasattr(self, "db"):
                self.db.close()

    run_state_machine_as_test(OnPostgreSQL, settings=settings(max_examples=25, stateful_step_count=30, deadline=None,
                                                              suppress_health_check=list(HealthCheck)))
    assert next(runs) >= 10  # the runs really went to PostgreSQL


# ---------------------------------------------------------------------------- examples

@pytest.fixture
def people(alerts_db_target):
    """People and sessions on a fresh alerts.db: SQLite, then PostgreSQL."""
    now = [1_000.0]
    db = AlertDB(alerts_db_target)
    store = People(db, AuditLog(db), AuthSettings(lockout=LockoutSettings(failures=3, window_s=60, lock_s=120)),
                   lambda: now[0], FAST)
    store.add("zhang", "张三", "operator", ("LC-LUXI",), "zhang-password", by="test")
    store.add("root", "管理员", "admin", (), "root-password", by="test")
    return store, now


def test_three_wrong_passwords_lock_the_name_even_for_the_right_one(people):
    store, now = people
    with capture_logs() as logs:
        for _ in range(3):
            with pytest.raises(SignInRefused) as refused:
                store.sign_in("zhang", "wrong-password", "10.0.0.9")
            assert refused.value.reason == "wrong"
        with pytest.raises(SignInRefused) as refused:
            store.sign_in("ZHANG", "zhang-password", "10.0.0.8")  # another address; the name is case-folded
        assert refused.value.reason == "locked" and refused.value.retry_after == 120
        for _ in range(5):  # a script hammering a locked name: refused, audited once per lock
            now[0] += 7.3
            with pytest.raises(SignInRefused):
                store.sign_in("ZHANG", "zhang-password", "10.0.0.8")
    assert [e["event"] for e in logs].count("sign_in_failed") == 3
    now[0] = 1_000.0 + 120  # the lock began at the third failure, at 1 000
    with capture_logs():
        store.sign_in("zhang", "zhang-password", "10.0.0.8")
    actions = [(r["actor"], r["action"]) for r in store._audit.records()]
    assert actions.count(("zhang", "sign_in_failed")) == 3 and actions.count(("ZHANG", "sign_in_locked")) == 1
    assert ("zhang", "sign_in") in actions


def test_an_unknown_name_and_a_wrong_password_are_the_same_refusal(people):
    store, _ = people
    with capture_logs():
        for name in ("nobody", "zhang"):
            with pytest.raises(SignInRefused) as refused:
                store.sign_in(name, "not-the-password", "10.0.0.9")
            assert refused.value.reason == "wrong"


def test_the_last_admin_of_every_site_cannot_be_disabled_demoted_or_scoped(people):
    store, _ = people
    for change in ({"disabled": True}, {"role": "duty_officer"}, {"sites": ("LC-LUXI",)}):
        with pytest.raises(UserError, match="last enabled admin"):
            store.change("root", "test", **change)
    store.add("root2", "管理员二", "admin", (), "root2-password", by="test")
    assert store.change("root", "test", disabled=True).disabled


def test_the_stored_session_is_a_hash_and_the_password_an_argon2_hash(people):
    store, _ = people
    with capture_logs():
        secret, session = store.sign_in("zhang", "zhang-password", None)
    stored = store.db.conn.execute("SELECT id FROM sessions").fetchall()
    assert stored == [(session.id,)] and secret not in session.id and secret.startswith("lws_")
    [(hashed,)] = store.db.conn.execute("SELECT password_hash FROM users WHERE name = 'zhang'").fetchall()
    assert hashed.startswith("$argon2id$") and "zhang-password" not in hashed

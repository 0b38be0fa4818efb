"""The alarm core against its reference model (issue 12 §5, docs/alarms.md "Invariants").

A hypothesis `RuleBasedStateMachine` drives the real `AlertManager` and `Notifier` — over a real
``alerts.db`` file, on a fake clock, wired as the pipeline wires them (a change and its outbox
rows in one transaction) — and `tests.alerting.model.AlarmModel` side by side, with random
interleavings of signals for four alarms (two gas detectors, which latch at every priority; a
temperature sensor under two rules, whose medium priority does not latch), in batches, with
duplicates and reordering in event time; acknowledgements with and without a note, closes,
shelves (some too long, some by a role that may not), unshelves, out of service on and off;
clock advances that expire shelves; maintenance windows (a sensor's, and a site's that does not
cover gas); and crashes: inside the transaction before the notification is queued, after it is
queued but before the commit (the connection closed, nothing committed, the stores reopened and
the step retried as a redelivered batch or a repeated request is), an exception inside the
transaction retried on the same objects, and a restart between steps.

At every step: the model and the stores agree (state, priority, peak, latching, shelf,
suppression, history, audit and outbox rows of the step), memory equals the store, and
invariants 1–3 hold, checked on the stored rows alone; after every crash the stores equal those
of a shadow run that never crashed (invariant 4).

Chattering and flood limits are set out of reach (they are not modelled). Runs 200 examples of
up to 50 steps by default (about 20 s); ``HYPOTHESIS_PROFILE=long`` runs the long profile's 5,000
of up to 80 (13–23 min on two shared cores).
"""

from __future__ import annotations

import itertools
import os
import shutil
import sys
import tempfile
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any, Callable

import pytest
import structlog
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule, run_state_machine_as_test

from alerting import Alert, AlertChange, AlertManager, AlertStore, InvalidAction, LifecycleError, NotPermitted
from alerting.audit import AuditLog
from alerting.db import AlertDB
from alerting.notify import Notifier
from alerting.suppress import Suppressions
from foundation.alertspec import AlertingSettings
from foundation.config import Fleet
from foundation.domain import Family, Tier, iso
from liaowang.scenario import FakeClock
from rules.base import Signal
from tests.pgserver import schema_url
from tests.alerting.model import ANNOUNCEABLE, Alarm, AlarmModel, ModelConfig, Record, Refused, Window

try:  # the profile tests/ingest/test_decode_fuzz.py registers; the same when this module runs alone
    settings.get_profile("long")
except InvalidArgument:
    settings.register_profile("long", max_examples=5_000, deadline=None)
LONG = os.environ.get("HYPOTHESIS_PROFILE") == "long"
MODEL_SETTINGS = settings(settings.get_profile("long") if LONG else settings(max_examples=200),
                          stateful_step_count=80 if LONG else 50, deadline=None, database=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])

T0 = 1_795_564_800.0
SITE = "LC-LUXI"
GAS = "gas.combustible_gas.threshold"
ALARMS = (
    Alarm(GAS, "LC-LUXI-GD-01", SITE, "gas", "threshold"),
    Alarm(GAS, "LC-LUXI-GD-02", SITE, "gas", "threshold"),
    Alarm("hazard.temperature.threshold", "LC-LUXI-T101-TT", SITE, "hazard", "threshold"),
    Alarm("hazard.temperature.rate", "LC-LUXI-T101-TT", SITE, "hazard", "rate"),
)
SENSORS = sorted({a.subject for a in ALARMS})
WINDOWS = (Window(T0 + 60, T0 + 400, "探头标定", sensor_id="LC-LUXI-GD-02"),
           Window(T0 + 200, T0 + 700, "年度检修", site_id=SITE))  # a site window: not over the gas detectors
SHELVE_MAX_S = 600.0

SETTINGS = AlertingSettings.model_validate({
    "receivers": [{"id": "desk", "name": "duty desk", "level": "county_duty_desk", "channels": [{"kind": "log"}]}],
    "routes": [{"match": {}, "receivers": ["desk"]}],
    "ack_note_required": True,
    "shelving": {"max_s": SHELVE_MAX_S},
    "chattering": {"activations": 1_000, "window_s": 60},
    "flood": {"alerts": 100_000},
    "maintenance": [{"start": iso(w.start), "end": iso(w.end), "reason": w.reason, "site_id": w.site_id,
                     "sensor_id": w.sensor_id, "include_gas": w.include_gas} for w in WINDOWS],
})
MODEL_CONFIG = ModelConfig(ack_note_required=True, shelve_max_s=SHELVE_MAX_S, windows=WINDOWS)
"""The same configuration as the model reads it; latching, protected tiers and roles at the document's defaults."""

CODES: dict[type, int] = {InvalidAction: 422, NotPermitted: 403, LifecycleError: 409}

TIERS = st.sampled_from([None, None, Tier.BLUE, Tier.YELLOW, Tier.YELLOW, Tier.ORANGE, Tier.RED])
VALUES = st.integers(0, 200).map(lambda v: v / 4)
LAGS = st.sampled_from([0.0, 0.0, 1.0, 5.0, 30.0, 90.0])
CRASHES = st.sampled_from([None] * 12 + ["restart", "exception", "before_notify", "before_commit"])
"""Most steps run plainly; the others crash first: ``restart`` between steps (after the last commit),
``exception`` inside the transaction (rolled back, retried in-process), ``before_notify`` and
``before_commit`` kill the process inside it (the step is retried after a reopen)."""
PICKS = st.tuples(st.sampled_from(["open", "open", "over", "any"]), st.integers(0, 1_000))
"""Which episode a person acts on: an open one, one that is over (to acknowledge or close), any."""
SIGNALS = st.tuples(st.sampled_from(ALARMS), TIERS, VALUES, LAGS)


class Crash(Exception):
    """The process dies here (or, for ``exception``, a bug raises here)."""


def code_of(err: LifecycleError) -> int:
    return next(code for kind, code in CODES.items() if isinstance(err, kind))


def mute_kind(text: str | None) -> str | None:
    """The named rule in a stored ``muted`` or ``reason``: shelved, suppressed, out_of_service, …"""
    if not text:
        return None
    for kind in ("shelved", "suppressed", "out of service", "chattering", "flood"):
        if text.startswith(kind):
            return kind.replace(" ", "_")
    return f"unnamed: {text}"


def differences(memory: dict[str, Alert], store: dict[str, Alert]) -> dict[str, Any]:
    """Per alert id, the fields whose value in memory differs from the store's: (memory, store)."""
    out: dict[str, Any] = {}
    for key in memory.keys() | store.keys():
        a = memory[key].to_record() if key in memory else {}
        b = store[key].to_record() if key in store else {}
        out[key] = {f: (a.get(f), b.get(f)) for f in a.keys() | b.keys() if a.get(f) != b.get(f)}
    return {k: v for k, v in out.items() if v}


class System:
    """The real alarm core over one alerts.db file, wired as `liaowang.pipeline` wires it."""

    def __init__(self, path: Path, fleet: Fleet, clock: FakeClock, settings: AlertingSettings = SETTINGS) -> None:
        self.path, self.fleet, self.clock, self.settings = path, fleet, clock, settings
        self.dead: list[Any] = []  # transactions of crashed processes, left open as a crash leaves them
        self.open()

    def open(self) -> None:
        self.db = AlertDB(self.path)
        self.store = AlertStore(self.db)
        self.manager = AlertManager(self.store, self.fleet, self.clock, self.settings, AuditLog(self.db),
                                    Suppressions(self.db, self.settings.maintenance))
        self.notifier = Notifier(self.db, self.settings, self.fleet, self.manager, self.clock)

    def reopen(self) -> None:
        self.db.close()
        self.open()

    def run(self, action: Callable[[AlertManager], list[AlertChange]], crash: str | None = None) -> list[AlertChange]:
        """One step as the pipeline runs it (`commit_signals`, `act`): the changes and their outbox
        rows in one transaction. ``crash`` first kills an attempt; the step is then retried."""
        if crash == "restart":
            self.reopen()
        elif crash == "exception":  # e.g. a bug between apply() and on_changes(): rolled back, retried in-process
            try:
                with self.manager.transaction():
                    action(self.manager)
                    raise Crash
            except Crash:
                pass
        elif crash in ("before_notify", "before_commit"):
            self._die_inside(action, queue=crash == "before_commit")
            self.open()  # a new process on the same file
        with self.manager.transaction():
            changes = action(self.manager)
            self.notifier.on_changes(changes)
        return changes

    def _die_inside(self, action: Callable[[AlertManager], list[AlertChange]], queue: bool) -> None:
        transaction = self.manager.transaction()
        transaction.__enter__()
        try:
            changes = action(self.manager)
            if queue:
                self.notifier.on_changes(changes)
        except BaseException:
            transaction.__exit__(*sys.exc_info())
            raise
        self.db.conn.close()  # the process is gone: nothing of the open transaction is committed
        self.dead.append(transaction)

    def audit(self) -> list[dict[str, Any]]:
        return self.manager.audit.records()

    def outbox(self) -> list[tuple[str, str, str]]:
        return self.db.conn.execute("SELECT key, kind, status FROM outbox").fetchall()

    def dump(self) -> dict[str, list]:
        """Every alerting table, without sequence numbers, in a stable order."""
        tables = {
            "alerts": "SELECT id, rule_id, subject, site_id, county, tier, state, raised_at, updated_at, record FROM alerts",
            "audit": "SELECT at, actor, action, alert_id, subject, detail FROM audit",
            "outbox": "SELECT * FROM outbox",
            "delivery_log": "SELECT key, alert_id, receiver, channel, kind, at, outcome, detail FROM delivery_log",
            "signal_horizon": "SELECT * FROM signal_horizon",
            "shelves": "SELECT * FROM shelves",
            "out_of_service": "SELECT * FROM out_of_service",
            "suppressions": "SELECT * FROM suppressions",
        }
        return {name: sorted(self.db.conn.execute(sql).fetchall(), key=repr) for name, sql in tables.items()}

    def close(self) -> None:
        for transaction in self.dead:
            try:
                transaction.gen.close()
            except Exception:
                pass  # its connection is closed: there is nothing left to roll back
        self.db.close()


class AlarmCore(RuleBasedStateMachine):
    """The real alarm core, a shadow that never crashes, and the model, driven by the same steps."""

    def __init__(self, fleet: Fleet, store: Callable[[str], Path | str] | None = None) -> None:
        """``store(name)`` says where the named store lives (default: a SQLite file in a fresh directory)."""
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(prefix="alarm-model-"))
        self.clock = FakeClock(T0)
        store = store or (lambda name: self.dir / name)
        self.sut = System(store("alerts.db"), fleet, self.clock)
        self.shadow = System(store("shadow.db"), fleet, self.clock)
        self.model = AlarmModel(MODEL_CONFIG)
        self.ids: dict[int, str] = {}          # model episode → alert id
        self.sent: list[Signal] = []
        self.used: dict[Alarm, set[float]] = defaultdict(set)
        self.audit_seen = 0
        self.outbox_seen: set[str] = set()
        self._rows: tuple[dict[str, Alert], list[dict[str, Any]], list[tuple[str, str, str]]] | None = None

    # ------------------------------------------------------------------ steps

    def _fresh(self, alarm: Alarm, tier: Tier | None, value: float, lag: float) -> Signal:
        """A new signal at ``lag`` before now; a rule says one thing per event time, so its time is new."""
        ts = round(self.clock.now - lag, 3)
        while ts in self.used[alarm]:
            ts = round(ts + 0.001, 3)
        self.used[alarm].add(ts)
        message = f"{alarm.subject} {tier.priority if tier else 'normal'} {value}"
        return Signal(alarm.rule_id, alarm.kind, alarm.subject, alarm.site_id, Family(alarm.family), tier,
                      "level" if tier else None, value, 20.0 if tier else None, "u", ts, message)

    def _apply(self, signals: list[Signal], crash: str | None) -> None:
        def model() -> list[Record]:
            out: list[Record] = []
            for s in signals:
                alarm = Alarm(s.rule_id, s.subject, s.site_id, s.family.value, s.kind)
                out += self.model.signal(alarm, s.tier, s.ts, s.value, s.message)
            return out

        self.sent += signals
        self._step(model, lambda m: m.apply(signals), crash)

    @rule(signal=SIGNALS, crash=CRASHES)
    def one_signal(self, signal: tuple, crash: str | None) -> None:
        self._apply([self._fresh(*signal)], crash)

    @rule(signals=st.lists(SIGNALS, min_size=2, max_size=4, unique_by=lambda s: s[0]), crash=CRASHES)
    def batch(self, signals: list[tuple], crash: str | None) -> None:
        """Signals of different alarms in one transaction, as `commit_signals` applies a micro-batch's."""
        self._apply([self._fresh(*s) for s in signals], crash)

    @rule(alarm=st.sampled_from(ALARMS), parts=st.lists(st.tuples(TIERS, VALUES, LAGS), min_size=2, max_size=4),
          crash=CRASHES)
    def batch_of_one_alarm(self, alarm: Alarm, parts: list[tuple], crash: str | None) -> None:
        """Several signals of one alarm in one transaction (a micro-batch with several readings of a sensor)."""
        self._apply([self._fresh(alarm, *p) for p in parts], crash)

    @precondition(lambda self: self.sent)
    @rule(back=st.integers(0, 7), crash=CRASHES)
    def duplicate(self, back: int, crash: str | None) -> None:
        """A signal again, exactly (a redelivered batch, the rules re-running stored readings)."""
        self._apply([self.sent[-1 - back % len(self.sent)]], crash)

    def _pick(self, pick: tuple[str, int]) -> int:
        which, n = pick
        candidates = [e.number for e in self.model.episodes
                      if which == "any" or (e.open if which == "open" else not e.open and not e.closed)]
        candidates = candidates or [e.number for e in self.model.episodes]
        return candidates[-1 - n % len(candidates)]

    @precondition(lambda self: self.model.episodes)
    @rule(pick=PICKS, note=st.sampled_from(["现场确认, 正在处置"] * 3 + [None, " "]), crash=CRASHES)
    def acknowledge(self, pick: tuple[str, int], note: str | None, crash: str | None) -> None:
        n = self._pick(pick)
        self._step(lambda: self.model.acknowledge(n, "值班员", note, self.clock.now),
                   lambda m: m.acknowledge(self.ids[n], "值班员", note), crash)

    @precondition(lambda self: self.model.episodes)
    @rule(pick=PICKS, note=st.sampled_from(["阀门已关闭, 通风后复测正常"] * 3 + [""]), crash=CRASHES)
    def close(self, pick: tuple[str, int], note: str, crash: str | None) -> None:
        n = self._pick(pick)
        self._step(lambda: self.model.close(n, "值班长", note, self.clock.now),
                   lambda m: m.close(self.ids[n], "值班长", note), crash)

    @precondition(lambda self: self.model.episodes)
    @rule(pick=PICKS, duration=st.sampled_from([30.0, 120.0, 599.0, SHELVE_MAX_S, 0.0, SHELVE_MAX_S + 1]),
          role=st.sampled_from(["operator", "duty_officer", "admin"]), reason=st.sampled_from(["探头标定"] * 3 + [""]),
          crash=CRASHES)
    def shelve(self, pick: tuple[str, int], duration: float, role: str, reason: str, crash: str | None) -> None:
        n, until = self._pick(pick), self.clock.now + duration
        self._step(lambda: self.model.shelve(n, "值班员", role, until, reason, self.clock.now),
                   lambda m: m.shelve(self.ids[n], "值班员", until, reason, role), crash)

    @precondition(lambda self: self.model.episodes)
    @rule(pick=PICKS, crash=CRASHES)
    def unshelve(self, pick: tuple[str, int], crash: str | None) -> None:
        n = self._pick(pick)
        self._step(lambda: self.model.unshelve(n, "值班员", self.clock.now),
                   lambda m: m.unshelve(self.ids[n], "值班员"), crash)

    @rule(dt=st.sampled_from([1.0, 10.0, 60.0, 200.0, 650.0]), crash=CRASHES)
    def advance(self, dt: float, crash: str | None) -> None:
        """The clock moves; the ticker ends the shelves that are due."""
        self.clock.now += dt
        now = self.clock.now
        self._step(lambda: self.model.expire(now), lambda m: m.expire_shelves(now), crash, ordered=False)

    @rule(sensor=st.sampled_from(SENSORS), until=st.sampled_from([None, 30.0, 300.0, -1.0]),
          reason=st.sampled_from(["检修"] * 3 + [""]), crash=CRASHES)
    def take_out_of_service(self, sensor: str, until: float | None, reason: str, crash: str | None) -> None:
        at = None if until is None else self.clock.now + until

        def action(m: AlertManager) -> list[AlertChange]:
            m.take_out_of_service(sensor, "值班长", reason, at)
            return []

        self._step(lambda: self.model.take_out(sensor, "值班长", reason, at, self.clock.now), action, crash)

    @rule(sensor=st.sampled_from(SENSORS), crash=CRASHES)
    def return_to_service(self, sensor: str, crash: str | None) -> None:
        said: dict[str, bool] = {}

        def model() -> list[Record]:
            said["model"], records = self.model.put_back(sensor, "值班长", self.clock.now)
            return records

        def action(m: AlertManager) -> list[AlertChange]:
            said["impl"] = m.return_to_service(sensor, "值班长")
            return []

        self._step(model, action, crash)
        assert said["impl"] == said["model"]

    # ------------------------------------------------------------------ checking one step

    def _step(self, model: Callable[[], list[Record]], action: Callable[[AlertManager], list[AlertChange]],
              crash: str | None, ordered: bool = True) -> None:
        try:
            expected, refused = model(), None
        except Refused as err:
            expected, refused = [], err
        outcomes = []
        for system, crashing in ((self.sut, crash), (self.shadow, None)):
            try:
                outcomes.append(system.run(action, crashing))
            except LifecycleError as err:
                assert refused is not None, f"the implementation refused what the model allows: {err!r}"
                assert code_of(err) in refused.codes, f"{err!r} answers {code_of(err)}, the model {set(refused.codes)}"
                outcomes.append(None)
        assert refused is None or outcomes == [None, None], f"the implementation allowed what the model refuses: {refused}"
        self._rows = None
        self._check_records(expected, outcomes[0] or [], ordered)
        if crash is not None:
            self._check_crash()

    def _check_records(self, expected: list[Record], changes: list[AlertChange], ordered: bool) -> None:
        """The step's audit and outbox rows are the records the model says, and nothing else."""
        raised = [c.alert for c in changes if c.event == "raised"]
        wanted = [r for r in expected if r.event == "raised"]
        assert [(a.rule_id, a.subject) for a in raised] == [
            (self.model.episodes[r.episode].alarm.rule_id, self.model.episodes[r.episode].alarm.subject) for r in wanted]
        for alert, record in zip(raised, wanted):
            assert record.episode is not None
            assert alert.id not in self.ids.values(), f"a new episode reuses the id of an old one: {alert.id}"
            self.ids[record.episode] = alert.id

        rows = self._stored()[1][self.audit_seen:]
        self.audit_seen += len(rows)
        got = [(r["action"], r["alert_id"], r["actor"], r["detail"].get("announced"),
                mute_kind(r["detail"].get("muted") or r["detail"].get("reason") if r["action"] == "not_raised"
                          else r["detail"].get("muted"))) for r in rows]
        want = [(r.event, self.ids.get(r.episode) if r.episode is not None else None, r.actor,
                 r.announced if r.episode is not None else None, r.muted) for r in expected]
        if not ordered:
            got, want = sorted(got, key=repr), sorted(want, key=repr)
        assert got == want, "audit rows of the step differ from the model's records"

        outbox = {key: (kind, status) for key, kind, status in self._stored()[2] if key not in self.outbox_seen}
        self.outbox_seen |= set(outbox)
        want_outbox = {f"{self.ids[r.episode]}:h{r.entry}:desk:0": (r.event, "pending" if r.announced else r.muted)
                       for r in expected if r.episode is not None and r.event in ANNOUNCEABLE
                       and (r.announced or r.muted)}
        assert outbox == want_outbox, "outbox rows of the step differ from what the model announces"

    def _check_crash(self) -> None:
        assert self.sut.dump() == self.shadow.dump(), "after a crash the stores differ from a run without it"

    # ------------------------------------------------------------------ invariants, at every step

    def _stored(self) -> tuple[dict[str, Alert], list[dict[str, Any]], list[tuple[str, str, str]]]:
        """Every alert, audit row and outbox row (key, kind, status) after the last step."""
        if self._rows is None:
            self._rows = ({a.id: a for a in self.sut.store.query(limit=1_000_000)}, self.sut.audit(), self.sut.outbox())
        return self._rows

    def _alerts(self) -> dict[str, Alert]:
        return self._stored()[0]

    @invariant()
    def agrees_with_the_model(self) -> None:
        alerts = self._alerts()
        assert len(alerts) == len(self.model.episodes), "one stored alert per episode"
        for episode in self.model.episodes:
            a = alerts[self.ids[episode.number]]
            got = (a.isa.value, a.tier, a.peak_tier, a.peak_value, a.peak_at, a.raise_message, a.latching,
                   a.condition_active, a.acknowledged_at is not None, a.closed_at is not None, a.shelved_until,
                   a.suppressed, (a.rule_id, a.subject))
            want = (episode.state.value, episode.tier, episode.peak, episode.peak_value, episode.peak_at,
                    episode.message, episode.latching, episode.condition, episode.acknowledged, episode.closed,
                    episode.shelved_until, episode.suppressed, (episode.alarm.rule_id, episode.alarm.subject))
            assert got == want, f"episode {episode.number} ({a.id}): store {got} vs model {want}"
            assert [(h.event, mute_kind(h.muted)) for h in a.history] == [(r.event, r.muted) for r in episode.history]
        opened = {a.id: a for a in self.sut.manager.open_alerts()}
        stored = {a.id: a for a in self.sut.store.open_alerts()}
        assert opened == stored, f"memory ran ahead of the store: {differences(opened, stored)}"
        assert set(opened) == {self.ids[e.number] for e in self.model.open_episodes()}
        assert {(s.rule_id, s.subject): s.until for s in self.sut.manager.shelves.due(float("inf"))} == {
            (alarm.rule_id, alarm.subject): p.shelf_until for alarm, p in self.model.points.items()
            if p.shelf_until is not None}
        assert self.sut.store.horizons() == {(alarm.rule_id, alarm.subject): p.horizon
                                             for alarm, p in self.model.points.items() if p.horizon is not None}

    @invariant()
    def latched_episodes_end_only_after_an_acknowledgement(self) -> None:
        """Invariant 1, on the stored history alone: a resolution of a latching episode follows an
        acknowledgement of everything that needed a person (a raise, a reactivation, an escalation
        above what was acknowledged)."""
        for a in self._alerts().values():
            alarm = Alarm(a.rule_id, a.subject, a.site_id, a.family, a.kind)
            latching = not a.suppressed and MODEL_CONFIG.latches(alarm, a.peak_tier)
            needs, taken = False, None
            for h in a.history:
                if h.event in ("raised", "reactivated") or (h.event == "escalated" and (taken is None or h.tier > taken)):
                    needs = True
                elif h.event == "acknowledged":
                    needs, taken = False, h.tier
                elif h.event == "resolved":
                    assert not (latching and needs), f"{a.id} latched (peak {a.peak_tier.priority}) resolved unacknowledged"

    @invariant()
    def every_activation_is_announced_once_or_says_why_not(self) -> None:
        """Invariant 2, on the stored rows alone: each raised/reactivated entry has one outbox row for
        the one receiver, pending when its audit row says announced, else held back by the rule the
        audit names; a signal out of service is audited ``not_raised``."""
        _, audit, rows = self._stored()
        outbox = Counter(key.rsplit(":", 2)[0] for key, _, _ in rows)
        status = {key.rsplit(":", 2)[0]: st_ for key, _, st_ in rows}
        audited: dict[str, list[dict]] = defaultdict(list)
        not_raised = 0
        for row in audit:
            if row["action"] in ("raised", "reactivated"):
                audited[row["alert_id"]].append(row)
            not_raised += row["action"] == "not_raised" and mute_kind(row["detail"]["reason"]) == "out_of_service"
        assert not_raised == self.model.not_raised
        for a in self._alerts().values():
            entries = [i for i, h in enumerate(a.history) if h.event in ("raised", "reactivated")]
            assert [a.history[i].event for i in entries] == [r["action"] for r in audited[a.id]]
            for i, row in zip(entries, audited[a.id]):
                key = f"{a.id}:h{i}"
                assert outbox[key] == 1, f"{a.history[i].event} of {a.id} (entry {i}) has {outbox[key]} outbox rows"
                why = mute_kind(row["detail"]["muted"])
                if row["detail"]["announced"]:
                    assert why is None and status[key] == "pending"
                else:
                    assert why in ("shelved", "suppressed", "chattering", "flood") and status[key] != "pending", why

    @invariant()
    def never_normal_while_the_condition_holds(self) -> None:
        """Invariant 3: the latest applied signal calls for a priority → an open alert (unless out
        of service kept it from being raised)."""
        open_alarms = {(a.rule_id, a.subject) for a in self.sut.store.open_alerts()}
        for alarm, point in self.model.points.items():
            if point.calls_for is not None and not point.not_raised:
                assert (alarm.rule_id, alarm.subject) in open_alarms, f"{alarm} shows normal while in alarm"

    def teardown(self) -> None:
        try:
            self._check_crash()
        finally:
            self.sut.close()
            self.shadow.close()
            shutil.rmtree(self.dir, ignore_errors=True)


@pytest.mark.timeout(0 if LONG else 300)
def test_the_alarm_core_follows_its_model_through_crashes(fleet):
    """docs/alarms.md's table and invariants hold for random interleavings of signals, people's actions,
    clock advances and crashes (at any step, also between writing an alert and queuing its notification)."""
    with structlog.testing.capture_logs():  # thousands of alert_* lines otherwise
        run_state_machine_as_test(lambda: AlarmCore(fleet), settings=MODEL_SETTINGS)


@pytest.mark.slow
@pytest.mark.timeout(0 if LONG else 600)
def test_the_alarm_core_on_postgresql_follows_its_model_through_crashes(fleet, pg_url):
    """The same model on PostgreSQL: a crash closes the connection with its transaction open (the server
    rolls it back), the restarted core reads back exactly what the never-crashing shadow holds."""
    examples = itertools.count()

    def store(name: str) -> str:
        return schema_url(pg_url, f"m{next(examples)}_{name.split('.')[0]}")

    with structlog.testing.capture_logs():
        run_state_machine_as_test(lambda: AlarmCore(fleet, store),
                                  settings=settings(MODEL_SETTINGS, max_examples=300 if LONG else 40))

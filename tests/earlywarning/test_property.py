"""The warning lifecycle against a reference model, on random action sequences (hypothesis).

Every example runs the same actions on the real desk (in-memory SQLite, fake clock, recording MQTT
and outbox) and on `tests.earlywarning.model`, and checks after every action that they agree on
each warning's state and level and on which actions are refused (409) or invalid (422), and that:

- nothing is published unless it was verified first (documents and MQTT messages alike);
- rejected and lifted warnings are final: no action changes them, a rejected one never published;
- every step is audited: one audit record per history entry, same actor and action;
- at most one open warning per (subject, category);
- the retained MQTT view holds exactly the warnings in force.

``HYPOTHESIS_PROFILE=long`` runs many more examples.
"""

from __future__ import annotations

import itertools
import os

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from earlywarning import InvalidWarning, NotAllowed, WarningEvent, WarningLevel, WarningState
from earlywarning.publish import WARNINGS_TOPIC
from tests.earlywarning.model import Model
from tests.earlywarning.support import GAS, HAZCHEM, Room
from tests.pgserver import schema_url

settings.register_profile("long", max_examples=2_000, deadline=None)
_LONG = os.environ.get("HYPOTHESIS_PROFILE") == "long"

SITES = ("LC-LUXI", "LC-XFHG")
CATEGORIES = (HAZCHEM, GAS)
LEVELS = ("I", "II", "III", "IV")

proposals = st.tuples(st.just("propose"), st.integers(0, 1), st.integers(0, 1), st.sampled_from(LEVELS))
steps = st.tuples(st.sampled_from(["verify", "reject", "issue", "lift"]), st.integers(0, 7), st.booleans())
adjustments = st.tuples(st.just("adjust"), st.integers(0, 7), st.booleans(), st.sampled_from(LEVELS))
ticks = st.tuples(st.just("tick"), st.integers(1, 2_000))
actions = st.lists(st.one_of(proposals, steps, adjustments, ticks), max_size=30)


@pytest.fixture(scope="module")
def demo_fleet(demo_config):
    return demo_config.fleet


def run_step(room: Room, warning_id: str, action: str, reason: bool, level: str | None) -> str:
    why = "研判理由" if reason else " "
    try:
        if action == "adjust":
            room.desk.adjust(warning_id, "值班员", WarningLevel(level), why)
        elif action == "issue":
            room.desk.issue(warning_id, "值班员")
        else:
            getattr(room.desk, action)(warning_id, "值班员", why)
    except NotAllowed:
        return "not_allowed"
    except InvalidWarning:
        return "invalid"
    return "ok"


def check_invariants(room: Room, model: Model, ids: list[str]) -> None:
    warnings = [room.desk.get(i) for i in ids]
    for warning, expected in zip(warnings, model.warnings):
        assert (warning.state.value, warning.level.value) == (expected.state, expected.level)
        publications = room.desk.publications(warning.id)
        assert len(publications) == warning.version == expected.published
        events = [h.event for h in warning.history]
        if publications:  # never published unless verified first
            assert WarningEvent.VERIFIED in events
            assert events.index(WarningEvent.VERIFIED) < events.index(WarningEvent.ISSUED)
        if warning.state is WarningState.REJECTED:
            assert publications == [] and WarningEvent.ISSUED not in events
    published = {orjson_id(p) for _, p, _ in room.publisher.messages if p}
    assert published <= {w.id for w in warnings if WarningEvent.VERIFIED in [h.event for h in w.history]}
    # every step audited: one record per history entry, same actor and action, in order per warning
    records = room.audit.records()
    held = [r for r in records if r["action"] == "warning_proposal_held"]
    assert len(held) == model.held  # a proposal held after a rejection is on record, not a step of the warning
    records = [r for r in records if r["action"] != "warning_proposal_held"]
    assert len(records) == sum(len(w.history) for w in warnings)
    for warning in warnings:
        mine = [(r["actor"], r["action"]) for r in records if r["detail"]["warning_id"] == warning.id]
        assert mine == [(h.by, f"warning_{h.event.value}") for h in warning.history]
    open_keys = [(w.subject.key, w.category) for w in warnings if w.is_open]
    assert len(open_keys) == len(set(open_keys))
    assert set(room.publisher.retained) == {WARNINGS_TOPIC.format(warning_id=w.id) for w in warnings if w.in_force}


def orjson_id(payload: bytes) -> str:
    return orjson.loads(payload)["warning"]["id"]


@settings(max_examples=2_000 if _LONG else 120, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(actions)
def test_the_lifecycle_agrees_with_the_reference_model(demo_fleet, sequence) -> None:
    follow_the_model(Room(demo_fleet), sequence)


@pytest.fixture(scope="module")
def pg_warnings(pg_server):
    url = pg_server.create_database()
    yield url, itertools.count()
    pg_server.drop_database(url)


@settings(max_examples=2_000 if _LONG else 40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(actions)
def test_the_lifecycle_on_postgresql_agrees_with_the_reference_model(demo_fleet, pg_warnings, sequence) -> None:
    """The same model with the desk's tables in PostgreSQL (a fresh schema per example)."""
    url, examples = pg_warnings
    room = Room(demo_fleet, schema_url(url, f"w{next(examples)}"))
    try:
        follow_the_model(room, sequence)
    finally:
        room.db.close()


def follow_the_model(room: Room, sequence) -> None:
    model = Model()
    ids: list[str] = []
    for action in sequence:
        room.later(1)
        kind = action[0]
        if kind == "propose":
            _, site, category, level = action
            key = (SITES[site], CATEGORIES[category])
            outcome, expected = model.propose(key, level, room.clock.now)
            change = room.propose(site=key[0], category=key[1], level=level, alarm_ids=(f"A{len(ids)}",))
            assert change.created == (outcome == "created")
            if change.created:
                ids.append(change.warning.id)
            else:
                assert change.warning.id == ids[model.warnings.index(expected)]
        elif kind == "tick":
            before = [(w.state, w.level) for w in model.warnings]
            room.desk.tick(room.later(action[1]))
            assert [(w.state, w.level) for w in model.warnings] == before
        elif ids:
            index = action[1] % len(ids)
            level = action[3] if kind == "adjust" else None
            final_before = room.desk.get(ids[index]).state in (WarningState.REJECTED, WarningState.LIFTED)
            expected = model.act(model.warnings[index], kind, action[2], level, room.clock.now)
            assert run_step(room, ids[index], kind, action[2], level) == expected
            if final_before:
                assert expected == "not_allowed"
        check_invariants(room, model, ids)

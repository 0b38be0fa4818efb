"""The danger rule's 三–五级 days become forest-zone warning proposals on the desk; 一–二级 never do."""

from __future__ import annotations

import sqlite3

import pytest

from earlywarning.forest import DangerProposer, danger_proposer
from earlywarning.model import SubjectKind
from rules.fire import DangerWarning
from tests.earlywarning.support import FOREST, Room
from tests.rules.feeds import deliver, engine_for
from tests.rules.test_contract_battery import weather


@pytest.fixture
def room(demo_config):
    return Room(demo_config.fleet)


def test_a_third_level_day_proposes_a_yellow_warning_about_the_stations_forest_zone(demo_config, room):
    """The battery's hot dry day scores 65 (三级, see test_fire_danger): a yellow (Ⅲ) warning about 东阿黄河森林."""
    engine = engine_for(demo_config, "forest.danger")
    engine.by_id["forest.danger"].propose_warning = danger_proposer(room.desk)
    deliver(engine, sorted(weather(demo_config.fleet, 1), key=lambda r: r.ts), demo_config.fleet)
    held = room.desk.query()
    assert len(held) == 1
    w = held[0]
    assert (w.subject.kind, w.subject.id, w.category, w.level.colour) == (SubjectKind.FOREST_ZONE, "LC-DEHH", FOREST,
                                                                          "yellow")


def test_a_colour_outside_yellow_orange_red_is_refused(room):
    propose = danger_proposer(room.desk)
    with pytest.raises(ValueError, match="yellow, orange or red"):
        propose(DangerWarning("forest.danger", "LC-DEHH-WS1", "LC-DEHH", "blue", "二级", 40.0, 0.0, "x"))


def test_a_proposal_the_desk_cannot_take_waits_and_the_retry_gets_it_through(demo_config, room, monkeypatch):
    """The rule proposes once, the day a class is entered: a desk that cannot write must not lose that day."""
    engine = engine_for(demo_config, "forest.danger")
    proposer = DangerProposer(room.desk)
    engine.by_id["forest.danger"].propose_warning = proposer
    real = room.desk.propose

    def full_disk(*args, **kwargs):
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(room.desk, "propose", full_disk)
    deliver(engine, sorted(weather(demo_config.fleet, 1), key=lambda r: r.ts), demo_config.fleet)
    assert room.desk.query() == [] and len(proposer.pending) == 1
    assert "disk is full" in proposer.pending[0][2]
    assert proposer.retry() == 1  # still full: kept
    monkeypatch.setattr(room.desk, "propose", real)
    assert proposer.retry() == 0
    [w] = room.desk.query()
    assert (w.subject.id, w.level.colour, w.proposed_by) == ("LC-DEHH", "yellow", "rule:forest.danger")

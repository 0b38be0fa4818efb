"""The danger rule's 三–五级 days become forest-zone warning proposals on the desk; 一–二级 never do."""

from __future__ import annotations

import pytest

from earlywarning.forest import danger_proposer
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

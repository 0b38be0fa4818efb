"""Forest alarms reach the forest receivers (森林防火办, 护林员), never a plant operator (config/alerting.yaml)."""

from __future__ import annotations

import pytest

from alerting.model import Alert
from alerting.notify import Router
from foundation.domain import Tier

PLANT = {"plant-operator", "plant-safety"}


def _alert(tier: Tier, family: str = "forest", rule_id: str = "forest.fire_detected") -> Alert:
    return Alert(id="a1", rule_id=rule_id, kind="fire_detection", subject="LC-DEHH-WS1", site_id="LC-DEHH",
                 county="东阿县", family=family, tier=tier, level="fire_detected", message="发现火情", value=2.0,
                 threshold=None, unit="个", raised_at=0.0, updated_at=0.0)


def test_a_red_forest_alarm_reaches_forest_receivers_and_duty_desks_and_no_plant_operator(demo_config):
    chain = Router(demo_config.alerting).chain(_alert(Tier.RED))
    assert chain[0] == ["forest-ranger", "forest-office", "county-duty", "city-duty"]
    assert not PLANT & {r for step in chain for r in step}


@pytest.mark.parametrize("tier", [Tier.BLUE, Tier.YELLOW, Tier.ORANGE])
def test_forest_danger_alarms_go_to_the_forest_side_first_then_the_duty_desks(demo_config, tier):
    chain = Router(demo_config.alerting).chain(_alert(tier, rule_id="forest.danger"))
    assert chain == [["forest-ranger", "forest-office"], ["county-duty"], ["city-duty"]]


def test_the_forest_receivers_have_log_and_mqtt_channels(demo_config):
    receivers = {r.id: r for r in demo_config.alerting.receivers}
    for rid, name in (("forest-office", "森林防火办"), ("forest-ranger", "护林员")):
        assert receivers[rid].name == name
        assert sorted(c.kind for c in receivers[rid].channels) == ["log", "mqtt"]


def test_a_red_plant_alarm_still_reaches_the_plant_operator(demo_config):
    chain = Router(demo_config.alerting).chain(_alert(Tier.RED, family="hazard", rule_id="x"))
    assert "plant-operator" in chain[0] and "forest-ranger" not in chain[0]


def test_a_red_forest_warning_reaches_forest_receivers_and_no_plant_operator(demo_config):
    """The demo's warnings.yaml routes: the county desk verifies, the issued red (Ⅰ) warning goes to the desk
    and to 森林防火办 and 护林员 — no plant operator or plant safety officer."""
    from earlywarning.model import SubjectKind
    from tests.earlywarning.support import FOREST, Room

    routes = [r.model_dump(by_alias=True) for r in demo_config.warnings.routes]
    room = Room(demo_config.fleet, routes=routes)
    w = room.propose(site="LC-DEHH", kind=SubjectKind.FOREST_ZONE, category=FOREST, level="I").warning
    room.desk.verify(w.id, "张三", "属实")
    room.desk.issue(w.id, "张三")
    issued = room.outbox.receivers("warning_issued")
    assert {"forest-office", "forest-ranger"} <= set(issued) and not PLANT & set(issued)

"""Hazard units (重大危险源) as registered: GB 18218 inputs checked; lookups by unit, site, sensor and alarm subject;
the three 包保责任人 for routing."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from foundation.hazardunits import HazardUnit, gb18218_grade

PERSONS = {"main": {"name": "演示·主要负责人", "phone": "138-0000-0001"},
           "technical": {"name": "演示·技术负责人", "phone": "138-0000-0002"},
           "operational": {"name": "演示·操作负责人", "phone": "138-0000-0003"}}
CHLORINE = {"name": "氯", "cas": "7782-50-5", "quantity_t": 60, "critical_t": 5, "beta": 4}


def unit(**changes) -> HazardUnit:
    data = {"id": "LC-X-U1", "name": "液氯储罐区", "kind": "storage", "grade": 2, "alpha": 2.0, "r": 96,
            "substances": [CHLORINE], "responsible": PERSONS, **changes}
    return HazardUnit.model_validate(data)


def test_every_major_hazard_enterprise_of_the_demo_has_units_whose_highest_grade_is_the_sites(fleet):
    for site in fleet.sites.values():
        if site.hazard_grade is not None:
            assert site.hazard_units and min(u.grade for u in site.hazard_units) == site.hazard_grade
            assert max(u.r_value for u in site.hazard_units) == site.hazard_r
            for u in site.hazard_units:
                assert u.r_computed == u.r and gb18218_grade(u.r) == u.grade and u.s >= 1
                assert "demo" in u.source and all("verify" in x.source for x in u.substances)
                assert all(p.phone.startswith("138-0000-") and p.name.startswith("演示")
                           for p in (u.responsible.main, u.responsible.technical, u.responsible.operational))
    tanks = fleet.hazard_unit("LC-XFPVC-U1")
    assert (tanks.name, tanks.kind, tanks.grade, tanks.r) == ("氯乙烯储罐区", "storage", 1, 150)
    assert fleet.hazard_unit("LC-XFPVC-U2").key_processes == ["氯化工艺", "聚合工艺"]


def test_lookups_by_unit_site_and_sensor(fleet):
    assert [u.id for u in fleet.units_of("LC-XFPVC")] == ["LC-XFPVC-U1", "LC-XFPVC-U2"]
    assert fleet.units_of("LC-DEHH") == () and fleet.units_of("LC-NOPE") == ()
    assert fleet.unit_of_sensor("LC-XFPVC-T101-PT").id == "LC-XFPVC-U1"
    assert fleet.unit_of_sensor("LC-XFPVC-GT-01").id == "LC-XFPVC-U2"
    assert fleet.unit_of_sensor("LC-XFHG-GT-01") is None  # a sensor outside every unit
    assert fleet.hazards.site_of["LC-LUXI-U2"] == "LC-LUXI" and fleet.hazard_unit("LC-NOPE") is None


def test_responsible_persons_of_a_unit_and_of_a_site(fleet):
    unit_people = fleet.responsible_persons("LC-XFPVC", "LC-XFPVC-U1")
    assert [(c.role, c.role_zh, c.phone) for c in unit_people] == [
        ("main", "主要负责人", "138-0000-0031"), ("technical", "技术负责人", "138-0000-0032"),
        ("operational", "操作负责人", "138-0000-0033")]
    site_people = fleet.responsible_persons("LC-XFPVC")
    assert [c.phone for c in site_people] == ["138-0000-0031", "138-0000-0032", "138-0000-0034", "138-0000-0033",
                                              "138-0000-0035"]  # the main person once, both units' others
    assert site_people[0].to_json() == {"role": "main", "role_zh": "主要负责人", "name": "演示·信发聚氯乙烯主要负责人",
                                        "phone": "138-0000-0031", "title": "总经理", "unit_id": "LC-XFPVC-U1",
                                        "unit_name": "氯乙烯储罐区", "site_id": "LC-XFPVC"}


def test_the_responsible_persons_for_an_alarm_follow_its_subject(fleet):
    """A sensor's alarm goes to its unit's three; a site-wide one, or one outside every unit, to every unit's; a zone's
    to the units of its sensors (given the zones); a site without units has none."""
    phones = lambda contacts: [c.phone for c in contacts]  # noqa: E731
    assert phones(fleet.responsible_for("LC-XFPVC", "LC-XFPVC-GT-02")) == ["138-0000-0031", "138-0000-0034",
                                                                            "138-0000-0035"]
    everyone = phones(fleet.responsible_persons("LC-XFPVC"))
    assert phones(fleet.responsible_for("LC-XFPVC", "site:LC-XFPVC")) == everyone
    assert phones(fleet.responsible_for("LC-XFPVC", "LC-XFPVC-combustible-gas-Z1")) == everyone
    zones = {"LC-XFPVC-combustible-gas-Z1": ["LC-XFPVC-GD-01", "LC-XFPVC-GD-02"]}
    assert phones(fleet.responsible_for("LC-XFPVC", "LC-XFPVC-combustible-gas-Z1", zones)) == [
        "138-0000-0031", "138-0000-0032", "138-0000-0033"]
    assert phones(fleet.responsible_for("LC-XFPVC", "LC-XFPVC-combustible-gas-Z1", lambda zone: zones[zone])) == [
        "138-0000-0031", "138-0000-0032", "138-0000-0033"]
    assert fleet.responsible_for("LC-DCRQ", "site:LC-DCRQ") == []


def test_a_sites_dump_leaves_its_units_and_their_phones_out(fleet):
    dumped = fleet.sites["LC-XFPVC"].model_dump()
    assert "hazard_units" not in dumped and dumped["hazard_grade"] == 1


def test_r_is_computed_from_its_inputs_and_checked_against_the_registered_one():
    u = unit()
    assert (u.s, u.r_computed, u.r_value, u.max_beta, u.kind_zh) == (12.0, 96.0, 96.0, 4, "储存单元")
    assert unit(r=96.5).r == 96.5                       # registries round: within 1 %
    assert unit(r=None).r_value == 96.0                 # computed when not registered
    assert unit(alpha=None, r=80).r_computed is None    # not all inputs: the registered R stands
    assert unit(substances=[], r=60).s == 0


@pytest.mark.parametrize("changes, message", [
    ({"r": 90}, "differs from α·Σβq/Q = 96"),
    ({"grade": 1}, "gives GB 18218 grade 2, not 1"),
    ({"r": None, "alpha": 1.0, "grade": 2}, "R 48 gives GB 18218 grade 3"),
    ({"substances": [{**CHLORINE, "quantity_t": 4}], "r": None}, "S = Σ q/Q = 0.8 < 1"),
    ({"substances": [{**CHLORINE, "cas": "7782-50-4"}]}, "check digit"),
    ({"key_processes": ["氯化"]}, "Input should be"),
    ({"sensors": ["A-1", "A-1"]}, "sensors repeat"),
    ({"responsible": {**PERSONS, "operational": {"name": "某", "phone": "call me"}}}, "pattern"),
    ({"responsible": {"main": PERSONS["main"], "technical": PERSONS["technical"]}}, "Field required"),
    ({"alpha": 3}, "less than or equal to 2"),
    ({"kind": "warehouse"}, "Input should be"),
])
def test_a_bad_registration_says_what_is_wrong(changes, message):
    with pytest.raises(ValidationError, match=message):
        unit(**changes)

"""The published documents (GB/T 35965.1 / CAP 1.2 profile, docs/warnings.md) and their checker."""

from __future__ import annotations

import copy
import xml.etree.ElementTree as ET
from dataclasses import replace

import pytest

from earlywarning import WarningEvent, WarningLevel, cap_document, cap_xml, problems, xml_problems
from earlywarning.cap import CAP_NS, identifier_for
from earlywarning.capcheck import FIELDS, xml_to_dict
from earlywarning.model import Area
from earlywarning.testing import sample_warning
from foundation.warningspec import CapProfile, CategorySpec

SPEC = CategorySpec(event="危险化学品事故", cap_categories=["CBRNE", "Safety"])
PROFILE = CapProfile()


def alert(level: WarningLevel = WarningLevel.II, **changes) -> dict:
    warning = sample_warning(level)
    if changes:
        warning = replace(warning, **changes)
    return cap_document(warning, WarningEvent.ISSUED, identifier_for(warning, 1, warning.issued_at, 0),
                        warning.issued_at, PROFILE, SPEC)


@pytest.mark.parametrize("level, severity, colour", [("I", "Extreme", "红色"), ("II", "Severe", "橙色"),
                                                     ("III", "Moderate", "黄色"), ("IV", "Minor", "蓝色")])
def test_levels_map_to_cap_severity(level: str, severity: str, colour: str) -> None:
    doc = alert(WarningLevel(level))
    info = doc["info"][0]
    assert info["severity"] == severity
    assert {"valueName": "colour", "value": colour} in info["parameter"]
    assert colour in info["headline"] and problems(doc) == []


def test_an_alert_in_the_profile() -> None:
    doc = alert()
    assert list(doc) == ["identifier", "sender", "sent", "status", "msgType", "scope", "info"]
    assert doc["identifier"] == "W20261125080000-sample-v1" and doc["sent"] == "2026-11-25T08:00:00+08:00"
    info = doc["info"][0]
    assert info["language"] == "zh-CN" and info["category"] == ["CBRNE", "Safety"] and info["event"] == "危险化学品事故"
    assert (info["urgency"], info["certainty"], info["senderName"]) == ("Expected", "Likely", "聊城市应急管理局")
    assert info["headline"] == "聊城市应急管理局发布鲁西集团危险化学品事故橙色预警"
    assert "警示事项: 可燃气体可能泄漏扩散" in info["description"] and info["instruction"] == "1. 立即寻查释放点"
    assert info["area"] == [{"areaDesc": "鲁西集团 (东昌府区) 周边 3 公里", "circle": ["36.470000,116.060000 3"]}]


def test_the_xml_form_is_the_json_form_in_caps_namespace_and_order() -> None:
    doc = alert(expires=1_795_651_200.0)
    xml = cap_xml(doc)
    root = ET.fromstring(xml.encode())
    assert root.tag == f"{{{CAP_NS}}}alert" and xml.startswith('<?xml version="1.0" encoding="UTF-8"?>')
    info = root.find(f"{{{CAP_NS}}}info")
    names = [child.tag.split("}")[1] for child in info]
    assert names.index("onset") < names.index("expires") < names.index("senderName") < names.index("area")
    assert xml_to_dict(xml) == doc and xml_problems(xml) == []


def test_a_polygon_area_is_a_closed_ring_of_lat_lon_pairs() -> None:
    square = ((116.235, 36.84), (116.265, 36.84), (116.265, 36.86), (116.235, 36.86))
    doc = alert(area=Area("高唐林场一号林区 (高唐县)", polygon=square))
    [polygon] = doc["info"][0]["area"][0]["polygon"]
    pairs = polygon.split(" ")
    assert len(pairs) == 5 and pairs[0] == pairs[-1] == "36.840000,116.235000"
    assert problems(doc) == []


@pytest.mark.parametrize("break_it, expected", [
    (lambda d: d.pop("sender"), "missing sender"),
    (lambda d: d.update(sent="2026-11-25T00:00:00Z"), "sent: '2026-11-25T00:00:00Z' is not a CAP dateTime"),
    (lambda d: d.update(identifier="W 1"), "identifier: no spaces"),
    (lambda d: d.update(msgType="Update"), "Update needs references"),
    (lambda d: d.update(status="Real"), "status: 'Real' not in"),
    (lambda d: d.update(extra="x"), "unknown field extra"),
    (lambda d: d["info"][0].pop("instruction"), "missing info[0].instruction (art. 64: measures to take)"),
    (lambda d: d["info"][0].pop("onset"), "missing info[0].onset"),
    (lambda d: d["info"][0].update(severity="Red"), "info[0].severity: 'Red' not in"),
    (lambda d: d["info"][0].update(category=["Chemical"]), "info[0].category: 'Chemical' is not a CAP category"),
    (lambda d: d["info"][0].update(expires="2026-11-25T07:00:00+08:00"), "expires is not after onset"),
    (lambda d: d["info"][0]["area"][0].pop("circle"), "info[0].area[0]: needs a polygon or a circle"),
    (lambda d: d["info"][0]["area"][0].update(polygon=["36.8,116.2 36.9,116.2 36.9,116.3"]), "first repeated last"),
    (lambda d: d["info"][0]["area"][0].update(circle=["116.06 36.47 3"]), "expected 'lat,lon radius_km'"),
])
def test_the_checker_names_what_is_wrong(break_it, expected: str) -> None:
    doc = copy.deepcopy(alert())
    break_it(doc)
    found = problems(doc)
    assert any(expected in p for p in found), found


def test_the_xml_checker_wants_caps_namespace_order_and_well_formed_xml() -> None:
    xml = cap_xml(alert())
    assert xml_problems(xml.replace(CAP_NS, "urn:oasis:names:tc:emergency:cap:1.1"))[0].startswith("root element")
    assert xml_problems("<alert>")[0].startswith("not well-formed")
    swapped = xml.replace("<sender>liaocheng.yjj</sender>", "").replace(
        "<status>Actual</status>", "<status>Actual</status>\n  <sender>liaocheng.yjj</sender>")
    assert "alert: sender is out of CAP 1.2's order" in xml_problems(swapped)


def test_the_field_list_covers_every_field_the_desk_writes() -> None:
    listed = {name for name, _, _ in FIELDS}
    doc = alert(expires=1_795_651_200.0)
    written = {k for k in doc if k != "info"} | {f"info.{k}" for k in doc["info"][0] if k != "area"} | \
        {f"info.area.{k}" for k in doc["info"][0]["area"][0]}
    assert written <= listed, written - listed

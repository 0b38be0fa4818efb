"""Checks a published document against the GB/T 35965.1 / CAP 1.2 field list (docs/warnings.md).

`problems` checks the JSON form, `xml_problems` the XML form (namespace, element order, then the
same checks on what it holds); both return a list of human-readable problems, empty when the
document passes. `FIELDS` is the field list with the art. 64 item each field carries. The tests
use these on every published document; a receiving system can use them too.

>>> problems({"identifier": "x"})[:2]
['missing sender', 'missing sent']
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import datetime
from typing import Any

from earlywarning.cap import ALERT_ORDER, AREA_ORDER, CAP_NS, INFO_ORDER
from foundation.warningspec import CAP_CATEGORIES

__all__ = ["ART64", "FIELDS", "problems", "xml_problems", "xml_to_dict"]

FIELDS: tuple[tuple[str, bool, str], ...] = (
    ("identifier", True, ""), ("sender", True, "发布单位 (issuer)"), ("sent", True, "发布时间 (time issued)"),
    ("status", True, ""), ("msgType", True, "发布/更新/解除"), ("scope", True, ""),
    ("references", False, "the earlier documents (required for Update and Cancel)"),
    ("note", False, "the reason of a Cancel"),
    ("info.language", True, ""), ("info.category", True, "预警类别 (category)"), ("info.event", True, "预警类别"),
    ("info.responseType", False, "AllClear on Cancel"), ("info.urgency", True, ""),
    ("info.severity", True, "预警级别 (level)"), ("info.certainty", True, ""), ("info.eventCode", False, ""),
    ("info.effective", False, ""), ("info.onset", True, "起始时间 (start time)"), ("info.expires", False, ""),
    ("info.senderName", True, "发布单位 (issuer)"), ("info.headline", True, ""),
    ("info.description", True, "警示事项 (what to watch)"),
    ("info.instruction", True, "应当采取的措施 (measures; not on Cancel)"), ("info.web", False, ""),
    ("info.contact", False, ""), ("info.parameter", False, "level, colour, subject, warning id, time issued"),
    ("info.area.areaDesc", True, "可能影响范围 (area)"), ("info.area.polygon", False, "可能影响范围"),
    ("info.area.circle", False, "可能影响范围 (polygon or circle required)"),
)
"""(field, required in this profile, art. 64 item it carries)."""

ART64 = {"category": ("info.category", "info.event"), "level": ("info.severity",), "start time": ("info.onset",),
         "area": ("info.area.areaDesc",), "what to watch": ("info.description",),
         "measures": ("info.instruction",), "issuer": ("sender", "info.senderName"), "time issued": ("sent",)}
"""Art. 64's eight items → the fields that carry them (DOMAIN.md: GB/T 35965.1 carries all eight [U])."""

_ENUMS = {
    "status": {"Actual", "Exercise", "System", "Test", "Draft"},
    "msgType": {"Alert", "Update", "Cancel", "Ack", "Error"},
    "scope": {"Public", "Restricted", "Private"},
    "urgency": {"Immediate", "Expected", "Future", "Past", "Unknown"},
    "severity": {"Extreme", "Severe", "Moderate", "Minor", "Unknown"},
    "certainty": {"Observed", "Likely", "Possible", "Unlikely", "Unknown"},
    "responseType": {"Shelter", "Evacuate", "Prepare", "Execute", "Avoid", "Monitor", "Assess", "AllClear", "None"},
}
_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}[+-]\d{2}:\d{2}$")
_TOKEN = re.compile(r"^[^\s,<&]+$")
_PAIR = r"-?\d+(?:\.\d+)?,-?\d+(?:\.\d+)?"
_CIRCLE = re.compile(rf"^({_PAIR}) (\d+(?:\.\d+)?)$")
_LISTS = {"info", "category", "responseType", "eventCode", "parameter", "resource", "area", "polygon", "circle",
          "geocode"}
_PAIRS = {"eventCode", "parameter", "geocode"}


def _latlon(text: str) -> tuple[float, float] | None:
    try:
        lat, lon = (float(x) for x in text.split(","))
    except ValueError:
        return None
    return (lat, lon) if -90 <= lat <= 90 and -180 <= lon <= 180 else None


def _check_area(area: dict[str, Any], where: str, out: list[str]) -> None:
    for key in area:
        if key not in AREA_ORDER:
            out.append(f"{where}: unknown field {key}")
    if not area.get("areaDesc"):
        out.append(f"missing {where}.areaDesc")
    if not area.get("polygon") and not area.get("circle"):
        out.append(f"{where}: needs a polygon or a circle")
    for polygon in area.get("polygon", []):
        pairs = str(polygon).split(" ")
        points = [_latlon(p) for p in pairs]
        if len(pairs) < 4 or None in points or pairs[0] != pairs[-1]:
            out.append(f"{where}.polygon: needs ≥ 4 'lat,lon' pairs, the first repeated last: {polygon!r}")
    for circle in area.get("circle", []):
        m = _CIRCLE.match(str(circle))
        if not m or _latlon(m.group(1)) is None:
            out.append(f"{where}.circle: expected 'lat,lon radius_km': {circle!r}")


def _check_info(info: dict[str, Any], msg_type: str, where: str, out: list[str]) -> None:
    for key in info:
        if key not in INFO_ORDER:
            out.append(f"{where}: unknown field {key}")
    for key in ("language", "category", "event", "urgency", "severity", "certainty", "onset", "senderName",
                "headline", "description", "area"):
        if not info.get(key):
            out.append(f"missing {where}.{key}")
    if msg_type != "Cancel" and not info.get("instruction"):
        out.append(f"missing {where}.instruction (art. 64: measures to take)")
    for category in info.get("category", []):
        if category not in CAP_CATEGORIES:
            out.append(f"{where}.category: {category!r} is not a CAP category")
    for key in ("urgency", "severity", "certainty"):
        if key in info and info[key] not in _ENUMS[key]:
            out.append(f"{where}.{key}: {info[key]!r} not in {sorted(_ENUMS[key])}")
    for response in info.get("responseType", []):
        if response not in _ENUMS["responseType"]:
            out.append(f"{where}.responseType: {response!r}")
    for key in ("effective", "onset", "expires"):
        if key in info and not _TIME.match(str(info[key])):
            out.append(f"{where}.{key}: {info[key]!r} is not a CAP dateTime")
    if all(_TIME.match(str(info.get(k, ""))) for k in ("onset", "expires")) and \
            datetime.fromisoformat(info["expires"]) <= datetime.fromisoformat(info["onset"]):
        out.append(f"{where}: expires is not after onset")
    for key in _PAIRS & set(info):
        for pair in info[key]:
            if not isinstance(pair, dict) or set(pair) != {"valueName", "value"}:
                out.append(f"{where}.{key}: expected {{valueName, value}}: {pair!r}")
    for i, area in enumerate(info.get("area", [])):
        _check_area(area, f"{where}.area[{i}]", out)


def problems(doc: dict[str, Any]) -> list[str]:
    """What keeps ``doc`` (JSON form) from being a valid warning document of this profile; empty if nothing."""
    out: list[str] = []
    for key in doc:
        if key not in ALERT_ORDER:
            out.append(f"unknown field {key}")
    for key in ("identifier", "sender", "sent", "status", "msgType", "scope", "info"):
        if not doc.get(key):
            out.append(f"missing {key}")
    for key in ("identifier", "sender"):
        if doc.get(key) and not _TOKEN.match(str(doc[key])):
            out.append(f"{key}: no spaces, commas, '<' or '&' allowed: {doc[key]!r}")
    for key in ("status", "msgType", "scope"):
        if doc.get(key) and doc[key] not in _ENUMS[key]:
            out.append(f"{key}: {doc[key]!r} not in {sorted(_ENUMS[key])}")
    if doc.get("sent") and not _TIME.match(str(doc["sent"])):
        out.append(f"sent: {doc['sent']!r} is not a CAP dateTime")
    if doc.get("scope") == "Restricted" and not doc.get("restriction"):
        out.append("scope Restricted needs restriction")
    if doc.get("scope") == "Private" and not doc.get("addresses"):
        out.append("scope Private needs addresses")
    msg_type = str(doc.get("msgType", ""))
    if msg_type in ("Update", "Cancel"):
        refs = str(doc.get("references", "")).split()
        if not refs:
            out.append(f"{msg_type} needs references")
        for ref in refs:
            parts = ref.split(",")
            if len(parts) != 3 or not _TIME.match(parts[2]):
                out.append(f"references: expected 'sender,identifier,sent': {ref!r}")
    infos = doc.get("info") or []
    if not isinstance(infos, list):
        return out + ["info must be a list"]
    for i, info in enumerate(infos):
        _check_info(info, msg_type, f"info[{i}]", out)
    return out


def _to_dict(element: ET.Element) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for child in element:
        name = child.tag.removeprefix(f"{{{CAP_NS}}}")
        if name in _PAIRS:
            value: Any = {c.tag.removeprefix(f"{{{CAP_NS}}}"): c.text or "" for c in child}
        elif name in ("info", "area"):
            value = _to_dict(child)
        else:
            value = child.text or ""
        if name in _LISTS:
            data.setdefault(name, []).append(value)
        else:
            data[name] = value
    return data


def xml_to_dict(text: str) -> dict[str, Any]:
    """The JSON form of a CAP 1.2 XML document (the inverse of `earlywarning.cap.cap_xml`)."""
    return _to_dict(ET.fromstring(text.encode()))


def _order(element: ET.Element, order: tuple[str, ...], where: str, out: list[str]) -> None:
    last = -1
    for child in element:
        if not child.tag.startswith(f"{{{CAP_NS}}}"):
            out.append(f"{where}: element {child.tag} is outside the CAP 1.2 namespace")
            continue
        name = child.tag.removeprefix(f"{{{CAP_NS}}}")
        if name not in order:
            if name not in ("valueName", "value"):
                out.append(f"{where}: unknown element {name}")
            continue
        index = order.index(name)
        if index < last:
            out.append(f"{where}: {name} is out of CAP 1.2's order")
        last = index
        if name == "info":
            _order(child, INFO_ORDER, f"{where}/info", out)
        elif name == "area":
            _order(child, AREA_ORDER, f"{where}/area", out)


def xml_problems(text: str) -> list[str]:
    """What keeps an XML document from being a valid warning document of this profile; empty if nothing."""
    try:
        root = ET.fromstring(text.encode())
    except ET.ParseError as err:
        return [f"not well-formed XML: {err}"]
    if root.tag != f"{{{CAP_NS}}}alert":
        return [f"root element is {root.tag}, expected {{{CAP_NS}}}alert"]
    out: list[str] = []
    _order(root, ALERT_ORDER, "alert", out)
    return out + problems(_to_dict(root))

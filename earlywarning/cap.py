"""The published document: GB/T 35965.1-2018's warning message, a CAP 1.2 profile, in JSON and XML.

One document per publication: ``Alert`` when a warning is issued, ``Update`` when it is adjusted,
``Cancel`` when it is lifted; each later one names the earlier ones in ``references``. The JSON
form maps the XML one to one: an element is a key, a repeatable element (``info``, ``category``,
``area``, ``polygon``, ``circle``, ``parameter``, ``eventCode``) a list, in CAP 1.2's order.
docs/warnings.md maps every field to art. 64 and says how sure each mapping is: the GB/T text
itself was not available, so the profile follows CAP 1.2 and DOMAIN.md.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import datetime
from typing import Any, Sequence

from earlywarning.model import EarlyWarning, WarningEvent
from foundation.domain import CST
from foundation.warningspec import CapProfile, CategorySpec, WarningLevel

__all__ = ["ALERT_ORDER", "AREA_ORDER", "CAP_NS", "INFO_ORDER", "MSG_TYPES", "cap_document", "cap_time", "cap_xml",
           "identifier_for"]

CAP_NS = "urn:oasis:names:tc:emergency:cap:1.2"
MSG_TYPES = {WarningEvent.ISSUED: "Alert", WarningEvent.ADJUSTED: "Update", WarningEvent.LIFTED: "Cancel"}
"""The CAP ``msgType`` of each publishing event."""

ALERT_ORDER = ("identifier", "sender", "sent", "status", "msgType", "source", "scope", "restriction", "addresses",
               "code", "note", "references", "incidents", "info")
INFO_ORDER = ("language", "category", "event", "responseType", "urgency", "severity", "certainty", "audience",
              "eventCode", "effective", "onset", "expires", "senderName", "headline", "description", "instruction",
              "web", "contact", "parameter", "resource", "area")
AREA_ORDER = ("areaDesc", "polygon", "circle", "geocode", "altitude", "ceiling")
"""CAP 1.2's element order (its XML schema is a sequence)."""
_PAIRS = ("eventCode", "parameter", "geocode")  # lists of {valueName, value}


def cap_time(ts: float) -> str:
    """A CAP dateTime: local time with its offset, whole seconds, never ``Z``.

    >>> cap_time(1795564800.75)
    '2026-11-25T08:00:00+08:00'
    """
    return datetime.fromtimestamp(ts, CST).isoformat(timespec="seconds")


def identifier_for(warning: EarlyWarning, version: int, sent: float, sequence: int) -> str:
    """The identifier of a warning's ``version``-th document.

    With the issuer's 14-digit ``sender_code``: the national form reported for the warning system,
    ``{sender_code}_{YYYYMMDDhhmmss}_{N}`` (Beijing time; N counts the issuer's documents of that
    second — unconfirmed, docs/warnings.md). Otherwise ``{warning id}-v{version}``.
    """
    if warning.issuer.sender_code:
        return f"{warning.issuer.sender_code}_{datetime.fromtimestamp(sent, CST):%Y%m%d%H%M%S}_{sequence}"
    return f"{warning.id}-v{version}"


def _polygon(points: tuple[tuple[float, float], ...]) -> str:
    ring = list(points) + ([points[0]] if points[0] != points[-1] else [])
    return " ".join(f"{lat:.6f},{lon:.6f}" for lon, lat in ring)


def _description(warning: EarlyWarning, event: WarningEvent, reason: str | None, before: WarningLevel | None) -> str:
    subject, level = warning.subject, warning.level
    issued = cap_time(warning.issued_at) if warning.issued_at is not None else ""
    lines: list[str] = []
    if event is WarningEvent.ISSUED:
        lines.append(f"{warning.issuer.name}于{issued}发布{subject.name}{warning.event}{level.label_zh}。")
    elif event is WarningEvent.ADJUSTED and before is not None:
        way = "提高" if level.rank > before.rank else "降低"
        lines.append(f"{warning.issuer.name}将{subject.name}{warning.event}预警由{before.label_zh}{way}为"
                     f"{level.label_zh}" + (f", 原因: {reason}" if reason else "") + "。")
    else:
        lines.append(f"{warning.issuer.name}解除{issued}发布的{subject.name}{warning.event}{level.label_zh}"
                     + (f", 原因: {reason}" if reason else "") + "。")
    if event is not WarningEvent.LIFTED and warning.watch:
        lines.append("警示事项: " + "; ".join(m.text for m in warning.watch) + "。")
    evidence = warning.evidence
    if evidence.alarm_ids or evidence.risk_grade:
        parts = ([f"相关报警 {len(evidence.alarm_ids)} 条"] if evidence.alarm_ids else []) + \
                ([f"风险等级: {evidence.risk_grade.zh}"] if evidence.risk_grade else [])
        lines.append("依据: " + ", ".join(parts) + "。")
    return "\n".join(lines)


def _headline(warning: EarlyWarning, event: WarningEvent, before: WarningLevel | None) -> str:
    who, what = warning.issuer.name, f"{warning.subject.name}{warning.event}"
    if event is WarningEvent.ISSUED:
        return f"{who}发布{what}{warning.level.colour_zh}预警"
    if event is WarningEvent.ADJUSTED and before is not None:
        way = "提高" if warning.level.rank > before.rank else "降低"
        return f"{who}将{what}预警由{before.colour_zh}{way}为{warning.level.colour_zh}"
    return f"{who}解除{what}{warning.level.colour_zh}预警"


def cap_document(warning: EarlyWarning, event: WarningEvent, identifier: str, sent: float, profile: CapProfile,
                 category: CategorySpec, references: Sequence[tuple[str, str, float]] = (), reason: str | None = None,
                 before: WarningLevel | None = None) -> dict[str, Any]:
    """The CAP 1.2 document (JSON form) published for ``event`` of ``warning``.

    ``category`` is the spec of the warning's category (CAP categories, event code);
    ``references`` are the earlier documents as (sender, identifier, sent); ``reason`` the
    step's reason (adjusted, lifted); ``before`` the level before an adjustment.
    """
    msg_type = MSG_TYPES[event]
    cancel = event is WarningEvent.LIFTED
    doc: dict[str, Any] = {"identifier": identifier, "sender": warning.issuer.sender, "sent": cap_time(sent),
                           "status": profile.status, "msgType": msg_type, "scope": profile.scope}
    if profile.restriction and profile.scope == "Restricted":
        doc["restriction"] = profile.restriction
    if profile.addresses and profile.scope == "Private":
        doc["addresses"] = profile.addresses
    if cancel and reason:
        doc["note"] = reason
    if references:
        doc["references"] = " ".join(f"{s},{i},{cap_time(t)}" for s, i, t in references)
    info: dict[str, Any] = {"language": profile.language, "category": list(category.cap_categories),
                            "event": warning.event}
    if cancel:
        info["responseType"] = ["AllClear"]
    info |= {"urgency": "Past" if cancel else profile.urgency[warning.level],
             "severity": warning.level.cap_severity, "certainty": profile.certainty}
    if category.event_code:
        info["eventCode"] = [{"valueName": "category_code", "value": category.event_code}]
    info["effective"] = cap_time(sent)
    if warning.onset is not None:
        info["onset"] = cap_time(warning.onset)
    if warning.expires is not None and not cancel:
        info["expires"] = cap_time(warning.expires)
    info |= {"senderName": warning.issuer.name, "headline": _headline(warning, event, before),
             "description": _description(warning, event, reason, before)}
    if not cancel and warning.measures:
        info["instruction"] = "\n".join(f"{i}. {m.text}" for i, m in enumerate(warning.measures, start=1))
    if profile.web:
        info["web"] = profile.web.replace("{warning_id}", warning.id)
    if profile.contact:
        info["contact"] = profile.contact
    info["parameter"] = [
        {"valueName": "warning_id", "value": warning.id},
        {"valueName": "category", "value": warning.category},
        {"valueName": "level", "value": warning.level.roman},
        {"valueName": "colour", "value": warning.level.colour_zh},
        {"valueName": "subject", "value": warning.subject.key},
        {"valueName": "issued_at", "value": cap_time(warning.issued_at) if warning.issued_at is not None else ""},
    ]
    area: dict[str, Any] = {"areaDesc": warning.area.desc}
    if warning.area.polygon:
        area["polygon"] = [_polygon(warning.area.polygon)]
    if warning.area.circle:
        c = warning.area.circle
        area["circle"] = [f"{c.lat:.6f},{c.lon:.6f} {c.radius_km:g}"]
    info["area"] = [area]
    doc["info"] = [info]
    return doc


def _element(parent: ET.Element, name: str, value: Any) -> None:
    tag = f"{{{CAP_NS}}}{name}"
    values = value if isinstance(value, list) else [value]
    for item in values:
        child = ET.SubElement(parent, tag)
        if name in _PAIRS:
            ET.SubElement(child, f"{{{CAP_NS}}}valueName").text = item["valueName"]
            ET.SubElement(child, f"{{{CAP_NS}}}value").text = item["value"]
        elif name == "info":
            _fill(child, item, INFO_ORDER)
        elif name == "area":
            _fill(child, item, AREA_ORDER)
        else:
            child.text = str(item)


def _fill(element: ET.Element, data: dict[str, Any], order: tuple[str, ...]) -> None:
    for name in order:
        if name in data:
            _element(element, name, data[name])


def cap_xml(doc: dict[str, Any]) -> str:
    """The XML form of a document made by `cap_document` (UTF-8, CAP 1.2 namespace, CAP's element order)."""
    ET.register_namespace("", CAP_NS)
    root = ET.Element(f"{{{CAP_NS}}}alert")
    _fill(root, doc, ALERT_ORDER)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"

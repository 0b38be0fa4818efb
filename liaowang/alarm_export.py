"""The alarm history as a table people read: names not ids, words not codes, times in UTC+08:00.

One column list (`COLUMNS`) feeds the CSV and the Excel export, so both files carry the same rows:
the CSV as UTF-8 with a byte-order mark (Excel then opens the Chinese correctly), the .xlsx through
openpyxl with real date-time cells (Beijing time, the offset named in the header).
"""

from __future__ import annotations

import csv
import io
import os
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable, Iterable


from alerting.model import Alert, CloseCause
from foundation.config import Fleet
from foundation.domain import CST

__all__ = ["COLUMNS", "Column", "header", "subject_name", "table", "to_csv", "to_xlsx"]

FAMILY = {"hazard": ("重大危险源", "major hazard"), "gas": ("气体泄漏", "gas leak"), "forest": ("森林火灾", "forest fire"),
          "system": ("系统", "system")}
PRIORITY = {"urgent": ("紧急报警", "urgent"), "high": ("高报警", "high"), "medium": ("中报警", "medium"),
            "low": ("低报警", "low")}
STATE = {"active": ("未确认", "unacknowledged"), "acknowledged": ("已确认", "acknowledged"),
         "resolved": ("已恢复待消警", "cleared, to close"), "closed": ("已消警", "closed"), "shelved": ("已搁置", "shelved")}
TIME_FORMAT = "yyyy-mm-dd hh:mm:ss"


def subject_name(fleet: Fleet, subject: str) -> str:
    """What people call an alarm's subject: a sensor's name, a site's name, a station's or a confirmation
    zone's (from the names their instruments share), else the subject itself.

    >>> from pathlib import Path; import liaowang; from foundation.config import load_config
    >>> fleet = load_config(Path(liaowang.__file__).parent.parent / "config").fleet
    >>> subject_name(fleet, "LC-LUXI-GD-01")
    '可燃气体探测器01'
    >>> subject_name(fleet, "site:LC-LUXI"), subject_name(fleet, "LC-DEHH-WS1"), subject_name(fleet, "evaluation")
    ('鲁西集团', '1号监测站', 'evaluation')
    >>> subject_name(fleet, "LC-LUXI-combustible-gas-Z1")
    '可燃气体探测器 Z1 区'

    """
    sensor = fleet.sensors.get(subject)
    if sensor is not None:
        return sensor.name
    site = fleet.sites.get(subject.removeprefix("site:"))
    if site is not None:
        return site.name
    zone = _ZONE.fullmatch(subject)
    if zone and zone["site"] in fleet.sites:
        kind = _group_names(fleet).get(f'{zone["site"]}/{zone["quantity"].replace("-", "_")}')
        if kind:
            return f"{kind} {zone['zone']} 区"
    return _group_names(fleet).get(subject, subject)


_ZONE = re.compile(r"(?P<site>[A-Z0-9-]+?)-(?P<quantity>[a-z0-9-]+)-(?P<zone>Z\d+)")
"""A confirmation zone's id (rules/confirm.py): ``LC-LUXI-combustible-gas-Z1``."""


def _shared_name(names: list[str]) -> str:
    """What a group of instruments' names share, without a trailing number: 可燃气体探测器01, 02 → 可燃气体探测器."""
    return os.path.commonprefix(names).rstrip("0123456789 -号").strip() if len(names) > 1 else ""


_GROUPS: dict[int, tuple[Fleet, dict[str, str]]] = {}
"""id(fleet) → (the fleet, kept so its id is never reused, its group names)."""


def _group_names(fleet: Fleet) -> dict[str, str]:
    """Names of instrument groups, computed once per fleet: a station id (``LC-DEHH-WS1``) → ``1号监测站``,
    and ``site/quantity`` (``LC-LUXI/combustible_gas``) → the kind of instrument (``可燃气体探测器``)."""
    cached = _GROUPS.get(id(fleet))
    if cached is None or cached[0] is not fleet:
        stations: dict[str, list[str]] = {}
        kinds: dict[str, list[str]] = {}
        for sensor in fleet.sensors.values():
            station, _, _ = sensor.id.rpartition("-")
            if sensor.family.value == "forest" and station not in fleet.sensors:
                stations.setdefault(station, []).append(sensor.name)
            kinds.setdefault(f"{sensor.site_id}/{sensor.quantity}", []).append(sensor.name)
        named = {key: shared for key, group in kinds.items() if (shared := _shared_name(group))}
        named |= {key: shared for key, group in stations.items()
                  if len(group) > 1 and (shared := os.path.commonprefix(group).strip())}
        cached = _GROUPS[id(fleet)] = (fleet, named)
    return cached[1]


@dataclass(frozen=True, slots=True)
class Column:
    """One column: its Chinese and English header and the cell of an alarm (a datetime for times)."""

    zh: str
    en: str
    cell: Callable[[Alert, Fleet, str], Any]


def _time(ts: float | None) -> datetime | None:
    return None if ts is None else datetime.fromtimestamp(ts, CST).replace(microsecond=0)


def _word(table: dict[str, tuple[str, str]], key: str | None, lang: str) -> str:
    if key is None:
        return ""
    zh, en = table.get(key, (key, key))
    return zh if lang == "zh" else en


def _site(alert: Alert, fleet: Fleet) -> str:
    site = fleet.sites.get(alert.site_id)
    return site.name if site is not None else alert.site_id


def _cause(alert: Alert, lang: str) -> str:
    if alert.close_cause is None:
        return ""
    return CloseCause(alert.close_cause).zh if lang == "zh" else alert.close_cause.replace("_", " ")


def _close_note(alert: Alert) -> str:
    return next((h.note or "" for h in reversed(alert.history) if h.event == "closed"), "")


COLUMNS: tuple[Column, ...] = (
    Column("报警时间", "raised", lambda a, f, lang: _time(a.raised_at)),
    Column("区县", "county", lambda a, f, lang: a.county),
    Column("场所", "site", lambda a, f, lang: _site(a, f)),
    Column("监测对象", "subject", lambda a, f, lang: subject_name(f, a.subject)),
    Column("类别", "family", lambda a, f, lang: _word(FAMILY, a.family, lang)),
    Column("优先级", "priority", lambda a, f, lang: _word(PRIORITY, (a.peak_tier or a.tier).priority, lang)),
    Column("报警内容", "message", lambda a, f, lang: a.raise_message or a.message),
    Column("峰值", "peak", lambda a, f, lang: a.peak_value),
    Column("单位", "unit", lambda a, f, lang: a.unit),
    Column("状态", "state", lambda a, f, lang: _word(STATE, a.state, lang)),
    Column("确认时间", "acknowledged", lambda a, f, lang: _time(a.acknowledged_at)),
    Column("确认人", "acknowledged by", lambda a, f, lang: a.acknowledged_by or ""),
    Column("恢复时间", "cleared", lambda a, f, lang: _time(a.resolved_at)),
    Column("消警时间", "closed", lambda a, f, lang: _time(a.closed_at)),
    Column("消警人", "closed by", lambda a, f, lang: a.closed_by or ""),
    Column("消警原因", "close cause", lambda a, f, lang: _cause(a, lang)),
    Column("消警说明", "close note", lambda a, f, lang: _close_note(a)),
    Column("报警编号", "alarm id", lambda a, f, lang: a.id),
)


def header(lang: str = "zh") -> list[str]:
    """The header row; times are Beijing time, which the header says once."""
    return [(c.zh if lang == "zh" else c.en) + (" (UTC+08:00)" if i == 0 else "") for i, c in enumerate(COLUMNS)]


def table(alerts: Iterable[Alert], fleet: Fleet, lang: str = "zh") -> list[list[Any]]:
    """The rows of ``alerts`` (cells as typed values: datetimes in CST, numbers, text)."""
    return [[c.cell(a, fleet, lang) for c in COLUMNS] for a in alerts]


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    return str(value)


def to_csv(alerts: Iterable[Alert], fleet: Fleet, lang: str = "zh") -> bytes:
    """The rows as CSV, UTF-8 with a byte-order mark (so Excel on Windows reads the Chinese), CRLF line ends."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header(lang))
    writer.writerows([_text(v) for v in row] for row in table(alerts, fleet, lang))
    return "\ufeff".encode() + out.getvalue().encode()


def to_xlsx(alerts: Iterable[Alert], fleet: Fleet, lang: str = "zh") -> bytes:
    """The rows as an Excel workbook: one sheet, bold frozen header, date-time cells in Beijing time.

    Written in openpyxl's write-only mode (rows streamed, about twice as fast as a full workbook).
    """
    # imported on use: openpyxl is ~5 MB of RSS every process would carry for a rarely used export
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font

    book = Workbook(write_only=True)
    sheet = book.create_sheet("报警历史" if lang == "zh" else "alarm history")
    sheet.freeze_panes = "A2"
    widths = {0: 20, 2: 24, 3: 24, 6: 48, 10: 20, 12: 20, 13: 20, 16: 30, 17: 22}
    for index, width in widths.items():
        sheet.column_dimensions[chr(ord("A") + index)].width = width
    bold = Font(bold=True)

    def styled(value: Any) -> Any:
        cell = WriteOnlyCell(sheet, value)
        cell.font = bold
        return cell

    def timed(value: datetime) -> Any:
        # Excel has no time zones: the cell holds the Beijing wall time the header names
        cell = WriteOnlyCell(sheet, value.replace(tzinfo=None))
        cell.number_format = TIME_FORMAT
        return cell

    sheet.append([styled(h) for h in header(lang)])
    for row in table(alerts, fleet, lang):
        sheet.append([timed(v) if isinstance(v, datetime) else v for v in row])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()

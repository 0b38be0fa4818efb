"""Response guidance for alarms (应当采取的措施): what the desk does when an alarm of a kind and level sounds.

Loaded once from the optional ``alarm_guidance.yaml`` of a configuration folder (absent: no guidance).
Each entry matches alarms by family, quantity, device level, rule id or rule kind (every given key
must match; an empty match fits every alarm) and names measures in Chinese and English, each with
its source. The alarm detail page (`liaowang.api_live`) shows the measures of every matching entry,
in file order, without repeats.

>>> book = GuidanceBook.model_validate({"guidance": [
...     {"match": {"quantities": ["combustible_gas"], "levels": ["level2"]},
...      "measures": [{"zh": "立即寻查释放点", "en": "Find the release point at once", "source": "GBZ/T 223"}]}]})
>>> [m.zh for m in book.measures_for(family="gas", quantity="combustible_gas", level="level2", rule_id="r", kind="threshold")]
['立即寻查释放点']
>>> book.measures_for(family="gas", quantity="combustible_gas", level="level1", rule_id="r", kind="threshold")
[]

This module imports only pydantic and yaml, so any layer may use it.
"""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

__all__ = ["GuidanceBook", "GuidanceEntry", "GuidanceError", "GuidanceMatch", "GuidanceMeasure", "load_alarm_guidance"]

FILE_NAME = "alarm_guidance.yaml"


class GuidanceError(ValueError):
    """``alarm_guidance.yaml`` is not valid: the message names the file, the key and the reason."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class GuidanceMeasure(_Strict):
    """One measure in both languages, with where it comes from (a standard's clause, or 'site choice')."""

    zh: str = Field(min_length=2, max_length=200)
    en: str = Field(min_length=2, max_length=300)
    source: str = Field(min_length=3, max_length=300)


class GuidanceMatch(_Strict):
    """Which alarms an entry fits: every key given must match (None: any)."""

    families: tuple[str, ...] | None = None
    quantities: tuple[str, ...] | None = None
    levels: tuple[str, ...] | None = None
    rules: tuple[str, ...] | None = None
    kinds: tuple[str, ...] | None = None

    def fits(self, family: str, quantity: str | None, level: str | None, rule_id: str, kind: str) -> bool:
        """Whether an alarm with these fields is one this entry is about."""
        return all(allowed is None or value in allowed for allowed, value in (
            (self.families, family), (self.quantities, quantity), (self.levels, level), (self.rules, rule_id),
            (self.kinds, kind)))


class GuidanceEntry(_Strict):
    match: GuidanceMatch = GuidanceMatch()
    measures: tuple[GuidanceMeasure, ...] = Field(min_length=1)


class GuidanceBook(_Strict):
    """Every entry of ``alarm_guidance.yaml``, in file order."""

    guidance: tuple[GuidanceEntry, ...] = ()

    def measures_for(self, *, family: str, quantity: str | None, level: str | None, rule_id: str,
                     kind: str) -> list[GuidanceMeasure]:
        """The measures of every entry that fits the alarm, in file order, each once."""
        found: list[GuidanceMeasure] = []
        for entry in self.guidance:
            if entry.match.fits(family, quantity, level, rule_id, kind):
                found += [m for m in entry.measures if m not in found]
        return found


def load_alarm_guidance(folder: str | Path) -> GuidanceBook:
    """Load ``alarm_guidance.yaml`` of ``folder`` (an empty book when the file is absent).

    Raises `GuidanceError` naming the file, the key and the reason on a bad file.
    """
    path = Path(folder) / FILE_NAME
    if not path.exists():
        return GuidanceBook()
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as err:
        raise GuidanceError(f"{path}: not valid YAML: {err}") from None
    try:
        return GuidanceBook.model_validate(raw)
    except ValidationError as err:
        first = err.errors()[0]
        key = ".".join(str(p) for p in first["loc"])
        raise GuidanceError(f"{path}: {key}: {first['msg']}") from None

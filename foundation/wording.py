"""The words and templates of alarm texts (``foundation/defaults/messages.yaml``), checked once at load.

`Wording` holds, for both languages, the priorities, levels, rule kinds, quantities and units in
words and the templates of titles and texts; `alerting.messages.Messages` fills them in. Loading
refuses a file that could render badly later: a template without both languages, a ``{field}``
its kind does not offer, attribute or index access in a field, or a Chinese character on the
English side.

>>> w = load_wording()
>>> w.levels["HH"].en, w.number(27.456, "%LEL", "zh"), w.duration(14400, "en")
('high-high (HH)', '27.5 %LEL', '4 h')
"""

from __future__ import annotations

import math
import re
import string
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, model_validator

__all__ = ["CJK", "LANGUAGES", "Language", "Phrase", "TEXT_FIELDS", "Wording", "load_wording"]

Language = Literal["zh", "en"]
LANGUAGES: tuple[Language, ...] = ("zh", "en")
CJK = re.compile(r"[\u3000-\u303f\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef]")
"""Chinese characters and full-width punctuation: none may appear in an English text."""

DEFAULT_PATH = Path(__file__).parent / "defaults" / "messages.yaml"

TEXT_FIELDS = frozenset({
    "priority", "where", "site", "unit", "sensor", "zone", "station", "value", "setpoint", "level", "kind",
    "direction", "window", "rate", "current", "eta", "target", "low", "high", "hold", "count", "k", "detectors",
    "date", "index", "inputs", "confirmed", "danger", "limit", "cause", "names", "detail", "system", "component",
})
"""Every field a text template may use (alerting/messages.py fills each one for the kinds that have it)."""
TITLE_FIELDS = frozenset({"site", "unit", "sensor", "zone", "station", "system", "component"})
WORD_FIELDS = frozenset({"danger", "names", "count", "more", "number", "tag", "quantity", "temp_max", "rh",
                         "dry_days", "wind", "rain", "temp", "name"})
REQUIRED_TEMPLATES = frozenset({
    "threshold.high", "threshold.low", "threshold.deadband", "threshold.state", "threshold.clear", "rate_of_change", "rate_of_change.clear",
    "predictive.eta", "predictive.reached", "predictive.clear", "stuck", "stuck.clear", "out_of_range",
    "out_of_range.clear", "over_range", "over_range.clear", "range.side", "held", "held.clear", "confirmation",
    "confirmation.clear", "fire_danger", "fire_danger.clear", "fire_detection", "fire_detection.clear", "stale",
    "stale.clear", "comm_loss", "comm_loss.clear", "not_reporting", "not_reporting.clear", "system", "system.clear",
    "generic", "generic.clear"})
REQUIRED_WORDS = frozenset({
    "rise", "fall", "no_value", "gateway_offline", "all_silent", "confirmed_fire", "no_danger", "danger", "more",
    "index_lyt1172", "index_fwi", "system", "station", "station_tag", "zone", "zone_members", "unit_number",
    "inputs_lyt1172", "inputs_fwi"})
SUBJECTS = frozenset({"sensor", "zone", "station", "site", "system"})


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Phrase(_Strict):
    """One phrase or template in both languages."""

    zh: str
    en: str

    def __getitem__(self, language: Language) -> str:
        return self.zh if language == "zh" else self.en


class UnitWords(Phrase):
    """How a unit is written in each language and how many decimals its values show (None: 3 significant digits).

    ``state``: a 0/1 state, not a measurement — the level names it and the value is not shown.
    """

    decimals: int | None = None
    state: bool = False


def _fields(template: str) -> set[str]:
    names = set()
    for _, name, spec, conversion in string.Formatter().parse(template):
        if name is None:
            continue
        if not name.isidentifier() or spec or conversion:
            raise ValueError(f"field {{{name}}} in {template!r}: only plain {{name}} fields are allowed")
        names.add(name)
    return names


class Wording(_Strict):
    """Everything ``messages.yaml`` holds; `load_wording` checks it."""

    priorities: dict[str, Phrase]
    levels: dict[str, Phrase]
    kinds: dict[str, Phrase]
    quantities: dict[str, Phrase]
    counties: dict[str, Phrase] = {}
    states: dict[str, Phrase] = {}
    events: dict[str, Phrase] = {}
    site_kinds: dict[str, Phrase]
    units: dict[str, UnitWords]
    words: dict[str, Phrase]
    titles: dict[str, Phrase]
    places: dict[str, Phrase]
    templates: dict[str, Phrase]
    components: dict[str, Phrase]

    @model_validator(mode="after")
    def _checked(self) -> "Wording":
        for section, allowed in (("templates", TEXT_FIELDS), ("titles", TITLE_FIELDS), ("places", TITLE_FIELDS),
                                 ("words", WORD_FIELDS), ("components", WORD_FIELDS), ("priorities", set()),
                                 ("levels", set()), ("kinds", set()), ("quantities", set()), ("counties", set()), ("states", set()), ("events", set()), ("site_kinds", set()),
                                 ("units", set())):
            for key, phrase in getattr(self, section).items():
                for language in LANGUAGES:
                    try:
                        unknown = _fields(phrase[language]) - allowed
                    except ValueError as err:
                        raise ValueError(f"{section}.{key}.{language}: {err}") from None
                    if unknown:
                        raise ValueError(f"{section}.{key}.{language}: unknown field(s) {sorted(unknown)}; "
                                         f"allowed: {sorted(allowed)}")
                if CJK.search(phrase.en):
                    raise ValueError(f"{section}.{key}.en: {phrase.en!r} holds Chinese characters")
        for section, required in (("templates", REQUIRED_TEMPLATES), ("words", REQUIRED_WORDS),
                                  ("places", SUBJECTS), ("priorities", {"low", "medium", "high", "urgent", "cleared"})):
            missing = set(required) - set(getattr(self, section))
            if missing:
                raise ValueError(f"{section}: missing {sorted(missing)}")
        if "sensor" not in self.titles or "system" not in self.titles:
            raise ValueError("titles: needs at least sensor and system")
        return self

    # ------------------------------------------------------------------ formatting

    def unit(self, unit: str) -> UnitWords:
        """A unit's words; an unknown unit is written as it is (in English only if it has no Chinese)."""
        known = self.units.get(unit)
        if known is not None:
            return known
        return UnitWords(zh=unit, en="" if CJK.search(unit) else unit)

    def number(self, value: float | None, unit: str, language: Language, decimals: int | None = None) -> str:
        """A value with its unit at the unit's precision; a missing or non-finite value in words.

        >>> load_wording().number(float("nan"), "m", "en")
        'no valid value'
        """
        if value is None or not math.isfinite(value):
            return self.words["no_value"][language]
        words = self.unit(unit)
        places = words.decimals if decimals is None else decimals
        if places is None:
            text = f"{value:.0f}" if abs(value) >= 1000 else f"{value:.3g}"
        else:
            text = f"{value:.{places}f}"
        if float(text) == 0:  # no "-0.0"
            text = text.lstrip("-")
        return f"{text} {words[language]}".strip()

    def duration(self, seconds: float | None, language: Language) -> str:
        """Seconds in s, min or h, as a person says them (at most one decimal).

        >>> w = load_wording()
        >>> w.duration(45, "zh"), w.duration(600, "en"), w.duration(210, "zh"), w.duration(5400, "en")
        ('45 秒', '10 min', '3.5 分钟', '90 min')
        """
        if seconds is None or not math.isfinite(seconds):
            return self.words["no_value"][language]
        zh = language == "zh"
        if seconds < 120 and seconds % 60:
            return f"{seconds:.3g} 秒" if zh else f"{seconds:.3g} s"
        if seconds < 7200 or seconds % 3600:
            minutes = round(seconds / 60, 1)
            return f"{minutes:g} 分钟" if zh else f"{minutes:g} min"
        hours = round(seconds / 3600, 1)
        return f"{hours:g} 小时" if zh else f"{hours:g} h"

    def level(self, level: str | None, language: Language) -> str:
        """A device alarm level in words; ``predicted_X`` as "predicted" plus X's words."""
        if level is None:
            return ""
        known = self.levels.get(level)
        if known is not None:
            return known[language]
        if level.startswith("predicted_"):
            target = self.level(level.removeprefix("predicted_"), language)
            return f"预测{target}" if language == "zh" else f"predicted {target}"
        plain = level.replace("_", " ")
        return plain if language == "zh" or not CJK.search(plain) else "configured level"

    def words_for(self, table: dict[str, Phrase], key: str | None) -> dict[str, str] | None:
        """``key`` in words in both languages (`word`), or None for no key."""
        if key is None:
            return None
        return {language: self.word(table, key, language) for language in LANGUAGES}

    def county(self, county: str) -> str:
        """A county's English name ("" for none: pipeline alarms; an unlisted one in pinyin-free words: "county")."""
        if not county:
            return ""
        known = self.counties.get(county)
        return known.en if known is not None else (county if not CJK.search(county) else "county")

    @staticmethod
    def word(table: dict[str, Phrase], key: str, language: Language) -> str:
        """``key`` in words from ``table``; an unknown key as itself, its underscores as spaces (English without Chinese)."""
        known = table.get(key)
        if known is not None:
            return known[language]
        plain = key.replace("_", " ")
        return plain if language == "zh" or not CJK.search(plain) else "other"


def load_wording(path: str | Path | None = None) -> Wording:
    """Load and check the words and templates: the shipped ``foundation/defaults/messages.yaml``, with the
    entries of ``path`` (a bureau's ``messages.yaml``) replacing or adding to the shipped ones, section by section.

    Raises ValueError naming the section, key and language of the first problem.
    """
    if path is None:
        return _shipped()
    return Wording.model_validate(merged(yaml.safe_load(Path(path).read_text(encoding="utf-8"))))


def merged(overrides: object) -> dict[str, Any]:
    """The shipped wording with ``overrides`` (a mapping of sections to entries) laid over it.

    >>> merged({"levels": {"HH": {"zh": "高高限", "en": "high-high"}}})["levels"]["HH"]
    {'zh': '高高限', 'en': 'high-high'}
    """
    raw = _shipped_raw()
    if overrides is None:
        return raw
    if not isinstance(overrides, dict):
        raise ValueError("messages.yaml must be a mapping of sections (templates, levels, units, …)")
    for section, entries in overrides.items():
        if section in raw and not isinstance(entries, dict):
            raise ValueError(f"{section}: must be a mapping of entries")
        raw[section] = {**raw.get(section, {}), **entries} if section in raw else entries
    return raw


def _shipped_raw() -> dict[str, Any]:
    return yaml.safe_load(DEFAULT_PATH.read_text(encoding="utf-8"))


@lru_cache(maxsize=1)
def _shipped() -> Wording:
    return Wording.model_validate(_shipped_raw())

"""An alarm's title and one-line text in Chinese and English, rendered from its structured fields.

The rules state facts (`rules.base.Signal`: kind, level, tier, value, unit, setpoint and the
``facts`` mapping of ids and numbers); `Messages` looks the ids up in the fleet — site, hazard
unit, sensor, zone and station by name, never by id — and fills the templates of
``foundation/defaults/messages.yaml`` (`foundation.wording`; a configuration folder's ``messages.yaml``
overrides its entries). A signal of the threshold rule::

    kind threshold, level level1, tier orange, value 27.46, threshold 25, unit %LEL,
    facts {"sensor": "LC-LUXI-GD-01", "direction": "high"}

    title  鲁西集团 液氨储罐区 可燃气体探测器01  ·  Luxi Group, liquid ammonia tank farm: combustible gas detector 01
    text   高报警: 鲁西集团 可燃气体探测器01 27.5 %LEL, 达到一级报警设定值 25.0 %LEL
           High priority: Luxi Group, combustible gas detector 01 at 27.5 %LEL, reached the level 1 setpoint 25.0 %LEL

`FACTS` lists the keys each kind's rule puts in ``facts``. A kind without a template of its own
renders through the ``generic`` template; a signal without facts still renders (with the subject
named through the fleet where it is a sensor or a site). Rendering never raises for a signal of a
known subject: a missing number reads "no valid value".
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Mapping

from foundation.wording import LANGUAGES, Language, Wording, load_wording
from foundation.config import Fleet, Sensor
from foundation.domain import Tier
from rules.base import Signal

__all__ = ["FACTS", "Messages", "Rendered", "Text", "legacy"]

Text = dict[str, str]
"""One text in both languages: ``{"zh": "…", "en": "…"}``."""

SYSTEM_SITE = "_system"
NAMES_SHOWN = 5

FACTS: dict[str, tuple[str, ...]] = {
    "threshold": ("sensor", "direction"),
    "rate_of_change": ("sensor", "window_s", "direction", "current"),
    "predictive": ("sensor", "window_s", "target_level", "variant", "eta_s"),
    "stuck": ("sensor", "window_s"),
    "out_of_range": ("sensor", "low", "high", "variant"),
    "over_range": ("sensor", "low", "high", "variant"),
    "held": ("sensor", "hold_s"),
    "confirmation": ("zone", "zone_sensors", "zone_name", "zone_name_en", "detectors", "rung_level"),
    "fire_danger": ("station", "index", "date", "inputs"),
    "fire_detection": ("station", "confirmed", "danger_tier"),
    "stale": ("sensor", "limit_s"),
    "comm_loss": ("sensors", "cause"),
    "not_reporting": ("sensors",),
    "pipeline": (),
}
"""The ``facts`` keys each rule kind provides (docs/contract.md §6 "Alarm texts")."""

_SYSTEM_TEMPLATES = {"pipeline.spool": "system.spool", "system.disk": "system.disk", "system.stage": "system.stage",
                     "system.evaluation": "system.evaluation", "system.alerting": "system.alerting"}


@dataclass(frozen=True, slots=True)
class Rendered:
    """An alarm's title (what it is about) and text (what happened), each in both languages."""

    title: Text
    text: Text


class _Fields(dict[str, str]):
    """Template fields; one a template asks for but the kind did not fill reads as empty, never as ``{x}``."""

    def __missing__(self, key: str) -> str:
        return ""


_ONE = re.compile(r"(?<![\d.])1 (detector|detection signal|dry day|sensor|single-sensor fault alarm|reading)s\b")


def _singular(text: str) -> str:
    """English counts of one take the singular ("1 detector", not "1 detectors")."""
    return _ONE.sub(r"1 \1", text)


def _tidy(text: str) -> str:
    """Collapse the spaces an empty field leaves and drop an empty bracket pair."""
    text = re.sub(r"\(\s*\)", "", text)
    return re.sub(r"\s+", " ", text).strip(" ,;:")


class Messages:
    """Renders titles and texts from signals, for one fleet.

    >>> from foundation.config import load_config
    >>> m = Messages(load_config("config").fleet)
    >>> m.sensor_name("LC-LUXI-GD-01")["en"]
    'combustible gas detector 01'
    """

    def __init__(self, fleet: Fleet, wording: Wording | None = None) -> None:
        self.fleet = fleet
        self.wording = wording or load_wording()
        self._site_number = {site_id: n for n, site_id in enumerate(fleet.sites, start=1)}

    # ------------------------------------------------------------------ names

    def site_name(self, site_id: str) -> Text:
        """A site's name; in English its ``name_en``, else its kind and number."""
        site = self.fleet.sites.get(site_id)
        if site is None:
            return {"zh": "未登记场所", "en": "unregistered site"}
        kind = self.wording.site_kinds.get(site.kind)
        en = site.name_en or f"{kind.en if kind else 'site'} {self._site_number[site_id]}"
        return {"zh": site.name, "en": en}

    def sensor_name(self, sensor_id: str) -> Text:
        """A sensor's name; in English its ``name_en``, else what it measures and its tag (the id after the site)."""
        sensor = self.fleet.sensors.get(sensor_id)
        if sensor is None:
            return {"zh": "未登记传感器", "en": "unregistered sensor"}
        return {"zh": sensor.name, "en": sensor.name_en or f"{self._quantity(sensor.quantity, 'en')} {self._tag(sensor)}"}

    def _tag(self, sensor: Sensor) -> str:
        prefix = f"{sensor.site_id}-"
        if sensor.id.startswith(prefix) and len(sensor.id) > len(prefix):
            return sensor.id[len(prefix):]
        return f"no. {self.fleet.sensor_index[sensor.id] + 1}"  # never the raw id

    def _quantity(self, quantity: str, language: Language) -> str:
        return self.wording.word(self.wording.quantities, quantity, language)

    def unit_name(self, sensor_ids: list[str]) -> Text | None:
        """The hazard unit every one of ``sensor_ids`` watches, or None (none, or several)."""
        units = {unit.id: unit for s in sensor_ids if (unit := self.fleet.unit_of_sensor(s)) is not None}
        if len(units) != 1 or any(self.fleet.unit_of_sensor(s) is None for s in sensor_ids):
            return None
        unit = next(iter(units.values()))
        if unit.name_en:
            return {"zh": unit.name, "en": unit.name_en}
        number = re.search(r"(\d+)$", unit.id)
        en = self.wording.words["unit_number"].en.format(number=number.group(1)) if number else "hazard unit"
        return {"zh": unit.name, "en": en}

    def zone_name(self, facts: Mapping[str, Any]) -> Text:
        """A confirmation zone: its configured name, else its detectors' quantity and number."""
        members = [s for s in facts.get("zone_sensors") or [] if s in self.fleet.sensors]
        quantity = self.fleet.sensors[members[0]].quantity if members else "combustible_gas"
        number = re.search(r"Z(\d+)$", str(facts.get("zone", "")))
        out: Text = {}
        for language in LANGUAGES:
            configured = facts.get("zone_name") if language == "zh" else facts.get("zone_name_en")
            if configured:
                out[language] = str(configured)
            elif number:
                out[language] = self.wording.words["zone"][language].format(
                    quantity=self._quantity(quantity, language), number=number.group(1))
            else:
                out[language] = self.wording.words["zone_members"][language].format(
                    quantity=self._quantity(quantity, language), names=self._list(members, language, limit=None))
        return out

    def station_name(self, station: str, site_id: str) -> Text:
        """A weather/lookout station by its number (``LC-DEHH-WS1`` → 1号监测站, station 1)."""
        tag = station[len(site_id) + 1:] if station.startswith(f"{site_id}-") else ""
        number = re.fullmatch(r"WS(\d+)", tag)
        if number:
            return {lang: self.wording.words["station"][lang].format(number=number.group(1)) for lang in LANGUAGES}
        tag = tag or "?"
        return {lang: self.wording.words["station_tag"][lang].format(tag=tag) for lang in LANGUAGES}

    def _list(self, sensor_ids: list[str], language: Language, limit: int | None = NAMES_SHOWN) -> str:
        names = [self.sensor_name(s)[language] for s in sensor_ids]
        shown = names if limit is None else names[:limit]
        joined = ("、" if language == "zh" else ", ").join(shown)
        if len(shown) < len(names):
            joined = self.wording.words["more"][language].format(names=joined, count=len(names),
                                                                  more=len(names) - len(shown))
        return joined

    # ------------------------------------------------------------------ rendering

    def render(self, signal: Signal) -> Rendered:
        """The title and text of one signal, in both languages."""
        return Rendered(self._title(signal), {lang: self._text(signal, lang) for lang in LANGUAGES})

    def _subject(self, signal: Signal) -> tuple[str, dict[str, Text]]:
        """What the alarm is about: ("sensor" | "zone" | "station" | "site" | "system", names by field)."""
        facts = signal.facts
        if signal.site_id == SYSTEM_SITE or signal.kind == "pipeline":
            prefix, _, name = signal.subject.partition(":")
            component = self.wording.components.get(prefix) if name else self.wording.components.get(signal.subject)
            component = component or self.wording.components["other"]
            return "system", {"system": {lang: self.wording.words["system"][lang] for lang in LANGUAGES},
                              "component": {lang: component[lang].format(name=name or signal.subject)
                                            for lang in LANGUAGES}}
        names: dict[str, Text] = {"site": self.site_name(signal.site_id)}
        sensor = facts.get("sensor") or (signal.subject if signal.subject in self.fleet.sensors else None)
        if sensor:
            names["sensor"] = self.sensor_name(sensor)
            unit = self.unit_name([sensor])
            if unit and unit["zh"] not in names["sensor"]["zh"]:  # "液氨储罐区联锁旁路状态" names its unit already
                names["unit"] = unit
            return "sensor", names
        if "zone" in facts:
            names["zone"] = self.zone_name(facts)
            unit = self.unit_name(list(facts.get("zone_sensors") or []))
            if unit:
                names["unit"] = unit
            return "zone", names
        if "station" in facts or signal.kind in ("fire_danger", "fire_detection"):
            names["station"] = self.station_name(str(facts.get("station", signal.subject)), signal.site_id)
            return "station", names
        return "site", names

    def _title(self, signal: Signal) -> Text:
        subject, names = self._subject(signal)
        key = subject if subject in ("station", "site", "system") or "unit" in names else f"{subject}.plain"
        template = self.wording.titles.get(key) or self.wording.titles["sensor" if subject != "system" else "system"]
        return {lang: _tidy(template[lang].format_map(_Fields({k: v[lang] for k, v in names.items()})))
                for lang in LANGUAGES}

    def template_key(self, signal: Signal) -> str:
        """Which template renders this signal's text."""
        facts, clear, kind = signal.facts, signal.tier is None, signal.kind
        templates = self.wording.templates
        if signal.site_id == SYSTEM_SITE or kind == "pipeline":
            key = _SYSTEM_TEMPLATES.get(signal.rule_id, "system")
            return (f"{key}.clear" if f"{key}.clear" in templates else "system.clear") if clear else key
        if kind == "threshold":
            if clear:
                return "threshold.clear"
            if self.wording.unit(signal.unit).state:
                return "threshold.state"
            low = facts.get("direction") == "low"
            if signal.threshold is not None and (signal.value > signal.threshold if low else signal.value < signal.threshold):
                return "threshold.deadband"  # stepped down into the deadband: "reached" would misstate it
            return "threshold.low" if low else "threshold.high"
        if kind == "predictive":
            variant = facts.get("variant") or ("clear" if clear else "eta")
            return f"predictive.{variant}" if f"predictive.{variant}" in templates else "predictive.eta"
        if kind in ("out_of_range", "over_range") and facts.get("variant") == "side":
            return "range.side"
        key = f"{kind}.clear" if clear else kind
        if key in templates:
            return key
        return "generic.clear" if clear else "generic"

    def _text(self, signal: Signal, language: Language) -> str:
        key = self.template_key(signal)
        fields = self._fields(signal, language)
        text = _tidy(self.wording.templates[key][language].format_map(fields))
        return _singular(text) if language == "en" else text

    def _fields(self, signal: Signal, lang: Language) -> _Fields:
        w, facts = self.wording, signal.facts
        subject, names = self._subject(signal)
        fields = _Fields({k: v[lang] for k, v in names.items()})
        fields["where"] = w.places[subject][lang].format_map(_Fields(fields))
        fields["priority"] = w.priorities[signal.tier.priority if signal.tier else "cleared"][lang]
        fields["kind"] = w.word(w.kinds, signal.kind, lang)
        # a confirmation names the level its detectors agree at, not its own level "confirmed"
        fields["level"] = w.level(facts.get("rung_level") or signal.level, lang)
        fields["detail"] = signal.message if lang == "zh" else ""
        sensor = self.fleet.sensors.get(str(facts.get("sensor", signal.subject)))
        unit = sensor.unit if sensor is not None else signal.unit
        fields["value"] = w.number(signal.value, signal.unit, lang)
        fields["setpoint"] = w.number(signal.threshold, signal.unit, lang)
        fields["count"] = w.number(signal.value, "个", lang, decimals=0).split(" ")[0]
        fields["direction"] = w.words["fall" if facts.get("direction") == "fall" else "rise"][lang]
        fields["window"] = w.duration(facts.get("window_s"), lang)
        kind = signal.kind
        if kind == "rate_of_change":
            rate_unit = f"{w.unit(unit)[lang]}/min" if w.unit(unit)[lang] else "/min"
            fields["rate"] = f"{w.number(signal.value, '', lang, decimals=None).strip()} {rate_unit}" \
                if signal.value == signal.value else w.words["no_value"][lang]
            fields["setpoint"] = (f"{w.number(signal.threshold, '', lang).strip()} {rate_unit}"
                                  if signal.threshold is not None else w.words["no_value"][lang])
            fields["current"] = w.number(facts.get("current"), unit, lang)
        elif kind == "predictive":
            fields["target"] = w.level(facts.get("target_level"), lang)
            fields["eta"] = w.duration(facts.get("eta_s"), lang)
        elif kind in ("out_of_range", "over_range"):
            fields["low"] = w.number(facts.get("low"), unit, lang)
            fields["high"] = w.number(facts.get("high"), unit, lang)
        elif kind == "held":
            fields["hold"] = w.duration(facts.get("hold_s"), lang)
        elif kind == "confirmation":
            fields["detectors"] = self._list(list(facts.get("detectors") or []), lang)
            fields["k"] = w.number(signal.threshold, "个", lang, decimals=0).split(" ")[0]
        elif kind == "fire_danger":
            self._danger_fields(fields, signal, lang)
        elif kind == "fire_detection":
            fields["confirmed"] = w.words["confirmed_fire"][lang] if facts.get("confirmed") else ""
            danger = int(facts.get("danger_tier") or 0)
            fields["danger"] = (w.words["danger"][lang].format(danger=w.priorities[Tier(danger).priority][lang])
                                if danger else w.words["no_danger"][lang])
        elif kind == "stale":
            fields["limit"] = w.duration(facts.get("limit_s", signal.threshold), lang)
        elif kind in ("comm_loss", "not_reporting"):
            fields["names"] = self._list(list(facts.get("sensors") or []), lang)
            fields["cause"] = w.words["gateway_offline" if facts.get("cause") == "gateway_offline" else "all_silent"][lang]
        return fields

    def _danger_fields(self, fields: _Fields, signal: Signal, lang: Language) -> None:
        w, facts = self.wording, signal.facts
        index = str(facts.get("index", "lyt1172"))
        fields["index"] = w.words.get(f"index_{index}", w.words["index_lyt1172"])[lang]
        fields["date"] = str(facts.get("date", ""))
        inputs = facts.get("inputs") or {}
        rh = inputs.get("rh_14") if inputs.get("rh_14") is not None else inputs.get("rh_min")
        values = _Fields({
            "temp_max": w.number(inputs.get("temp_max"), "°C", lang), "temp": w.number(inputs.get("temp"), "°C", lang),
            "rh": w.number(rh if index == "lyt1172" else inputs.get("rh"), "%", lang),
            "wind": w.number(inputs.get("wind_10min_max") if index == "lyt1172" else inputs.get("wind"), "km/h", lang),
            "rain": w.number(inputs.get("rain"), "mm", lang),
            "dry_days": w.number(inputs.get("dry_days"), "个", lang, decimals=0).split(" ")[0]})
        template = w.words.get(f"inputs_{index}")
        fields["inputs"] = template[lang].format_map(values) if template and inputs else ""


def legacy(kind: str, tier: Tier, level: str | None, value: float, unit: str, message: str,
           clear: bool = False) -> Rendered:
    """Title and text for an alert stored before alarm texts existed (no facts: no names to look up).

    >>> legacy("threshold", Tier.ORANGE, "HH", 8.5, "m", "T101储罐液位 8.5 m 达到高高报(HH)设定值").text["en"]
    'High priority: threshold high-high (HH) (8.50 m)'
    """
    w = load_wording()
    priority = w.priorities["cleared" if clear else tier.priority]
    what = {lang: _tidy(f"{w.word(w.kinds, kind, lang)} {w.level(level, lang)}") for lang in LANGUAGES}
    return Rendered(title={lang: _tidy(f"{w.priorities[tier.priority][lang]} {what[lang]}") for lang in LANGUAGES},
                    text={"zh": message, "en": f"{priority.en}: {what['en']} ({w.number(value, unit, 'en')})"})

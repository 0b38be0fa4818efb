"""Alarm texts in Chinese and English (alerting/messages.py): exact examples per rule kind, a property
over generated signals of every kind, every sensor and rule of the demo configuration, the checks
made when the wording file loads, stored alerts and notifications in the receiver's language."""

from __future__ import annotations

import dataclasses
import math
import re
import shutil
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alerting import AlertManager, AlertStore
from alerting.db import AlertDB
from alerting.messages import FACTS, Messages, Rendered
from alerting.model import Alert, Event
from alerting.notify import Notifier
from foundation.config import ConfigError, load_config
from foundation.wording import CJK, Wording, load_wording
from foundation.alertspec import AlertingSettings
from foundation.domain import Family, Tier
from foundation.rulespec import ConfirmationSpec, FireDangerSpec
from liaowang.scenario import FakeClock
from rules.base import Signal, station_of
from rules.confirm import ConfirmationRule
from rules.fire import FireDangerRule

T0 = 1_795_564_800.0
JUNK = re.compile(r"\bNone\b|\bnan\b|\binf\b|infinity|[{}]", re.IGNORECASE)


@pytest.fixture(scope="module")
def messages(fleet) -> Messages:
    return Messages(fleet)


def sig(kind: str, subject: str, site: str, tier: Tier | None, level: str | None, value: float,
        threshold: float | None, unit: str, rule_id: str = "r", family: Family = Family.GAS, message: str = "原文",
        **facts) -> Signal:
    return Signal(rule_id, kind, subject, site, family, tier, level, value, threshold, unit, T0, message, facts)


def assert_readable(rendered: Rendered, ids: set[str]) -> None:
    """Both languages present; no id, no Chinese in English, no None/nan/inf/braces."""
    for part in (rendered.title, rendered.text):
        assert set(part) == {"zh", "en"}
        for language, text in part.items():
            assert text and text == text.strip(), (language, text)
            assert not JUNK.search(text), (language, text)
            for raw in ids:
                assert raw not in text, (raw, language, text)
        assert not CJK.search(part["en"]), part["en"]


# ---------------------------------------------------------------- examples per kind (exact strings)

def test_a_gas_threshold_names_site_unit_and_detector_with_the_level_in_words(messages):
    r = messages.render(sig("threshold", "LC-LUXI-GD-01", "LC-LUXI", Tier.ORANGE, "level1", 27.46, 25.0, "%LEL",
                            sensor="LC-LUXI-GD-01", direction="high"))
    assert r.title == {"zh": "鲁西集团 液氨储罐区 可燃气体探测器01",
                       "en": "Luxi Group, liquid ammonia tank farm: combustible gas detector 01"}
    assert r.text == {"zh": "高报警: 鲁西集团 可燃气体探测器01 27.5 %LEL, 达到一级报警设定值 25.0 %LEL",
                      "en": "High priority: Luxi Group, combustible gas detector 01 at 27.5 %LEL, "
                            "reached the level 1 setpoint 25.0 %LEL"}


def test_a_low_setpoint_says_below_and_its_clear_says_back_to_normal(messages):
    low = messages.render(sig("threshold", "LC-LUXI-T101-LT", "LC-LUXI", Tier.YELLOW, "L", 0.5, 0.8, "m",
                              family=Family.HAZARD, sensor="LC-LUXI-T101-LT", direction="low"))
    assert low.text["zh"] == "中报警: 鲁西集团 T101储罐液位 0.50 m, 低于低报(L)设定值 0.80 m"
    assert low.text["en"] == "Medium priority: Luxi Group, tank T101 level at 0.50 m, below the low (L) setpoint 0.80 m"
    back = messages.render(sig("threshold", "LC-LUXI-T101-LT", "LC-LUXI", None, None, 5.0, None, "m",
                               sensor="LC-LUXI-T101-LT", direction="high"))
    assert back.text == {"zh": "鲁西集团 T101储罐液位 5.00 m, 恢复正常",
                         "en": "Luxi Group, tank T101 level back to normal at 5.00 m"}


def test_a_value_back_in_the_deadband_is_not_said_to_have_reached_the_setpoint(messages):
    r = messages.render(sig("threshold", "LC-LUXI-GD-02", "LC-LUXI", Tier.YELLOW, "level1", 18.4, 20.0, "%LEL",
                            sensor="LC-LUXI-GD-02", direction="high"))
    assert "仍处于一级报警" in r.text["zh"] and "达到" not in r.text["zh"]
    assert "still at level 1" in r.text["en"]


def test_a_flame_signal_has_no_english_unit_fragment_and_an_interlock_state_no_value(messages):
    flame = messages.render(sig("threshold", "LC-DEHH-WS1-FL", "LC-DEHH", Tier.ORANGE, "fire_confirmed", 0.925, 0.5,
                                "signal", family=Family.FOREST, sensor="LC-DEHH-WS1-FL", direction="high"))
    assert flame.text["zh"] == "高报警: 东阿黄河森林 1号监测站火焰探测 0.93, 达到明火信号设定值 0.50"
    assert "signal" not in flame.text["en"] and "signal" not in flame.text["zh"]
    bypass = messages.render(sig("threshold", "LC-LUXI-U1-ILB", "LC-LUXI", Tier.ORANGE, "bypassed", 1.0, 0.5, "状态",
                                 family=Family.HAZARD, sensor="LC-LUXI-U1-ILB", direction="high"))
    assert bypass.text == {"zh": "高报警: 鲁西集团 液氨储罐区联锁旁路状态 (演示) 联锁旁路",
                           "en": "High priority: Luxi Group, liquid ammonia tank farm interlock bypass (demo): "
                                 "interlock bypassed"}


def test_a_confirmation_zone_is_named_by_quantity_and_number_with_its_detectors(messages):
    r = messages.render(sig("confirmation", "LC-LUXI-combustible-gas-Z1", "LC-LUXI", Tier.RED, "confirmed", 2.0, 2.0,
                            "个", zone="LC-LUXI-combustible-gas-Z1", zone_sensors=["LC-LUXI-GD-01", "LC-LUXI-GD-02"],
                            zone_name=None, zone_name_en=None, detectors=["LC-LUXI-GD-01", "LC-LUXI-GD-02"],
                            rung_level="level2"))
    assert r.title["zh"] == "鲁西集团 液氨储罐区 可燃气体1号探测区"
    assert r.text["zh"] == ("紧急报警: 鲁西集团 可燃气体1号探测区 2 个探测器达到二级报警 "
                            "(可燃气体探测器01、可燃气体探测器02), 多点确认泄漏 (需 2 个)")
    assert r.text["en"] == ("URGENT: Luxi Group, combustible gas zone 1: 2 detectors at level 2 "
                            "(combustible gas detector 01, combustible gas detector 02) confirm a leak (2 needed)")


def test_rate_predictive_stale_held_and_over_range_say_their_rule_in_words(messages):
    rate = messages.render(sig("rate_of_change", "LC-XFPVC-T101-TT", "LC-XFPVC", Tier.ORANGE, "rate_rise", 2.68, 2.0,
                               "°C/min", sensor="LC-XFPVC-T101-TT", window_s=120.0, direction="rise", current=31.04))
    assert rate.text["en"] == ("High priority: Xinfa PVC, tank T101 temperature rising at 2.68 °C/min over 2 min, "
                               "reached the rate setpoint 2 °C/min (now 31.0 °C)")
    predicted = messages.render(sig("predictive", "LC-LUXI-T101-LT", "LC-LUXI", Tier.YELLOW, "predicted_HH", 8.27,
                                    10.8, "m", sensor="LC-LUXI-T101-LT", window_s=300.0, target_level="HH",
                                    variant="eta", eta_s=900.0))
    assert predicted.text["zh"] == ("中报警: 鲁西集团 T101储罐液位 按当前趋势约 15 分钟后达到高高报(HH)设定值 10.80 m "
                                    "(当前 8.27 m, 预测报警)")
    assert "predicted to reach the high-high (HH) setpoint 10.80 m in about 15 min" in predicted.text["en"]
    stale = messages.render(sig("stale", "LC-QLQY-GD-02", "LC-QLQY", Tier.YELLOW, "fault", T0, 300.0, "s",
                                sensor="LC-QLQY-GD-02", limit_s=300.0))
    assert stale.text["en"] == ("Medium priority: Qilu Paints, combustible gas detector 02 sensor fault: "
                                "no valid data for more than 5 min")
    held = messages.render(sig("held", "LC-LUXI-U1-ILB", "LC-LUXI", Tier.RED, "bypass_long", 1.0, 0.5, "状态",
                               sensor="LC-LUXI-U1-ILB", hold_s=14400.0))
    assert held.text["zh"] == "紧急报警: 鲁西集团 液氨储罐区联锁旁路状态 (演示) 联锁旁路超时: 已持续超过 4 小时"
    assert held.text["en"].endswith("interlock bypass overdue: held for more than 4 h")
    over = messages.render(sig("over_range", "LC-LUXI-GD-01", "LC-LUXI", Tier.ORANGE, "over_range", 100.5, 105.0,
                               "%LEL", sensor="LC-LUXI-GD-01", low=0.0, high=100.0))
    assert over.text["zh"].startswith("高报警: 鲁西集团 可燃气体探测器01 超量程报警: 100.5 %LEL 超出量程上限 100.0 %LEL")


def test_sensor_faults_say_what_is_wrong_with_the_instrument(messages, fleet):
    stuck = messages.render(sig("stuck", "LC-QLQY-T101-TT", "LC-QLQY", Tier.YELLOW, "fault", 26.71, 1e-6, "°C",
                                family=Family.HAZARD, sensor="LC-QLQY-T101-TT", window_s=900.0))
    assert stuck.text == {"zh": "中报警: 齐鲁漆业 T101储罐温度 传感器故障: 15 分钟内数值不变 (26.7 °C), 疑似卡死",
                          "en": "Medium priority: Qilu Paints, tank T101 temperature sensor fault: value unchanged for "
                                "15 min (26.7 °C), probably stuck"}
    out = messages.render(sig("out_of_range", "LC-LUXI-T101-LT", "LC-LUXI", Tier.YELLOW, "fault", 12.06, 12.6, "m",
                              family=Family.HAZARD, sensor="LC-LUXI-T101-LT", low=0.0, high=12.0))
    assert out.text["zh"] == "中报警: 鲁西集团 T101储罐液位 传感器故障: 12.06 m 超出量程 0.00 m–12.00 m"
    assert out.text["en"].endswith("sensor fault: 12.06 m outside the range 0.00 m to 12.00 m")
    silent = ["LC-QLQY-GD-01", "LC-QLQY-GD-02"]
    never = messages.render(sig("not_reporting", "site:LC-QLQY", "LC-QLQY", Tier.YELLOW, "fault", 2.0, None, "个",
                                sensors=silent))
    assert never.text == {"zh": "中报警: 齐鲁漆业 2 个传感器自启动以来未上报: 可燃气体探测器01、可燃气体探测器02",
                          "en": "Medium priority: Qilu Paints: 2 sensors silent since start: combustible gas detector 01, "
                                "combustible gas detector 02"}


def test_forest_danger_and_detection_name_the_station_and_the_class_in_words(messages):
    inputs = {"temp": None, "rh": None, "wind": None, "rain": 0.0, "temp_max": 28.6, "rh_min": 18.0, "rh_14": 20.0,
              "wind_10min_max": 25.8, "dry_days": 4.0}
    danger = messages.render(sig("fire_danger", "LC-DEHH-WS1", "LC-DEHH", Tier.ORANGE, "五级", 93.0, 91.0, "分",
                                 family=Family.FOREST, station="LC-DEHH-WS1", index="lyt1172", date="2026-04-20",
                                 inputs=inputs))
    assert danger.title == {"zh": "东阿黄河森林 1号监测站", "en": "Dong'e Yellow River Forest: station 1"}
    assert danger.text["en"] == ("High priority: Dong'e Yellow River Forest, station 1 fire danger class 5 on 2026-04-20 "
                                 "(LY/T 1172 index 93 points); max temperature 28.6 °C, relative humidity 20 %, "
                                 "4 dry days, max 10-minute wind 25.8 km/h, rain 0.0 mm in 24 h")
    fire = messages.render(sig("fire_detection", "LC-DEHH-WS1", "LC-DEHH", Tier.RED, "fire_detected", 2.0, None, "个",
                               family=Family.FOREST, station="LC-DEHH-WS1", confirmed=True, danger_tier=2))
    assert fire.text["zh"] == "紧急报警: 东阿黄河森林 1号监测站 发现火情: 2 个探测信号, 多源确认 (当前火险报警 中报警)"
    one = messages.render(sig("fire_detection", "LC-DEHH-WS1", "LC-DEHH", Tier.ORANGE, "fire_detected", 1.0, None, "个",
                              family=Family.FOREST, station="LC-DEHH-WS1", confirmed=False, danger_tier=0))
    assert one.text["en"] == ("High priority: Dong'e Yellow River Forest, station 1 fire detected: 1 detection signal "
                              "(no fire danger alarm now)")


def test_site_faults_list_sensor_names_and_system_alarms_have_english(messages, fleet):
    hidden = [s for s in fleet.sensors if fleet.sensors[s].site_id == "LC-HTHG"]
    lost = messages.render(sig("comm_loss", "site:LC-HTHG", "LC-HTHG", Tier.YELLOW, "fault", float(len(hidden)), None,
                               "个", sensors=hidden, cause="gateway_offline"))
    assert lost.title == {"zh": "华泰化工", "en": "Huatai Chemical"}
    assert lost.text["zh"].startswith(f"中报警: 华泰化工 通信中断(网关离线), 屏蔽 {len(hidden)} 个传感器的单点故障报警: ")
    assert lost.text["en"].endswith(f"and {len(hidden) - 5} more")
    stage = messages.render(sig("pipeline", "stage:ingest-store", "_system", Tier.ORANGE, None, 0.0, None, "",
                                rule_id="system.stage", family=Family.SYSTEM,
                                message="处理线程 ingest-store 故障, 正在重启 (已重启 1 次): OSError: disk"))
    assert stage.title == {"zh": "瞭望系统 处理线程 ingest-store", "en": "Liaowang stage ingest-store"}
    assert stage.text == {"zh": "高报警: 处理线程 ingest-store 故障, 正在重启 (已重启 1 次): OSError: disk",
                          "en": "High priority: Liaowang stage ingest-store failed and is restarting"}


def test_a_sensor_without_an_english_name_is_called_by_its_quantity_and_tag(demo_config):
    sensors = {k: dataclasses.replace(v, name_en=None) for k, v in demo_config.fleet.sensors.items()}
    sites = {k: v.model_copy(update={"name_en": None}) for k, v in demo_config.fleet.sites.items()}
    bare = Messages(demo_config.fleet.model_copy(update={"sensors": sensors, "sites": sites}))
    assert bare.sensor_name("LC-LUXI-GD-01") == {"zh": "可燃气体探测器01", "en": "combustible gas GD-01"}
    assert bare.sensor_name("LC-DEHH-WS1-FL")["en"] == "flame WS1-FL"
    assert bare.site_name("LC-LUXI") == {"zh": "鲁西集团", "en": "enterprise 1"}


def test_a_signal_without_facts_still_renders_by_its_subject(messages):
    r = messages.render(sig("threshold", "LC-LUXI-GD-01", "LC-LUXI", Tier.YELLOW, "level1", 21.0, 20.0, "%LEL"))
    assert r.text["en"] == "Medium priority: Luxi Group, combustible gas detector 01 at 21.0 %LEL, reached the level 1 setpoint 20.0 %LEL"
    unknown = messages.render(sig("future_kind", "LC-LUXI", "LC-LUXI", Tier.BLUE, "some_level", 3.0, None, "m"))
    assert unknown.text["en"] == "Low priority: Luxi Group future kind some level (3.00 m)"


# ---------------------------------------------------------------- property over every kind

LEVELS = [None, "level1", "level2", "H", "HH", "L", "LL", "fire_suspected", "fire_confirmed", "rate_rise", "rate_fall",
          "fault", "confirmed", "fire_detected", "over_range", "bypassed", "esd_tripped", "bypass_long", "predicted_HH",
          "一级", "二级", "三级", "四级", "五级"]
numbers = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.floats(-1e4, 1e4), st.none())


@st.composite
def any_signal(draw, fleet) -> tuple[Signal, set[str]]:
    """A signal of any kind about a real subject of the demo fleet, with arbitrary numbers and levels."""
    kind = draw(st.sampled_from(sorted(FACTS)))
    sensor_id = draw(st.sampled_from(sorted(fleet.sensors)))
    sensor = fleet.sensors[sensor_id]
    site = sensor.site_id
    tier = draw(st.one_of(st.none(), st.sampled_from(list(Tier))))
    value = draw(st.floats(allow_nan=True, allow_infinity=True))
    threshold = draw(numbers)
    level = draw(st.sampled_from(LEVELS))
    unit = draw(st.sampled_from([sensor.unit, "个", "分", "s", "°C/min", "FWI", ""]))
    subject, facts = sensor_id, {"sensor": sensor_id}
    ids = {sensor_id, site}
    if kind == "threshold":
        facts["direction"] = draw(st.sampled_from(["high", "low"]))
    elif kind in ("rate_of_change", "predictive", "stuck"):
        facts.update(window_s=draw(numbers), direction=draw(st.sampled_from(["rise", "fall"])), current=draw(numbers),
                     target_level=draw(st.sampled_from(LEVELS)), variant=draw(st.sampled_from(["eta", "reached", "clear"])),
                     eta_s=draw(numbers))
    elif kind in ("out_of_range", "over_range"):
        facts.update(low=draw(numbers), high=draw(numbers), variant=draw(st.sampled_from([None, "side"])))
    elif kind == "held":
        facts["hold_s"] = draw(numbers)
    elif kind == "stale":
        facts["limit_s"] = draw(numbers)
    elif kind == "confirmation":
        members = sorted(s for s in fleet.sensors if fleet.sensors[s].site_id == site)[:3]
        subject = f"{site}-{sensor.quantity}-Z{draw(st.integers(1, 9))}".replace("_", "-")
        facts = {"zone": subject, "zone_sensors": members, "zone_name": None, "zone_name_en": None,
                 "detectors": draw(st.lists(st.sampled_from(members), max_size=3)), "rung_level": level}
        ids |= {subject, *members}
    elif kind in ("fire_danger", "fire_detection"):
        subject = station_of(sensor)
        facts = {"station": subject, "index": draw(st.sampled_from(["lyt1172", "fwi"])), "date": "2026-04-20",
                 "inputs": {k: draw(numbers) for k in ("temp", "rh", "wind", "rain", "temp_max", "rh_min", "rh_14",
                                                       "wind_10min_max", "dry_days")},
                 "confirmed": draw(st.booleans()), "danger_tier": draw(st.integers(0, 4))}
        ids.add(subject)
    elif kind in ("comm_loss", "not_reporting"):
        subject = f"site:{site}"
        facts = {"sensors": draw(st.lists(st.sampled_from(sorted(fleet.sensors)), max_size=8)),
                 "cause": draw(st.sampled_from(["gateway_offline", "all_silent", None]))}
        ids |= set(facts["sensors"]) | {subject}
    elif kind == "pipeline":
        subject = draw(st.sampled_from(["sink:influx", "disk:data", "stage:ingest-store", "evaluation", "alerting"]))
        rule_id = draw(st.sampled_from(["pipeline.spool", "system.disk", "system.stage", "system.evaluation",
                                        "system.alerting", "system.other"]))
        return (Signal(rule_id, kind, subject, "_system", Family.SYSTEM, tier, None, value, threshold, unit, T0,
                       "系统故障 (原文)", {}), set())
    if draw(st.booleans()) and kind not in ("confirmation", "comm_loss", "not_reporting"):
        facts = {}  # a signal without facts (a rule that gives none) renders as well
    return Signal("r", kind, subject, site, sensor.family, tier, level, value, threshold, unit, T0, "原文", facts), ids


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_every_kind_renders_readably_in_both_languages(data, messages, fleet):
    """Property: for any kind, level, tier and number, both languages render; no id, None, nan or brace shows,
    and the English holds no Chinese character."""
    signal, ids = data.draw(any_signal(fleet))
    assert_readable(messages.render(signal), ids)


# ---------------------------------------------------------------- the demo configuration

def test_every_sensor_and_rule_of_the_demo_configuration_renders(demo_config, messages):
    fleet, specs = demo_config.fleet, demo_config.rules.rules
    count = 0
    for sensor_id, sensor in fleet.sensors.items():
        ids = {sensor_id, sensor.site_id}
        base = {"sensor": sensor_id}
        for setpoint in fleet.setpoints_for(sensor):
            for value in (setpoint.set, setpoint.reset):
                tier = fleet.tiers.tier_for(setpoint.level, fleet.sites[sensor.site_id].hazard_grade, sensor.quantity)
                assert_readable(messages.render(sig("threshold", sensor_id, sensor.site_id, tier, setpoint.level, value,
                                                    setpoint.set, sensor.unit, direction=setpoint.direction, **base)),
                                ids)
                count += 1
            assert setpoint.level in messages.wording.levels, f"{setpoint.level} has no words"
        cases = [("stale", "fault", {"limit_s": sensor.period_s * 3}), ("stuck", "fault", {"window_s": 900.0}),
                 ("rate_of_change", "rate_rise", {"window_s": 120.0, "direction": "rise", "current": 1.0}),
                 ("predictive", "predicted_HH", {"window_s": 120.0, "target_level": "HH", "variant": "eta", "eta_s": 300.0}),
                 ("held", "bypass_long", {"hold_s": 14400.0})]
        if (span := fleet.instrument_range(sensor)) is not None:
            cases += [("out_of_range", "fault", {"low": span[0], "high": span[1]}),
                      ("over_range", "over_range", {"low": span[0], "high": span[1]})]
        for kind, level, facts in cases:
            for tier in (Tier.YELLOW, None):
                assert_readable(messages.render(sig(kind, sensor_id, sensor.site_id, tier, level if tier else None, 1.0,
                                                    2.0, sensor.unit, **base, **facts)), ids)
                count += 1
    for spec in specs:
        if isinstance(spec, ConfirmationSpec):
            rule = ConfirmationRule(fleet, spec)
            assert rule.zones, spec.id
            for zone in rule.zones:
                site = fleet.sensors[zone.sensors[0]].site_id
                for rung in spec.ladder:
                    assert_readable(messages.render(sig(
                        "confirmation", zone.id, site, rung.tier, "confirmed", 2.0, float(spec.k), "个", zone=zone.id,
                        zone_sensors=zone.sensors, zone_name=zone.name, zone_name_en=zone.name_en,
                        detectors=zone.sensors[:2], rung_level=rung.level)), {zone.id, site, *zone.sensors})
                    count += 1
        if isinstance(spec, FireDangerSpec):
            rule = FireDangerRule(fleet, spec)
            for station, site in zip(rule.stations, rule.station_site):
                for klass in spec.classes:
                    assert klass.name in messages.wording.levels
                    assert_readable(messages.render(sig(
                        "fire_danger", station, site, klass.tier, klass.name, klass.min + 1, klass.min, rule.index.unit,
                        family=Family.FOREST, station=station, index=spec.index, date="2026-04-20",
                        inputs={"temp_max": 30.0, "rh_14": 20.0, "wind_10min_max": 20.0, "rain": 0.0, "dry_days": 3.0})),
                        {station, site})
                    count += 1
    for site_id in fleet.sites:
        sensors = [s for s in fleet.sensors if fleet.sensors[s].site_id == site_id]
        for kind in ("comm_loss", "not_reporting"):
            assert_readable(messages.render(sig(kind, f"site:{site_id}", site_id, Tier.YELLOW, "fault",
                                                float(len(sensors)), None, "个", sensors=sensors, cause="all_silent")),
                            {site_id, *sensors})
    assert count > 1000


def test_every_site_and_hazard_unit_of_the_demo_has_an_english_name(fleet):
    assert all(site.name_en for site in fleet.sites.values())
    assert all(unit.name_en for site in fleet.sites.values() for unit in site.hazard_units)


# ---------------------------------------------------------------- the wording file

def _broken(tmp_path: Path, edit) -> Path:
    raw = yaml.safe_load(Path("foundation/defaults/messages.yaml").read_text(encoding="utf-8"))
    edit(raw)
    path = tmp_path / "messages.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return path


@pytest.mark.parametrize("edit, complaint", [
    (lambda raw: raw["templates"]["stale"].update(en="{priority}: {wher} stale"), "templates.stale.en: unknown field"),
    (lambda raw: raw["templates"]["stale"].update(en="{priority}: {where.x}"), "only plain {name} fields"),
    (lambda raw: raw["levels"]["HH"].update(en="高高报"), "levels.HH.en"),
    (lambda raw: raw["templates"]["held"].pop("en"), "en"),
    (lambda raw: raw.update(levels=["H"]), "levels: must be a mapping"),
])
def test_a_broken_wording_file_is_refused_naming_the_key(tmp_path, edit, complaint):
    with pytest.raises(ValueError) as err:
        load_wording(_broken(tmp_path, edit))
    assert complaint in str(err.value)


def test_the_wording_needs_a_template_for_every_kind():
    raw = yaml.safe_load(Path("foundation/defaults/messages.yaml").read_text(encoding="utf-8"))
    raw["templates"].pop("held")
    with pytest.raises(ValueError, match=r"templates: missing \['held'\]"):
        Wording.model_validate(raw)


def test_a_bureaus_messages_yaml_overrides_entries_and_a_bad_one_names_the_file(tmp_path, demo_config):
    folder = tmp_path / "config"
    shutil.copytree(Path("config"), folder)
    (folder / "messages.yaml").write_text(
        "levels:\n  HH: {zh: 高高限报警, en: HH alarm}\n", encoding="utf-8")
    config = load_config(folder)
    r = Messages(config.fleet, config.wording).render(sig(
        "threshold", "LC-LUXI-T101-LT", "LC-LUXI", Tier.ORANGE, "HH", 10.9, 10.8, "m", sensor="LC-LUXI-T101-LT"))
    assert "达到高高限报警设定值 10.80 m" in r.text["zh"] and "reached the HH alarm setpoint" in r.text["en"]
    assert config.wording.levels["H"].en == "high (H)"  # the rest stays as shipped
    (folder / "messages.yaml").write_text("templates:\n  stale: {zh: 停报, en: 停报}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_config(folder)
    assert "messages.yaml" in str(err.value) and "templates.stale.en" in str(err.value)


def test_numbers_and_durations_read_as_a_person_says_them():
    w = load_wording()
    assert w.number(-0.0001, "°C", "en") == "0.0 °C"
    assert w.number(0.9251, "signal", "zh") == "0.93"
    assert w.number(1234.5, "weird-unit", "en") == "1234 weird-unit"
    assert w.number(12.5, "吨", "en") == "12.5" and w.number(12.5, "吨", "zh") == "12.5 吨"
    assert w.duration(30, "zh") == "30 秒" and w.duration(7200, "zh") == "2 小时" and w.duration(math.inf, "en") == "no valid value"


# ---------------------------------------------------------------- alerts, history and notifications

def _manager(tmp_path, fleet, settings: AlertingSettings | None = None) -> tuple[AlertManager, FakeClock]:
    clock = FakeClock(T0)
    return AlertManager(AlertStore(AlertDB(tmp_path / "alerts.db")), fleet, clock, settings), clock


def test_an_alert_carries_title_and_text_and_each_history_entry_its_text(tmp_path, fleet):
    manager, _ = _manager(tmp_path, fleet)
    raise_ = sig("threshold", "LC-LUXI-GD-01", "LC-LUXI", Tier.YELLOW, "level1", 21.0, 20.0, "%LEL",
                 rule_id="gas.combustible_gas.threshold", message="升", sensor="LC-LUXI-GD-01", direction="high")
    escalate = sig("threshold", "LC-LUXI-GD-01", "LC-LUXI", Tier.ORANGE, "level2", 41.0, 40.0, "%LEL",
                   rule_id="gas.combustible_gas.threshold", message="升级", sensor="LC-LUXI-GD-01", direction="high")
    manager.apply([raise_])
    alert = manager.apply([escalate])[-1].alert
    body = alert.to_json()
    assert body["title"]["en"] == "Luxi Group, liquid ammonia tank farm: combustible gas detector 01"
    assert body["text"]["en"].startswith("High priority:") and "level 2" in body["text"]["en"]
    assert body["raise_text"]["en"].startswith("Medium priority:") and body["message"] == "升级"
    assert [h["text"]["en"].split(":")[0] for h in body["history"]] == ["Medium priority", "High priority"]
    assert (body["priority_text"], body["level_text"], body["kind_text"], body["isa_state_text"]) == (
        {"zh": "高报警", "en": "High priority"}, {"zh": "二级报警", "en": "level 2"}, {"zh": "阈值报警", "en": "threshold"},
        {"zh": "未确认", "en": "unacknowledged"})
    assert [h["event_text"]["en"] for h in body["history"]] == ["raised", "escalated"]
    stored = AlertStore(AlertDB(tmp_path / "alerts.db")).get(alert.id)
    assert stored is not None and stored.to_json()["text"] == body["text"]


def test_every_event_state_priority_and_kind_has_words_in_both_languages():
    w = load_wording()
    for table, keys in ((w.events, [e.value for e in Event]), (w.states, ["normal", "unacknowledged", "acknowledged",
                        "returned_unacknowledged", "shelved", "suppressed"]),
                        (w.priorities, [t.priority for t in Tier]), (w.kinds, list(FACTS))):
        for key in keys:
            assert key in table, key
            assert table[key].zh and table[key].en and not CJK.search(table[key].en)


def test_an_alert_stored_before_alarm_texts_still_has_english(fleet):
    record = Alert("a1", "gas.combustible_gas.threshold", "threshold", "LC-LUXI-GD-01", "LC-LUXI", "东昌府区", "gas",
                   Tier.ORANGE, "level2", "可燃气体探测器01 41 %LEL 达到二级报警设定值 40 %LEL", 41.0, 40.0, "%LEL",
                   T0, T0).to_record()
    for key in ("title", "text", "raise_text"):
        record.pop(key)
    body = Alert.from_record(record).to_json()
    assert body["text"] == {"zh": "可燃气体探测器01 41 %LEL 达到二级报警设定值 40 %LEL",
                            "en": "High priority: threshold level 2 (41.0 %LEL)"}
    assert not CJK.search(body["title"]["en"])


def test_a_notification_speaks_the_receivers_language(tmp_path, fleet):
    settings = AlertingSettings.model_validate({
        "receivers": [{"id": "zh-desk", "name": "值班室", "level": "city_duty_desk", "channels": [{"kind": "log"}]},
                      {"id": "en-desk", "name": "liaison", "level": "city_duty_desk", "channels": [{"kind": "log"}],
                       "language": "en"}],
        "routes": [{"match": {}, "receivers": ["zh-desk", "en-desk"]}]})
    manager, clock = _manager(tmp_path, fleet, settings)
    notifier = Notifier(manager._store.db, settings, fleet, manager, clock)
    notifier.on_changes(manager.apply([sig("threshold", "LC-LUXI-GD-01", "LC-LUXI", Tier.ORANGE, "level2", 41.0, 40.0,
                                           "%LEL", rule_id="gas.combustible_gas.threshold", sensor="LC-LUXI-GD-01",
                                           direction="high")]))
    import orjson
    with notifier._lock:
        docs = {r[0]: orjson.loads(r[1]) for r in notifier._conn.execute("SELECT receiver, document FROM outbox")}
    assert docs["zh-desk"]["title"] == "【高报警】鲁西集团 液氨储罐区 可燃气体探测器01 报警"
    assert docs["zh-desk"]["text"].startswith("高报警: 鲁西集团 可燃气体探测器01 41.0 %LEL, 达到二级报警设定值 40.0 %LEL\n")
    assert docs["en-desk"]["title"] == "[High priority] Luxi Group, liquid ammonia tank farm: combustible gas detector 01: alarm"
    assert not CJK.search(docs["en-desk"]["text"]) and "Alarm id: " in docs["en-desk"]["text"]

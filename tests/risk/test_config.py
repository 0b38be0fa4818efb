"""risk.yaml and the hazard units of sites.yaml: the shipped files load; broken ones name their file and key."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from foundation.config import ConfigError, load_config
from foundation.riskspec import OperatingKind, RiskSettings, load_risk_settings
from tests.conftest import CONFIG_DIR


def numbers(value, path: str = "") -> dict[str, object]:
    """Every number (and null) of a dumped model, by path: what the shipped file must share with the defaults."""
    if isinstance(value, dict):
        return {k: v for key, item in value.items() for k, v in numbers(item, f"{path}.{key}").items()}
    if isinstance(value, list):
        return {k: v for i, item in enumerate(value) for k, v in numbers(item, f"{path}[{i}]").items()}
    return {} if isinstance(value, str) else {path: value}


def test_the_shipped_file_loads_has_the_defaults_numbers_and_every_rule_its_source(demo_config) -> None:
    shipped = load_risk_settings(CONFIG_DIR, demo_config.fleet)
    assert numbers(shipped.model_dump()) == numbers(RiskSettings().model_dump())
    sourced = []

    def walk(value) -> None:
        if isinstance(value, dict):
            if "source" in value:
                sourced.append(value)
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(shipped.model_dump())
    assert len(sourced) >= 25 and all(len(s["source"]) > 10 and s["certainty"] == "U" for s in sourced)
    assert set(shipped.operating.kinds) == set(OperatingKind)
    assert shipped.commitment.due_certainty == "U" and shipped.proposals.levels["significant"].colour == "orange"


def test_a_missing_file_gives_the_defaults(tmp_path: Path) -> None:
    assert load_risk_settings(tmp_path) == RiskSettings()


def write(tmp_path: Path, data) -> Path:
    text = data if isinstance(data, str) else yaml.safe_dump(data, allow_unicode=True)
    (tmp_path / "risk.yaml").write_text(text, encoding="utf-8")
    return tmp_path


RULE = {"source": "test source", "certainty": "U"}


@pytest.mark.parametrize("data, key, reason", [
    ("grades: [", "-", "not valid YAML"),
    (["x"], "-", "must be a mapping"),
    ({"grade": {}}, "grade", "unknown key"),
    ({"grades": {"general": {"min_score": 80, **RULE}}}, "grades", "must rise"),
    ({"grades": {"major": {"min_score": 120}}}, "grades.major.source", "Field required"),
    ({"grades": {"major": {"min_score": 120, "source": "x", "certainty": "U"}}}, "grades.major.source", "at least 3"),
    ({"grades": {"major": {"min_score": 120, "source": "test", "certainty": "maybe"}}}, "grades.major.certainty",
     "Input should be"),
    ({"inherent": {"unit_grade": {"points": {1: 40, 2: 30, 3: 20}, **RULE}}}, "inherent.unit_grade",
     "needs grades 1, 2, 3 and 4"),
    ({"inherent": {"key_process": {"points": -5, **RULE}}}, "inherent.key_process.points", "greater than or equal"),
    ({"alarms": {"open": {"points": {"urgent": 10, "high": 4, "medium": 2}, **RULE}}}, "alarms.open",
     "urgent, high, medium and low"),
    ({"alarms": {"open": {"points": {"urgent": 10, "high": 4, "medium": 2, "critical": 1}, **RULE}}},
     "alarms.open.points.critical.[key]", "Input should be"),
    ({"alarms": {"concurrent": [{"min_alarms": 1, "points": 5, **RULE}]}}, "alarms.concurrent[0].min_alarms",
     "greater than or equal to 2"),
    ({"data_quality": {"alarm_kinds": {"stale": "broken"}}}, "data_quality.alarm_kinds.stale", "Input should be"),
    ({"operating": {"kinds": {"hot_work": {"points": 15, "max_duration_s": 86400, **RULE}}}}, "operating",
     "needs every kind"),
    ({"operating": {"kinds": {"welding": {}}}}, "operating.kinds.welding.[key]", "Input should be"),
    ({"commitment": {"due": "9:00"}}, "commitment.due", "pattern"),
    ({"proposals": {"enterprise": "general", "levels": {"major": "I", "significant": "II"}, **RULE}}, "proposals",
     "missing ['general']"),
    ({"proposals": {"enterprise": "orange", **RULE}}, "proposals.enterprise", "Input should be"),
    ({"sites": ["LC-NOPE"]}, "sites[0]", "unknown site"),
    ({"site_kinds": []}, "site_kinds", "at least 1"),
])
def test_a_broken_risk_yaml_names_its_key(tmp_path: Path, fleet, data, key, reason) -> None:
    with pytest.raises(ConfigError) as caught:
        load_risk_settings(write(tmp_path, data), fleet)
    assert caught.value.file.endswith("risk.yaml")
    assert (caught.value.key, reason in caught.value.reason) == (key, True), str(caught.value)


def broken_sites(tmp_path: Path, mutate) -> Path:
    folder = tmp_path / "config"
    shutil.copytree(CONFIG_DIR, folder)
    data = yaml.safe_load((folder / "sites.yaml").read_text(encoding="utf-8"))
    mutate({s["id"]: s for s in data["sites"]})
    (folder / "sites.yaml").write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return folder


def units(site: dict) -> list[dict]:
    return site["hazard_units"]


XFPVC = 6  # LC-XFPVC's index in sites.yaml
# where a sensor appended to its first hazard unit lands (the shipped list may grow)
APPENDED = len(next(site for site in yaml.safe_load((CONFIG_DIR / "sites.yaml").read_text(encoding="utf-8"))["sites"]
                    if site["id"] == "LC-XFPVC")["hazard_units"][0]["sensors"])


@pytest.mark.parametrize("mutate, key, reason", [
    (lambda s: units(s["LC-XFPVC"])[0]["sensors"].append("LC-XFPVC-NOPE"),
     f"sites[{XFPVC}].hazard_units[0].sensors[{APPENDED}]", "unknown sensor 'LC-XFPVC-NOPE'"),
    (lambda s: units(s["LC-XFPVC"])[0]["sensors"].append("LC-LUXI-GT-01"),
     f"sites[{XFPVC}].hazard_units[0].sensors[{APPENDED}]", "belongs to site LC-LUXI, not LC-XFPVC"),
    (lambda s: units(s["LC-XFPVC"])[1]["sensors"].append("LC-XFPVC-T101-PT"),
     f"sites[{XFPVC}].hazard_units[1].sensors[5]", "already watches unit LC-XFPVC-U1"),
    (lambda s: units(s["LC-XFPVC"])[1].update(id="LC-LUXI-U1"),
     f"sites[{XFPVC}].hazard_units[1].id", "also used at LC-LUXI"),
    (lambda s: units(s["LC-XFPVC"])[0].update(r=140), f"sites[{XFPVC}].hazard_units[0]", "differs from α·Σβq/Q"),
    (lambda s: units(s["LC-XFPVC"])[1].update(grade=1), f"sites[{XFPVC}].hazard_units[1]",
     "gives GB 18218 grade 2, not 1"),
    (lambda s: s["LC-XFPVC"].update(hazard_grade=2, hazard_r=None), f"sites[{XFPVC}]",
     "hazard_grade must be the highest unit's grade (1)"),
    (lambda s: s["LC-XFPVC"].pop("hazard_grade"), f"sites[{XFPVC}]", "give hazard_grade: 1"),
    (lambda s: s["LC-XFPVC"].update(hazard_r=120), f"sites[{XFPVC}]", "hazard_r must be the largest unit R (150)"),
    (lambda s: s["LC-DEHH"].update(hazard_units=units(s["LC-XFHG"])), "sites[10]", "not a forest"),
    (lambda s: units(s["LC-XFPVC"])[0]["responsible"].pop("operational"),
     f"sites[{XFPVC}].hazard_units[0].responsible.operational", "Field required"),
    (lambda s: units(s["LC-XFPVC"])[0]["responsible"]["main"].update(phone="138-0000-000x"),
     f"sites[{XFPVC}].hazard_units[0].responsible.main.phone", "pattern"),
    (lambda s: units(s["LC-XFPVC"])[1]["substances"][1].update(cas="7782-50-6"),
     f"sites[{XFPVC}].hazard_units[1].substances[1].cas", "check digit"),
    (lambda s: units(s["LC-XFPVC"])[1].update(key_processes=["聚合"]),
     f"sites[{XFPVC}].hazard_units[1].key_processes[0]", "Input should be"),
    (lambda s: units(s["LC-XFPVC"])[1].update(colour="red"), f"sites[{XFPVC}].hazard_units[1].colour", "unknown key"),
])
def test_broken_hazard_units_in_sites_yaml_name_file_and_key(tmp_path: Path, mutate, key, reason) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(broken_sites(tmp_path, mutate))
    assert caught.value.file.endswith("sites.yaml")
    assert (caught.value.key, reason in caught.value.reason) == (key, True), str(caught.value)

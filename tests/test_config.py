"""Configuration: the demo fleet is realistic and valid; broken files name their file and key."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import yaml

from foundation.config import COUNTIES, ConfigError, load_config
from foundation.domain import Tier
from liaowang.geo import county_of

from .conftest import CONFIG_DIR


def test_demo_fleet_has_enough_sites_and_sensors_in_all_three_families(fleet):
    assert len(fleet.sites) >= 12
    assert len(fleet.sensors) >= 150
    families = Counter(s.family.value for s in fleet.sensors.values())
    assert set(families) == {"hazard", "gas", "forest"}
    assert {s.county for s in fleet.sites.values()} == set(COUNTIES), "every county has a site"


def test_every_site_lies_inside_its_county_on_the_shipped_map(fleet):
    for site in fleet.sites.values():
        assert county_of(site.lon, site.lat) == site.county, site.id


def test_major_hazard_sources_carry_their_gb18218_grade(fleet):
    graded = [s for s in fleet.sites.values() if s.hazard_grade is not None]
    assert {s.hazard_grade for s in graded} >= {1, 2, 3, 4}


def test_every_setpoint_in_force_records_its_source(fleet):
    with_setpoints = [s for s in fleet.sensors.values() if fleet.setpoints_for(s)]
    assert len(with_setpoints) > 100
    for sensor in with_setpoints:
        for rung in fleet.setpoints_for(sensor):
            assert len(rung.source) > 5, sensor.id


def test_gas_setpoints_stay_under_gbt50493_ceilings(fleet):
    ceilings = {"level1": 25.0, "level2": 50.0}
    for sensor in fleet.sensors.values():
        if sensor.quantity == "combustible_gas":
            for rung in fleet.setpoints_for(sensor):
                assert rung.set <= ceilings[rung.level]


def test_second_level_gas_alarm_maps_to_orange(fleet):
    assert fleet.tiers.tier_for("level2") is Tier.ORANGE
    assert fleet.tiers.tier_for("HH", hazard_grade=1, quantity="temperature") is Tier.RED
    assert fleet.tiers.tier_for("HH", hazard_grade=1, quantity="tank_level") is Tier.ORANGE
    assert fleet.tiers.tier_for("LL", hazard_grade=1, quantity="tank_level") is Tier.ORANGE  # LL protects a pump
    assert fleet.tiers.tier_for("HH", hazard_grade=4) is Tier.ORANGE



def _broken_copy(tmp_path: Path, file: str, mutate) -> Path:
    folder = tmp_path / "config"
    shutil.copytree(CONFIG_DIR, folder)
    data = yaml.safe_load((folder / file).read_text(encoding="utf-8"))
    mutate(data)
    (folder / file).write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return folder


@pytest.mark.parametrize("file, mutate, key, reason", [
    ("sensors.yaml", lambda d: d["sensors"][3].update(site_id="LC-NOWHERE"), "sensors[3].site_id", "unknown site"),
    ("sensors.yaml", lambda d: d["sensors"][0].update(colour="red"), "sensors[0].colour", "unknown key"),
    ("sensors.yaml", lambda d: d["sensors"][5].update(period_s=-1), "sensors[5].period_s", "greater than 0"),
    ("sensors.yaml", lambda d: d["sensors"][1].update(profile="gas.h2s"), "sensors[1].profile", "is for h2s"),
    ("sites.yaml", lambda d: d["sites"][0].update(county="北京"), "sites[0].county", "Input should be"),
    ("sites.yaml", lambda d: d["sites"][0].update(hazard_r=5), "sites[0]", "gives GB 18218 grade 4"),
    ("setpoints.yaml", lambda d: d["profiles"]["gas.h2s"]["setpoints"][0].update(reset=11),
     "profiles.gas.h2s.setpoints[0]", "must be below set"),
    ("setpoints.yaml", lambda d: d["profiles"]["gas.co"]["setpoints"][0].pop("source"),
     "profiles.gas.co.setpoints[0].source", "Field required"),
    ("liaowang.yaml", lambda d: d["mqtt"].update(prot=1883), "mqtt.prot", "unknown key"),
    ("liaowang.yaml", lambda d: d["storage"].update(retention_days=7), "storage.retention_days", "greater than or equal to 30"),
    ("liaowang.yaml", lambda d: d["storage"].update(database_url="mysql://db/liaowang"), "storage.database_url",
     "must start with postgresql://"),
    ("liaowang.yaml", lambda d: d["storage"].update(database_url="postgresql://db:port/x"), "storage.database_url",
     "bad port"),
    ("tiers.yaml", lambda d: d["levels"].update(level1="purple"), "levels", "unknown priority"),
    # a typo in a quantity-qualified override is an error naming it, not a rule that silently never applies
    ("tiers.yaml", lambda d: d["grade_overrides"][1].update({"temperature.HHH": "red"}), "grade_overrides",
     "1.temperature.HHH: level 'HHH' is not one of levels"),
    ("tiers.yaml", lambda d: d["grade_overrides"].update({5: {"H": "red"}}), "grade_overrides", "1, 2, 3 or 4"),
    ("rules.yaml", lambda d: d["rules"][1]["rungs"][1].update(level="level3"), "rules[1].rungs[1]", "not mapped"),
    ("rules.yaml", lambda d: d["rules"][1]["rungs"][1].update(tier="yellow"), "rules[1]", "rise strictly in tier"),
    ("rules.yaml", lambda d: d["rules"][1].update(tier="red"), "rules[1]", "either tier (with level) or rungs"),
    ("rules.yaml", lambda d: d["rules"][-1].update(confirm_k=1), "rules[16].fire_detection.confirm_k",
     "greater than or equal to 2"),
])
def test_broken_configuration_names_file_key_and_reason(tmp_path, file, mutate, key, reason):
    folder = _broken_copy(tmp_path, file, mutate)
    with pytest.raises(ConfigError) as caught:
        load_config(folder)
    assert caught.value.file.endswith(file)
    assert caught.value.key.startswith(key)
    assert reason in caught.value.reason


def test_check_config_cli_exits_1_naming_the_key(tmp_path):
    folder = _broken_copy(tmp_path, "sensors.yaml", lambda d: d["sensors"][7].update(unit=None))
    result = subprocess.run([sys.executable, "-m", "liaowang.cli", "check-config", "--config", str(folder)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "sensors.yaml: sensors[7].unit" in result.stderr


def test_check_config_cli_accepts_the_demo_configuration():
    result = subprocess.run([sys.executable, "-m", "liaowang.cli", "check-config", "--config", str(CONFIG_DIR)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "15 sites" in result.stdout


def test_check_config_cli_accepts_a_postgresql_url_and_hides_its_password(tmp_path):
    folder = _broken_copy(tmp_path, "liaowang.yaml",
                          lambda d: d["storage"].update(database_url="postgresql://lw:s3cret@10.0.0.5:5432/liaowang"))
    result = subprocess.run([sys.executable, "-m", "liaowang.cli", "check-config", "--config", str(folder)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "PostgreSQL: postgresql://lw:***@10.0.0.5:5432/liaowang" in result.stdout and "s3cret" not in result.stdout


def test_invalid_yaml_is_reported_not_raised(tmp_path):
    folder = tmp_path / "config"
    shutil.copytree(CONFIG_DIR, folder)
    (folder / "sites.yaml").write_text("sites: [unclosed", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(folder)


def test_a_bad_alarm_guidance_file_fails_check_config_naming_the_key(tmp_path):
    """alarm_guidance.yaml (the measures shown with each alarm) is checked with the rest of the folder, not
    first when the server starts."""
    folder = _broken_copy(tmp_path, "alarm_guidance.yaml", lambda d: d["guidance"][0]["match"].update(levls=["x"]))
    with pytest.raises(ConfigError) as caught:
        load_config(folder)
    assert caught.value.file.endswith("alarm_guidance.yaml") and caught.value.key.startswith("guidance.0.match")
    assert load_config(CONFIG_DIR).guidance.guidance  # the shipped file loads, with entries

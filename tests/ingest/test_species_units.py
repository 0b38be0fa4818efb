"""ppm ↔ mg/m3 per gas species at ingest (mg/m3 = ppm × M / 24.06 at 20 °C, 101.325 kPa): a toxic
detector registered in mg/m3 may send ppm; only sensors whose profile names a molar mass convert."""

from __future__ import annotations

import orjson
import pytest

from ingest.decode import Decoder, species_conversion
from foundation.config import IngestSettings

NOW = 1_795_564_800.0


@pytest.fixture
def decoder(demo_config):
    return Decoder(demo_config.fleet, demo_config.settings.ingest, clock=lambda: NOW)


def send(decoder, site, sensor, value, unit):
    return decoder.decode(f"liaowang/v1/readings/{site}/{sensor}",
                          orjson.dumps({"sensor_id": sensor, "ts": NOW, "value": value, "unit": unit}))


@pytest.mark.parametrize("sensor, site, molar_mass", [("LC-HGYQ-GT-02", "LC-HGYQ", 34.08), ("LC-LUXI-GT-01", "LC-LUXI", None)])
def test_ppm_sent_to_a_mg_m3_detector_is_converted_with_its_species(demo_config, decoder, sensor, site, molar_mass):
    fleet = demo_config.fleet
    s = fleet.sensors[sensor]
    m = fleet.molar_mass(s)
    assert s.unit == "mg/m3" and m is not None and (molar_mass is None or m == molar_mass)
    readings, rejections = send(decoder, site, sensor, 10.0, "ppm")
    assert rejections == []
    assert readings[0].value == pytest.approx(10.0 * m / 24.06)


def test_the_profiles_carry_molar_masses_with_sources(demo_config):
    profiles = demo_config.fleet.profiles
    assert {k: profiles[k].molar_mass_g_mol for k in ("gas.h2s", "gas.co", "gas.nh3", "gas.cl2")} == {
        "gas.h2s": 34.08, "gas.co": 28.01, "gas.nh3": 17.03, "gas.cl2": 70.90}
    assert all(profiles[k].molar_mass_source for k in ("gas.h2s", "gas.co", "gas.nh3", "gas.cl2"))
    assert profiles["gas.combustible.point"].molar_mass_g_mol is None


def test_a_combustible_detector_refuses_ppm(decoder):
    readings, rejections = send(decoder, "LC-LUXI", "LC-LUXI-GD-01", 10.0, "ppm")
    assert readings == [] and rejections[0].reason == "unit_mismatch"


def test_the_molar_volume_is_configuration():
    assert IngestSettings().molar_volume_l_mol == 24.06
    at_25 = species_conversion("ppm", "mg/m3", 28.01, IngestSettings(molar_volume_l_mol=24.45).molar_volume_l_mol)
    assert at_25(100.0) == pytest.approx(100 * 28.01 / 24.45)
    assert species_conversion("mg/m3", "ppm", 28.01, 24.06)(species_conversion("ppm", "mg/m3", 28.01, 24.06)(7.0)) == \
        pytest.approx(7.0)
    assert species_conversion("%LEL", "mg/m3", 28.01, 24.06) is None

"""Every shipped scenario passes `liaowang scenario test`; a broken setpoint fails naming the missed alert."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from liaowang.cli import main
from liaowang.config import SetpointProfile
from liaowang.scenario import load_scenario, run_scenario
from simulators.scenario import ScenarioFeed

SCENARIOS = sorted((Path(__file__).resolve().parent.parent / "scenarios").glob("*.yaml"))


def test_at_least_twelve_scenarios_ship():
    assert len(SCENARIOS) >= 12


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_shipped_scenario_passes(path, demo_config):
    outcome = run_scenario(load_scenario(path), demo_config, str(path))
    assert outcome.passed, "\n".join(outcome.lines())
    assert outcome.detections or not load_scenario(path).expect


def test_the_cli_exits_0_on_pass_and_1_on_failure(tmp_path, capsys):
    good = Path(__file__).resolve().parent.parent / "scenarios" / "sensor-dropout.yaml"
    assert main(["--log-level", "error", "scenario", "test", str(good)]) == 0
    bad = tmp_path / "bad.yaml"
    bad.write_text(good.read_text(encoding="utf-8").replace("before_s: 330", "before_s: 305"), encoding="utf-8")
    assert main(["--log-level", "error", "scenario", "test", str(bad)]) == 1
    assert "MISSED sensor.stale LC-QLQY-GD-02 yellow" in capsys.readouterr().out


def test_a_broken_setpoint_fails_the_matching_scenario_naming_the_missed_alert(demo_config):
    profile = demo_config.fleet.profiles["gas.combustible.point"]
    broken_rungs = [r.model_copy(update={"set": 70.0, "reset": 65.0}) if r.level == "level1" else
                    r.model_copy(update={"set": 90.0, "reset": 85.0}) for r in profile.setpoints]
    broken = SetpointProfile.model_construct(**{**profile.__dict__, "setpoints": broken_rungs})
    fleet = demo_config.fleet.model_copy(update={"profiles": {**demo_config.fleet.profiles, "gas.combustible.point": broken}})
    config = demo_config.model_copy(update={"fleet": fleet})
    path = SCENARIOS[0].parent / "gas-leak-two-levels.yaml"
    outcome = run_scenario(load_scenario(path), config, str(path))
    assert not outcome.passed
    assert any(m.startswith("gas.combustible_gas.threshold LC-LUXI-GD-01 yellow") for m in outcome.missed)


def feed_digest(demo_config, seed: int) -> str:
    scenario = load_scenario(SCENARIOS[0].parent / "skew-duplicates-reordering.yaml").model_copy(update={"seed": seed})
    digest = hashlib.sha256()
    for end, readings, gateways in ScenarioFeed(scenario, demo_config.fleet).steps():
        digest.update(repr((end, readings, gateways)).encode())
    return digest.hexdigest()


def test_same_seed_same_feed_and_different_seeds_differ(demo_config):
    assert feed_digest(demo_config, 7) == feed_digest(demo_config, 7)
    assert feed_digest(demo_config, 7) != feed_digest(demo_config, 8)


def test_the_tuning_report_shows_what_a_variant_changes(demo_config):
    from liaowang.scenario import tuning_report

    path = SCENARIOS[0].parent / "tank-cooling-failure.yaml"
    rows = tuning_report([path], demo_config, {"horizon5min": ["hazard.temperature.predict_hh.horizon_s=300"]})
    baseline, total, variant = rows[2].split("|"), rows[3].split("|"), rows[4].split("|")
    assert baseline[1].strip() == "baseline" and variant[1].strip() == "horizon5min"
    assert baseline[7].strip() == "0" and variant[7].strip() == "1"  # the shorter horizon misses the early warning
    assert "predict_hh" in baseline[9] and "predict_hh" not in variant[9]
    assert "all 1" in total[2] and total[8].strip() == baseline[8].strip()  # episodes by peak priority, summed
    assert [int(n) for n in baseline[8].split("/")] == [1, 0, 2, 0]   # urgent HH; medium rate and prediction

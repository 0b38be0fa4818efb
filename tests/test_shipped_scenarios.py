"""Every shipped scenario passes `liaowang scenario test`; a broken setpoint fails naming the missed alert."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from liaowang.cli import main
from foundation.config import SetpointProfile
from foundation.domain import Tier
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


# ---------------------------------------------------------------- the format of issue 12's scenarios

ISSUE_12 = {"latched-step-down", "repeat-while-latched", "repeat-after-shelf", "overtaken-reading"}


def test_the_issue_12_defect_scenarios_ship_and_pin_their_defect():
    """Defect 1 ends latched with its peak; defect 2 expects an announced reactivation; defect 3 overtakes readings."""
    shipped = {p.stem: load_scenario(p) for p in SCENARIOS if p.stem in ISSUE_12}
    assert set(shipped) == ISSUE_12
    latched = shipped["latched-step-down"]
    assert {(e.isa_state, e.peak_tier.colour) for e in latched.end_state} == {("returned_unacknowledged", "red"),
                                                                              ("returned_unacknowledged", "orange")}
    for name in ("repeat-while-latched", "repeat-after-shelf"):
        assert any(e.event == "reactivated" and e.announced for e in shipped[name].expect_events), name
    assert [f.kind for f in shipped["overtaken-reading"].faults] == ["overtaken"]


def _without_latching(config):
    alerting = config.alerting.model_copy(update={"latch_tiers": [], "latch_families": {}})
    return config.model_copy(update={"alerting": alerting})


@pytest.mark.parametrize("name", ["latched-step-down", "repeat-while-latched"])
def test_the_latching_scenarios_fail_when_nothing_latches(demo_config, name):
    """Run against alerting that latches nothing (the defect's effect): the scenario fails, naming why."""
    path = SCENARIOS[0].parent / f"{name}.yaml"
    outcome = run_scenario(load_scenario(path), _without_latching(demo_config), str(path))
    assert not outcome.passed
    report = "\n".join(outcome.lines())
    assert "MISSED event" in report and ("returned" in report or "reactivated" in report)
    if name == "latched-step-down":
        assert "WRONG END STATE" in report and "isa_state 'normal', want 'returned_unacknowledged'" in report


def test_a_reading_dropped_by_the_reorder_buffer_is_reported_unaccounted(demo_config, monkeypatch):
    """The harness's own check of invariant 5: a buffer that silently drops readings fails the scenario."""
    from rules.reorder import ReorderBuffer

    release = ReorderBuffer.release

    def lossy(self, now, everything=False):  # drops what the pre-issue-12 buffer dropped: readings older than released
        out = release(self, now, everything)
        if out is not None and len(out):
            return out.take(out.ts != out.ts.min()) if len(out) > 1 and out.sensor[0] == out.sensor[-1] else out
        return out

    monkeypatch.setattr(ReorderBuffer, "release", lossy)
    path = SCENARIOS[0].parent / "overtaken-reading.yaml"
    outcome = run_scenario(load_scenario(path), demo_config, str(path))
    assert not outcome.passed and outcome.unaccounted
    assert all("neither evaluated nor counted late" in u for u in outcome.unaccounted)


@pytest.mark.parametrize("change, key, reason", [
    (lambda d: d["expect_events"][0].update(before_s=100), "expect_events.0", "must be after after_s"),
    (lambda d: d["expect_events"][0].update(event="vanished"), "expect_events.0.event", "Input should be"),
    (lambda d: d["end_state"][0].update(isa_state="latched"), "end_state.0.isa_state", "Input should be"),
    (lambda d: d["actions"][0].pop("reason"), "actions.0", "shelve needs reason and duration_s"),
    (lambda d: d["actions"][0].update(at_s=99_999), "-", "after the end of the run"),
    (lambda d: d.setdefault("faults", []).append({"kind": "overtaken", "sensor": "LC-LUXI-GD-01", "start_s": 0, "duration_s": 10}),
     "faults.0", "overtaken needs amount > 0"),
    (lambda d: d.setdefault("faults", []).append({"kind": "stuck", "sensor": "LC-LUXI-GD-01", "start_s": 0, "duration_s": 10,
                                   "value": 3}), "faults.0", "value is only for overtaken readings"),
])
def test_a_broken_scenario_names_its_key(tmp_path, change, key, reason):
    import yaml

    from foundation.config import ConfigError

    data = yaml.safe_load((SCENARIOS[0].parent / "repeat-after-shelf.yaml").read_text(encoding="utf-8"))
    change(data)
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_scenario(path)
    assert caught.value.key.startswith(key) and reason in caught.value.reason


def test_overtaken_readings_arrive_after_the_newer_one_in_a_message_of_their_own(demo_config):
    from simulators.scenario import OVERTAKEN_LAG_S

    scenario = load_scenario(SCENARIOS[0].parent / "overtaken-reading.yaml")
    deliveries = list(ScenarioFeed(scenario, demo_config.fleet).deliveries())
    extra = [d for d in deliveries if not d.step_end]
    assert extra and all(r.sensor_id == "LC-LUXI-GD-01" and r.value == 45 for d in extra for r in d.readings)
    assert sum(len(d.readings) for d in extra) == 10  # one per poll of the 20 s window (every 2 s)
    for d in extra:
        own = next(s for s in deliveries if s.step_end and abs(s.at + OVERTAKEN_LAG_S - d.at) < 1e-9)
        polls = [r.ts for r in own.readings if r.sensor_id == "LC-LUXI-GD-01"]
        for r in d.readings:  # stamped 0.3 s before a poll delivered just before it
            assert any(abs(t - 0.3 - r.ts) < 1e-6 for t in polls)
    steps = list(ScenarioFeed(scenario, demo_config.fleet).steps())  # a recording keeps them, after the step's own
    assert sum(len(r) for _, r, _ in steps) == sum(len(d.readings) for d in deliveries)


def test_a_demo_hour_counts_priorities_per_family(demo_config):
    """scripts/priority_distribution.py's engine: the simulator's incidents, every reading accounted for."""
    from liaowang.scenario import run_demo_day

    day = run_demo_day(demo_config, duration_s=1200)
    assert day.unaccounted == 0 and day.readings > 50_000
    assert day.counts["annunciations:hazard"]["urgent"] >= 1   # the grade-1 tank's temperature HH
    assert day.counts["annunciations:forest"]["urgent"] >= 1   # the fire, confirmed by a second signal
    assert day.counts["annunciations:gas"]["urgent"] == 0      # the demo leak agrees only at the first level
    assert day.counts["annunciations:gas"]["high"] >= 1
    assert any("| annunciations | all |" in line for line in day.lines())


def test_an_hour_of_the_demo_fleet_ends_no_high_or_urgent_alarm_unacknowledged(demo_config):
    """Issue 12's demo check: the demo incidents (every 15 min, nobody acknowledging) latch; none of
    the alarms that reached high or urgent resolves without a person, and every reading is accounted."""
    from liaowang.scenario import run_demo_day

    day = run_demo_day(demo_config, duration_s=3600)
    assert day.unaccounted == 0 and day.readings > 100_000
    high = [a for a in day.alerts if (a.peak_tier or a.tier) >= Tier.ORANGE]
    assert high, "the demo raised high or urgent alarms"
    assert day.unacknowledged_ends() == []
    assert any(a.latched or a.isa_state == "unacknowledged" for a in high)

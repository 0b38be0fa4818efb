"""Issue 13's check as a scenario file: scenarios/hot-work-warning.yaml, judged by the scenario runner.

The runner checks on every run that each published document passes the GB/T 35965.1 field list
(JSON and XML) with art. 64's items, that it went out on MQTT, and that a warning never published
sent nothing. These tests show each of those checks can fail, and that the rejection hold is
what keeps a rejected proposal from coming straight back.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import orjson

import pytest

import earlywarning.desk
from earlywarning import WARNINGS_TOPIC, WarningState
from earlywarning.testing import RecordingPublisher, sample_warning
from foundation.config import ConfigError
from liaowang.scenario import Outcome, _judge_warnings, load_scenario, run_scenario
from simulators.scenario import Scenario

SCENARIO = Path(__file__).resolve().parent.parent.parent / "scenarios" / "hot-work-warning.yaml"


def test_the_shipped_scenario_passes_and_the_held_proposal_is_audited(demo_config, tmp_path):
    outcome = run_scenario(load_scenario(SCENARIO), demo_config, str(SCENARIO), data_dir=tmp_path)
    assert outcome.passed, "\n".join(outcome.lines())
    assert not outcome.bad_documents
    assert "  warning LC-XFPVC adjusted level I within +3900…+3901 s: at +3900 s" in outcome.lines()
    with sqlite3.connect(tmp_path / "data" / "alerts.db") as db:
        held = db.execute("SELECT actor, subject, detail FROM audit WHERE action = 'warning_proposal_held'").fetchall()
    assert held and {(actor, subject) for actor, subject, _ in held} == {("risk:grading", "LC-LUXI")}
    assert all(orjson.loads(detail)["level"] == "II" for _, _, detail in held)


def test_without_the_rejection_hold_the_rejected_enterprise_is_proposed_again(demo_config):
    verification = demo_config.warnings.verification.model_copy(update={"rejection_hold_s": 0})
    config = demo_config.model_copy(update={
        "warnings": demo_config.warnings.model_copy(update={"verification": verification})})
    outcome = run_scenario(load_scenario(SCENARIO), config, str(SCENARIO))
    assert not outcome.passed
    assert any(w.startswith("warning about LC-LUXI") and "state 'proposed', want 'rejected'; warnings 2, want 1" in w
               for w in outcome.wrong_end), outcome.wrong_end


def test_a_document_missing_the_measures_fails_the_run(demo_config, monkeypatch):
    real = earlywarning.desk.cap_document

    def without_instruction(*args, **kwargs):
        document = real(*args, **kwargs)
        for info in document["info"]:
            info.pop("instruction", None)
        return document

    monkeypatch.setattr(earlywarning.desk, "cap_document", without_instruction)
    outcome = run_scenario(load_scenario(SCENARIO), demo_config, str(SCENARIO))
    assert not outcome.passed
    assert any("(Alert)" in b and "instruction" in b for b in outcome.bad_documents), outcome.bad_documents
    assert any("(Alert): art. 64 measures missing" in b for b in outcome.bad_documents)


def scenario_stub() -> Scenario:
    return Scenario(name="judge", sites=["LC-LUXI"], start="2026-11-25T08:00:00+08:00", duration_s=60)


def test_a_warning_never_published_that_sent_mqtt_fails():
    rejected = sample_warning(state=WarningState.REJECTED)
    mqtt = RecordingPublisher()
    mqtt(WARNINGS_TOPIC.format(warning_id=rejected.id), b'{"event": "issued"}', True)
    outcome = Outcome("judge", "-")
    _judge_warnings(scenario_stub(), [], [rejected], {rejected.id: []}, mqtt, outcome)
    assert outcome.bad_documents == [f"{rejected.id} (rejected) was never published yet sent 1 MQTT message(s)",
                                     f"{WARNINGS_TOPIC.format(warning_id=rejected.id)} retained but not in force"]


@pytest.mark.parametrize("change, where", [
    ({"warning_actions": [{"at_s": 1, "action": "adjust", "subject": "LC-LUXI", "reason": "r"}]}, "adjust needs level"),
    ({"warning_actions": [{"at_s": 1, "action": "lift", "subject": "LC-LUXI"}]}, "lift needs reason"),
    ({"warning_actions": [{"at_s": 99, "action": "issue", "subject": "LC-LUXI"}]}, "after the end of the run"),
    ({"operations": [{"at_s": 1, "site": "LC-LUXI", "kind": "sightseeing", "duration_s": 60}]}, "operations.0.kind"),
])
def test_bad_warning_steps_and_operations_are_refused_naming_the_key(tmp_path, change, where):
    import yaml

    body = {"name": "x", "sites": ["LC-LUXI"], "start": "2026-11-25T08:00:00+08:00", "duration_s": 60, **change}
    path = tmp_path / "x.yaml"
    path.write_text(yaml.safe_dump(body, allow_unicode=True), encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_scenario(path)
    assert where in str(err.value)


def test_an_operation_on_a_unit_of_another_site_is_refused(demo_config):
    scenario = Scenario(name="x", sites=["LC-LUXI"], start="2026-11-25T08:00:00+08:00", duration_s=60,
                        operations=[{"at_s": 0, "site": "LC-LUXI", "unit": "LC-XFPVC-U1", "kind": "hot_work",
                                     "duration_s": 60}])
    with pytest.raises(ConfigError, match="LC-LUXI has no hazard unit 'LC-XFPVC-U1'"):
        run_scenario(scenario, demo_config)

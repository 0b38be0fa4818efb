"""Run scenario files through the production ingest → rules → alerting code on a fake clock.

No broker and no sleeping: each step's readings are stored and handed to `Pipeline.handle_batch`
exactly as ingest would, gateway changes go to `Pipeline.handle_gateway`, and the time-driven
checks (stale sensors, shelves, escalation) run with the clock at the step's end. A 24-hour
scenario of one site finishes in seconds.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from alerting.lifecycle import flood_onsets
from liaowang.config import Config, ConfigError, Fleet
from liaowang.domain import Quality, Reading, ReadingBatch
from liaowang.pipeline import Pipeline
from simulators.scenario import Scenario, ScenarioFeed, check_references


class FakeClock:
    """The injected clock, moved by the runner."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@dataclass
class Outcome:
    """What one scenario gave: per expectation the detection (or a miss), false and forbidden alerts."""

    name: str
    path: str
    passed: bool = True
    detections: list[dict[str, Any]] = field(default_factory=list)
    missed: list[str] = field(default_factory=list)
    forbidden: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    readings: int = 0
    seconds: float = 0.0
    raised: int = 0
    per_day: float = 0.0
    chattering: int = 0
    floods: int = 0

    def lines(self) -> list[str]:
        """The human report."""
        head = f"{'PASS' if self.passed else 'FAIL'} {self.name} ({self.path}): {self.readings:,} readings in {self.seconds:.1f} s"
        out = [head]
        for d in self.detections:
            lead = f", lead {d['lead_s']:.0f} s before +{d['reference_s']:g} s" if d["lead_s"] is not None else ""
            out.append(f"  detected {d['rule']} {d['subject']} {d['tier']} at +{d['at_s']:.0f} s{lead}")
        out += [f"  MISSED {m}" for m in self.missed]
        out += [f"  FORBIDDEN {f}" for f in self.forbidden]
        out += [f"  false alert {u}" for u in self.unexpected]
        return out


def load_scenario(path: Path) -> Scenario:
    """Read and validate a scenario file; raise ConfigError naming the file and key."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as err:
        raise ConfigError(str(path), "-", f"cannot read: {err}") from None
    try:
        return Scenario.model_validate(raw)
    except ValidationError as err:
        first = err.errors()[0]
        raise ConfigError(str(path), ".".join(str(p) for p in first["loc"]) or "-", first["msg"]) from None


def _subset(fleet: Fleet, sites: list[str]) -> Fleet:
    return Fleet(sites={s: fleet.sites[s] for s in sites},
                 sensors={k: v for k, v in fleet.sensors.items() if v.site_id in sites},
                 profiles=fleet.profiles, tiers=fleet.tiers)


def run_scenario(scenario: Scenario, config: Config, path: str = "-", data_dir: Path | None = None) -> Outcome:
    """Run one scenario in process; return its outcome."""
    started = time.perf_counter()
    problems = check_references(scenario, config.fleet)
    if problems:
        raise ConfigError(path, problems[0].split(":")[0], problems[0].split(": ", 1)[1])
    fleet = _subset(config.fleet, scenario.sites)
    sub_config = config.model_copy(update={"fleet": fleet})
    clock = FakeClock(scenario.start_ts)
    with tempfile.TemporaryDirectory(prefix="lw-scenario-") as tmp:
        pipeline = Pipeline(sub_config, Path(data_dir or tmp) / "data", clock)
        feed = ScenarioFeed(scenario, fleet)
        count = 0
        for step_end, readings, gateways in feed.steps():
            clock.now = step_end
            for site, online in gateways:
                pipeline.handle_gateway(site, online, step_end)
            if readings:
                batch = ReadingBatch.from_readings(
                    (Reading(r.sensor_id, fleet.sensors[r.sensor_id].site_id, r.ts, r.value, Quality(r.quality))
                     for r in readings), fleet.sensor_ids, fleet.sensor_index, fleet.sensor_sites)
                pipeline.readings.write(batch)
                pipeline.live.update(batch)
                pipeline.handle_batch(batch)
                count += len(readings)
            pipeline.flush_rules()
            pipeline.check_time_rules()
            pipeline.check_alert_timers()
        pipeline.flush_rules(everything=True)
        alerts = pipeline.alert_store.query(limit=1_000_000)
        pipeline.stop()
    outcome = Outcome(scenario.name, path, readings=count)
    _judge(scenario, alerts, outcome, config.alerting.flood.alerts, config.alerting.flood.window_s)
    outcome.seconds = time.perf_counter() - started
    return outcome


def _judge(scenario: Scenario, alerts: list, outcome: Outcome, flood_limit: int = 10, flood_window: float = 600) -> None:
    start = scenario.start_ts
    outcome.raised = len(alerts)
    outcome.per_day = len(alerts) / (scenario.duration_s / 86_400)
    outcome.chattering = sum(1 for a in alerts if a.chattering)
    outcome.floods = flood_onsets(sorted(a.raised_at for a in alerts), flood_limit, flood_window)
    # every time an alert reached a tier: (rule, subject, tier, seconds after start)
    reached = [(a.rule_id, a.subject, h.tier, h.at - start) for a in alerts for h in a.history
               if h.event in ("raised", "escalated")]
    matched = set()
    for exp in scenario.expect:
        hits = [r for r in reached if r[0] == exp.rule and r[1] == exp.subject and r[2] == exp.tier
                and exp.after_s <= r[3] <= exp.before_s]
        if hits:
            at = min(h[3] for h in hits)
            matched.add((exp.rule, exp.subject))
            lead = None if exp.reference_s is None else exp.reference_s - at
            outcome.detections.append({"rule": exp.rule, "subject": exp.subject, "tier": exp.tier.colour,
                                       "at_s": at, "reference_s": exp.reference_s, "lead_s": lead})
        else:
            seen = [f"{r[2].colour} at +{r[3]:.0f} s" for r in reached if r[0] == exp.rule and r[1] == exp.subject]
            outcome.missed.append(f"{exp.rule} {exp.subject} {exp.tier.colour} within +{exp.after_s:g}…+{exp.before_s:g} s"
                                  + (f" (saw {', '.join(seen)})" if seen else " (never raised)"))
    for a in alerts:
        raised = f"{a.rule_id} {a.subject} raised at +{a.raised_at - start:.0f} s (tier now {a.tier.colour})"
        for rule in scenario.forbid:
            if ((rule.rule is None or rule.rule == a.rule_id) and (rule.subject is None or rule.subject == a.subject)
                    and (rule.min_tier is None or a.tier >= rule.min_tier)):
                outcome.forbidden.append(raised)
                break
        else:
            if (a.rule_id, a.subject) not in matched:
                outcome.unexpected.append(raised)
    outcome.passed = not outcome.missed and not outcome.forbidden


def scenario_test(paths: list[Path], config: Config) -> tuple[int, list[str]]:
    """Run scenario files; return (exit status, report lines). Exit 0 only if all pass."""
    lines, failed = [], 0
    for path in paths:
        try:
            outcome = run_scenario(load_scenario(path), config, str(path))
        except ConfigError as err:
            lines.append(f"ERROR {path}: {err}")
            failed += 1
            continue
        lines += outcome.lines()
        failed += not outcome.passed
    lines.append(f"{len(paths) - failed} of {len(paths)} scenarios passed")
    return (1 if failed else 0), lines



def apply_variant(config: Config, assignments: list[str]) -> Config:
    """A copy of ``config`` with setpoints or rule parameters changed.

    ``profile.LEVEL.set=VALUE`` moves a setpoint profile's rung (its reset keeps the deadband);
    ``RULE_ID.FIELD=VALUE`` sets a numeric field of a rule spec (e.g. ``hazard.temperature.predict_hh.horizon_s=300``).
    """
    fleet, book = config.fleet, config.rules
    for assignment in assignments:
        target, _, raw = assignment.partition("=")
        try:
            value = float(raw)
        except ValueError:
            raise ConfigError("--variant", assignment, "the value must be a number") from None
        head, _, field_name = target.rpartition(".")
        if field_name == "set" and head.rpartition(".")[0] in fleet.profiles:
            profile_id, _, level = head.rpartition(".")
            profile = fleet.profiles[profile_id]
            rungs = [r.model_copy(update={"set": value, "reset": value - (r.set - r.reset)}) if r.level == level else r
                     for r in profile.setpoints]
            if rungs == list(profile.setpoints):
                raise ConfigError("--variant", assignment, f"profile {profile_id} has no level {level!r}")
            profiles = {**fleet.profiles, profile_id: profile.model_copy(update={"setpoints": rungs})}
            fleet = fleet.model_copy(update={"profiles": profiles})
            continue
        spec = book.get(head)
        if spec is None or field_name not in type(spec).model_fields:
            raise ConfigError("--variant", assignment, "not PROFILE.LEVEL.set or RULE_ID.FIELD of the configuration")
        book = book.model_copy(update={"rules": [r.model_copy(update={field_name: value}) if r.id == head else r
                                                 for r in book.rules]})
    return config.model_copy(update={"fleet": fleet, "rules": book})


def tuning_report(paths: list[Path], config: Config, variants: dict[str, list[str]]) -> list[str]:
    """Run every scenario under the baseline and each variant; the figures a safety engineer compares."""
    rows = ["| variant | scenario | alerts | alerts/day | floods | chattering | missed | detections (at +s, lead s) |",
            "|---|---|---:|---:|---:|---:|---:|---|"]
    scenarios = [(path, load_scenario(path)) for path in paths]
    for name, assignments in {"baseline": [], **variants}.items():
        variant_config = apply_variant(config, assignments)
        for path, scenario in scenarios:
            outcome = run_scenario(scenario, variant_config, str(path))
            found = "; ".join(f"{d['rule']} {d['subject']} {d['tier']} +{d['at_s']:.0f}"
                              + (f" (lead {d['lead_s']:.0f})" if d["lead_s"] is not None else "")
                              for d in outcome.detections) or "-"
            rows.append(f"| {name} | {path.stem} | {outcome.raised} | {outcome.per_day:.1f} | {outcome.floods} | "
                        f"{outcome.chattering} | {len(outcome.missed)} | {found} |")
    return rows

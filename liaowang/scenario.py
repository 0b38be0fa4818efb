"""Run scenario files through the production ingest → rules → alerting code on a fake clock.

No broker and no sleeping: each delivery's readings are stored and handed to `Pipeline.handle_batch`
exactly as ingest would, gateway changes go to `Pipeline.handle_gateway`, held readings are flushed
at the live ticker's beat (`TICK_S`) between deliveries, and the time-driven checks (stale sensors,
shelves, escalation) and people's actions run with the clock at the step's end or their own time.
A 24-hour scenario of one site finishes in seconds.

Besides what a scenario expects, every run checks invariant 5 of docs/alarms.md: each reading
delivered is either evaluated by the rules or counted late (dead-lettered) — never neither.
`run_demo_day` drives the demo fleet's simulator (`simulators.fleet`) the same way, for the
priority distribution of docs/alarms.md.
"""

from __future__ import annotations

import math
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import yaml
from pydantic import ValidationError

from alerting.lifecycle import flood_onsets
from earlywarning import WARNINGS_TOPIC, cap_xml, problems, xml_problems
from earlywarning.capcheck import ART64
from earlywarning.testing import RecordingPublisher
from foundation.config import Config, ConfigError, Fleet
from foundation.domain import Quality, Reading, ReadingBatch, Tier, parse_time
from liaowang.pipeline import Pipeline
from simulators.scenario import Action, Operation, Scenario, ScenarioFeed, WarningAction, check_references

TICK_S = 0.5
"""The live status ticker's beat (`Pipeline._tick`): between deliveries, held readings are flushed this often."""
PRIORITIES = ("urgent", "high", "medium", "low")
ACTIVATIONS = ("raised", "escalated", "reactivated")
"""History events that present an alarm at a priority to a person (an annunciation, when announced)."""


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
    events: list[str] = field(default_factory=list)
    wrong_end: list[str] = field(default_factory=list)
    unaccounted: list[str] = field(default_factory=list)
    bad_documents: list[str] = field(default_factory=list)
    readings: int = 0
    late: int = 0
    seconds: float = 0.0
    raised: int = 0
    per_day: float = 0.0
    chattering: int = 0
    floods: int = 0
    by_peak: Counter = field(default_factory=Counter)
    annunciations: Counter = field(default_factory=Counter)

    def lines(self) -> list[str]:
        """The human report."""
        late = f", {self.late} counted late" if self.late else ""
        head = (f"{'PASS' if self.passed else 'FAIL'} {self.name} ({self.path}): {self.readings:,} readings{late} "
                f"in {self.seconds:.1f} s")
        out = [head]
        for d in self.detections:
            lead = f", lead {d['lead_s']:.0f} s before +{d['reference_s']:g} s" if d["lead_s"] is not None else ""
            out.append(f"  detected {d['rule']} {d['subject']} {d['tier']} at +{d['at_s']:.0f} s{lead}")
        out += [f"  {e}" for e in self.events]
        out += [f"  MISSED {m}" for m in self.missed]
        out += [f"  WRONG END STATE {w}" for w in self.wrong_end]
        out += [f"  UNACCOUNTED {u}" for u in self.unaccounted]
        out += [f"  BAD DOCUMENT {b}" for b in self.bad_documents]
        out += [f"  FORBIDDEN {f}" for f in self.forbidden]
        out += [f"  false alert {u}" for u in self.unexpected]
        if self.raised:
            out.append("  priorities (episodes by peak): " + ", ".join(f"{p} {self.by_peak[p]}" for p in PRIORITIES))
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


def _subset(fleet: Fleet, sites: Iterable[str]) -> Fleet:
    sites = list(sites)
    return Fleet(sites={s: fleet.sites[s] for s in sites},
                 sensors={k: v for k, v in fleet.sensors.items() if v.site_id in sites},
                 profiles=fleet.profiles, tiers=fleet.tiers)


class _Driver:
    """Feeds one pipeline on a fake clock as ingest and the ticker would, and keeps the books a judge needs.

    It watches, without changing them, the readings the rule engine's reorder buffer releases for
    evaluation, the ones the pipeline dead-letters as late, and the alert changes handed to the
    notifier with ``announce`` — so a scenario can check that every reading was evaluated or counted
    late, and which activations were announced.
    """

    def __init__(self, pipeline: Pipeline, clock: FakeClock, fleet: Fleet) -> None:
        self.pipeline, self.clock, self.fleet = pipeline, clock, fleet
        self.start = clock.now
        self.delivered: set[tuple[str, float]] = set()
        self.evaluated: set[tuple[str, float]] = set()
        self.late: set[tuple[str, float]] = set()
        self.announced: set[tuple[str, str, float]] = set()
        self.count = 0
        ids = fleet.sensor_ids
        buffer = pipeline.engine.buffer
        release, dead_letter_late = buffer.release, pipeline.ingest.dead_letter_late
        on_changes = pipeline.notifier.on_changes

        def released(now: float, everything: bool = False) -> ReadingBatch | None:
            out = release(now, everything)
            if out is not None:
                self.evaluated.update(zip((ids[i] for i in out.sensor.tolist()), out.ts.tolist()))
            return out

        def late(batch: ReadingBatch) -> Any:
            self.late.update(zip((ids[i] for i in batch.sensor.tolist()), batch.ts.tolist()))
            return dead_letter_late(batch)

        def notified(changes: Any) -> Any:
            for change in changes:
                if getattr(change, "announce", True):
                    at = max((h.at for h in change.alert.history if h.event == change.event), default=None)
                    self.announced.add((change.alert.id, change.event, at))
            return on_changes(changes)

        buffer.release = released  # type: ignore[method-assign]
        pipeline.ingest.dead_letter_late = late  # type: ignore[method-assign]
        pipeline.notifier.on_changes = notified  # type: ignore[method-assign]
        # warnings: every step the desk commits (the warning after it), and what it sent on MQTT — the
        # scenario has no broker, so the desk's publisher is this recorder (`earlywarning.testing`)
        self.warning_steps: list[Any] = []
        self.mqtt = RecordingPublisher()
        desk = pipeline.warnings
        commit = desk._commit

        def committed(*args: Any, **kwargs: Any) -> Any:
            change = commit(*args, **kwargs)
            self.warning_steps.append(change.warning)
            return change

        desk._commit = committed  # type: ignore[method-assign]
        desk._publish = self.mqtt

    def tick_until(self, t: float) -> None:
        """The ticker's flushes up to (not including) ``t`` while readings are held.

        The ticker beats on its own grid (every `TICK_S` from the start), whenever messages arrive.
        """
        beat = self.start + (math.floor((self.clock.now - self.start) / TICK_S) + 1) * TICK_S
        while beat < t and self.pipeline.engine.buffer.held:
            self.clock.now = beat
            self.pipeline.flush_rules()
            beat += TICK_S

    def deliver(self, at: float, readings: list[Reading], gateways: Iterable[tuple[str, bool]] = ()) -> None:
        """One message batch arriving at ``at``: stored, then handed to the rules, as ingest does."""
        self.tick_until(at)
        self.clock.now = max(self.clock.now, at)
        for site, online in gateways:
            self.pipeline.handle_gateway(site, online, at)
        if readings:
            fleet = self.fleet
            batch = ReadingBatch.from_readings(readings, fleet.sensor_ids, fleet.sensor_index, fleet.sensor_sites)
            self.pipeline.readings.write(batch)
            self.pipeline.live.update(batch)
            self.pipeline.handle_batch(batch)
            self.delivered.update((r.sensor_id, r.ts) for r in readings)
            self.count += len(readings)
        self.pipeline.flush_rules()

    def _to(self, at: float) -> float:
        """Move the clock to a person's moment, with the ticker's flushes on the way; return ``at``."""
        self.tick_until(at)
        self.clock.now = max(self.clock.now, at)
        return at

    def step_end(self) -> None:
        """The time-driven checks at a step's end (stale sensors, shelves, escalation, risk grades and
        warning proposals, overdue verification)."""
        self.pipeline.check_time_rules()
        self.pipeline.check_alert_timers()
        self.pipeline.check_warning_timers()

    def register(self, operation: Operation, start: float) -> str | None:
        """An enterprise registers an operating state (动火作业 …) at its time; why it was refused, or None."""
        at = self._to(start + operation.at_s)
        try:
            self.pipeline.risk.states.register(operation.site, operation.kind, at, at + operation.duration_s,
                                               operation.by, at, unit_id=operation.unit, note=operation.note,
                                               permit=operation.permit)
        except Exception as err:  # a refused registration is a finding of the scenario, not a crash of the runner
            return f"operation {operation.kind.value} at +{operation.at_s:g} s: {type(err).__name__}: {err}"
        return None

    def decide(self, action: WarningAction, start: float) -> str | None:
        """A duty officer's step on a warning at its time; why it could not be done, or None."""
        at = self._to(start + action.at_s)
        self.pipeline.check_warning_timers()  # what the desk shows at that moment: proposals made up to now
        desk = self.pipeline.warnings
        wanted = {"verify": ("proposed",), "reject": ("proposed",), "issue": ("verified",),
                  "adjust": ("issued", "adjusted"), "lift": ("issued", "adjusted")}[action.action]
        found = [w for w in desk.query(subject=action.subject, category=action.category, limit=1_000_000)
                 if w.state.value in wanted]
        where = f"{action.action} at +{action.at_s:g} s of the warning about {action.subject}"
        if not found:
            return f"{where}: none {' or '.join(wanted)}"
        warning_id = found[0].id
        calls = {
            "verify": lambda: desk.verify(warning_id, action.by, action.reason, at),
            "reject": lambda: desk.reject(warning_id, action.by, action.reason, at),
            "issue": lambda: desk.issue(warning_id, action.by, at),
            "adjust": lambda: desk.adjust(warning_id, action.by, action.level, action.reason, at),
            "lift": lambda: desk.lift(warning_id, action.by, action.reason, at),
        }
        try:
            calls[action.action]()
        except Exception as err:  # a refused step is a finding of the scenario, not a crash of the runner
            return f"{where}: {type(err).__name__}: {err}"
        return None

    def act(self, action: Action, start: float) -> str | None:
        """A person's action at its time; returns why it could not be done, or None."""
        at = self._to(start + action.at_s)
        alerts = self.pipeline.alerts
        mine = [a for a in self.pipeline.alert_store.query(limit=1_000_000)
                if a.rule_id == action.rule and a.subject == action.subject]
        if not mine:
            return f"{action.action} at +{action.at_s:g} s: no alert of {action.rule} {action.subject}"
        alert_id = max(mine, key=lambda a: a.raised_at).id
        role = {"role": action.role} if action.role else {}
        calls = {
            "acknowledge": lambda: alerts.acknowledge(alert_id, action.by, action.note),
            "close": lambda: alerts.close(alert_id, action.by, action.note or ""),
            "shelve": lambda: alerts.shelve(alert_id, action.by, at + (action.duration_s or 0), action.reason or "",
                                            **role),
            "unshelve": lambda: alerts.unshelve(alert_id, action.by),
        }
        try:
            self.pipeline.act(calls[action.action])
        except Exception as err:  # a refused action is a finding of the scenario, not a crash of the runner
            return f"{action.action} at +{action.at_s:g} s of {action.rule} {action.subject}: {type(err).__name__}: {err}"
        return None

    def finish(self) -> list:
        """Release everything still held and return every alert of the run."""
        self.pipeline.flush_rules(everything=True)
        return self.pipeline.alert_store.query(limit=1_000_000)

    def unaccounted(self) -> list[tuple[str, float]]:
        """Readings delivered that were neither evaluated nor counted late (invariant 5 of docs/alarms.md)."""
        return sorted(self.delivered - self.evaluated - self.late)


def run_scenario(scenario: Scenario, config: Config, path: str = "-", data_dir: Path | None = None) -> Outcome:
    """Run one scenario in process; return its outcome."""
    started = time.perf_counter()
    problems = check_references(scenario, config.fleet)
    if problems:
        raise ConfigError(path, problems[0].split(":")[0], problems[0].split(": ", 1)[1])
    fleet = _subset(config.fleet, scenario.sites)
    sub_config = config.model_copy(update={"fleet": fleet})
    start = scenario.start_ts
    clock = FakeClock(start)
    refused: list[str] = []
    with tempfile.TemporaryDirectory(prefix="lw-scenario-") as tmp:
        pipeline = Pipeline(sub_config, Path(data_dir or tmp) / "data", clock)
        driver = _Driver(pipeline, clock, fleet)
        # people's doings in time order (a stable sort: at one instant, the file's order per list;
        # operations first, then alarm actions, then warning steps)
        doings: list[Action | Operation | WarningAction] = sorted(
            [*scenario.operations, *scenario.actions, *scenario.warning_actions], key=lambda a: a.at_s)

        def do(item: Action | Operation | WarningAction) -> None:
            why = (driver.register(item, start) if isinstance(item, Operation)
                   else driver.decide(item, start) if isinstance(item, WarningAction) else driver.act(item, start))
            if why is not None:
                refused.append(why)

        for delivery in ScenarioFeed(scenario, fleet).deliveries():
            while doings and start + doings[0].at_s <= delivery.at:
                do(doings.pop(0))
            driver.deliver(delivery.at, [Reading(r.sensor_id, fleet.sensors[r.sensor_id].site_id, r.ts, r.value,
                                                 Quality(r.quality)) for r in delivery.readings], delivery.gateways)
            if delivery.step_end:
                driver.step_end()
        for item in doings:
            do(item)
        alerts = driver.finish()
        warnings = pipeline.warnings.query(limit=1_000_000)
        publications = {w.id: pipeline.warnings.store.publications(w.id) for w in warnings}
        pipeline.stop()
    outcome = Outcome(scenario.name, path, readings=driver.count, late=len(driver.late))
    outcome.missed += [f"action {r}" for r in refused]
    _judge(scenario, alerts, outcome, config.alerting.flood.alerts, config.alerting.flood.window_s, driver.announced)
    _judge_warnings(scenario, driver.warning_steps, warnings, publications, driver.mqtt, outcome)
    outcome.unaccounted = [f"{sensor} reading at +{ts - start:.3f} s neither evaluated nor counted late"
                           for sensor, ts in driver.unaccounted()]
    outcome.passed = (not outcome.missed and not outcome.forbidden and not outcome.wrong_end and not outcome.unaccounted
                      and not refused and not outcome.bad_documents)
    outcome.seconds = time.perf_counter() - started
    return outcome


def priority_counts(alerts: list, announced: set[tuple[str, str, float]] | None = None) -> dict[str, Counter]:
    """Alarm counts by priority: ``episodes`` by their peak, ``annunciations`` (activations announced:
    raised, escalated, reactivated, each at the priority it presented), and both per family."""
    counts: dict[str, Counter] = {"episodes": Counter(), "annunciations": Counter()}
    for a in alerts:
        peak = max([h.tier for h in a.history if h.event in ACTIVATIONS] or [a.tier])
        counts["episodes"][peak.priority] += 1
        counts.setdefault(f"episodes:{a.family}", Counter())[peak.priority] += 1
        for h in a.history:
            if h.event in ACTIVATIONS and (announced is None or (a.id, h.event, h.at) in announced):
                counts["annunciations"][h.tier.priority] += 1
                counts.setdefault(f"annunciations:{a.family}", Counter())[h.tier.priority] += 1
    return counts


def _judge(scenario: Scenario, alerts: list, outcome: Outcome, flood_limit: int = 10, flood_window: float = 600,
           announced: set[tuple[str, str, float]] | None = None) -> None:
    start = scenario.start_ts
    outcome.raised = len(alerts)
    outcome.per_day = len(alerts) / (scenario.duration_s / 86_400)
    outcome.chattering = sum(1 for a in alerts if a.chattering)
    outcome.floods = flood_onsets(sorted(a.raised_at for a in alerts), flood_limit, flood_window)
    counts = priority_counts(alerts, announced)
    outcome.by_peak, outcome.annunciations = counts["episodes"], counts["annunciations"]
    # every time an alert reached a tier: (rule, subject, tier, seconds after start)
    reached = [(a.rule_id, a.subject, h.tier, h.at - start) for a in alerts for h in a.history
               if h.event in ACTIVATIONS]
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
    _judge_events(scenario, alerts, outcome, announced)
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
    outcome.passed = not outcome.missed and not outcome.forbidden and not outcome.wrong_end


def _judge_events(scenario: Scenario, alerts: list, outcome: Outcome,
                  announced: set[tuple[str, str, float]] | None) -> None:
    """``expect_events`` and ``end_state``: what the alarms went through, and where they ended."""
    start = scenario.start_ts

    def was_announced(alert: Any, entry: Any) -> bool:
        return announced is None or (alert.id, entry.event, entry.at) in announced

    for exp in scenario.expect_events:
        mine = [a for a in alerts if a.rule_id == exp.rule and a.subject == exp.subject]
        entries = [(a, h) for a in mine for h in a.history]
        hits = [(a, h) for a, h in entries if h.event == exp.event and exp.after_s <= h.at - start <= exp.before_s
                and (exp.tier is None or h.tier == exp.tier)
                and (exp.announced is None or was_announced(a, h) == exp.announced)]
        what = (f"{exp.rule} {exp.subject} {exp.event}" + (f" {exp.tier.colour}" if exp.tier else "")
                + ({True: " announced", False: " not announced", None: ""}[exp.announced])
                + f" within +{exp.after_s:g}…+{exp.before_s:g} s")
        if hits:
            outcome.events.append(f"event {what}: at +{min(h.at for _, h in hits) - start:.1f} s")
        else:
            seen = [f"{h.event} {h.tier.colour} at +{h.at - start:.1f} s{'' if was_announced(a, h) else ' (muted)'}"
                    for a, h in sorted(entries, key=lambda e: e[1].at)]
            outcome.missed.append(f"event {what}" + (f" (saw {', '.join(seen)})" if seen else " (never raised)"))
    for want in scenario.end_state:
        mine = sorted((a for a in alerts if a.rule_id == want.rule and a.subject == want.subject),
                      key=lambda a: a.raised_at)
        where = f"{want.rule} {want.subject}"
        if not mine:
            outcome.wrong_end.append(f"{where}: never raised")
            continue
        last = mine[-1].to_json()
        got = {"isa_state": last.get("isa_state"), "peak_tier": last.get("peak_tier"), "episodes": len(mine)}
        wanted = {"isa_state": want.isa_state, "peak_tier": want.peak_tier.colour if want.peak_tier else None,
                  "episodes": want.episodes}
        wrong = [f"{k} {got[k]!r}, want {v!r}" for k, v in wanted.items() if v is not None and got[k] != v]
        if wrong:
            outcome.wrong_end.append(f"{where} (state {last.get('state')}): " + "; ".join(wrong))
        else:
            outcome.events.append(f"end {where}: " + ", ".join(f"{k} {v}" for k, v in wanted.items() if v is not None))


def _judge_warnings(scenario: Scenario, steps: list, warnings: list, publications: dict[str, list],
                    mqtt: RecordingPublisher, outcome: Outcome) -> None:
    """``expect_warnings`` and ``warning_end_state``, and on every run: each published document passes
    the GB/T 35965.1 field list (JSON and XML), carries art. 64's items, went out on MQTT, and a
    warning never published (rejected, or not yet issued) sent nothing."""
    start = scenario.start_ts

    def about(w: Any, subject: str, category: str | None) -> bool:
        return subject in (w.subject.id, w.subject.key) and (category is None or w.category == category
                                                              or w.category.startswith(category + "/"))

    for exp in scenario.expect_warnings:
        mine = [w for w in steps if about(w, exp.subject, exp.category)]
        hits = [w for w in mine if w.history[-1].event.value == exp.event
                and exp.after_s <= w.history[-1].at - start <= exp.before_s
                and (exp.level is None or w.level == exp.level)
                and (exp.proposed_level is None or w.proposed_level == exp.proposed_level)
                and (exp.by is None or w.history[-1].by == exp.by)]
        what = (f"warning {exp.subject} {exp.event}" + (f" level {exp.level.value}" if exp.level else "")
                + (f" proposing {exp.proposed_level.value}" if exp.proposed_level else "")
                + (f" by {exp.by}" if exp.by else "") + f" within +{exp.after_s:g}…+{exp.before_s:g} s")
        if hits:
            outcome.events.append(f"{what}: at +{min(w.history[-1].at for w in hits) - start:.0f} s")
        else:
            seen = [f"{w.history[-1].event.value} {w.level.value} at +{w.history[-1].at - start:.0f} s" for w in mine]
            outcome.missed.append(what + (f" (saw {', '.join(seen)})" if seen else " (no warning about it)"))
    for want in scenario.warning_end_state:
        mine = sorted((w for w in warnings if about(w, want.subject, want.category)), key=lambda w: w.proposed_at)
        where = f"warning about {want.subject}"
        if not mine:
            outcome.wrong_end.append(f"{where}: none was made")
            continue
        last = mine[-1]
        got = {"state": last.state.value, "published": [p.msg_type for p in publications.get(last.id, [])],
               "warnings": len(mine)}
        wanted = {"state": want.state, "published": want.published, "warnings": want.warnings}
        wrong = [f"{k} {got[k]!r}, want {v!r}" for k, v in wanted.items() if v is not None and got[k] != v]
        if wrong:
            outcome.wrong_end.append(f"{where} ({last.id}): " + "; ".join(wrong))
        else:
            outcome.events.append(f"end {where}: " + ", ".join(f"{k} {v}" for k, v in wanted.items() if v is not None))
    sent = Counter(topic for topic, payload, _ in mqtt.messages if payload)
    for warning in warnings:
        docs = publications.get(warning.id, [])
        topic = WARNINGS_TOPIC.format(warning_id=warning.id)
        if not docs and sent[topic]:
            outcome.bad_documents.append(f"{warning.id} ({warning.state.value}) was never published yet sent "
                                         f"{sent[topic]} MQTT message(s)")
        elif docs and sent[topic] != len(docs):
            outcome.bad_documents.append(f"{warning.id}: {len(docs)} documents published, {sent[topic]} sent on MQTT")
        for publication in docs:
            found = problems(publication.document) + xml_problems(cap_xml(publication.document))
            found += [f"art. 64 {item} missing" for item, fields in ART64.items()
                      if publication.msg_type != "Cancel" and not all(_field(publication.document, f) for f in fields)]
            outcome.bad_documents += [f"{publication.identifier} ({publication.msg_type}): {p}" for p in found]
    if mqtt.retained:  # what a new subscriber sees: the warnings in force, nothing lifted
        in_force = {WARNINGS_TOPIC.format(warning_id=w.id) for w in warnings if w.in_force}
        outcome.bad_documents += [f"{t} retained but not in force" for t in mqtt.retained if t not in in_force]


def _field(document: dict[str, Any], dotted: str) -> bool:
    """Whether a CAP document (JSON form) has a non-empty ``info.area.areaDesc``-style field."""
    values: list[Any] = [document]
    for part in dotted.split("."):
        nxt: list[Any] = []
        for v in values:
            got = v.get(part) if isinstance(v, dict) else None
            nxt += got if isinstance(got, list) else [got] if got not in (None, "", []) else []
        values = nxt
    return bool(values)


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
    """Run every scenario under the baseline and each variant; the figures a safety engineer compares.

    Per scenario: alerts, alerts per day, floods, chattering, missed expectations, alarm episodes
    by their peak priority (urgent/high/medium/low) and the detections; per variant a total row
    with the annunciations (announced activations) by priority and their shares.
    """
    rows = ["| variant | scenario | alerts | alerts/day | floods | chattering | missed | urgent/high/medium/low "
            "| detections (at +s, lead s) |",
            "|---|---|---:|---:|---:|---:|---:|---:|---|"]
    scenarios = [(path, load_scenario(path)) for path in paths]
    for name, assignments in {"baseline": [], **variants}.items():
        variant_config = apply_variant(config, assignments)
        episodes: Counter = Counter()
        annunciations: Counter = Counter()
        total = 0
        for path, scenario in scenarios:
            outcome = run_scenario(scenario, variant_config, str(path))
            found = "; ".join(f"{d['rule']} {d['subject']} {d['tier']} +{d['at_s']:.0f}"
                              + (f" (lead {d['lead_s']:.0f})" if d["lead_s"] is not None else "")
                              for d in outcome.detections) or "-"
            rows.append(f"| {name} | {path.stem} | {outcome.raised} | {outcome.per_day:.1f} | {outcome.floods} | "
                        f"{outcome.chattering} | {len(outcome.missed)} | {_split(outcome.by_peak)} | {found} |")
            episodes += outcome.by_peak
            annunciations += outcome.annunciations
            total += outcome.raised
        rows.append(f"| {name} | **all {len(scenarios)}** | {total} | | | | | {_split(episodes)} | "
                    f"annunciations {_split(annunciations)} ({_shares(annunciations)}) |")
    return rows


def _split(counts: Counter) -> str:
    return "/".join(str(counts[p]) for p in PRIORITIES)


def _shares(counts: Counter) -> str:
    total = sum(counts[p] for p in PRIORITIES)
    if not total:
        return "none"
    return ", ".join(f"{p} {100 * counts[p] / total:.0f} %" for p in PRIORITIES)


# ---------------------------------------------------------------- the demo day

@dataclass
class DemoDay:
    """The alarms of the demo fleet's simulator over a stretch of event time (`run_demo_day`)."""

    start: float
    duration_s: float
    readings: int
    late: int
    unaccounted: int
    alerts: list
    counts: dict[str, Counter]
    seconds: float

    def unacknowledged_ends(self) -> list:
        """Episodes that reached high or urgent and ended without an acknowledgement (docs/alarms.md
        invariant 1: must be none; suppressed episodes do not latch by design)."""
        return [a for a in self.alerts if (a.peak_tier or a.tier) >= Tier.ORANGE and a.state in ("resolved", "closed")
                and a.acknowledged_at is None and not a.suppressed]

    def lines(self) -> list[str]:
        """A Markdown report: annunciations and episodes per priority, overall and per family."""
        out = [f"Demo fleet, {self.duration_s / 3600:g} h of event time from {_iso(self.start)}: "
               f"{self.readings:,} readings ({self.late} counted late, {self.unaccounted} unaccounted), "
               f"{len(self.alerts)} alarm episodes; {self.seconds:.0f} s to run; "
               f"{len(self.unacknowledged_ends())} episodes that reached high or urgent ended unacknowledged.", "",
               "| counted | family | urgent | high | medium | low | total | urgent % | high % | medium % | low % |",
               "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        families = sorted({k.split(":", 1)[1] for k in self.counts if ":" in k})
        for what in ("annunciations", "episodes"):
            for family in ["all", *families]:
                c = self.counts[what] if family == "all" else self.counts.get(f"{what}:{family}", Counter())
                total = sum(c[p] for p in PRIORITIES)
                shares = [f"{100 * c[p] / total:.1f}" if total else "-" for p in PRIORITIES]
                out.append(f"| {what} | {family} | " + " | ".join(str(c[p]) for p in PRIORITIES)
                           + f" | {total} | " + " | ".join(shares) + " |")
        rules: Counter = Counter()
        for a in self.alerts:
            rules[(a.rule_id, max([h.tier for h in a.history if h.event in ACTIVATIONS] or [a.tier]).priority)] += 1
        out += ["", "| rule | peak priority | episodes |", "|---|---|---:|"]
        out += [f"| {rule} | {priority} | {n} |" for (rule, priority), n in sorted(rules.items())]
        return out


def _iso(ts: float) -> str:
    from foundation.domain import iso

    return iso(ts) or "-"


def run_demo_day(config: Config, *, start: str = "2026-11-25T00:00:00+08:00", duration_s: float = 86_400,
                 seed: int = 1, step_s: float = 10.0, data_dir: Path | None = None) -> DemoDay:
    """Run the demo fleet's simulator (`simulators.fleet.FleetSimulator` with its built-in incidents,
    repeating every 15 minutes) through the production pipeline on a fake clock.

    The simulator's readings are delivered in batches of ``step_s`` of event time (as a gateway
    batches), exactly as `run_scenario` delivers a scenario's. Nobody acknowledges anything.
    """
    from simulators.fleet import FleetSimulator

    started = time.perf_counter()
    fleet = config.fleet
    t0 = parse_time(start)
    clock = FakeClock(t0)
    with tempfile.TemporaryDirectory(prefix="lw-demo-day-") as tmp:
        pipeline = Pipeline(config, Path(data_dir or tmp) / "data", clock)
        driver = _Driver(pipeline, clock, fleet)
        pending: list[Reading] = []
        step_end = t0 + step_s
        sites = fleet.sensor_sites
        index = fleet.sensor_index
        for t, by_site in FleetSimulator(fleet, seed=seed).batches(t0):
            if t >= step_end or t >= t0 + duration_s:
                driver.deliver(step_end, pending)
                driver.step_end()
                pending = []
                step_end += step_s
                if t >= t0 + duration_s:
                    break
            for site_readings in by_site.values():
                pending += [Reading(r["sensor_id"], sites[index[r["sensor_id"]]], r["ts"], r["value"])
                            for r in site_readings]
        alerts = driver.finish()
        pipeline.stop()
    return DemoDay(t0, duration_s, driver.count, len(driver.late), len(driver.unaccounted()), alerts,
                   priority_counts(alerts, driver.announced), time.perf_counter() - started)

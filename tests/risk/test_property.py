"""Property: the grade is monotonic in every risk-raising input, for any valid weights.

From random alarms, data-quality problems, operating states and weights, one more unacknowledged alarm,
one more special work, one more data-quality problem, or an acknowledged alarm waiting for a person
again never lowers any enterprise's or hazard unit's score or grade.
"""

from __future__ import annotations

from dataclasses import replace

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from earlywarning import AlarmRecord, DataQuality, OperatingEntry, assess
from earlywarning.risk import grade_rank
from foundation.riskspec import OperatingKind, RiskSettings
from tests.risk.support import T0

SITES = ("LC-XFPVC", "LC-LUXI")
PRIORITIES = ("urgent", "high", "medium", "low")
SPECIAL = [k for k in OperatingKind if k.special_work]


def subjects(fleet) -> list[tuple[str, str]]:
    out = [(s.site_id, s.id) for s in fleet.sensors.values() if s.site_id in SITES]
    return out + [(site, f"site:{site}") for site in SITES] + [("LC-XFPVC", "LC-XFPVC-combustible-gas-Z1")]


@st.composite
def alarms(draw, fleet, unacknowledged: bool | None = None):
    pool = subjects(fleet)
    site, subject = draw(st.sampled_from([p for p in pool if p[0] == "LC-XFPVC"] * 3 + pool))  # mostly one site
    kind = draw(st.sampled_from(["threshold"] * 6 + ["confirmation", "stale", "stuck", "out_of_range", "comm_loss",
                                                     "not_reporting"]))
    acked = draw(st.booleans()) if unacknowledged is None else not unacknowledged
    raised = T0 - draw(st.integers(0, 3 * 3600))
    return AlarmRecord(f"A{draw(st.integers(0, 10**9))}", site, subject, draw(st.sampled_from(PRIORITIES)), raised,
                       raised + 30 if acked else None, "acknowledged" if acked else "unacknowledged", kind)


@st.composite
def entries(draw, fleet, special: bool = False):
    site = draw(st.sampled_from(SITES))
    unit = draw(st.sampled_from([None, *[u.id for u in fleet.units_of(site)]]))
    kind = draw(st.sampled_from(SPECIAL if special else list(OperatingKind)))
    start = T0 - draw(st.integers(-600, 7200)) if not special else T0 - draw(st.integers(0, 7200))
    end = (start + draw(st.integers(60, 86400))) if not special else T0 + draw(st.integers(1, 86400))
    return OperatingEntry(f"OS{draw(st.integers(0, 10**9))}", site, unit, kind, start, end, "op", start)


@st.composite
def quality(draw, fleet):
    sensors = [s.id for s in fleet.sensors.values() if s.site_id in SITES]
    pick = lambda pool: frozenset(draw(st.lists(st.sampled_from(pool), max_size=4)))  # noqa: E731
    return DataQuality(pick(list(SITES)), pick(list(SITES)), pick(sensors), pick(sensors), pick(sensors))


@st.composite
def weights(draw):
    """Any valid configuration: random non-negative points and caps, rising bands."""
    pts = st.integers(0, 30)
    per_priority = lambda: {p: draw(pts) for p in PRIORITIES}  # noqa: E731
    general = draw(st.integers(10, 80))
    significant = general + draw(st.integers(1, 40))
    major = significant + draw(st.integers(1, 40))
    band = lambda n: {"min_score": n, "source": "test", "certainty": "U"}  # noqa: E731
    rule = {"source": "test", "certainty": "U"}
    data = {
        "grades": {"general": band(general), "significant": band(significant), "major": band(major)},
        "alarms": {"open": {"points": per_priority(), "max_points": draw(st.integers(1, 60)), **rule},
                   "unacknowledged": {"points": per_priority(), "max_points": draw(st.integers(1, 60)),
                                      "after_s": {p: draw(st.integers(1, 7200)) for p in PRIORITIES}, **rule},
                   "concurrent": [{"min_alarms": 2, "points": draw(pts), **rule},
                                  {"min_alarms": 4, "points": draw(pts), **rule}],
                   "cap": {"points": draw(st.integers(1, 100)), **rule}},
        "data_quality": {"offline": {"points": draw(pts), **rule},
                         "sensors": {"points": {"stale": draw(pts), "frozen": draw(pts), "out_of_range": draw(pts)},
                                     "max_points": draw(st.integers(1, 40)), **rule},
                         "cap": {"points": draw(st.integers(1, 60)), **rule}},
        "operating": {"kinds": {k.value: {"points": draw(pts), "max_duration_s": 30 * 86400, **rule}
                                for k in OperatingKind}, "cap": {"points": draw(st.integers(1, 80)), **rule}},
    }
    return RiskSettings.model_validate(data)


def scores(fleet, config, now, alarm_list, quality_found, entry_list) -> dict[str, tuple[float, int]]:
    risks = assess(fleet, config, now, alarm_list, quality_found, entry_list)
    return {a.key: (a.score, grade_rank(a.grade)) for sid in SITES for a in risks[sid].assessments()}


def never_lower(before: dict, after: dict) -> None:
    for key, (score, rank) in before.items():
        assert after[key][0] >= score and after[key][1] >= rank, (key, before[key], after[key])


def test_more_unacknowledged_alarms_special_work_or_worse_data_never_lower_a_grade(fleet):
    @settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
    @given(config=st.one_of(st.just(RiskSettings()), weights()), now_offset=st.integers(0, 6 * 3600),
           alarm_list=st.lists(alarms(fleet), max_size=16), entry_list=st.lists(entries(fleet), max_size=6),
           found=st.one_of(st.none(), quality(fleet)), extra_alarm=alarms(fleet, unacknowledged=True),
           extra_work=entries(fleet, special=True), extra_quality=quality(fleet), data=st.data())
    def check(config, now_offset, alarm_list, entry_list, found, extra_alarm, extra_work, extra_quality, data):
        now = T0 + now_offset
        base = scores(fleet, config, now, alarm_list, found, entry_list)
        extra_alarm = replace(extra_alarm, raised_at=min(extra_alarm.raised_at, now))
        never_lower(base, scores(fleet, config, now, alarm_list + [extra_alarm], found, entry_list))
        extra_work = replace(extra_work, starts=min(extra_work.starts, now), ends=max(extra_work.ends, now + 1))
        never_lower(base, scores(fleet, config, now, alarm_list, found, entry_list + [extra_work]))
        worse = (found or DataQuality.from_alarms(alarm_list, config.data_quality.alarm_kinds)).worse(extra_quality)
        with_found = scores(fleet, config, now, alarm_list, found or DataQuality.from_alarms(
            alarm_list, config.data_quality.alarm_kinds), entry_list)
        assert with_found == base or found is not None  # None means: derived from the alarms, the same thing
        never_lower(with_found, scores(fleet, config, now, alarm_list, worse, entry_list))
        acked = [i for i, a in enumerate(alarm_list) if not a.needs_person]
        if acked:
            i = data.draw(st.sampled_from(acked))
            waiting = alarm_list[:i] + [replace(alarm_list[i], state="unacknowledged")] + alarm_list[i + 1:]
            never_lower(base, scores(fleet, config, now, waiting, found, entry_list))

    check()

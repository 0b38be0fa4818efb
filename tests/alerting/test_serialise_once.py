"""An alarm change is serialised once, and the faster record and JSON forms say exactly what the old ones said."""

from __future__ import annotations

from dataclasses import asdict

import orjson
from hypothesis import given, settings, strategies as st

from alerting.lifecycle import AlertChange
from alerting.model import Alert, HistoryEntry
from foundation.domain import Tier, iso as iso_uncached
from foundation.wording import load_wording

times = st.floats(1_700_000_000, 1_900_000_000, allow_nan=False)
maybe_text = st.none() | st.fixed_dictionaries({"zh": st.text(max_size=5), "en": st.text(max_size=5)})
entries = st.builds(HistoryEntry, at=times, event=st.sampled_from(["raised", "escalated", "acknowledged", "closed"]),
                    tier=st.sampled_from(list(Tier)), by=st.none() | st.text(max_size=4), note=st.none() | st.text(max_size=4),
                    value=st.none() | st.floats(-1e3, 1e3), text=maybe_text)
alerts = st.builds(Alert, id=st.text(min_size=1, max_size=6), rule_id=st.just("gas.hh"), kind=st.just("threshold"),
                   subject=st.just("LC-LUXI-GD-01"), site_id=st.just("LC-LUXI"), county=st.sampled_from(["", "泸溪县"]),
                   family=st.just("hazchem"), tier=st.sampled_from(list(Tier)), level=st.none() | st.just("hh"),
                   message=st.text(max_size=8), value=st.floats(-1e3, 1e3), threshold=st.none() | st.floats(0, 100),
                   unit=st.just("%LEL"), raised_at=times, updated_at=times, acknowledged_at=st.none() | times,
                   closed_at=st.none() | times, history=st.lists(entries, max_size=6), title=maybe_text, text=maybe_text)


def old_record(alert: Alert) -> dict:
    """The record as `dataclasses.asdict` made it before (the reference model)."""
    record = asdict(alert)
    record["tier"] = int(alert.tier)
    record["peak_tier"] = int(alert.peak_tier) if alert.peak_tier is not None else None
    record["acked_tier"] = int(alert.acked_tier) if alert.acked_tier is not None else None
    record["isa"] = alert.isa.value
    for h in record["history"]:
        h["tier"] = int(h["tier"])
    return record


@settings(max_examples=200, deadline=None)
@given(alerts)
def test_the_record_is_the_one_asdict_gave_and_round_trips(alert):
    """Field-by-field `to_record` serialises to the same bytes as the asdict reference, and loads back equal."""
    assert orjson.dumps(alert.to_record()) == orjson.dumps(old_record(alert))
    assert Alert.from_record(orjson.loads(orjson.dumps(alert.to_record()))) == alert


@settings(max_examples=100, deadline=None)
@given(alerts)
def test_cached_times_and_words_change_nothing_in_the_json(alert):
    """The JSON form's times equal uncached formatting, and its words equal the wording's own."""
    body = alert.to_json()
    words = load_wording()
    assert body["raised_at"] == iso_uncached(alert.raised_at) and body["closed_at"] == iso_uncached(alert.closed_at)
    assert [h["at"] for h in body["history"]] == [iso_uncached(h.at) for h in alert.history]
    assert [h["event_text"] for h in body["history"]] == [words.words_for(words.events, h.event) for h in alert.history]
    assert body["kind_text"] == words.words_for(words.kinds, alert.kind)


def test_a_change_is_serialised_once_and_every_consumer_gets_the_same_bytes():
    """`AlertChange.payload` is the contract's JSON plus ``event``, built on first use and then reused."""
    alert = Alert(id="a1", rule_id="gas.hh", kind="threshold", subject="LC-LUXI-GD-01", site_id="LC-LUXI", county="",
                  family="hazchem", tier=Tier(3), level="hh", message="m", value=60.0, threshold=25.0, unit="%LEL",
                  raised_at=1_795_564_800.0, updated_at=1_795_564_800.0)
    change = AlertChange(alert, "raised")
    first = change.payload()
    assert orjson.loads(first) == orjson.loads(orjson.dumps({**alert.to_json(), "event": "raised"}))
    alert.message = "changed afterwards"
    assert change.payload() is first  # fixed at first use: MQTT, SSE and the event log carry the same bytes

"""The warning lifecycle by example (docs/warnings.md): proposed → verified/rejected → issued → adjusted → lifted.

Each test states the behaviour it pins. The desk runs over a real SQLite file on a fake clock; MQTT
and the outbox are recording doubles (`earlywarning.testing`).
"""

from __future__ import annotations

import re

import orjson
import pytest

from earlywarning import (EarlyWarning, InvalidWarning, NotAllowed, Origin, RiskGrade, SubjectKind, SubjectRef,
                          WarningEvent, WarningLevel, WarningNotFound, WarningState, cap_xml, problems, xml_problems)
from earlywarning.capcheck import ART64, xml_to_dict
from earlywarning.publish import WARNINGS_TOPIC
from foundation.warningspec import Measure
from tests.earlywarning.support import FOREST, GAS, HAZCHEM, T0, Room

ART64_JSON = ("category", "level", "colour", "onset", "area", "watch", "measures", "issuer", "issued_at")
"""The art. 64 fields of the warning's JSON: category, level (and colour), start time, area, what to
watch, measures, issuer, time issued."""


@pytest.fixture
def room(alerts_db_target, fleet) -> Room:
    """The desk on a fresh alerts.db: these tests run on SQLite and on PostgreSQL."""
    return Room(fleet, alerts_db_target)


def field(doc: dict, path: str):
    """A document's field by dotted path through the first info and area."""
    node = doc
    for part in path.split("."):
        node = node[part]
        if isinstance(node, list) and part in ("info", "area"):
            node = node[0]
    return node


def test_the_issue_check_orange_enterprise_warning_verified_issued_raised_to_red_and_lifted(room: Room) -> None:
    """Issue 13's check: every step stored and audited with who and why; three documents published
    (Alert, Update, Cancel), each valid against the field list in JSON and XML; retained while in
    force, cleared when lifted."""
    proposed = room.propose(level="orange", hazard="gas.toxic_release", alarm_ids=("A1", "A2", "A3"),
                            risk_grade=RiskGrade.SIGNIFICANT, reason="一级重大危险源 动火作业期间反复未确认报警")
    w = proposed.warning
    assert proposed.created and w.state is WarningState.PROPOSED and w.level is WarningLevel.II
    assert room.publisher.messages == [] and room.desk.publications(w.id) == []

    room.later(120)
    verified = room.desk.verify(w.id, "值班员张三", "研判: 视频核实现场动火作业, 报警属实")
    assert verified.warning.state is WarningState.VERIFIED and verified.warning.verified_by == "值班员张三"
    assert room.publisher.messages == []  # verified is not published

    issued_at = room.later(60)
    issued = room.desk.issue(w.id, "值班员张三").warning
    assert issued.state is WarningState.ISSUED and issued.issued_at == issued_at and issued.onset == issued_at
    data = issued.to_json()
    for key in ART64_JSON:
        assert data[key], f"art. 64 field {key} is empty"
    assert data["category"] == HAZCHEM and data["level"] == "II" and data["colour"] == "orange"
    assert data["label_zh"] == "橙色预警(Ⅱ级 严重)" and data["issuer"]["name"] == "聊城市应急管理局"
    assert data["area"]["circle"] == {"lon": 116.06, "lat": 36.47, "radius_km": 3.0}
    assert {"text": "立即寻查释放点", "source": data["measures"][0]["source"], "confirmed": False} in data["measures"]
    assert data["evidence"] == {"alarm_ids": ["A1", "A2", "A3"], "risk_grade": "significant", "risk_grade_zh": "较大风险"}

    room.later(600)
    raised = room.desk.adjust(w.id, "值班员张三", WarningLevel.I, "浓度持续上升, 周边企业需撤离").warning
    assert raised.state is WarningState.ADJUSTED and raised.level is WarningLevel.I

    room.later(3600)
    lifted = room.desk.lift(w.id, "值班员李四", "泄漏点已封堵, 浓度回落至零").warning
    assert lifted.state is WarningState.LIFTED

    documents = [p.document for p in room.desk.publications(w.id)]
    assert [d["msgType"] for d in documents] == ["Alert", "Update", "Cancel"]
    assert [field(d, "info.severity") for d in documents] == ["Severe", "Extreme", "Extreme"]
    for doc in documents:
        assert problems(doc) == [], doc
        xml = cap_xml(doc)
        assert xml_problems(xml) == [], xml
        assert xml_to_dict(xml) == doc  # the XML carries exactly the JSON's fields
        for item, fields in ART64.items():
            if item == "measures" and doc["msgType"] == "Cancel":
                continue
            for path in fields:
                assert field(doc, path), f"{doc['msgType']}: art. 64 {item} ({path}) is empty"
    alert, update, cancel = documents
    assert update["references"] == f"liaocheng.yjj,{alert['identifier']},{alert['sent']}"
    assert cancel["references"].split() == [f"liaocheng.yjj,{d['identifier']},{d['sent']}" for d in (alert, update)]
    assert "由橙色提高为红色" in field(update, "info.headline")
    assert field(cancel, "info.urgency") == "Past" and field(cancel, "info.responseType") == ["AllClear"]
    assert cancel["note"] == "泄漏点已封堵, 浓度回落至零"
    assert field(alert, "info.instruction").startswith("1. 立即寻查释放点")

    topic = WARNINGS_TOPIC.format(warning_id=w.id)
    sent = [(t, retain, orjson.loads(p)["event"] if p else None) for t, p, retain in room.publisher.messages]
    assert sent == [(topic, True, "issued"), (topic, True, "adjusted"), (topic, False, "lifted"), (topic, True, None)]
    assert room.publisher.retained == {}

    history = [(h.event, h.by, h.reason) for h in lifted.history]
    assert history == [
        (WarningEvent.PROPOSED, "rule:hazchem.enterprise", "一级重大危险源 动火作业期间反复未确认报警"),
        (WarningEvent.VERIFIED, "值班员张三", "研判: 视频核实现场动火作业, 报警属实"),
        (WarningEvent.ISSUED, "值班员张三", None),
        (WarningEvent.ADJUSTED, "值班员张三", "浓度持续上升, 周边企业需撤离"),
        (WarningEvent.LIFTED, "值班员李四", "泄漏点已封堵, 浓度回落至零"),
    ]
    assert [h.identifier for h in lifted.history if h.event.publishes] == [d["identifier"] for d in documents]
    records = room.audit.records()
    assert [(r["actor"], r["action"]) for r in records] == [(by, f"warning_{e.value}") for e, by, _ in history]
    assert [r["detail"]["reason"] for r in records] == [reason for _, _, reason in history]
    assert {r["subject"] for r in records} == {"LC-LUXI"} and {r["detail"]["warning_id"] for r in records} == {w.id}

    assert room.outbox.receivers("warning_proposed") == ["county-duty"]
    assert room.outbox.receivers("warning_issued") == ["county-duty", "plant-safety"]
    assert room.outbox.receivers("warning_lifted") == ["county-duty", "plant-safety"]


def test_a_rejected_proposal_is_never_published_and_is_final(room: Room) -> None:
    w = room.propose().warning
    rejected = room.desk.reject(w.id, "值班员张三", "误报: 仪表故障, 已通知企业校验").warning
    assert rejected.state is WarningState.REJECTED and rejected.rejected_at == T0
    for step in (lambda: room.desk.verify(w.id, "x", "r"), lambda: room.desk.issue(w.id, "x"),
                 lambda: room.desk.adjust(w.id, "x", WarningLevel.I, "r"), lambda: room.desk.lift(w.id, "x", "r"),
                 lambda: room.desk.reject(w.id, "x", "r")):
        with pytest.raises(NotAllowed):
            step()
    with pytest.raises(NotAllowed):
        room.desk.document(w.id)
    assert room.publisher.messages == [] and room.desk.publications(w.id) == []
    assert room.desk.get(w.id).state is WarningState.REJECTED
    assert room.actions() == [("rule:hazchem.enterprise", "warning_proposed"), ("值班员张三", "warning_rejected")]


def test_a_verified_proposal_may_still_be_rejected_before_it_is_published(room: Room) -> None:
    w = room.propose().warning
    room.desk.verify(w.id, "张三", "属实")
    assert room.desk.reject(w.id, "李四", "企业已停车, 风险消除").warning.state is WarningState.REJECTED
    assert room.publisher.messages == []


def test_nothing_is_issued_unless_verified(room: Room) -> None:
    w = room.propose().warning
    with pytest.raises(NotAllowed, match="proposed; issue needs verified"):
        room.desk.issue(w.id, "张三")
    assert room.desk.get(w.id).state is WarningState.PROPOSED and room.publisher.messages == []


@pytest.mark.parametrize("reason", [None, "", "   "])
@pytest.mark.parametrize("step", ["verify", "reject"])
def test_verify_and_reject_need_a_reason(room: Room, step: str, reason: str | None) -> None:
    w = room.propose().warning
    with pytest.raises(InvalidWarning, match="needs a reason"):
        getattr(room.desk, step)(w.id, "张三", reason)
    assert room.desk.get(w.id).state is WarningState.PROPOSED and len(room.audit.records()) == 1


def test_adjust_and_lift_need_a_reason_and_adjust_a_new_level(room: Room) -> None:
    w = room.propose().warning
    room.desk.verify(w.id, "张三", "属实")
    room.desk.issue(w.id, "张三")
    with pytest.raises(InvalidWarning, match="needs a reason"):
        room.desk.adjust(w.id, "张三", WarningLevel.I, " ")
    with pytest.raises(InvalidWarning, match="already"):
        room.desk.adjust(w.id, "张三", WarningLevel.II, "同级")
    with pytest.raises(InvalidWarning, match="needs a reason"):
        room.desk.lift(w.id, "张三", "")
    lowered = room.desk.adjust(w.id, "张三", WarningLevel.III, "浓度回落").warning
    assert lowered.level is WarningLevel.III and "降低为" in field(room.desk.document(w.id).document, "info.headline")


def test_unknown_warnings_and_subjects_are_not_found(room: Room) -> None:
    with pytest.raises(WarningNotFound):
        room.desk.verify("W-nope", "张三", "r")
    with pytest.raises(WarningNotFound, match="no site LC-NOPE"):
        room.propose(site="LC-NOPE")
    with pytest.raises(WarningNotFound, match="no forest zone LC-LUXI"):
        room.propose(site="LC-LUXI", kind=SubjectKind.FOREST_ZONE, category=FOREST, level="III")


def test_the_overdue_escalation_on_a_fake_clock(room: Room) -> None:
    """A proposal nobody verifies escalates once per deadline (Ⅱ: 600 s) along its route, then stops."""
    w = room.propose(level="II").warning
    assert room.desk.tick(T0 + 599) == []
    [change] = room.desk.tick(T0 + 600)
    assert change.event is WarningEvent.OVERDUE and change.warning.escalation_step == 1
    assert change.warning.state is WarningState.PROPOSED
    entry = change.warning.history[-1]
    assert (entry.at, entry.by, entry.receivers) == (T0 + 600, "system", ("city-duty",))
    assert room.outbox.receivers("warning_overdue") == ["city-duty"]
    assert room.actions()[-1] == ("system", "warning_overdue")
    assert room.desk.tick(T0 + 5000) == []  # the route has one escalation step: nobody further to tell
    # whoever verifies it now, everyone told so far hears of it
    room.desk.verify(w.id, "市值班员", "核实")
    assert room.outbox.receivers("warning_verified") == ["county-duty", "city-duty"]


def test_overdue_counts_whole_deadlines_and_lower_levels_wait_longer(room: Room) -> None:
    blue = room.propose(site="LC-QLQY", level="IV").warning
    assert room.desk.tick(T0 + 1799) == []
    [change] = room.desk.tick(T0 + 1800)
    assert change.warning.id == blue.id
    verified = room.propose(site="LC-XFHG", level="I").warning
    room.desk.verify(verified.id, "张三", "核实")
    assert room.desk.tick(T0 + 10_000) == []  # verified proposals do not escalate


def test_overdue_without_a_route_is_still_recorded_once(fleet) -> None:
    room = Room(fleet, routes=[])
    room.propose()
    [change] = room.desk.tick(T0 + 3600)
    assert change.event is WarningEvent.OVERDUE and change.notices == ()
    assert room.desk.tick(T0 + 7200) == [] and room.outbox.notices == {}


def test_one_open_warning_per_subject_and_category(room: Room) -> None:
    """A new proposal for the same (subject, category) updates the open warning: evidence added, level
    raised before publication; another category or a lifted warning makes a new one."""
    first = room.propose(level="III", alarm_ids=("A1",)).warning
    room.later(10)
    again = room.propose(level="II", alarm_ids=("A1", "A2"), risk_grade=RiskGrade.SIGNIFICANT)
    assert not again.created and again.event is WarningEvent.UPDATED and again.warning.id == first.id
    assert again.warning.level is WarningLevel.II and again.warning.evidence.alarm_ids == ("A1", "A2")
    room.later(10)
    lower = room.propose(level="IV", alarm_ids=("A3",))
    assert lower.warning.level is WarningLevel.II and lower.warning.evidence.alarm_ids == ("A1", "A2", "A3")
    other = room.propose(category=GAS, level="III")
    assert other.created and other.warning.id != first.id
    assert len(room.desk.query(states=[WarningState.PROPOSED])) == 2

    room.desk.verify(first.id, "张三", "属实")
    room.desk.issue(first.id, "张三")
    room.desk.lift(first.id, "张三", "已处置")
    after = room.propose(level="III")
    assert after.created and after.warning.id != first.id


def test_a_proposal_that_brings_nothing_new_records_nothing(room: Room) -> None:
    w = room.propose(level="II", alarm_ids=("A1",)).warning
    same = room.propose(level="III", alarm_ids=("A1",))
    assert same.event is None and same.warning == w and len(room.audit.records()) == 1


def test_a_higher_proposal_for_a_warning_in_force_waits_for_a_person(room: Room) -> None:
    """Art. 70: the bureau adjusts a published warning; new evidence only proposes the higher level."""
    w = room.propose(level="II").warning
    room.desk.verify(w.id, "张三", "属实")
    room.desk.issue(w.id, "张三")
    change = room.propose(level="I", alarm_ids=("A9",))
    assert change.event is WarningEvent.UPDATED and change.publication is None
    assert (change.warning.level, change.warning.proposed_level) == (WarningLevel.II, WarningLevel.I)
    assert len(room.publisher.messages) == 1
    assert room.outbox.receivers("warning_updated") == ["county-duty"]
    adjusted = room.desk.adjust(w.id, "张三", WarningLevel.I, "采纳升级建议").warning
    assert adjusted.proposed_level is None and adjusted.level is WarningLevel.I


def test_guidance_follows_the_level_and_keeps_what_people_added(room: Room) -> None:
    """Measures come from warnings.yaml's guidance, each with its source (unconfirmed unless read);
    forest Ⅰ adds QX/T 77's 严禁一切林内用火, which goes when the level is lowered."""
    own = Measure(text="护林员加密巡护", source="值班员 张三 (proposal)")
    w = room.propose(site="LC-GTLC-Z1", kind=SubjectKind.FOREST_ZONE, category=FOREST, level="I",
                     hazard="forest.fire_danger", measures=(own,)).warning
    texts = [m.text for m in w.measures]
    assert texts == ["严禁一切林内用火", "护林员加密巡护"]
    assert "QX/T 77" in w.measures[0].source and not w.measures[0].confirmed
    assert w.area.polygon is not None and w.subject.site_id == "LC-GTLC"
    room.desk.verify(w.id, "张三", "属实")
    room.desk.issue(w.id, "张三")
    lowered = room.desk.adjust(w.id, "张三", WarningLevel.II, "降雨").warning
    assert [m.text for m in lowered.measures] == ["护林员加密巡护"]


def test_forest_warnings_are_red_orange_or_yellow_only(room: Room) -> None:
    with pytest.raises(InvalidWarning, match="no level IV"):
        room.propose(site="LC-GTLC-Z1", kind=SubjectKind.FOREST_ZONE, category=FOREST, level="IV")
    w = room.propose(site="LC-DEHH", kind=SubjectKind.FOREST_ZONE, category=FOREST, level="III").warning
    assert w.area.circle is not None and w.area.circle.radius_km == 5.0  # a forest site is its own zone
    room.desk.verify(w.id, "张三", "属实")
    room.desk.issue(w.id, "张三")
    with pytest.raises(InvalidWarning, match="no level IV"):
        room.desk.adjust(w.id, "张三", WarningLevel.IV, "好转")
    assert room.outbox.receivers("warning_issued") == ["county-duty"]  # forest: no plant receiver


def test_subjects_hazard_units_and_sites(room: Room) -> None:
    unit = SubjectRef(SubjectKind.HAZARD_UNIT, "T101", "LC-LUXI")
    w = room.propose(subject=unit).warning
    assert (w.subject.key, w.site_id, w.subject.name) == ("hazard_unit:T101", "LC-LUXI", "鲁西集团 T101")
    with pytest.raises(InvalidWarning, match="site_id"):
        room.propose(subject=SubjectRef(SubjectKind.HAZARD_UNIT, "T101"))
    with pytest.raises(InvalidWarning, match="forest_zone"):
        room.propose(site="LC-DEHH")
    with pytest.raises(InvalidWarning, match="unknown category"):
        room.propose(category="事故灾难/核")


def test_a_step_whose_notification_fails_is_rolled_back_whole(alerts_db_target, fleet) -> None:
    """One transaction per step: when the outbox refuses a notification, neither the warning, its audit
    record nor its document is stored, and nothing goes out on MQTT; the step can be retried."""
    fail = {"on": False}

    def notify(notice) -> None:
        if fail["on"]:
            raise OSError("disk full")

    room = Room(fleet, alerts_db_target, notify=notify)
    w = room.propose().warning
    room.desk.verify(w.id, "张三", "属实")
    fail["on"] = True
    with pytest.raises(OSError):
        room.desk.issue(w.id, "张三")
    assert room.desk.get(w.id).state is WarningState.VERIFIED
    assert room.desk.publications(w.id) == [] and room.publisher.messages == []
    assert len(room.audit.records()) == 2
    fail["on"] = False
    assert room.desk.issue(w.id, "张三").warning.state is WarningState.ISSUED


def test_a_failed_publish_keeps_the_step_and_republish_restores_the_retained_view(room: Room) -> None:
    room.publisher.fail = True
    kept = room.propose().warning
    room.desk.verify(kept.id, "张三", "属实")
    assert room.desk.issue(kept.id, "张三").warning.state is WarningState.ISSUED
    gone = room.propose(site="LC-XFHG").warning
    room.desk.verify(gone.id, "张三", "属实")
    room.desk.issue(gone.id, "张三")
    room.publisher.fail = False
    room.publisher.retained[WARNINGS_TOPIC.format(warning_id=gone.id)] = b"stale"
    room.publisher.fail = True
    room.desk.lift(gone.id, "张三", "已处置")
    room.publisher.fail = False
    assert room.desk.republish(lifted_since=T0) == 2
    assert set(room.publisher.retained) == {WARNINGS_TOPIC.format(warning_id=kept.id)}


def test_warnings_survive_a_restart_and_escalations_are_not_repeated(alerts_db_target, fleet) -> None:
    path = alerts_db_target
    room = Room(fleet, path)
    w = room.propose().warning
    room.desk.tick(T0 + 600)
    again = Room(fleet, path)
    assert again.desk.get(w.id) == room.desk.get(w.id)
    assert again.desk.tick(T0 + 700) == []
    assert not again.propose(alarm_ids=()).created  # the open warning is found after the restart


def test_notices_have_the_outbox_document_shape(room: Room) -> None:
    """What `alerting.channels` read: id, receiver, event, tier, title, text, markdown; the key names the step."""
    w = room.propose(level="II").warning
    [notice] = room.outbox.notices.values()
    doc = notice.to_document()
    assert doc["id"] == f"warning:{w.id}:h0:county-duty" and doc["receiver"] == "county-duty"
    assert doc["event"] == "warning_proposed" and doc["tier"] == "orange" and doc["site_id"] == "LC-LUXI"
    assert doc["title"] == "【橙色预警(Ⅱ级 严重)】鲁西集团 危险化学品事故 预警建议, 待研判"
    assert "预警号: " + w.id in doc["text"] and doc["markdown"].startswith("### 【橙色预警")
    assert doc["warning"]["id"] == w.id


def test_identifiers_in_the_national_form_when_the_issuer_has_a_code(fleet) -> None:
    """ZZZZZZDDDUUUXX_YYYYMMDDhhmmss_N (unconfirmed form, docs/warnings.md): N counts the second's documents."""
    issuers = [{"id": "city", "name": "聊城市应急管理局", "sender": "liaocheng.yjj", "sender_code": "37150000000000"}]
    room = Room(fleet, issuers=issuers)
    ids = []
    for site in ("LC-LUXI", "LC-XFHG"):
        w = room.propose(site=site).warning
        room.desk.verify(w.id, "张三", "属实")
        ids.append(room.desk.issue(w.id, "张三").publication.identifier)
    assert ids == ["37150000000000_20261125080000_0", "37150000000000_20261125080000_1"]
    assert all(len(i) == 31 and re.fullmatch(r"\d{14}_\d{14}_\d", i) for i in ids)


def test_a_person_may_propose_and_the_origin_is_kept(room: Room) -> None:
    w = room.propose(by="值班员张三", origin=Origin.PERSON, reason="企业报告储罐区异味").warning
    assert w.origin is Origin.PERSON and w.proposed_by == "值班员张三"
    assert isinstance(EarlyWarning.from_record(w.to_record()), EarlyWarning)
    assert EarlyWarning.from_record(orjson.loads(orjson.dumps(w.to_record()))) == w


def test_a_publish_the_broker_refused_is_kept_unsent_and_the_retry_sends_it(room: Room) -> None:
    """The ticker's retry (`retry_unsent`): nothing a broker refused is forgotten, and a lift's clearing
    message never overtakes the Cancel that failed."""
    w = room.propose().warning
    room.desk.verify(w.id, "张三", "属实")
    room.publisher.fail = True
    room.desk.issue(w.id, "张三")
    assert set(room.desk.unsent) == {w.id} and room.publisher.messages == []
    assert room.desk.retry_unsent() == 1  # the broker is still away
    room.publisher.fail = False
    assert room.desk.retry_unsent() == 0 and room.desk.unsent == {}
    topic = WARNINGS_TOPIC.format(warning_id=w.id)
    assert [orjson.loads(p)["event"] for t, p, _ in room.publisher.messages if t == topic] == ["issued"]
    room.publisher.fail = True
    room.desk.lift(w.id, "张三", "已处置")
    assert room.publisher.retained[topic]  # the in-force message stays until the Cancel is through
    room.publisher.fail = False
    room.desk.retry_unsent()
    assert topic not in room.publisher.retained
    assert [orjson.loads(p)["event"] for t, p, _ in room.publisher.messages if t == topic and p] == ["issued", "lifted"]

// Alarm detail (报警详情, /alerts/{id}): state and ISA state, priority and peak, raise/clear times, who did what and when
// with notes, notifications and their delivery, the measures to take, and a chart of its sensors around the episode
// with the setpoint lines. Kept current by the site's live stream (LW.live); acts through LW.actions.
// Test hooks: window.liaowangAlert = {chart, state}; window.liaowangReady once drawn.
"use strict";
const { t, sensorName, unit, number, alertText, time, COLOURS } = window.LW.words;
const alertId = decodeURIComponent(location.pathname.split("/").filter(Boolean).pop());
const TEXT = {
  zh: { map: "一张图", chart: "报警前后的测量值与设定值", measures: "应采取的措施", history: "处置记录", deliveries: "通知与送达",
        deliveriesHidden: "登录值班员 (operator) 或以上账号后可查看通知送达记录", noDeliveries: "尚无通知记录",
        noChart: "该报警的对象不是单个传感器, 无测量曲线", noMeasures: "配置中没有该类报警的处置指引",
        readings: (n, shown) => n > shown ? `共 ${n} 个读数, 图中按区段保留最大最小值 ${shown} 个` : `共 ${n} 个读数`,
        facts: { priority: "优先级", isa: "报警状态", state: "处置状态", site: "场所", unit: "危险源单元", subject: "对象",
                 level: "报警级别", value: "当前值", peak: "峰值", raised: "报警时间", cleared: "恢复时间",
                 acknowledged: "确认", closed: "消警", cause: "消警原因", shelved: "搁置", rule: "规则", flags: "标记" },
        cols: { at: "时间", event: "事件", priority: "优先级", by: "操作人", note: "说明", value: "值", message: "消息",
                receiver: "接收人", channel: "渠道", outcome: "结果", detail: "详情" },
        episode: "报警区间", raisedMark: "报警", clearedMark: "恢复", by: "由", until: "至",
        ack: "确认", close: "消警", signin: "登录后可确认、消警或搁置", shelve: "搁置", unshelve: "解除搁置", lost: "实时连接中断 · 正在重连",
        flags: { chattering: "频繁报警", source_lost: "信号丢失", first_out: "首发", latched: "锁存" } },
  en: { map: "One map", chart: "Readings around the alarm, with the setpoints", measures: "Measures to take", history: "Who did what",
        deliveries: "Notifications and delivery", deliveriesHidden: "Sign in as an operator or above to see the delivery log",
        noDeliveries: "no notifications yet", noChart: "This alarm is not about one sensor: no readings to draw",
        noMeasures: "no response guidance configured for this kind of alarm",
        readings: (n, shown) => n > shown ? `${n} readings; the chart keeps each stretch's min and max (${shown})` : `${n} readings`,
        facts: { priority: "Priority", isa: "Alarm state", state: "Handling", site: "Site", unit: "Hazard unit", subject: "Subject",
                 level: "Level", value: "Value now", peak: "Peak", raised: "Raised", cleared: "Cleared",
                 acknowledged: "Acknowledged", closed: "Closed", cause: "Close cause", shelved: "Shelved", rule: "Rule",
                 flags: "Flags" },
        cols: { at: "Time", event: "Event", priority: "Priority", by: "By", note: "Note", value: "Value", message: "Message",
                receiver: "Receiver", channel: "Channel", outcome: "Outcome", detail: "Detail" },
        episode: "alarm", raisedMark: "raised", clearedMark: "cleared", by: "by", until: "until",
        ack: "Acknowledge", close: "Close", signin: "Sign in to acknowledge, close or shelve", shelve: "Shelve", unshelve: "Unshelve", lost: "Live link lost · reconnecting",
        flags: { chattering: "chattering", source_lost: "signal lost", first_out: "first out", latched: "latched" } },
};
const CAUSE_EN = { false_alarm: "false alarm", instrument_fault: "instrument fault", process_upset: "process upset",
                   maintenance: "maintenance work", real_incident: "real incident" };
const L = () => TEXT[window.LW.lang.current()];
const en = () => window.LW.lang.current() === "en";
const state = { alert: null, context: null, deliveries: null, link: "connecting" };
const chart = echarts.init(document.getElementById("chart"));
const api = path => window.LW.session.fetch(path);
const el = (tag, props = {}, ...children) => { const e = Object.assign(document.createElement(tag), props); e.append(...children); return e; };
const sensorsById = () => Object.fromEntries((state.context ? state.context.sensors : []).map(s => [s.id, { ...s, site_id: state.alert.site_id }]));

function may(role) { return window.LW.session.may(role) && window.LW.session.covers(state.alert.site_id); }

function drawSummary() {
  const a = state.alert, c = state.context;
  const byId = sensorsById();
  const subject = window.LW.words.subjectName(a, byId);
  const siteName = en() ? c.site.name_en || c.site.id : c.site.name;
  document.getElementById("to-map").textContent = L().map;
  const toSite = document.getElementById("to-site");
  toSite.textContent = siteName;
  toSite.href = `/sites/${encodeURIComponent(a.site_id)}`;
  const title = a.title ? window.LW.lang.pick(a.title) : subject;
  document.getElementById("alert-title").textContent = title;
  document.title = `${title} · 瞭望 Liaowang`;
  const chip = document.getElementById("alert-chip");
  chip.textContent = `${t("tier", a.tier)} · ${t("isa", a.isa_state)}`;
  chip.style.background = COLOURS[a.tier];
  chip.classList.toggle("flash", a.isa_state === "unacknowledged" || a.isa_state === "returned_unacknowledged");
  document.getElementById("alert-text").textContent = alertText(a, byId);
  const f = L().facts;
  const u = unit(a.unit);
  const rows = [
    [f.priority, t("tier", a.tier)], [f.isa, t("isa", a.isa_state)], [f.state, t("state", a.state)],
    [f.site, siteName], ...(c.hazard_units.length ? [[f.unit, c.hazard_units.map(h => en() ? h.name_en || h.id : h.name).join(", ")]] : []),
    [f.subject, subject], [f.level, t("level", a.level)], [f.value, `${number(a.value)} ${u}`],
    [f.peak, `${number(a.peak_value)} ${u} · ${t("tier", a.peak_tier)} · ${time(a.peak_at)}`],
    [f.raised, time(a.raised_at)], [f.cleared, time(a.cleared_at || a.resolved_at)],
    [f.acknowledged, a.acknowledged_at ? `${time(a.acknowledged_at)} ${L().by} ${a.acknowledged_by}${a.ack_note ? " · " + a.ack_note : ""}` : "—"],
    [f.closed, a.closed_at ? `${time(a.closed_at)} ${L().by} ${a.closed_by}${a.note ? " · " + a.note : ""}` : "—"],
    ...(a.close_cause ? [[f.cause, en() ? CAUSE_EN[a.close_cause] || a.close_cause : a.close_cause_zh]] : []),
    ...(a.state === "shelved" ? [[f.shelved, `${L().until} ${time(a.shelved_until)} ${L().by} ${a.shelved_by} · ${a.shelve_reason || ""}`]] : []),
    [f.rule, `${a.rule_id} (${a.kind})`],
  ];
  const flags = Object.keys(L().flags).filter(k => a[k]).map(k => L().flags[k]);
  if (a.suppressed) flags.push(a.suppressed);
  if (flags.length) rows.push([f.flags, flags.join(" · ")]);
  document.getElementById("facts").replaceChildren(...rows.flatMap(([k, v]) => [el("dt", { textContent: k }), el("dd", { textContent: v })]));
  const actions = [];
  const button = (kind, label) => {
    const b = el("button", { className: `act act-${kind}`, textContent: label, type: "button" });
    b.onclick = async () => {
      const result = await window.LW.actions.run(kind, [state.alert]);
      if (!result.cancelled) await load();  // the stream brings it too; a reload also refreshes the deliveries
    };
    actions.push(b);
  };
  const unacked = a.isa_state === "unacknowledged" || a.isa_state === "returned_unacknowledged";
  if (unacked && a.state !== "closed" && may("operator")) button("ack", L().ack);
  if (a.state === "resolved" && may("duty_officer")) button("close", L().close);
  if (a.state === "shelved" && may("duty_officer")) button("unshelve", L().unshelve);
  else if (a.state !== "closed" && a.state !== "resolved" && may("duty_officer")) button("shelve", L().shelve);
  if (!actions.length && a.state !== "closed" && !may("operator")) actions.push(el("span", { className: "hint", textContent: L().signin }));
  document.getElementById("actions").replaceChildren(...actions);
}

function drawChart() {
  const a = state.alert, c = state.context;
  document.getElementById("chart-title").textContent = L().chart;
  const box = document.getElementById("chart");
  if (!c.sensors.length) {
    box.hidden = true;
    document.getElementById("chart-note").textContent = L().noChart;
    return;
  }
  const byId = sensorsById();
  const palette = ["#4ac0ff", "#b388ff", "#7ee787", "#ffa657"];
  const clearedAt = a.cleared_at || a.resolved_at;
  const episodeEnd = clearedAt ? Date.parse(clearedAt) : Date.now();
  const rungs = c.sensors.length === 1 ? c.sensors[0].setpoints : c.sensors[0].setpoints;  // a zone shares one profile
  chart.setOption({
    animation: false, tooltip: { trigger: "axis" },
    legend: { top: 0, textStyle: { color: "#e6eef7" } },
    grid: { left: 56, right: 70, top: 36, bottom: 36 },
    xAxis: { type: "time", min: Date.parse(c.since), max: Math.max(Date.parse(c.until), episodeEnd),
             axisLabel: { color: "#9fb3c8", fontSize: 12, hideOverlap: true, formatter: "{HH}:{mm}" } },
    yAxis: { type: "value", scale: true, name: unit(c.sensors[0].unit), nameTextStyle: { color: "#9fb3c8" },
             axisLabel: { color: "#9fb3c8", fontSize: 12 }, splitLine: { lineStyle: { color: "#22415f" } } },
    series: c.sensors.map((s, i) => ({
      id: s.id, name: sensorName(byId[s.id]), type: "line", showSymbol: s.readings.length < 40,
      data: s.readings.map(([at, v]) => [Date.parse(at), v]), lineStyle: { color: palette[i % palette.length], width: 2 },
      itemStyle: { color: palette[i % palette.length] },
      ...(i === 0 ? {
        markLine: { symbol: "none", silent: true, label: { color: "#e6eef7", fontSize: 12, formatter: p => p.data.label },
          data: [...rungs.map(r => ({ name: r.level, label: `${t("level", r.level)} ${r.set}`, yAxis: r.set,
                                      lineStyle: { type: "dashed", width: 2,
                                                   color: /HH|LL|level2|confirmed/.test(r.level) ? COLOURS.red : COLOURS.orange } })),
                 { name: "raised", xAxis: Date.parse(a.raised_at), lineStyle: { color: "#fff", type: "solid" },
                   label: { position: "insideEndTop", formatter: L().raisedMark, color: "#fff" } },
                 ...(clearedAt ? [{ name: "cleared", xAxis: Date.parse(clearedAt),
                                    lineStyle: { color: COLOURS.normal, type: "solid" },
                                    label: { position: "insideEndBottom", formatter: L().clearedMark, color: COLOURS.normal } }] : [])] },
        markArea: { silent: true, itemStyle: { color: "rgba(224,32,32,0.10)" }, label: { show: false },
                    data: [[{ name: L().episode, xAxis: Date.parse(a.raised_at) }, { xAxis: episodeEnd }]] },
      } : {}),
    })),
  }, true);
  document.getElementById("chart-note").textContent = c.sensors.map(s => `${sensorName(byId[s.id])}: ${L().readings(s.readings_total, s.readings.length)}`).join(" · ");
}

function drawMeasures() {
  document.getElementById("measures-title").textContent = L().measures;
  const measures = state.context.measures;
  document.getElementById("measures").replaceChildren(...(measures.length ? measures.map(m =>
    el("li", {}, el("span", { textContent: en() ? m.en : m.zh }), el("span", { className: "source", textContent: m.source })))
    : [el("li", { className: "none", textContent: L().noMeasures })]));
}

function table(id, columns, rows) {
  const tableEl = document.getElementById(id);
  tableEl.querySelector("thead").replaceChildren(el("tr", {}, ...columns.map(c => el("th", { textContent: L().cols[c] }))));
  tableEl.querySelector("tbody").replaceChildren(...rows.map(r => el("tr", {}, ...r.map(v => el("td", { textContent: v ?? "" })))));
}

function drawHistory() {
  document.getElementById("history-title").textContent = L().history;
  const u = unit(state.alert.unit);
  table("history", ["at", "event", "priority", "by", "note", "value", "message"], state.alert.history.map(h =>
    [time(h.at), t("event", h.event), t("tier", h.tier), h.by || (en() ? "system" : "系统"), h.note || "",
     h.value === null || h.value === undefined ? "" : `${number(h.value)} ${u}`,
     h.text ? window.LW.lang.pick(h.text) : en() ? "" : h.message || ""]));
}

function drawDeliveries() {
  document.getElementById("deliveries-title").textContent = L().deliveries;
  const note = document.getElementById("deliveries-note");
  if (state.deliveries === null) { note.textContent = L().deliveriesHidden; table("deliveries", [], []); return; }
  note.textContent = state.deliveries.length ? "" : L().noDeliveries;
  table("deliveries", ["at", "event", "receiver", "channel", "outcome", "detail"], state.deliveries.map(d =>
    [time(d.at), t("event", d.event), d.receiver, d.channel, d.outcome, d.detail || ""]));
}

function redraw() { drawSummary(); drawChart(); drawMeasures(); drawHistory(); drawDeliveries(); }

async function load() {
  const [alert, context] = await Promise.all([api(`/api/v1/alerts/${encodeURIComponent(alertId)}`),
                                              api(`/api/v1/alerts/${encodeURIComponent(alertId)}/context`)]);
  Object.assign(state, { alert, context });
  state.deliveries = may("operator") ? await api(`/api/v1/alerts/${encodeURIComponent(alertId)}/deliveries`) : null;
  redraw();
}

// live: this alarm's changes and its sensors' new readings, from the site's stream
function onEvent(name, data) {
  if (name === "alert" && data.id === alertId) {
    const { event, ...alert } = data;
    state.alert = alert;
    drawSummary(); drawHistory(); drawChart();
  } else if (name === "readings" && state.context) {
    for (const r of data.readings) {
      const s = state.context.sensors.find(x => x.id === r.sensor_id);
      if (!s || r.value === null || !r.ts) continue;
      const last = s.readings[s.readings.length - 1];
      if (!last || Date.parse(r.ts) > Date.parse(last[0])) s.readings.push([r.ts, r.value]);
    }
    drawChart();
  }
}

function drawLink() {
  const banner = document.getElementById("live-banner");
  banner.hidden = state.link !== "lost" && state.link !== "denied";
  banner.textContent = state.link === "denied" ? state.linkDetail : L().lost;
  document.body.dataset.link = state.link;
}

async function boot() {
  window.LW.lang.button(document.getElementById("lang"));
  window.LW.session.mount(document.getElementById("signin"));
  await window.LW.session.ready;
  await load();
  const p = n => String(n).padStart(2, "0");
  const tick = () => { const d = new Date(); document.getElementById("clock").textContent = `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`; };
  tick();
  setInterval(tick, 1000);
  let stream = null;
  const connect = () => {
    if (stream) stream.close();
    stream = window.LW.live.open(state.alert.site_id, { onEvent, onState(next, detail) {
      const wasLost = state.link === "lost" || state.link === "denied";
      state.link = next; state.linkDetail = detail; drawLink();
      if (next === "live" && wasLost) load().catch(showError);
    } });
  };
  connect();
  window.LW.lang.onChange(() => { redraw(); drawLink(); });
  window.LW.session.onChange(() => { load().catch(showError); connect(); });
  window.addEventListener("resize", () => chart.resize());
  window.liaowangAlert = { chart, state };
  window.liaowangReady = true;
}

function showError(err) {
  document.body.dataset.error = err.message;
  const banner = document.getElementById("live-banner");
  banner.hidden = false;
  banner.textContent = err.message;
}
boot().catch(err => { console.error(err); showError(err); });

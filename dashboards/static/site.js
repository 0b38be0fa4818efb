// Site view (场所监测): the site's sensors grouped by hazard unit, each card with name, live value, unit, setpoints and
// its last hour; a card in alarm wears its priority colour and ISA state; the site's alarms with acknowledge, 消警,
// shelve and the detail page. Values and alarms arrive over one live stream (LW.live): the page never polls.
// Test hooks: window.liaowangSite = {charts, state}; window.liaowangReady once drawn.
"use strict";
const { t, sensorName, unit, number, alertText, time, ago, COLOURS } = window.LW.words;
const siteId = decodeURIComponent(location.pathname.split("/").filter(Boolean).pop());
const HOUR_MS = 3600e3;
const STALE_BANNER_AFTER_MS = 60e3;
const TEXT = {
  zh: { map: "一张图", alerts: "当前报警", closed: "最近消警", ackAll: n => `确认全部未确认 (${n})`, ack: "确认", close: "消警",
        shelve: "搁置", unshelve: "解除搁置", detail: "详情", history: "处置记录", setpoints: "设定值", none: "无设定值",
        others: "其他传感器", unitKind: { storage: "储存单元", production: "生产单元" }, grade: g => `${"一二三四"[g - 1]}级重大危险源`,
        lost: "实时数据中断 · 正在重连 — 显示的数值不是当前值", staleAll: "数据陈旧: 该场所传感器均未按时上报",
        newest: a => `最新数据 ${a}前`, noData: "尚无数据", stale: "陈旧", oos: "停用", raised: "报警于", by: "由",
        until: "至", empty: "无报警", unknown: "状态未知", responsible: "责任人", signin: "登录后可处置", hazard: (g, r) => ` · 重大危险源 ${"一二三四"[g - 1]}级 (R=${r ?? "?"})` },
  en: { map: "One map", alerts: "Active alarms", closed: "Recently closed", ackAll: n => `Acknowledge all unacknowledged (${n})`,
        ack: "Acknowledge", close: "Close", shelve: "Shelve", unshelve: "Unshelve", detail: "Details", history: "History",
        setpoints: "Setpoints", none: "no setpoints", others: "Other sensors",
        unitKind: { storage: "storage unit", production: "production unit" }, grade: g => `major hazard source grade ${g}`,
        lost: "Live data lost · reconnecting — values shown are not current", staleAll: "Stale data: no sensor of this site reported in time",
        newest: a => `newest data ${a} ago`, noData: "no data yet", stale: "stale", oos: "out of service", raised: "raised",
        by: "by", until: "until", empty: "no alarms", unknown: "status unknown", responsible: "responsible", signin: "sign in to act",
        hazard: (g, r) => ` · major hazard grade ${g} (R=${r ?? "?"})` },
};
const COUNTY_EN = { 东昌府区: "Dongchangfu", 茌平区: "Chiping", 临清市: "Linqing", 阳谷县: "Yanggu", 莘县: "Shenxian",
                    东阿县: "Dong'e", 冠县: "Guanxian", 高唐县: "Gaotang" };
const TIER_RANK = { red: 4, orange: 3, yellow: 2, blue: 1 };
const ISA_RANK = { unacknowledged: 3, returned_unacknowledged: 2, acknowledged: 1 };
const L = () => TEXT[window.LW.lang.current()];
const state = { site: null, sensors: [], byId: {}, units: [], alerts: new Map(), outOfService: new Set(), link: "connecting",
                linkDetail: "", newest: null };
const charts = {};

const api = path => window.LW.session.fetch(path);
const el = (tag, props = {}, ...children) => { const e = Object.assign(document.createElement(tag), props); e.append(...children); return e; };

function trendArrow(points) {
  if (points.length < 3) return "";
  const recent = points.slice(-Math.min(points.length, 12));
  const delta = recent[recent.length - 1][1] - recent[0][1];
  const values = points.map(p => p[1]);
  const span = Math.max(...values) - Math.min(...values) || 1;
  return Math.abs(delta) < 0.05 * span ? "→" : delta > 0 ? "↑" : "↓";
}

// ------------------------------------------------------------------ cards

function card(sensor) {
  const c = el("div", { className: "sensor" });
  c.dataset.sensorId = sensor.id;
  c.innerHTML = `<h3><span class="name"></span><span class="sid"></span></h3>
    <div class="alarm-line"><span class="pri"></span><span class="isa"></span><span class="oos-tag"></span></div>
    <div class="reading"><span class="value">—</span><span class="unit"></span><span class="trend"></span>
      <span class="stale-tag"></span><span class="age"></span></div>
    <div class="setpoints"></div><div class="chart"></div><div class="alert-actions"></div>`;
  c.querySelector(".sid").textContent = window.LW.words.shortId(sensor);
  return c;
}

function setpointsText(sensor) {
  const rungs = sensor.setpoints.map(s => `${t("level", s.level)} ${s.set}`).join(" · ");
  return rungs ? `${L().setpoints} ${rungs}` : L().none;
}

function drawCardText(sensor) {
  const c = document.querySelector(`.sensor[data-sensor-id="${CSS.escape(sensor.id)}"]`);
  c.querySelector(".name").textContent = sensorName(sensor);
  c.querySelector(".name").title = sensor.name;
  c.querySelector(".unit").textContent = unit(sensor.unit);
  c.querySelector(".setpoints").textContent = setpointsText(sensor);
  c.querySelector(".stale-tag").textContent = L().stale;
  c.querySelector(".oos-tag").textContent = L().oos;
  drawValue(sensor);
  drawCardAlarm(sensor);
}

function drawValue(sensor) {
  const c = document.querySelector(`.sensor[data-sensor-id="${CSS.escape(sensor.id)}"]`);
  c.querySelector(".value").textContent = number(sensor.last_value);
  c.querySelector(".age").textContent = sensor.last_ts ? time(sensor.last_ts).slice(6) : "";
  c.classList.toggle("stale", !!sensor.stale);
  const chart = charts[sensor.id];
  if (chart) c.querySelector(".trend").textContent = trendArrow(chart.getOption().series[0].data);
}

// The open alarm a card wears: the highest priority among the sensor's open alarms, unacknowledged first.
function cardAlarm(sensor) {
  return [...state.alerts.values()].filter(a => a.subject === sensor.id && a.state !== "closed")
    .sort((a, b) => TIER_RANK[b.tier] - TIER_RANK[a.tier] || (ISA_RANK[b.isa_state] || 0) - (ISA_RANK[a.isa_state] || 0))[0];
}

function drawCardAlarm(sensor) {
  const c = document.querySelector(`.sensor[data-sensor-id="${CSS.escape(sensor.id)}"]`);
  const alarm = cardAlarm(sensor);
  if (alarm) { c.dataset.tier = alarm.tier; c.dataset.isa = alarm.isa_state; c.dataset.alertId = alarm.id; }
  else { delete c.dataset.tier; delete c.dataset.isa; delete c.dataset.alertId; }
  if (state.outOfService.has(sensor.id)) c.dataset.oos = "1"; else delete c.dataset.oos;
  c.querySelector(".pri").textContent = alarm ? t("tier", alarm.tier) : "";
  c.querySelector(".isa").textContent = alarm ? `${t("isa", alarm.isa_state)} · ${t("level", alarm.level)}` : "";
  c.querySelector(".alert-actions").replaceChildren(...(alarm ? actionButtons(alarm) : []));
}

function drawChart(sensor, points) {
  const c = document.querySelector(`.sensor[data-sensor-id="${CSS.escape(sensor.id)}"]`);
  const chart = charts[sensor.id] || (charts[sensor.id] = echarts.init(c.querySelector(".chart")));
  const now = Date.now();
  chart.setOption({
    animation: false, grid: { left: 44, right: 64, top: 8, bottom: 20 },
    xAxis: { type: "time", min: now - HOUR_MS, max: now, splitNumber: 4,
             axisLabel: { color: "#9fb3c8", fontSize: 11, hideOverlap: true, formatter: "{HH}:{mm}" } },
    yAxis: { type: "value", scale: true, splitNumber: 3, axisLabel: { color: "#9fb3c8", fontSize: 11, hideOverlap: true },
             splitLine: { lineStyle: { color: "#22415f" } } },
    series: [{ type: "line", showSymbol: points.length < 3, data: points, lineStyle: { color: "#4ac0ff" },
      markLine: { symbol: "none", silent: true,
        label: { formatter: p => t("level", p.name), color: "#e6eef7", fontSize: 11, position: "end" },
        data: sensor.setpoints.map(s => ({ name: s.level, yAxis: s.set,
          lineStyle: { type: "dashed", color: /HH|LL|level2|confirmed/.test(s.level) ? COLOURS.red : COLOURS.orange } })) } }],
  });
}

// A live reading: the value, and a point on the chart if it is newer than the last one drawn.
function applyReading(r) {
  const sensor = state.byId[r.sensor_id];
  if (!sensor) return;
  Object.assign(sensor, { last_value: r.value, last_ts: r.ts, last_quality: r.quality, stale: r.stale });
  if (r.ts && (!state.newest || Date.parse(r.ts) > Date.parse(state.newest))) state.newest = r.ts;
  const chart = charts[sensor.id];
  if (chart && r.ts && r.value !== null) {
    const data = chart.getOption().series[0].data;
    const at = Date.parse(r.ts);
    if (!data.length || at > data[data.length - 1][0]) {
      const now = Date.now();
      const kept = data.filter(p => p[0] >= now - HOUR_MS).concat([[at, r.value]]);
      chart.setOption({ xAxis: { min: now - HOUR_MS, max: Math.max(now, at) },
                        series: [{ data: kept, showSymbol: kept.length < 3 }] });
    }
  }
  drawValue(sensor);
}

// ------------------------------------------------------------------ alarms

function may(role) { return window.LW.session.may(role) && window.LW.session.covers(siteId); }

function actionButtons(alert) {
  const buttons = [];
  const button = (kind, label) => {
    const b = el("button", { className: `act act-${kind}`, textContent: label, type: "button" });
    b.onclick = () => act(kind, [alert]);
    buttons.push(b);
  };
  const unacked = alert.isa_state === "unacknowledged" || alert.isa_state === "returned_unacknowledged";
  if (unacked && alert.state !== "closed" && may("operator")) button("ack", L().ack);
  if (alert.state === "resolved" && may("duty_officer")) button("close", L().close);
  if (alert.state === "shelved" && may("duty_officer")) button("unshelve", L().unshelve);
  else if (alert.state !== "closed" && alert.state !== "resolved" && may("duty_officer")) button("shelve", L().shelve);
  buttons.push(el("a", { className: "act act-detail", href: `/alerts/${encodeURIComponent(alert.id)}`, textContent: L().detail }));
  return buttons;
}

async function act(kind, alerts) {
  const result = await window.LW.actions.run(kind, alerts);
  // the live stream brings each change; reload what the stream cannot carry (out-of-service) and any failure's truth
  if (!result.cancelled && result.failed.length) await loadAlerts();
}

function alertItem(alert) {
  const li = el("li", { className: alert.tier });
  li.dataset.alertId = alert.id;
  li.dataset.state = alert.state;
  li.dataset.isa = alert.isa_state;
  const when = alert.state === "closed"
    ? `${t("event", "closed")} ${time(alert.closed_at)} ${alert.closed_by ? L().by + " " + alert.closed_by : ""}`
    : `${L().raised} ${time(alert.raised_at)} · ${ago(alert.raised_at)}`;
  li.append(
    el("div", { className: "alert-head" }, el("span", { className: "pri", textContent: t("tier", alert.tier) }),
       el("span", { className: "isa", textContent: t("isa", alert.isa_state) }),
       el("span", { className: "text", textContent: alertText(alert, state.byId) })),
    el("div", { className: "alert-meta" }, el("span", { textContent: when }),
       ...(alert.acknowledged_by ? [el("span", { textContent: `${t("event", "acknowledged")} ${L().by} ${alert.acknowledged_by}` })] : []),
       ...(alert.shelved_until && alert.state === "shelved" ? [el("span", { textContent: `${L().until} ${time(alert.shelved_until)}` })] : [])),
    el("div", { className: "alert-actions" }, ...actionButtons(alert)));
  const history = el("ul", { className: "history" }, ...alert.history.map(h => el("li", {
    textContent: `${time(h.at)} ${t("event", h.event)}${h.by ? " · " + h.by : ""}${h.note ? " · " + h.note : ""}` })));
  li.append(el("details", {}, el("summary", { textContent: `${L().history} (${alert.history.length})` }), history));
  return li;
}

function renderAlerts() {
  const all = [...state.alerts.values()];
  const open = all.filter(a => a.state !== "closed").sort((a, b) => (ISA_RANK[b.isa_state] || 0) - (ISA_RANK[a.isa_state] || 0)
    || TIER_RANK[b.tier] - TIER_RANK[a.tier] || Date.parse(b.raised_at) - Date.parse(a.raised_at));
  const closed = all.filter(a => a.state === "closed").sort((a, b) => Date.parse(b.closed_at) - Date.parse(a.closed_at)).slice(0, 30);
  document.getElementById("alert-total").textContent = `(${open.length})`;
  document.getElementById("closed-total").textContent = `(${closed.length})`;
  const list = document.getElementById("site-alerts");
  list.replaceChildren(...(open.length ? open.map(alertItem) : [el("li", { className: "none", textContent: L().empty })]));
  document.getElementById("site-closed").replaceChildren(...closed.map(alertItem));
  const unacked = open.filter(a => a.isa_state === "unacknowledged" || a.isa_state === "returned_unacknowledged");
  const ackAll = document.getElementById("ack-all");
  ackAll.hidden = unacked.length < 2 || !may("operator");
  ackAll.textContent = L().ackAll(unacked.length);
  ackAll.onclick = () => act("ack", unacked);
  const hint = document.getElementById("act-hint");
  hint.hidden = may("operator") || !open.length;
  hint.textContent = L().signin;
  state.sensors.forEach(drawCardAlarm);
}

// ------------------------------------------------------------------ header, liveness, language

function drawHeader() {
  const site = state.site;
  if (!site) return;
  const en = window.LW.lang.current() === "en";
  document.getElementById("to-map").textContent = L().map;
  const name = en ? site.name_en || site.id : site.name;
  document.getElementById("site-name").textContent = name;
  document.title = `${name} · 瞭望 Liaowang`;
  const grade = site.hazard_grade ? L().hazard(site.hazard_grade, site.hazard_r) : "";
  const people = !en && site.responsible && site.responsible.length ? ` · ${L().responsible} ${site.responsible.join("、")}` : "";
  document.getElementById("site-meta").textContent = `${en ? COUNTY_EN[site.county] || site.county : site.county}${grade}${people}`;
  drawStatus();
  document.getElementById("alerts-title").textContent = L().alerts;
  document.getElementById("closed-title").textContent = L().closed;
  document.querySelectorAll(".group").forEach(g => {
    const unitDef = state.units.find(u => u.id === g.dataset.unitId);
    g.querySelector("h2").innerHTML = "";
    g.querySelector("h2").append(unitDef
      ? el("span", {}, el("b", { textContent: en ? unitDef.name_en || unitDef.id : unitDef.name }), ` · ${L().unitKind[unitDef.kind] || unitDef.kind} · ${L().grade(unitDef.grade)}`)
      : el("b", { textContent: L().others }));
  });
}

// The site's status chip; while the stream is lost its status is unknown: grey, never the last colour seen.
function drawStatus() {
  const status = document.getElementById("site-status");
  if (!state.site) return;
  const lost = state.link === "lost" || state.link === "denied";
  status.textContent = lost ? L().unknown : t("tier", state.site.status);
  status.style.background = lost ? COLOURS.offline : COLOURS[state.site.status] || "#555";
}

function drawLiveness() {
  const now = new Date();
  const p = n => String(n).padStart(2, "0");
  document.getElementById("clock").textContent = `${p(now.getHours())}:${p(now.getMinutes())}:${p(now.getSeconds())}`;
  const age = document.getElementById("data-age");
  age.textContent = state.newest ? L().newest(ago(state.newest)) : L().noData;
  const withData = state.sensors.filter(s => s.last_ts);
  const allStale = withData.length > 0 && withData.every(s => s.stale);
  const old = state.newest && Date.now() - Date.parse(state.newest) > STALE_BANNER_AFTER_MS;
  const lost = state.link === "lost" || state.link === "denied";
  age.classList.toggle("stale", !!(allStale || old || lost));
  const banner = document.getElementById("live-banner");
  banner.hidden = !(lost || allStale || old);
  banner.textContent = state.link === "denied" ? state.linkDetail : lost ? L().lost : L().staleAll;
  banner.title = lost ? state.linkDetail : "";  // the technical reason, for whoever investigates
  drawStatus();
  document.body.classList.toggle("lost", lost);
  document.body.dataset.link = state.link;
}

function redraw() {
  drawHeader();
  state.sensors.forEach(drawCardText);
  renderAlerts();
  drawLiveness();
  Object.values(charts).forEach(c => c.setOption({}));
}

// ------------------------------------------------------------------ loading and the live stream

async function loadAlerts() {
  const [alerts, oos] = await Promise.all([api(`/api/v1/alerts?site_id=${encodeURIComponent(siteId)}&limit=500`),
                                           api("/api/v1/out-of-service")]);
  state.alerts = new Map(alerts.map(a => [a.id, a]));
  state.outOfService = new Set(oos.filter(e => state.byId[e.sensor_id]).map(e => e.sensor_id));
  renderAlerts();
}

function onEvent(name, data) {
  if (name === "readings") { data.readings.forEach(applyReading); drawLiveness(); }
  else if (name === "alert") {
    const { event, ...alert } = data;
    state.alerts.set(alert.id, alert);
    renderAlerts();
  } else if (name === "site" && state.site) {
    state.site.status = data.status;
    drawHeader();
  }
}

let stream = null;
function connect() {
  if (stream) stream.close();
  stream = window.LW.live.open(siteId, {
    onEvent,
    onState(next, detail) {
      const wasLost = state.link === "lost" || state.link === "denied";
      state.link = next; state.linkDetail = detail;
      drawLiveness();
      if (next === "live" && wasLost) {  // what changed while away: the alarms and the site's status
        loadAlerts().catch(showError);
        api(`/api/v1/sites/${encodeURIComponent(siteId)}`).then(site => { state.site = site; drawHeader(); }).catch(showError);
      }
    },
  });
}

function showError(err) {
  document.body.dataset.error = err.message;
  const banner = document.getElementById("live-banner");
  banner.hidden = false;
  banner.textContent = err.message;
}

async function boot() {
  window.LW.lang.button(document.getElementById("lang"));
  window.LW.session.mount(document.getElementById("signin"));
  await window.LW.session.ready;
  const [site, sensors, units] = await Promise.all([
    api(`/api/v1/sites/${encodeURIComponent(siteId)}`), api(`/api/v1/sensors?site_id=${encodeURIComponent(siteId)}`),
    api(`/api/v1/hazard-units?site_id=${encodeURIComponent(siteId)}`)]);
  Object.assign(state, { site, sensors, units, byId: Object.fromEntries(sensors.map(s => [s.id, s])) });
  state.newest = sensors.map(s => s.last_ts).filter(Boolean).sort().pop() || null;
  // groups: each hazard unit with its sensors, then the sensors of no unit
  const container = document.getElementById("sensors");
  const placed = new Set();
  const groups = units.map(u => ({ id: u.id, sensors: sensors.filter(s => u.sensors.includes(s.id) && !placed.has(s.id)
                                                                                 && placed.add(s.id)) }));
  groups.push({ id: "", sensors: sensors.filter(s => !placed.has(s.id)) });
  for (const group of groups.filter(g => g.sensors.length)) {
    const section = el("section", { className: "group" }, el("h2"), el("div", { className: "cards" }, ...group.sensors.map(card)));
    section.dataset.unitId = group.id;
    container.append(section);
  }
  // each chart's last hour, read once; from here on the live stream appends
  const since = encodeURIComponent(new Date(Date.now() - HOUR_MS).toISOString());
  await Promise.all(sensors.map(async s => {
    const rows = await api(`/api/v1/sensors/${encodeURIComponent(s.id)}/readings?since=${since}&limit=5000`);
    drawChart(s, rows.reverse().map(r => [Date.parse(r.ts), r.value]));
  }));
  await loadAlerts();
  redraw();
  connect();
  window.LW.lang.onChange(redraw);
  window.LW.session.onChange(() => { renderAlerts(); connect(); });  // a new sign-in may see other sites
  setInterval(drawLiveness, 1000);  // the clock and the data's age (no request)
  window.addEventListener("resize", () => Object.values(charts).forEach(c => c.resize()));
  window.liaowangSite = { charts, state };
  window.liaowangReady = true;
}
boot().catch(err => { console.error(err); showError(err); });

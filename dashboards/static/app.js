// The one map (应急管理一张图): county boundaries, sites coloured by status, active alerts, live over SSE.
"use strict";
const TIER_COLOUR = { red: "#e02020", orange: "#ff8c00", yellow: "#f5c400", blue: "#1e6fff", normal: "#2fb344", offline: "#8a8f98" };
// Chinese by default; English with the 中/EN button (remembered in localStorage).
const I18N = {
  // Alarm priorities (报警), not the legal warning levels 预警 Ⅰ–Ⅳ (docs/alarms.md); colours stay for the screen.
  zh: { tier: { red: "紧急", orange: "高", yellow: "中", blue: "低", normal: "正常", offline: "离线" },
        state: { active: "未确认", acknowledged: "已确认", resolved: "已恢复", closed: "已消警", shelved: "已搁置",
                 resolvedUnacked: "已恢复·未确认", latched: "已恢复·锁存待确认" },
        family: { hazard: "重大危险源", gas: "气体泄漏", forest: "森林火灾" },
        flag: { chattering: "频繁报警", suppressed: "检修抑制", source_lost: "信号丢失", first_out: "首发" },
        risk: { major: "重大风险", significant: "较大风险", general: "一般风险", low: "低风险" },
        ui: { title: "聊城市应急管理一张图", alerts: "当前报警", warnings: "发布中的预警", byAlarms: "按报警着色",
              byRisk: "按风险等级着色", noWarnings: "无", lasting: "持续", ack: "确认", close: "消警", shelve: "搁置",
              signin: "登录", link: "链路", ok: "正常", bad: "异常", down: "断开", reconnect: "重连中",
              allFamilies: "全部类别", allCounties: "全部区县", allTiers: "全部优先级" },
        age: ["秒", "分钟", "小时"] },
  en: { tier: { red: "Urgent", orange: "High", yellow: "Medium", blue: "Low", normal: "Normal", offline: "Offline" },
        state: { active: "unacknowledged", acknowledged: "acknowledged", resolved: "resolved", closed: "closed",
                 shelved: "shelved", resolvedUnacked: "resolved, unacknowledged", latched: "cleared, latched until acknowledged" },
        family: { hazard: "major hazard", gas: "gas leak", forest: "forest fire" },
        flag: { chattering: "chattering", suppressed: "suppressed (maintenance)", source_lost: "source lost", first_out: "first out" },
        risk: { major: "major risk", significant: "significant risk", general: "general risk", low: "low risk" },
        ui: { title: "Liaocheng Emergency One Map", alerts: "Active alarms", warnings: "Warnings in force",
              byAlarms: "Colour by alarms", byRisk: "Colour by risk grade", noWarnings: "none", lasting: "for", ack: "Ack", close: "Close",
              shelve: "Shelve", signin: "Sign in", link: "Link", ok: "OK", bad: "degraded", down: "down",
              reconnect: "reconnecting", allFamilies: "All families", allCounties: "All counties", allTiers: "All priorities" },
        age: [" s", " min", " h"] },
};
let LANG = localStorage.getItem("liaowang-lang") === "en" ? "en" : "zh";
const T = () => I18N[LANG];
const TIER_RANK = { red: 4, orange: 3, yellow: 2, blue: 1 };
const ROLE_RANK = { viewer: 0, operator: 1, duty_officer: 2, admin: 3 };
const state = { sites: [], alerts: [], risk: [], warnings: [], token: sessionStorage.getItem("liaowang-token") || "",
                role: null };
const chart = echarts.init(document.getElementById("map"));

function headers(json) {
  const h = {};
  if (state.token) h["Authorization"] = "Bearer " + state.token;
  if (json) h["Content-Type"] = "application/json";
  return h;
}
async function api(path, options = {}) {
  const response = await fetch(path, { ...options, headers: headers(options.body) });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(body.detail || response.statusText);
  return body;
}

function age(iso) {
  const s = Math.max(0, (Date.now() - Date.parse(iso)) / 1000);
  const [sec, min, hour] = T().age;
  if (s < 60) return Math.floor(s) + sec;
  if (s < 3600) return Math.floor(s / 60) + min;
  return Math.floor(s / 3600) + hour;
}

function filtered() {
  const fam = document.getElementById("f-family").value;
  const county = document.getElementById("f-county").value;
  const tier = document.getElementById("f-tier").value;
  const minRank = tier ? TIER_RANK[tier] : 0;
  return {
    sites: state.sites.filter(s => (!county || s.county === county)),
    alerts: state.alerts.filter(a => (!fam || a.family === fam) && (!county || a.county === county) && TIER_RANK[a.tier] >= minRank),
  };
}

// The colour a site is drawn in: its alarm status, or (view "risk") its enterprise's risk grade (重大/较大/一般/低).
function siteColour(s) {
  if (document.getElementById("f-view").value !== "risk") return TIER_COLOUR[s.status];
  const risk = state.risk.find(r => r.site_id === s.id);
  return risk ? TIER_COLOUR[risk.colour] : TIER_COLOUR.offline;
}

function renderMap() {
  const { sites } = filtered();
  const point = s => ({ name: s.name, value: [s.lon, s.lat], site: s, itemStyle: { color: siteColour(s) } });
  const warned = new Set(state.warnings.map(w => w.site_id).filter(Boolean));
  chart.setOption({
    series: [
      { id: "sites", type: "scatter", coordinateSystem: "geo", symbolSize: 14, zlevel: 2,
        data: sites.filter(s => s.status !== "red").map(point),
        label: { show: true, formatter: p => p.name, position: "right", color: "#e6eef7", fontSize: 11 } },
      { id: "red-sites", type: "effectScatter", coordinateSystem: "geo", symbolSize: 18, zlevel: 3,
        rippleEffect: { scale: 4, brushType: "stroke" }, data: sites.filter(s => s.status === "red").map(point),
        label: { show: true, formatter: p => p.name, position: "right", color: "#fff", fontWeight: "bold" } },
      { id: "warned-sites", type: "scatter", coordinateSystem: "geo", symbol: "emptyCircle", symbolSize: 36, zlevel: 4,
        data: sites.filter(s => warned.has(s.id)).map(s => {
          const w = state.warnings.find(x => x.site_id === s.id);
          return { name: s.name, value: [s.lon, s.lat], warning: w,
                   itemStyle: { color: TIER_COLOUR[w.colour], borderColor: TIER_COLOUR[w.colour], borderWidth: 4 } };
        }) },
    ],
  });
}

function renderWarnings() {
  const list = document.getElementById("warnings");
  const t = T();
  document.getElementById("warning-total").textContent = "(" + state.warnings.length + ")";
  if (!state.warnings.length) {
    const li = document.createElement("li");
    li.className = "none";
    li.textContent = t.ui.noWarnings;
    list.replaceChildren(li);
    return;
  }
  list.replaceChildren(...state.warnings.map(w => {
    const li = document.createElement("li");
    li.className = "warning " + w.colour;
    li.dataset.warningId = w.id;
    const subject = (w.subject && (w.subject.name || w.subject.id)) || w.site_id || "";
    li.innerHTML = `<div><b>${w.label_zh || w.level}</b> ${subject} · ${w.category || ""}</div>
      <div class="meta"><span>${w.state_zh || w.state}</span><span>${w.issuer && w.issuer.name ? w.issuer.name : ""}</span>
      <span>${w.issued_at ? age(w.issued_at) : ""}</span></div>`;
    return li;
  }));
}

function renderAlerts() {
  const { alerts } = filtered();
  const list = document.getElementById("alerts");
  const canAck = state.role && ROLE_RANK[state.role] >= ROLE_RANK.operator;
  const canClose = state.role && ROLE_RANK[state.role] >= ROLE_RANK.duty_officer;
  alerts.sort((a, b) => TIER_RANK[b.tier] - TIER_RANK[a.tier] || Date.parse(b.raised_at) - Date.parse(a.raised_at));
  document.getElementById("alert-total").textContent = "(" + alerts.length + ")";
  list.replaceChildren(...alerts.map(a => {
    const li = document.createElement("li");
    li.className = a.tier + (a.kind === "stale" || a.kind === "fault" ? " fault" : "");
    li.dataset.alertId = a.id;
    li.dataset.state = a.state;
    const t = T();
    const stateText = a.latched ? t.state.latched
      : a.state === "resolved" && !a.acknowledged_at ? t.state.resolvedUnacked : t.state[a.state];
    const flags = ["chattering", "suppressed", "source_lost", "first_out"].filter(f => a[f])
      .map(f => `<span class="flag ${f}">${t.flag[f]}</span>`).join("");
    const site = state.sites.find(s => s.id === a.site_id);
    li.innerHTML = `<div><b>${t.tier[a.tier]}</b> ${site ? site.name : a.site_id} · ${a.message}</div>
      <div class="meta"><span class="state">${stateText}</span>${flags}<span>${t.family[a.family] || a.family}</span>
      <span>${a.county}</span><span>${t.ui.lasting} ${age(a.raised_at)}</span><span>${a.rule_id}</span></div>
      <div class="actions"></div>`;
    const actions = li.querySelector(".actions");
    if (canAck && (a.state === "active" || (a.state === "resolved" && !a.acknowledged_at))) actions.append(button(t.ui.ack, "ack", a));
    if (canClose && a.state === "resolved") actions.append(button(t.ui.close, "close", a));
    if (canClose && (a.state === "active" || a.state === "acknowledged")) actions.append(button(t.ui.shelve, "shelve", a));
    return li;
  }));
}

function button(label, action, alert) {
  const b = document.createElement("button");
  b.textContent = label;
  b.className = "act-" + action;
  b.onclick = async () => {
    try {
      if (action === "ack") await api(`/api/v1/alerts/${alert.id}/ack`, { method: "POST", body: JSON.stringify({}) });
      if (action === "close") {
        const note = prompt("消警说明 (必填)");
        if (!note) return;
        const cause = prompt("消警原因 (必填): 误报 / 仪表故障 / 工艺波动 / 检修作业 / 真实险情", "误报");
        if (!cause) return;
        await api(`/api/v1/alerts/${alert.id}/close`, { method: "POST", body: JSON.stringify({ note, cause: cause.trim() }) });
      }
      if (action === "shelve") {
        const reason = prompt("搁置原因 (必填)");
        if (!reason) return;
        const until = new Date(Date.now() + 3600e3).toISOString();
        await api(`/api/v1/alerts/${alert.id}/shelve`, { method: "POST", body: JSON.stringify({ until, reason }) });
      }
      await refresh();
    } catch (err) { window.alert(err.message); }
  };
  return b;
}

function renderCounts() {
  const counts = { red: 0, orange: 0, yellow: 0, blue: 0 };
  state.alerts.filter(a => a.state === "active" || a.state === "acknowledged").forEach(a => counts[a.tier]++);
  for (const t in counts) document.getElementById("n-" + t).textContent = counts[t];
}

async function refresh() {
  const [sites, alerts, risk, warnings] = await Promise.all([
    api("/api/v1/sites"), api("/api/v1/alerts?state=active,acknowledged,resolved,shelved&limit=500"),
    api("/api/v1/risk").catch(() => []), api("/api/v1/warnings?state=issued,adjusted").catch(() => [])]);
  state.sites = sites;
  state.alerts = alerts;
  state.risk = risk;
  state.warnings = warnings;
  renderMap(); renderAlerts(); renderCounts(); renderWarnings();
}

async function refreshHealth() {
  const el = document.getElementById("health-state");
  try {
    const r = await fetch("/healthz");
    const h = await r.json();
    el.textContent = h.ok ? T().ui.ok : T().ui.bad; el.className = h.ok ? "ok" : "bad";
  } catch { el.textContent = T().ui.down; el.className = "bad"; }
}

let pending = null;
function scheduleRefresh() {  // coalesce bursts of events into one refresh
  if (pending) return;
  pending = setTimeout(() => { pending = null; refresh().catch(console.error); }, 250);
}

function connectEvents() {
  // EventSource reconnects by itself after a drop (server sends retry: 2000).
  const source = new EventSource("/api/v1/events");
  source.addEventListener("alert", scheduleRefresh);
  source.addEventListener("site", scheduleRefresh);
  source.addEventListener("warning", scheduleRefresh);
  source.addEventListener("hello", () => { scheduleRefresh(); refreshHealth(); });
  source.onerror = () => { document.getElementById("health-state").textContent = T().ui.reconnect; };
}

async function signIn(token) {
  state.token = token;
  state.role = null;
  document.getElementById("whoami").textContent = "";
  if (!token) { sessionStorage.removeItem("liaowang-token"); renderAlerts(); return; }
  const r = await fetch("/api/v1/whoami", { headers: headers(false) });
  if (!r.ok) { window.alert("令牌无效"); state.token = ""; sessionStorage.removeItem("liaowang-token"); return; }
  state.role = (await r.json()).role;
  sessionStorage.setItem("liaowang-token", token);
  document.getElementById("whoami").textContent = { duty_officer: "值班员", operator: "操作员", viewer: "只读" }[state.role] || "";
  renderAlerts();
}

function applyLanguage() {
  const t = T();
  document.documentElement.lang = LANG === "en" ? "en" : "zh-CN";
  document.getElementById("title").textContent = t.ui.title;
  document.getElementById("alerts-title").textContent = t.ui.alerts;
  document.getElementById("warnings-title").textContent = t.ui.warnings;
  const view = document.getElementById("f-view").options;
  view[0].text = t.ui.byAlarms; view[1].text = t.ui.byRisk;
  document.getElementById("signin-btn").textContent = t.ui.signin;
  document.getElementById("link-label").textContent = t.ui.link;
  document.getElementById("lang").textContent = LANG === "en" ? "中文" : "EN";
  for (const tier of ["red", "orange", "yellow", "blue"]) document.getElementById("label-" + tier).textContent = t.tier[tier];
  const fam = document.getElementById("f-family").options;
  fam[0].text = t.ui.allFamilies; ["hazard", "gas", "forest"].forEach((f, i) => { fam[i + 1].text = t.family[f]; });
  document.getElementById("f-county").options[0].text = t.ui.allCounties;
  document.getElementById("f-tier").options[0].text = t.ui.allTiers;
}

async function boot() {
  const geo = await (await fetch("/static/data/liaocheng.geojson")).json();
  echarts.registerMap("liaocheng", geo);
  chart.setOption({
    backgroundColor: "#0b1a2b",
    tooltip: { trigger: "item", formatter: p => {
      if (p.data && p.data.warning) return `${p.data.warning.label_zh} · ${p.data.warning.category}<br>${p.data.warning.headline || ""}`;
      if (!(p.data && p.data.site)) return p.name;
      const risk = state.risk.find(r => r.site_id === p.data.site.id);
      return `${p.data.site.name}<br>${p.data.site.county} · ${T().tier[p.data.site.status]}`
        + (risk ? `<br>${T().risk[risk.grade] || risk.grade_zh}` : "");
    } },
    geo: { map: "liaocheng", roam: true, label: { show: true, color: "#9fb3c8" },
           itemStyle: { areaColor: "#13314f", borderColor: "#4a86c5" }, emphasis: { itemStyle: { areaColor: "#1d4f80" } } },
    series: [],
  });
  chart.on("click", p => { if (p.data && p.data.site) location.href = "/sites/" + encodeURIComponent(p.data.site.id); });
  window.addEventListener("resize", () => chart.resize());
  const countySelect = document.getElementById("f-county");
  geo.features.forEach(f => countySelect.append(new Option(f.properties.name, f.properties.name)));
  ["f-family", "f-county", "f-tier", "f-view"].forEach(id => document.getElementById(id).onchange = () => { renderMap(); renderAlerts(); });
  document.getElementById("signin-btn").onclick = () => signIn(document.getElementById("token").value.trim());
  document.getElementById("lang").onclick = () => {
    LANG = LANG === "zh" ? "en" : "zh";
    localStorage.setItem("liaowang-lang", LANG);
    applyLanguage(); renderAlerts(); refreshHealth();
  };
  applyLanguage();
  if (state.token) await signIn(state.token);
  await refresh();
  refreshHealth();
  connectEvents();
  setInterval(renderAlerts, 30000);  // ages only; data arrives over SSE
  window.liaowang = { state, chart };  // for the browser tests and the curious
  window.liaowangReady = true;
}
boot().catch(err => { console.error(err); document.body.dataset.error = err.message; });

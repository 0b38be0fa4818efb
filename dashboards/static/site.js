// Site view: every sensor with its live value, unit, setpoints, trend and last hour; the site's alerts and history.
"use strict";
const COLOURS = { red: "#e02020", orange: "#ff8c00", yellow: "#f5c400", blue: "#1e6fff", normal: "#2fb344", offline: "#8a8f98" };
const TIER_ZH = { red: "紧急报警", orange: "高报警", yellow: "中报警", blue: "低报警", normal: "正常", offline: "离线" };
const EVENT_ZH = { raised: "报警", reactivated: "再次报警", escalated: "升级", deescalated: "降级", acknowledged: "确认", resolved: "恢复正常", closed: "消警",
  shelved: "搁置", unshelved: "搁置到期", returned: "恢复(待确认)", source_lost: "信号丢失", source_restored: "信号恢复",
  chattering: "频繁报警", notification_escalated: "逐级上报" };
const siteId = decodeURIComponent(location.pathname.split("/").filter(Boolean).pop());
const token = sessionStorage.getItem("liaowang-token") || "";
const charts = {};

async function api(path) {
  const r = await fetch(path, { headers: token ? { Authorization: "Bearer " + token } : {} });
  if (!r.ok) throw new Error((await r.json().catch(() => ({}))).detail || r.statusText);
  return r.json();
}

function trendArrow(points) {
  if (points.length < 3) return "";
  const recent = points.slice(-Math.min(points.length, 12));
  const delta = recent[recent.length - 1][1] - recent[0][1];
  const span = Math.max(...points.map(p => p[1])) - Math.min(...points.map(p => p[1])) || 1;
  return Math.abs(delta) < 0.05 * span ? "→" : delta > 0 ? "↑" : "↓";
}

function sensorCard(sensor) {
  const card = document.createElement("div");
  card.className = "sensor";
  card.dataset.sensorId = sensor.id;
  const rungs = sensor.setpoints.map(s => `${s.level} ${s.set}`).join(" · ") || "无设定值";
  card.innerHTML = `<h3><span>${sensor.name}</span><span class="setpoints">${sensor.id}</span></h3>
    <div><span class="value"></span> <span class="unit">${sensor.unit}</span><span class="trend"></span></div>
    <div class="setpoints">设定值 ${rungs}</div><div class="chart"></div>`;
  return card;
}

async function drawSensor(sensor, card) {
  const since = new Date(Date.now() - 3600e3).toISOString();
  const rows = await api(`/api/v1/sensors/${encodeURIComponent(sensor.id)}/readings?since=${encodeURIComponent(since)}&limit=5000`);
  const points = rows.reverse().map(r => [Date.parse(r.ts), r.value]);
  const value = card.querySelector(".value");
  value.textContent = sensor.last_value === null ? "—" : sensor.last_value;
  value.classList.toggle("stale", sensor.stale);
  card.querySelector(".trend").textContent = trendArrow(points);
  const chart = charts[sensor.id] || (charts[sensor.id] = echarts.init(card.querySelector(".chart")));
  chart.setOption({
    animation: false, grid: { left: 40, right: 10, top: 10, bottom: 20 },
    xAxis: { type: "time", min: Date.now() - 3600e3, max: Date.now(), axisLabel: { color: "#9fb3c8", fontSize: 10 } },
    yAxis: { type: "value", scale: true, axisLabel: { color: "#9fb3c8", fontSize: 10 }, splitLine: { lineStyle: { color: "#22415f" } } },
    series: [{ type: "line", showSymbol: points.length < 30, data: points, lineStyle: { color: "#4ac0ff" },
      markLine: { symbol: "none", silent: true, label: { formatter: p => p.name, color: "#e6eef7", fontSize: 10 },
        data: sensor.setpoints.map(s => ({ name: s.level, yAxis: s.set,
          lineStyle: { type: "dashed", color: /HH|LL|level2|confirmed/.test(s.level) ? COLOURS.red : COLOURS.orange } })) } }],
  });
}

function renderAlerts(alerts) {
  const list = document.getElementById("site-alerts");
  const rank = { red: 4, orange: 3, yellow: 2, blue: 1 };
  alerts.sort((a, b) => rank[b.tier] - rank[a.tier] || Date.parse(b.raised_at) - Date.parse(a.raised_at));
  document.getElementById("alert-total").textContent = `(${alerts.length})`;
  list.replaceChildren(...alerts.map(a => {
    const li = document.createElement("li");
    li.className = a.tier;
    li.dataset.alertId = a.id;
    const history = a.history.map(h => `<li>${h.at.slice(5, 19).replace("T", " ")} ${EVENT_ZH[h.event] || h.event}`
      + `${h.by ? " · " + h.by : ""}${h.note ? " · " + h.note : ""}</li>`).join("");
    li.innerHTML = `<div><b>${TIER_ZH[a.tier]}</b> ${a.message}</div><ul class="history">${history}</ul>`;
    return li;
  }));
}

async function refresh() {
  const [site, sensors, alerts] = await Promise.all([
    api(`/api/v1/sites/${encodeURIComponent(siteId)}`), api(`/api/v1/sensors?site_id=${encodeURIComponent(siteId)}`),
    api(`/api/v1/alerts?site_id=${encodeURIComponent(siteId)}&limit=100`)]);
  document.title = `${site.name} · 瞭望`;
  document.getElementById("site-name").textContent = site.name;
  const grade = site.hazard_grade ? ` · 重大危险源 ${["", "一", "二", "三", "四"][site.hazard_grade]}级 (R=${site.hazard_r ?? "?"})` : "";
  const people = site.responsible && site.responsible.length ? ` · 责任人 ${site.responsible.join("、")}` : "";
  document.getElementById("site-meta").textContent = `${site.county}${grade}${people}`;
  const status = document.getElementById("site-status");
  status.textContent = TIER_ZH[site.status] || site.status;
  status.style.background = COLOURS[site.status] || "#555";
  const container = document.getElementById("sensors");
  for (const sensor of sensors) {
    let card = container.querySelector(`[data-sensor-id="${CSS.escape(sensor.id)}"]`);
    if (!card) { card = sensorCard(sensor); container.append(card); }
    await drawSensor(sensor, card);
  }
  renderAlerts(alerts);
}

async function boot() {
  await refresh();
  const source = new EventSource("/api/v1/events");
  let pending = null;
  const schedule = () => { if (!pending) pending = setTimeout(() => { pending = null; refresh().catch(console.error); }, 500); };
  source.addEventListener("alert", schedule);
  source.addEventListener("site", schedule);
  setInterval(() => refresh().catch(console.error), 15000);  // live values between alert events
  window.addEventListener("resize", () => Object.values(charts).forEach(c => c.resize()));
  window.liaowangSite = { charts };
  window.liaowangReady = true;
}
boot().catch(err => { console.error(err); document.body.dataset.error = err.message; });

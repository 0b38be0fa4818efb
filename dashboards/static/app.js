// The one map (应急管理一张图): counties, sites coloured by status or risk, warnings as areas, the alarm list,
// annunciation and liveness — live over SSE. The pieces: maptext.js (words), maplayer.js (ECharts),
// alertlist.js (the list), annunciator.js (sound, flash, notifications), actions.js (dialogs),
// session.js (sign-in) and lang.js (中文/EN).
"use strict";
const LIVENESS_POLL_MS = 5000;   // how often the newest data's age is asked (also tells that the server answers)
const HEALTH_POLL_MS = 15000;
const SSE_GRACE_MS = 5000;       // a page just opened is "connecting", not "lost", for this long
const T = () => window.LW.mapText.t();
const $ = id => document.getElementById(id);
const state = { sites: [], alerts: [], risk: [], warnings: [], sensors: new Map(), tab: "open", shownWarning: null };
const live = { sse: "connecting", everOpen: false, bootAt: Date.now(), liveness: null, fetchedAt: 0, failed: false, healthOk: true };
let chart = null;

// ------------------------------------------------------------------ data

function decorate(a) {
  const t = T();
  const site = state.sites.find(s => s.id === a.site_id);
  const sensor = state.sensors.get(a.subject);
  const named = thing => window.LW.lang.pick({ zh: thing.name, en: thing.name_en || thing.name });
  a.siteName = a.site_id === "_system" ? t.family.system : site ? named(site) : a.site_id;
  a.sensorName = sensor ? named(sensor) : a.subject;
  a.displayTitle = window.LW.lang.pick(a.title) || `${a.siteName} ${a.sensorName}`;
  a.displayText = window.LW.lang.pick(a.text) || a.message;
  return a;
}

async function loadSensors() {
  const sensors = await window.LW.session.fetch("/api/v1/sensors");
  state.sensors = new Map(sensors.map(s => [s.id, s]));
}

async function refresh() {
  const get = path => window.LW.session.fetch(path);
  const [sites, alerts, risk, warnings] = await Promise.all([
    get("/api/v1/sites"), get("/api/v1/alerts?state=active,acknowledged,resolved,shelved&limit=2000"),
    get("/api/v1/risk").catch(err => { showProblem("risk", err); return []; }),
    get("/api/v1/warnings?state=issued,adjusted").catch(err => { showProblem("warnings", err); return []; })]);
  Object.assign(state, { sites, alerts, risk, warnings });
  renderAll();
}

function showProblem(what, err) {  // nothing silent: a part that failed to load says so on the page
  console.error(what, err);
  document.body.dataset.error = `${what}: ${err.message}`;
}

// ------------------------------------------------------------------ drawing

function filters() {
  return { family: $("f-family").value, county: $("f-county").value, tier: $("f-tier").value, state: $("f-state").value,
           text: $("search").value.trim(), tab: state.tab };
}

function renderAll() {
  state.alerts.forEach(decorate);
  const f = filters();
  const sites = state.sites.filter(s => !f.county || s.county === f.county);
  window.LW.mapLayer.render({ sites, warnings: state.warnings, risk: state.risk, view: $("f-view").value });
  const shown = window.LW.alertList.render(state.alerts, f);
  $("alert-total").textContent = `(${shown})`;
  const shelved = state.alerts.filter(a => a.state === "shelved").length;
  $("tab-shelved").textContent = `${T().ui.shelved} (${shelved})`;
  renderCounts();
  renderWarnings();
  window.LW.annunciator.update(state.alerts);
  drawSoundControls(window.LW.annunciator.status());
  if (state.shownWarning) {
    const again = state.warnings.find(w => w.id === state.shownWarning);
    if (again) showWarning(again); else hideWarning();
  }
}

function renderCounts() {
  const counts = { red: 0, orange: 0, yellow: 0, blue: 0 };
  const fresh = new Set();
  state.alerts.filter(a => a.state === "active" || a.state === "acknowledged").forEach(a => {
    counts[a.tier]++;
    if (window.LW.annunciator.flashing(a)) fresh.add(a.tier);
  });
  for (const tier in counts) {
    $("n-" + tier).textContent = counts[tier];
    $("n-" + tier).parentElement.classList.toggle("flash", fresh.has(tier));
  }
}

function warningSubject(w) { return (w.subject && (w.subject.name || w.subject.id)) || w.site_id || ""; }

function renderWarnings() {
  const t = T();
  const list = $("warnings");
  $("warning-total").textContent = `(${state.warnings.length})`;
  if (!state.warnings.length) {
    list.replaceChildren(Object.assign(document.createElement("li"), { className: "none", textContent: t.ui.noWarnings }));
    return;
  }
  list.replaceChildren(...state.warnings.map(w => {
    const li = Object.assign(document.createElement("li"), { className: "warning " + w.colour, tabIndex: 0 });
    li.dataset.warningId = w.id;
    const level = window.LW.lang.current() === "en" ? `${t.ui.warning} ${w.level_roman} (${t.colour[w.colour]})` : w.label_zh;
    li.innerHTML = `<div><b class="level"></b> <span class="subject"></span> · <span class="category"></span></div>
      <div class="meta"><span class="wstate"></span><span class="issuer"></span><span class="when"></span></div>`;
    li.querySelector(".level").textContent = level || w.level;
    li.querySelector(".subject").textContent = warningSubject(w);
    li.querySelector(".category").textContent = w.category || "";
    li.querySelector(".wstate").textContent = window.LW.lang.current() === "en" ? w.state : w.state_zh || w.state;
    li.querySelector(".issuer").textContent = (w.issuer && w.issuer.name) || "";
    li.querySelector(".when").textContent = w.issued_at ? formatTime(w.issued_at) : "";
    li.onclick = () => showWarning(w);
    li.onkeydown = e => { if (e.key === "Enter") showWarning(w); };
    return li;
  }));
}

// The warning's art. 64 particulars (突发事件应对法 第六十四条): category, level, start, area, what to watch,
// measures, issuer and time issued.
function showWarning(w) {
  const t = T();
  state.shownWarning = w.id;
  const box = $("warning-detail");
  box.hidden = false;
  box.className = "warning-detail " + w.colour;
  box.dataset.warningId = w.id;
  const level = window.LW.lang.current() === "en" ? `${w.level_roman} · ${t.colour[w.colour]}` : `${w.level_roman} · ${w.label_zh}`;
  const rows = [[t.ui.category, w.category], [t.ui.level, level], [t.ui.state, window.LW.lang.current() === "en" ? w.state : w.state_zh],
                [t.ui.start, w.onset && formatTime(w.onset)], [t.ui.expires, w.expires && formatTime(w.expires)],
                [t.ui.area, w.area && w.area.desc], [t.ui.issuer, w.issuer && w.issuer.name],
                [t.ui.issuedAt, w.issued_at && formatTime(w.issued_at)]];
  const h = Object.assign(document.createElement("h3"), { textContent: `${t.ui.warning} · ${warningSubject(w)}` });
  const close = Object.assign(document.createElement("button"), { type: "button", className: "close-detail", textContent: t.ui.closeDetail });
  close.onclick = hideWarning;
  const dl = document.createElement("dl");
  rows.filter(([, v]) => v).forEach(([k, v]) => {
    dl.append(Object.assign(document.createElement("dt"), { textContent: k }), Object.assign(document.createElement("dd"), { textContent: v }));
  });
  const items = (title, measures, cls) => {
    const section = Object.assign(document.createElement("section"), { className: cls });
    section.append(Object.assign(document.createElement("h4"), { textContent: title }));
    const ul = document.createElement("ul");
    (measures || []).forEach(m => ul.append(Object.assign(document.createElement("li"), { textContent: m.text || m })));
    section.append(ul);
    return section;
  };
  box.replaceChildren(h, close, dl, items(t.ui.watch, w.watch, "watch"), items(t.ui.measures, w.measures, "measures"));
}

function hideWarning() { state.shownWarning = null; $("warning-detail").hidden = true; }

// ------------------------------------------------------------------ time, liveness

const clockFormat = () => new Intl.DateTimeFormat(window.LW.lang.current() === "en" ? "en-GB" : "zh-CN", {
  timeZone: "Asia/Shanghai", year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit",
  second: "2-digit", hour12: false });
function formatTime(iso) { return clockFormat().format(new Date(iso)); }

function ageText(seconds) {
  const [sec, min, hour, day] = T().age;
  if (seconds < 60) return Math.floor(seconds) + sec;
  if (seconds < 3600) return Math.floor(seconds / 60) + min;
  if (seconds < 86400) return Math.floor(seconds / 3600) + hour;
  return Math.floor(seconds / 86400) + day;
}

function dataAge() {
  if (!live.liveness || live.liveness.age_s === null) return null;
  return live.liveness.age_s + (Date.now() - live.fetchedAt) / 1000;
}

function linkLost() {
  const sseLost = live.sse !== "open" && (live.everOpen || Date.now() - live.bootAt > SSE_GRACE_MS);
  return sseLost || live.failed;
}

function dataStale() {
  if (!live.liveness) return false;  // not asked yet
  const age = dataAge();
  return age === null || age > live.liveness.stale_after_s;
}

// Never green unless the stream is open and the data fresh: lost or stale is a red banner and greyed values.
function renderLiveness() {
  const t = T();
  $("clock").textContent = clockFormat().format(new Date());
  const lost = linkLost(), stale = dataStale(), age = dataAge();
  $("data-age").textContent = age === null ? "" : t.ui.dataAge(ageText(age));
  const el = $("health-state");
  if (lost) { el.textContent = live.sse === "open" ? t.ui.down : t.ui.reconnect; el.className = "bad"; }
  else if (stale) { el.textContent = t.ui.stale; el.className = "bad"; }
  else if (live.sse !== "open") { el.textContent = "…"; el.className = "pending"; }
  else if (!live.healthOk) { el.textContent = t.ui.bad; el.className = "warn"; }
  else { el.textContent = t.ui.ok; el.className = "ok"; }
  const banner = $("banner");
  const message = lost ? t.ui.lost : stale ? (age === null ? t.ui.noData : t.ui.staleData(ageText(age))) : "";
  banner.hidden = !message;
  banner.textContent = message;
  document.body.classList.toggle("degraded", !!message);
  document.body.dataset.link = lost ? "lost" : stale ? "stale" : live.sse === "open" ? "ok" : "connecting";
}

async function pollLiveness() {
  try {
    live.liveness = await window.LW.session.fetch("/api/v1/liveness");
    live.fetchedAt = Date.now();
    live.failed = false;
  } catch (err) {
    live.failed = true;
    console.warn("liveness:", err.message);
  }
  renderLiveness();
}

async function pollHealth() {
  try { live.healthOk = (await fetch("/healthz")).ok; } catch { live.healthOk = false; }
}

let pending = null;
function scheduleRefresh() {  // coalesce bursts of events into one refresh
  if (pending) return;
  pending = setTimeout(() => { pending = null; refresh().catch(err => showProblem("refresh", err)); pollLiveness(); }, 250);
}

// The event stream, read with fetch rather than EventSource: it carries the sign-in's credentials (an
// EventSource cannot send a header), so a scoped operator gets only their sites' events and a server
// without public reads answers at all. Reconnects 2 s after any end; a new sign-in reopens it. Every event
// has an id: a reconnect sends the last one (Last-Event-ID) and the server replays what was missed first; a
// "reset" event (what was missed is no longer kept) reloads everything, as a fresh page would.
let streamAbort = null;
let lastEventId = null;
const HANDLERS = { alert: scheduleRefresh, site: scheduleRefresh, warning: scheduleRefresh, reset: scheduleRefresh,
                   hello: () => { scheduleRefresh(); pollLiveness(); pollHealth(); } };

function dispatchFrame(frame) {
  const id = (frame.match(/^id: ?(.*)$/m) || [])[1];
  if (id !== undefined) lastEventId = id;
  const event = (frame.match(/^event: ?(.*)$/m) || [])[1];
  if (event && HANDLERS[event]) HANDLERS[event]();
}

async function readStream(signal) {
  const resume = lastEventId === null ? {} : { "Last-Event-ID": lastEventId };
  const response = await fetch("/api/v1/events", { headers: { Accept: "text/event-stream", ...window.LW.session.authHeader(), ...resume },
                                                   signal, cache: "no-store" });
  if (!response.ok) throw new Error(`events: HTTP ${response.status}`);
  live.sse = "open"; live.everOpen = true; renderLiveness();
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value.replace(/\r\n/g, "\n");
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      dispatchFrame(buffer.slice(0, end));
      buffer = buffer.slice(end + 2);
    }
  }
}

async function connectEvents() {
  if (streamAbort) streamAbort.abort();
  const abort = streamAbort = new AbortController();
  while (!abort.signal.aborted) {
    try { await readStream(abort.signal); }
    catch (err) { if (!abort.signal.aborted) console.warn("event stream:", err.message); }
    if (abort.signal.aborted) return;
    live.sse = "lost";
    renderLiveness();
    await new Promise(resolve => setTimeout(resolve, 2000));
  }
}

// ------------------------------------------------------------------ controls and language

function drawSoundControls(status) {
  const t = T();
  $("silence").textContent = t.ui.silence;
  $("silence").disabled = !status.sounding;
  $("silence").classList.toggle("sounding", !!status.sounding);
  $("mute").textContent = status.muted ? t.ui.unmute : t.ui.mute;
  $("mute").setAttribute("aria-pressed", String(status.muted));
  $("enable-sound").textContent = t.ui.enableSound;
  $("enable-sound").hidden = !status.blocked;
  $("notify").textContent = t.ui.notify;
  $("notify").hidden = !("Notification" in window) || Notification.permission !== "default";
}

function applyLanguage() {
  const t = T();
  document.title = `${t.ui.title} · 瞭望`;
  $("title").textContent = t.ui.title;
  $("brand").textContent = window.LW.lang.current() === "en" ? "Liaowang" : "瞭望 Liaowang";
  $("alerts-title").textContent = t.ui.alerts;
  $("warnings-title").textContent = t.ui.warnings;
  $("clock-label").textContent = t.ui.clock;
  $("nav-history").textContent = t.ui.navHistory;
  $("nav-stats").textContent = t.ui.navStats;
  $("link-label").textContent = t.ui.link;
  $("tab-open").textContent = t.ui.open;
  $("search").placeholder = t.ui.search;
  const view = $("f-view").options;
  view[0].text = t.ui.byAlarms; view[1].text = t.ui.byRisk;
  for (const tier of ["red", "orange", "yellow", "blue"]) $("label-" + tier).textContent = t.tier[tier];
  const fam = $("f-family").options;
  fam[0].text = t.ui.allFamilies; ["hazard", "gas", "forest", "system"].forEach((f, i) => { fam[i + 1].text = t.family[f]; });
  const county = $("f-county").options;
  county[0].text = t.ui.allCounties;
  for (let i = 1; i < county.length; i++) county[i].text = window.LW.mapText.county(county[i].value);
  const tiers = $("f-tier").options;
  tiers[0].text = t.ui.allTiers; ["red", "orange", "yellow", "blue"].forEach((x, i) => { tiers[i + 1].text = t.tier[x]; });
  const states = $("f-state").options;
  states[0].text = t.ui.allStates; states[1].text = t.state.active; states[2].text = t.state.acknowledged;
  states[3].text = t.state.resolved;
  window.LW.mapLayer.legend($("legend"), $("f-view").value);
}

function selectTab(tab) {
  state.tab = tab;
  $("tab-open").setAttribute("aria-selected", String(tab === "open"));
  $("tab-shelved").setAttribute("aria-selected", String(tab === "shelved"));
  window.LW.alertList.resetPage();
  renderAll();
}

async function boot() {
  const geo = await (await fetch("/static/data/liaocheng.geojson")).json();
  chart = window.LW.mapLayer.init($("map"), geo, {
    onSite: site => { location.href = "/sites/" + encodeURIComponent(site.id); },
    onWarning: showWarning,
  });
  geo.features.forEach(f => $("f-county").append(new Option(f.properties.name, f.properties.name)));
  window.LW.alertList.init({ list: $("alerts"), pager: $("pager"), toolbar: $("toolbar"), onActed: refresh });
  ["f-family", "f-county", "f-tier", "f-state", "f-view"].forEach(id => $(id).onchange = () => {
    window.LW.alertList.resetPage();
    if (id === "f-view") window.LW.mapLayer.legend($("legend"), $("f-view").value);
    renderAll();
  });
  $("search").oninput = () => { window.LW.alertList.resetPage(); renderAll(); };
  $("tab-open").onclick = () => selectTab("open");
  $("tab-shelved").onclick = () => selectTab("shelved");
  $("silence").onclick = () => window.LW.annunciator.silence();
  $("mute").onclick = () => window.LW.annunciator.setMuted(!window.LW.annunciator.muted());
  $("enable-sound").onclick = () => window.LW.annunciator.enable();
  $("notify").onclick = () => Notification.requestPermission().then(() => drawSoundControls(window.LW.annunciator.status()));
  window.LW.annunciator.onChange(drawSoundControls);
  window.LW.lang.button($("lang"));
  window.LW.lang.onChange(() => { applyLanguage(); renderAll(); renderLiveness(); });
  window.LW.session.mount($("signin"));
  window.LW.session.onChange(() => {
    Promise.all([loadSensors(), refresh()]).catch(err => showProblem("refresh", err));
    if (streamAbort) connectEvents();  // the stream follows the sign-in's site scope
  });
  applyLanguage();
  await window.LW.session.ready;
  const settings = await window.LW.session.fetch("/api/v1/ui-settings");
  window.LW.actions.configure({ maxShelveS: settings.shelving.max_s, ackNoteRequired: settings.ack_note_required });
  window.LW.alertList.configure({ protectedTiers: settings.shelving.protected_tiers, protectedRole: settings.shelving.protected_role });
  await loadSensors();
  await refresh();
  connectEvents();
  pollLiveness();
  pollHealth();
  setInterval(pollLiveness, LIVENESS_POLL_MS);
  setInterval(pollHealth, HEALTH_POLL_MS);
  setInterval(renderLiveness, 1000);
  setInterval(() => window.LW.alertList.redraw(), 30000);  // ages only; data arrive over SSE
  window.liaowang = { state, chart, live };  // for the browser tests and the curious
  window.liaowangReady = true;
}
boot().catch(err => { console.error(err); document.body.dataset.error = err.message; });

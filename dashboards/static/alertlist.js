// The map page's alarm list: window.LW.alertList (load after session.js, lang.js, maptext.js, actions.js, annunciator.js).
//   LW.alertList.init({list, pager, toolbar, onActed})  elements: #alerts, #pager; onActed() refreshes the data
//   LW.alertList.render(alerts, filters)  filters: {family, county, tier, state, text, tab: "open" | "shelved"}
//   LW.alertList.selected()               -> ids of the selected alarms
//   LW.alertList.configure({protectedTiers, protectedRole}) -> priorities only that role may shelve (shelving settings)
// Grouped by site (collapsible, worst priority first), 50 alarms a page, checkboxes for bulk acknowledge.
// Each alarm: <li class="alert {tier}" data-alert-id data-state>, its actions in .actions (buttons .act-ack …).
(function () {
  "use strict";
  const RANK = { red: 4, orange: 3, yellow: 2, blue: 1 };
  const PAGE = 50;
  const T = () => window.LW.mapText.t();
  const selected = new Set();
  const collapsed = new Set();
  let els = null;
  let page = 0;
  let shown = [];      // the alarms of the current page, in order
  let matching = [];   // every alarm the filters keep
  let lastArgs = null;
  let shelving = { protectedTiers: ["red"], protectedRole: "admin" };

  const ackable = a => a.state === "active" || (a.state === "resolved" && !a.acknowledged_at);
  const mayAct = (a, role) => window.LW.session.may(role) && window.LW.session.covers(a.site_id);

  function age(iso) {
    const s = Math.max(0, (Date.now() - Date.parse(iso)) / 1000);
    const [sec, min, hour, day] = T().age;
    if (s < 60) return Math.floor(s) + sec;
    if (s < 3600) return Math.floor(s / 60) + min;
    if (s < 86400) return Math.floor(s / 3600) + hour;
    return Math.floor(s / 86400) + day;
  }

  function stateText(a) {
    const t = T();
    if (a.latched && a.state === "active" && a.condition_active === false) return t.state.latched;
    return a.state === "resolved" && !a.acknowledged_at ? t.state.resolvedUnacked : t.state[a.state] || a.state;
  }

  function keep(a, f) {
    if (f.tab === "shelved" ? a.state !== "shelved" : a.state === "shelved") return false;
    if (f.family && a.family !== f.family) return false;
    if (f.county && a.county !== f.county) return false;
    if (f.tier && a.tier !== f.tier) return false;
    if (f.state === "unacked" && !ackable(a)) return false;
    if (f.state && f.state !== "unacked" && a.state !== f.state) return false;
    if (f.text) {
      const hay = [a.displayTitle, a.displayText, a.siteName, a.sensorName, a.subject, a.site_id, a.message, a.county,
                   a.text && a.text.zh, a.text && a.text.en, a.rule_id].join(" ").toLowerCase();
      if (!f.text.toLowerCase().split(/\s+/).filter(Boolean).every(word => hay.includes(word))) return false;
    }
    return true;
  }

  // Sites by their worst alarm (then their newest), alarms in a site by priority, unacknowledged first, newest first.
  function order(alerts) {
    const worst = {};
    for (const a of alerts) {
      const w = worst[a.site_id] || (worst[a.site_id] = { rank: 0, newest: 0 });
      w.rank = Math.max(w.rank, RANK[a.tier] || 0);
      w.newest = Math.max(w.newest, Date.parse(a.raised_at));
    }
    return alerts.slice().sort((a, b) => {
      const wa = worst[a.site_id], wb = worst[b.site_id];
      return wb.rank - wa.rank || wb.newest - wa.newest || a.site_id.localeCompare(b.site_id)
        || RANK[b.tier] - RANK[a.tier] || ackable(b) - ackable(a) || Date.parse(b.raised_at) - Date.parse(a.raised_at);
    });
  }

  function button(label, kind, alert) {
    const b = Object.assign(document.createElement("button"), { textContent: label, className: "act-" + kind, type: "button" });
    b.onclick = event => { event.stopPropagation(); act(kind, [alert]); };
    return b;
  }

  async function act(kind, alerts) {
    const result = await window.LW.actions.run(kind, alerts);
    result.done.forEach(id => selected.delete(id));
    if (!result.cancelled) await els.onActed();
  }

  function item(a) {
    const t = T();
    const li = document.createElement("li");
    li.className = `alert ${a.tier}` + (a.kind === "stale" || a.level === "fault" ? " fault" : "")
      + (window.LW.annunciator.flashing(a) ? " flash" : "") + (selected.has(a.id) ? " selected" : "");
    li.dataset.alertId = a.id;
    li.dataset.state = a.state;
    li.dataset.siteId = a.site_id;
    const flags = ["chattering", "suppressed", "source_lost", "first_out"].filter(f => a[f])
      .map(f => `<span class="flag ${f}">${t.flag[f]}</span>`).join("");
    li.innerHTML = `<div class="line"><span class="check"></span><b class="prio">${t.tier[a.tier]}</b>
      <span class="title"></span></div><div class="msg"></div>
      <div class="meta"><span class="state">${stateText(a)}</span>${flags}<span>${t.family[a.family] || a.family}</span>
      <span>${window.LW.mapText.county(a.county || "")}</span><span>${t.ui.lasting} ${age(a.raised_at)}</span></div>
      <div class="actions"></div>`;
    li.querySelector(".title").textContent = a.displayTitle;
    li.querySelector(".msg").textContent = a.displayText;
    if (ackable(a) && mayAct(a, "operator")) {
      const box = Object.assign(document.createElement("input"), { type: "checkbox", className: "pick", checked: selected.has(a.id) });
      box.setAttribute("aria-label", t.ui.ack);
      box.onclick = event => event.stopPropagation();
      box.onchange = () => {
        if (box.checked) selected.add(a.id); else selected.delete(a.id);
        window.LW.annunciator.seen(a);
        li.classList.toggle("selected", box.checked);
        li.classList.remove("flash");
        drawToolbar();
      };
      li.querySelector(".check").append(box);
    }
    const actions = li.querySelector(".actions");
    if (ackable(a) && mayAct(a, "operator")) actions.append(button(t.ui.ack, "ack", a));
    if (a.state === "resolved" && mayAct(a, "duty_officer")) actions.append(button(t.ui.close, "close", a));
    const shelfRole = shelving.protectedTiers.includes(a.tier) ? shelving.protectedRole : "duty_officer";
    if ((a.state === "active" || a.state === "acknowledged") && mayAct(a, "duty_officer") && mayAct(a, shelfRole)) {
      actions.append(button(t.ui.shelve, "shelve", a));
    }
    if (a.state === "shelved" && mayAct(a, "duty_officer")) actions.append(button(t.ui.unshelve, "unshelve", a));
    actions.append(Object.assign(document.createElement("a"), {  // the alarm's own page: history, chart, measures
      className: "act-detail", href: `/alerts/${encodeURIComponent(a.id)}`, textContent: t.ui.detail }));
    const see = () => { window.LW.annunciator.seen(a); li.classList.remove("flash"); };
    li.addEventListener("mouseenter", see);
    li.addEventListener("click", see);
    return li;
  }

  function group(siteId, alerts, total) {
    const t = T();
    const li = Object.assign(document.createElement("li"), { className: "group" });
    li.dataset.siteId = siteId;
    const worst = alerts.reduce((w, a) => (RANK[a.tier] > RANK[w] ? a.tier : w), "blue");
    const head = Object.assign(document.createElement("button"), { type: "button", className: "group-head " + worst });
    head.setAttribute("aria-expanded", String(!collapsed.has(siteId)));
    head.innerHTML = `<span class="caret">${collapsed.has(siteId) ? "▸" : "▾"}</span><span class="site"></span>
      <span class="n">${t.ui.alarmsOf(total)}</span>`;
    head.querySelector(".site").textContent = alerts[0].siteName;
    head.onclick = () => { if (collapsed.has(siteId)) collapsed.delete(siteId); else collapsed.add(siteId); redraw(); };
    const ol = Object.assign(document.createElement("ol"), { className: "group-items" });
    if (!collapsed.has(siteId)) ol.append(...alerts.map(item));
    li.append(head, ol);
    return li;
  }

  function drawToolbar() {
    const t = T();
    const bar = els.toolbar;
    const visible = shown.filter(a => ackable(a) && mayAct(a, "operator") && !collapsed.has(a.site_id));
    bar.hidden = !window.LW.session.may("operator");
    const all = bar.querySelector("#select-all");
    all.checked = visible.length > 0 && visible.every(a => selected.has(a.id));
    all.disabled = visible.length === 0;
    bar.querySelector("#select-all-label").textContent = t.ui.selectAll;
    const bulk = bar.querySelector("#bulk-ack");
    bulk.textContent = t.ui.ackSelected(selected.size);
    bulk.disabled = selected.size === 0;
    bar.querySelector("#clear-selection").textContent = t.ui.clear;
  }

  function drawPager() {
    const t = T();
    const pages = Math.max(1, Math.ceil(matching.length / PAGE));
    els.pager.hidden = pages <= 1;
    els.pager.querySelector("#page-label").textContent = t.ui.page(page + 1, pages);
    els.pager.querySelector("#page-prev").textContent = t.ui.prev;
    els.pager.querySelector("#page-next").textContent = t.ui.next;
    els.pager.querySelector("#page-prev").disabled = page === 0;
    els.pager.querySelector("#page-next").disabled = page >= pages - 1;
  }

  function render(alerts, filters) {
    lastArgs = [alerts, filters];
    matching = order(alerts.filter(a => keep(a, filters)));
    const known = new Set(alerts.filter(ackable).map(a => a.id));
    [...selected].forEach(id => { if (!known.has(id)) selected.delete(id); });  // acted on elsewhere
    const pages = Math.max(1, Math.ceil(matching.length / PAGE));
    page = Math.min(page, pages - 1);
    shown = matching.slice(page * PAGE, (page + 1) * PAGE);
    const totals = {};
    matching.forEach(a => { totals[a.site_id] = (totals[a.site_id] || 0) + 1; });
    const groups = [];
    for (const a of shown) {
      const last = groups[groups.length - 1];
      if (last && last.siteId === a.site_id) last.alerts.push(a); else groups.push({ siteId: a.site_id, alerts: [a] });
    }
    if (!groups.length) {
      const li = Object.assign(document.createElement("li"), { className: "none", textContent: alerts.length ? T().ui.noMatch : T().ui.none });
      els.list.replaceChildren(li);
    } else {
      els.list.replaceChildren(...groups.map(g => group(g.siteId, g.alerts, totals[g.siteId])));
    }
    drawToolbar();
    drawPager();
    return matching.length;
  }

  function redraw() { if (lastArgs) render(...lastArgs); }

  function init(options) {
    els = options;
    const bar = els.toolbar;
    bar.querySelector("#select-all").onchange = event => {
      shown.filter(a => ackable(a) && mayAct(a, "operator") && !collapsed.has(a.site_id)).forEach(a => {
        if (event.target.checked) { selected.add(a.id); window.LW.annunciator.seen(a); } else selected.delete(a.id);
      });
      redraw();
    };
    bar.querySelector("#bulk-ack").onclick = () => {
      const byId = new Map(lastArgs[0].map(a => [a.id, a]));
      act("ack", [...selected].map(id => byId.get(id)).filter(Boolean));
    };
    bar.querySelector("#clear-selection").onclick = () => { selected.clear(); redraw(); };
    els.pager.querySelector("#page-prev").onclick = () => { page -= 1; redraw(); };
    els.pager.querySelector("#page-next").onclick = () => { page += 1; redraw(); };
  }

  window.LW = window.LW || {};
  window.LW.alertList = { init, render, redraw, configure: opts => { shelving = { ...shelving, ...opts }; }, selected: () => [...selected], resetPage: () => { page = 0; } };
})();

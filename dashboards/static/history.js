// Alarm history (报警历史): search stored alarms, page through them, export the search as CSV or Excel.
// Reads /api/v1/history/alarms (paged, with a total) and /api/v1/history/alarms/export; the sign-in is
// LW.session's (a site-scoped sign-in sees its sites only); times are Beijing time. Tests read
// window.liaowangHistory: {total, items, loads} (loads counts finished searches).
"use strict";
(function () {
  const TEXT = {
    zh: { title: "报警历史", home: "一张图", since: "报警时间 自", until: "至", site: "场所", county: "区县", family: "类别",
          priority: "优先级", state: "状态", cause: "消警原因", text: "关键字", textHint: "传感器、场所、内容、备注",
          search: "查询", reset: "重置", exportCsv: "导出 CSV", exportXlsx: "导出 Excel", all: "全部", raised: "报警时间",
          where: "场所 · 监测对象", message: "报警内容", peak: "峰值", acked: "确认", closed: "消警", prev: "上一页",
          next: "下一页", pageSize: "每页", none: "没有符合条件的报警",
          total: (n, a, b) => `共 ${n} 条报警，显示第 ${a}–${b} 条`, page: (p, n) => `第 ${p} / ${n} 页`,
          loading: "查询中…", exporting: "正在导出…", failed: "查询失败：", exportFailed: "导出失败：", by: "" },
    en: { title: "Alarm history", home: "One map", since: "Raised from", until: "to", site: "Site", county: "County",
          family: "Family", priority: "Priority", state: "State", cause: "Close cause", text: "Text",
          textHint: "sensor, site, message, note", search: "Search", reset: "Reset", exportCsv: "Export CSV",
          exportXlsx: "Export Excel", all: "All", raised: "Raised", where: "Site · subject", message: "Message",
          peak: "Peak", acked: "Acknowledged", closed: "Closed", prev: "Previous", next: "Next", pageSize: "Per page",
          none: "No alarm matches", total: (n, a, b) => `${n} alarms, showing ${a}–${b}`,
          page: (p, n) => `page ${p} of ${n}`, loading: "searching…", exporting: "exporting…",
          failed: "Search failed: ", exportFailed: "Export failed: ", by: "" },
  };
  const R = window.LW.report;
  const form = document.getElementById("search");
  const status = document.getElementById("status");
  const errorBox = document.getElementById("error");
  const tbody = document.querySelector("#results tbody");
  const view = { total: 0, items: [], loads: 0, offset: 0, limit: 50, sites: [] };
  window.liaowangHistory = view;
  const t = () => TEXT[window.LW.lang.current()];

  function showError(prefix, err) {
    errorBox.hidden = !err;
    errorBox.textContent = err ? prefix + err.message : "";
  }

  function fill(select, options) {
    const keep = select.value;
    select.replaceChildren(new Option(t().all, ""), ...options.map(([value, label]) => new Option(label, value)));
    select.value = options.some(([value]) => value === keep) ? keep : "";
  }

  function fillSelects() {
    fill(form.site_id, view.sites.map(s => [s.id, s.name]));
    fill(form.county, [...new Set(view.sites.map(s => s.county))].map(c => [c, R.words("county", c)]));
    fill(form.family, R.choices("family"));
    fill(form.priority, R.choices("priority"));
    fill(form.state, R.choices("state"));
    fill(form.cause, R.choices("cause"));
  }

  function query() {
    const params = new URLSearchParams();
    for (const name of ["since", "until"]) {  // a datetime-local value is Beijing wall time, whatever the browser's zone
      if (form[name].value) params.set(name, form[name].value + (form[name].value.length === 16 ? ":00" : "") + "+08:00");
    }
    for (const name of ["site_id", "county", "family", "priority", "state", "cause", "q"]) {
      if (form[name].value.trim()) params.set(name, form[name].value.trim());
    }
    return params;
  }

  function cell(label, ...content) {
    const td = document.createElement("td");
    td.dataset.label = label;
    td.append(...content);
    return td;
  }

  function span(text, className) { return Object.assign(document.createElement("span"), { textContent: text, className: className || "" }); }

  function row(a) {
    const tr = document.createElement("tr");
    tr.dataset.alertId = a.id;
    const priority = a.peak_priority || a.priority;
    const chip = span(R.words("priority", priority), "chip " + (a.peak_tier || a.tier));
    const where = window.LW.lang.pick(a.title) || `${a.site_name} · ${a.subject_name}`;
    const message = window.LW.lang.pick(a.text) || a.raise_message || a.message;
    const peak = a.peak_value === null || a.peak_value === undefined ? "—" : `${+a.peak_value.toFixed(3)} ${a.unit || ""}`;
    const who = (at, by) => [span(R.time(at)), ...(by ? [document.createElement("br"), span(by, "muted")] : [])];
    tr.append(cell(t().raised, span(R.time(a.raised_at))), cell(t().county, span(R.words("county", a.county))),
              cell(t().where, Object.assign(document.createElement("a"), {  // the alarm's own page (/alerts/{id})
                textContent: where, href: `/alerts/${encodeURIComponent(a.id)}`, className: "detail" })),
              cell(t().priority, chip), cell(t().message, span(message, "message")),
              cell(t().peak, span(peak)), cell(t().state, span(R.words("state", a.state), "state " + a.state)),
              cell(t().acked, ...(a.acknowledged_at ? who(a.acknowledged_at, a.acknowledged_by) : [span("—")])),
              cell(t().closed, ...(a.closed_at ? who(a.closed_at, a.closed_by) : [span("—")])),
              cell(t().cause, span(a.closed_at ? R.words("cause", a.close_cause || "unspecified") : "—")));
    return tr;
  }

  function draw() {
    tbody.replaceChildren(...view.items.map(row));
    if (view.total === 0) {
      const td = Object.assign(document.createElement("td"), { colSpan: 10, className: "empty", textContent: t().none });
      const tr = document.createElement("tr");
      tr.append(td);
      tbody.append(tr);
    }
    const first = view.total ? view.offset + 1 : 0;
    status.textContent = t().total(view.total, first, view.offset + view.items.length);
    const pages = Math.max(1, Math.ceil(view.total / view.limit));
    document.getElementById("page").textContent = t().page(Math.floor(view.offset / view.limit) + 1, pages);
    document.getElementById("prev").disabled = view.offset === 0;
    document.getElementById("next").disabled = view.offset + view.limit >= view.total;
  }

  let asked = 0;  // the newest search asked for: an older answer arriving late must not overwrite it

  async function load() {
    const params = query();
    params.set("limit", view.limit);
    params.set("offset", view.offset);
    status.textContent = t().loading;
    const mine = ++asked;
    try {
      const answer = await window.LW.session.fetch("/api/v1/history/alarms?" + params);
      if (mine !== asked) return;
      Object.assign(view, { total: answer.total, items: answer.items });
      showError("", null);
      history.replaceState(null, "", "?" + query());
    } catch (err) {
      if (mine !== asked) return;
      Object.assign(view, { total: 0, items: [] });
      showError(t().failed, err);
    }
    draw();
    view.loads += 1;
  }

  async function exportAs(format) {
    const params = query();
    params.set("format", format);
    params.set("lang", window.LW.lang.current());
    const before = status.textContent;
    status.textContent = t().exporting;
    try {
      await R.download("/api/v1/history/alarms/export?" + params);
      showError("", null);
    } catch (err) {
      showError(t().exportFailed, err);
    }
    status.textContent = before;
  }

  function retitle() {
    R.translate(document, TEXT);
    document.title = t().title + " · 瞭望";
    fillSelects();
    draw();
  }

  async function loadSites() {
    try {
      view.sites = await window.LW.session.fetch("/api/v1/sites");
    } catch (err) {
      view.sites = [];
      showError(t().failed, err);
    }
    fillSelects();
  }

  form.addEventListener("submit", event => { event.preventDefault(); view.offset = 0; load(); });
  form.addEventListener("reset", () => setTimeout(() => { view.offset = 0; load(); }));  // after the fields are cleared
  document.getElementById("prev").onclick = () => { view.offset = Math.max(0, view.offset - view.limit); load(); };
  document.getElementById("next").onclick = () => { view.offset += view.limit; load(); };
  document.getElementById("page-size").onchange = event => { view.limit = +event.target.value; view.offset = 0; load(); };
  document.getElementById("export-csv").onclick = () => exportAs("csv");
  document.getElementById("export-xlsx").onclick = () => exportAs("xlsx");
  window.LW.lang.button(document.getElementById("lang"));
  window.LW.lang.onChange(retitle);
  window.LW.session.mount(document.getElementById("signin"));
  window.LW.session.onChange(async () => { await loadSites(); view.offset = 0; load(); });
  R.clock(document.getElementById("clock"));

  // a search in the address (a bookmark, a reload) is restored into the form
  const given = new URLSearchParams(location.search);
  window.LW.session.ready.then(async () => {
    await loadSites();
    for (const [name, value] of given) {
      if (!form[name]) continue;
      form[name].value = (name === "since" || name === "until") ? value.slice(0, 16) : value;
    }
    retitle();
    load();
  });
})();

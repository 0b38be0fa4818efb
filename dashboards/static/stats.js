// Alarm statistics (报警统计): the ISA-18.2 / EEMUA 191 figures a safety manager reviews monthly, drawn with
// ECharts from /api/v1/statistics?month=YYYY-MM (Beijing months; a site-scoped sign-in sees its sites only).
// Tests read window.liaowangStats: {data, charts: {id: echarts instance}, loads}.
"use strict";
(function () {
  const TEXT = {
    zh: { title: "报警统计", home: "一张图", month: "月份", perDayPriority: "每日报警数（按优先级）",
          perDayCounty: "每日报警数（按区县）", perDayFamily: "每日报警数（按类别）",
          response: "确认与消警用时（分钟，按优先级）", badActors: "报警最多的 10 个点位", causes: "消警原因",
          kpiTable: "按优先级", deskTable: "按区县（值班台）", staleTable: "长期未处置报警（超过 24 小时）",
          chatterTable: "频繁报警点位", alarms: "报警数", avg10: "平均每 10 分钟", max10: "10 分钟最多", floods: "报警泛滥次数",
          floodShare: "泛滥时间占比", stale: "长期未处置", chattering: "频繁报警", ackMedian: "确认用时中位数",
          ackP90: "确认用时 P90", closeMedian: "消警用时中位数", closeP90: "消警用时 P90", acked: "已确认",
          closedN: "已消警", median: "中位数", p90: "P90", ack: "确认", close: "消警", episodes: "报警次数",
          where: "点位", site: "场所", county: "区县", raised: "报警时间", open: "已持续", priority: "优先级", none: "无",
          period: (a, b) => `统计区间 ${a} 至 ${b}`, failed: "统计失败：",
          avgHint: "EEMUA 191：每台每 10 分钟 ≤ 1 条可接受", floodHint: "ISA-18.2：泛滥时间应 < 1%",
          staleHint: "打开超过 24 小时的报警", chatterHint: "60 秒内 ≥ 3 次的报警" },
    en: { title: "Alarm statistics", home: "One map", month: "Month", perDayPriority: "Alarms per day by priority",
          perDayCounty: "Alarms per day by county", perDayFamily: "Alarms per day by family",
          response: "Time to acknowledge and to close (minutes, by priority)", badActors: "Top 10 bad actors",
          causes: "Close causes", kpiTable: "By priority", deskTable: "By county (desk)",
          staleTable: "Stale alarms (open over 24 h)", chatterTable: "Chattering sources", alarms: "Alarms",
          avg10: "Average per 10 min", max10: "Most in 10 min", floods: "Floods", floodShare: "Time in flood",
          stale: "Stale alarms", chattering: "Chattering", ackMedian: "Ack median", ackP90: "Ack p90",
          closeMedian: "Close median", closeP90: "Close p90", acked: "Acknowledged", closedN: "Closed",
          median: "median", p90: "p90", ack: "acknowledge", close: "close", episodes: "Episodes", where: "Source", county: "County",
          site: "Site", raised: "Raised", open: "Open for", priority: "Priority", none: "none",
          period: (a, b) => `from ${a} to ${b}`, failed: "Statistics failed: ",
          avgHint: "EEMUA 191: ≤ 1 per 10 min per desk is acceptable", floodHint: "ISA-18.2: under 1 % of the time",
          staleHint: "alarms open over 24 h", chatterHint: "≥ 3 activations in 60 s" },
  };
  const COLOURS = { urgent: "#e02020", high: "#ff8c00", medium: "#f5c400", low: "#1e6fff" };
  const PALETTE = ["#4fc3f7", "#81c784", "#ffb74d", "#ba68c8", "#e57373", "#fff176", "#4db6ac", "#9575cd", "#a1887f"];
  const R = window.LW.report;
  const t = () => TEXT[window.LW.lang.current()];
  const view = { data: null, charts: {}, loads: 0 };
  window.liaowangStats = view;
  const monthInput = document.getElementById("month");
  const errorBox = document.getElementById("error");

  for (const id of ["c-priority", "c-county", "c-family", "c-response", "c-top", "c-cause"]) {
    view.charts[id] = echarts.init(document.getElementById(id), "dark", { renderer: "canvas" });
  }
  window.addEventListener("resize", () => Object.values(view.charts).forEach(c => c.resize()));

  function days(since, until) {
    const out = [];
    const day = new Date(since.slice(0, 10) + "T00:00:00Z");
    const last = until.slice(0, 10);
    while (out.length < 400) {
      const key = day.toISOString().slice(0, 10);
      out.push(key);
      if (key >= last) break;
      day.setUTCDate(day.getUTCDate() + 1);
    }
    return out;
  }

  const base = () => ({
    backgroundColor: "transparent", textStyle: { fontSize: 14 },
    tooltip: { trigger: "axis", textStyle: { fontSize: 14 } },
    legend: { top: 0, textStyle: { fontSize: 13 }, type: "scroll" },
    grid: { left: 48, right: 16, top: 40, bottom: 36 },
  });

  function perDay(id, key, keys, label, colour) {
    const d = view.data;
    const axis = days(d.since, d.until);
    view.charts[id].setOption({
      ...base(),
      xAxis: { type: "category", data: axis.map(x => x.slice(5)), axisLabel: { fontSize: 12 } },
      yAxis: { type: "value", minInterval: 1, axisLabel: { fontSize: 12 } },
      series: keys.map((k, i) => ({
        name: label(k), type: "bar", stack: "all", id: k, itemStyle: { color: colour(k, i) },
        data: axis.map(day => ((d.per_day[day] || {})[key] || {})[k] || 0),
      })),
    }, true);
  }

  function drawCharts() {
    const d = view.data;
    const priorities = ["urgent", "high", "medium", "low"];
    perDay("c-priority", "priority", priorities, p => R.words("priority", p), p => COLOURS[p]);
    perDay("c-county", "county", Object.keys(d.by_county), c => R.words("county", c), (c, i) => PALETTE[i % PALETTE.length]);
    perDay("c-family", "family", Object.keys(d.by_family), f => R.words("family", f), (f, i) => PALETTE[(i + 3) % PALETTE.length]);
    const minutes = s => (s === null || s === undefined ? null : +(s / 60).toFixed(1));
    view.charts["c-response"].setOption({
      ...base(), grid: { left: 48, right: 16, top: 64, bottom: 36 },
      xAxis: { type: "category", data: priorities.map(p => R.words("priority", p)) },
      yAxis: { type: "value", name: window.LW.lang.current() === "en" ? "min" : "分钟" },
      series: [
        ["time_to_ack", "median_s", `${t().ack} ${t().median}`, "#4fc3f7"], ["time_to_ack", "p90_s", `${t().ack} ${t().p90}`, "#0277bd"],
        ["time_to_close", "median_s", `${t().close} ${t().median}`, "#81c784"], ["time_to_close", "p90_s", `${t().close} ${t().p90}`, "#2e7d32"],
      ].map(([figure, field, name, colour]) => ({ name, type: "bar", itemStyle: { color: colour },
                                                 data: priorities.map(p => minutes(d[figure][p][field])) })),
    }, true);
    const top = d.top_sources.slice().reverse();
    view.charts["c-top"].setOption({
      ...base(), grid: { left: 8, right: 40, top: 10, bottom: 24, containLabel: true }, legend: { show: false },
      tooltip: { trigger: "axis", axisPointer: { type: "shadow" } },
      xAxis: { type: "value", minInterval: 1 },
      yAxis: { type: "category", data: top.map(s => `${(d.site_names[s.site_id] || s.site_id)} ${s.name}`),
               axisLabel: { fontSize: 12, width: 260, overflow: "truncate" } },
      series: [{ name: t().episodes, type: "bar", data: top.map(s => s.alerts), itemStyle: { color: "#ff8c00" },
                 label: { show: true, position: "right" } }],
    }, true);
    const causes = Object.entries(d.closed_by_cause).filter(([, n]) => n > 0);
    view.charts["c-cause"].setOption({
      ...base(), tooltip: { trigger: "item" }, legend: { top: 0, type: "scroll", textStyle: { fontSize: 13 } },
      series: [{ name: t().causes, type: "pie", radius: ["35%", "65%"], top: 30,
                 label: { formatter: "{b}: {c}", fontSize: 13 },
                 data: causes.map(([cause, n], i) => ({ name: R.words("cause", cause), value: n,
                                                       itemStyle: { color: PALETTE[i % PALETTE.length] } })) }],
    }, true);
  }

  function tile(label, value, hint, grade) {
    const div = Object.assign(document.createElement("div"), { className: "tile " + (grade || "") });
    div.append(Object.assign(document.createElement("span"), { textContent: label }),
               Object.assign(document.createElement("b"), { textContent: value }),
               Object.assign(document.createElement("span"), { className: "hint", textContent: hint || "" }));
    return div;
  }

  const rate = x => (x && x < 0.1 ? Number(x.toPrecision(2)).toString() : (x || 0).toFixed(2));

  function drawTiles() {
    const d = view.data;
    const desks = Object.values(d.desks);
    const worstAvg = desks.length ? Math.max(...desks.map(x => x.avg_per_10_min || 0)) : 0;
    const percent = x => (100 * x).toFixed(x < 0.01 && x > 0 ? 2 : 1) + " %";
    document.getElementById("tiles").replaceChildren(
      tile(t().alarms, d.new_alerts),
      tile(t().avg10, rate(worstAvg), t().avgHint, worstAvg > 1 ? "bad" : "good"),
      tile(t().floodShare, percent(d.flood_share), t().floodHint, d.flood_share >= 0.01 ? "bad" : "good"),
      tile(t().floods, d.floods, "", d.floods ? "warn" : "good"),
      tile(t().stale, d.stale_alerts, t().staleHint, d.stale_alerts ? "bad" : "good"),
      tile(t().chattering, d.chattering_alerts, t().chatterHint, d.chattering_alerts ? "warn" : "good"));
  }

  function table(id, head, rows) {
    const el = document.getElementById(id);
    const tr = cells => { const r = document.createElement("tr"); r.append(...cells); return r; };
    const th = text => Object.assign(document.createElement("th"), { textContent: text });
    const td = text => Object.assign(document.createElement("td"), { textContent: text });
    const body = rows.length ? rows.map(r => tr(r.map(td)))
      : [tr([Object.assign(td(t().none), { colSpan: head.length, className: "empty" })])];
    el.replaceChildren(tr(head.map(th)), ...body);
  }

  function drawTables() {
    const d = view.data;
    table("kpi-table", [t().priority, t().alarms, t().acked, t().ackMedian, t().ackP90, t().closedN, t().closeMedian, t().closeP90],
          ["urgent", "high", "medium", "low"].map(p => [
            R.words("priority", p), d.by_priority[p], d.time_to_ack[p].count, R.duration(d.time_to_ack[p].median_s),
            R.duration(d.time_to_ack[p].p90_s), d.time_to_close[p].count, R.duration(d.time_to_close[p].median_s),
            R.duration(d.time_to_close[p].p90_s)]));
    table("desk-table", [t().county, t().alarms, t().avg10, t().max10, t().floods, t().floodShare],
          Object.entries(d.desks).map(([desk, x]) => [
            R.words("county", desk), x.alerts, rate(x.avg_per_10_min), x.max_per_10_min, x.floods,
            (100 * x.flood_share).toFixed(2) + " %"]));
    table("stale-table", [t().where, t().priority, t().raised, t().open],
          d.stale.map(s => [`${d.site_names[s.site_id] || s.site_id} ${s.name}`, R.words("priority", s.priority),
                            R.time(s.raised_at), R.duration(s.open_s)]));
    table("chatter-table", [t().where, t().episodes],
          d.chattering_sources.map(s => [`${d.site_names[s.site_id] || s.site_id} ${s.name}`, s.alerts]));
  }

  function draw() {
    R.translate(document, TEXT);
    document.title = t().title + " · 瞭望";
    if (!view.data) return;
    document.getElementById("period").textContent = t().period(R.time(view.data.since), R.time(view.data.until));
    drawTiles();
    drawCharts();
    drawTables();
  }

  async function load() {
    const month = monthInput.value;
    try {
      view.data = await window.LW.session.fetch("/api/v1/statistics" + (month ? "?month=" + month : ""));
      errorBox.hidden = true;
      if (!month && view.data.month) monthInput.value = view.data.month;
      history.replaceState(null, "", "?month=" + (view.data.month || ""));
    } catch (err) {
      view.data = null;
      errorBox.hidden = false;
      errorBox.textContent = t().failed + err.message;
      Object.values(view.charts).forEach(c => c.clear());
    }
    draw();
    view.loads += 1;
  }

  monthInput.value = new URLSearchParams(location.search).get("month") || "";
  monthInput.onchange = load;
  window.LW.lang.button(document.getElementById("lang"));
  window.LW.lang.onChange(draw);
  window.LW.session.mount(document.getElementById("signin"));
  window.LW.session.onChange(load);
  R.clock(document.getElementById("clock"));
  window.LW.session.ready.then(load);
})();

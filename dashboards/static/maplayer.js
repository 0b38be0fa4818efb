// The one map's ECharts drawing: window.LW.mapLayer (load after echarts, lang.js and maptext.js).
//   LW.mapLayer.init(element, geojson, {onSite(site), onWarning(warning)}) -> the echarts instance
//   LW.mapLayer.render({sites, warnings, risk, view})  view: "alarms" | "risk"
//   LW.mapLayer.legend(element, view)                   -> draws the legend of colours and symbols
// Series (ids the browser tests read): "sites", "red-sites" (ripple), "warned-sites" (a ring per warned site),
// "warning-areas" (each warning's circle or polygon, filled in its level's colour), "risk-halo" (risk view).
(function () {
  "use strict";
  const COLOUR = { red: "#e02020", orange: "#ff8c00", yellow: "#f5c400", blue: "#1e6fff", normal: "#2fb344", offline: "#8a8f98" };
  let chart = null;
  let counties = [];  // [{name, cp}] from the county outlines: their labels are a series so collisions are resolved
  let state = { sites: [], warnings: [], risk: [], view: "alarms" };
  const T = () => window.LW.mapText.t();

  // A circle on the ground as a lon/lat ring (a degree of longitude shrinks with the cosine of the latitude).
  function circleRing(c, points = 72) {
    const dLat = c.radius_km / 111.32;
    const dLon = dLat / Math.cos(c.lat * Math.PI / 180);
    return Array.from({ length: points }, (_, i) => {
      const a = (2 * Math.PI * i) / points;
      return [c.lon + dLon * Math.cos(a), c.lat + dLat * Math.sin(a)];
    });
  }

  function areaOf(w) {
    if (!w.area) return null;
    if (w.area.polygon && w.area.polygon.length >= 3) return w.area.polygon;
    if (w.area.circle) return circleRing(w.area.circle);
    return null;
  }

  function siteColour(s) {
    if (state.view !== "risk") return COLOUR[s.status] || COLOUR.offline;
    const risk = state.risk.find(r => r.site_id === s.id);
    return risk ? COLOUR[risk.colour] : COLOUR.offline;
  }

  // a site's name in the page's language (name_en where configured)
  const siteName = s => window.LW.lang.pick({ zh: s.name, en: s.name_en || s.name });

  function label(extra) {
    return { show: true, formatter: p => (p.data && p.data.site ? siteName(p.data.site) : p.name), position: "right", color: "#f2f6fb", fontSize: 15,
             textBorderColor: "#07121f", textBorderWidth: 3, ...extra };
  }

  function render(next) {
    state = { ...state, ...next };
    const point = s => ({ name: s.name, value: [s.lon, s.lat], site: s, itemStyle: { color: siteColour(s) } });
    const sites = state.sites;
    const warnedSites = new Set(state.warnings.map(w => w.site_id).filter(Boolean));
    const areas = state.warnings.map(w => ({ w, ring: areaOf(w) })).filter(x => x.ring);
    const byRisk = state.view === "risk";
    chart.setOption({
      series: [
        // county names yield to site labels where they collide (hideOverlap keeps the bigger symbol's label)
        { id: "county-labels", type: "scatter", coordinateSystem: "geo", zlevel: 1, silent: true, symbolSize: 1,
          itemStyle: { color: "rgba(0,0,0,0)" }, data: counties.map(c => ({ name: c.name, value: c.cp })),
          label: { show: true, position: "inside", formatter: p => window.LW.mapText.county(p.name), color: "#b8cbe0",
                   fontSize: 15, textBorderColor: "#0b1a2b", textBorderWidth: 2 },
          labelLayout: { hideOverlap: true } },
        { id: "warning-areas", type: "custom", coordinateSystem: "geo", zlevel: 1, silent: false,
          data: areas.map(({ w, ring }) => ({ name: w.category, value: ring[0], warning: w, ring })),
          renderItem: (params, api) => {
            const { w, ring } = areas[params.dataIndex];
            return { type: "polygon", shape: { points: ring.map(p => api.coord(p)) },
                     style: { fill: COLOUR[w.colour] + "33", stroke: COLOUR[w.colour], lineWidth: 3, lineDash: [8, 5] } };
          } },
        { id: "risk-halo", type: "scatter", coordinateSystem: "geo", zlevel: 1, symbolSize: 46, silent: true,
          data: byRisk ? sites.map(s => ({ name: s.name, value: [s.lon, s.lat], site: s,
                                          itemStyle: { color: siteColour(s), opacity: 0.25 } })) : [] },
        { id: "sites", type: "scatter", coordinateSystem: "geo", symbolSize: 16, zlevel: 2,
          data: sites.filter(s => byRisk || s.status !== "red").map(point),
          label: label({}), labelLayout: { hideOverlap: true },
          itemStyle: { borderColor: "#07121f", borderWidth: 2 } },
        { id: "red-sites", type: "effectScatter", coordinateSystem: "geo", symbolSize: 20, zlevel: 3,
          rippleEffect: { scale: 4, brushType: "stroke" }, data: byRisk ? [] : sites.filter(s => s.status === "red").map(point),
          label: label({ fontWeight: "bold", fontSize: 16 }), labelLayout: { hideOverlap: true } },  // the biggest symbol: its label wins
        { id: "warned-sites", type: "scatter", coordinateSystem: "geo", symbol: "emptyCircle", symbolSize: 38, zlevel: 4,
          data: sites.filter(s => warnedSites.has(s.id)).map(s => {
            const w = state.warnings.find(x => x.site_id === s.id);
            return { name: s.name, value: [s.lon, s.lat], warning: w,
                     itemStyle: { color: COLOUR[w.colour], borderColor: COLOUR[w.colour], borderWidth: 4 } };
          }) },
      ],
    });
  }

  function tooltip(p) {
    const t = T();
    if (p.data && p.data.warning) {
      const w = p.data.warning;
      return `${t.ui.warning} ${w.level_roman || w.level} · ${t.colour[w.colour] || ""}<br>${w.category}<br>${(w.area && w.area.desc) || ""}`;
    }
    if (!(p.data && p.data.site)) return window.LW.mapText.county(p.name);
    const s = p.data.site;
    const risk = state.risk.find(r => r.site_id === s.id);
    return `${siteName(s)}<br>${window.LW.mapText.county(s.county)} · ${t.tier[s.status] || s.status}`
      + (risk ? `<br>${t.risk[risk.grade] || risk.grade_zh}` : "");
  }

  function init(element, geo, handlers) {
    echarts.registerMap("liaocheng", geo);
    counties = geo.features.filter(f => f.properties.cp).map(f => ({ name: f.properties.name, cp: f.properties.cp }));
    chart = echarts.init(element);
    chart.setOption({
      backgroundColor: "#0b1a2b",
      tooltip: { trigger: "item", formatter: tooltip, textStyle: { fontSize: 15 } },
      geo: { map: "liaocheng", roam: true, zoom: 1.1,
             label: { show: false }, emphasis: { label: { show: false }, itemStyle: { areaColor: "#1d4f80" } },
             itemStyle: { areaColor: "#13314f", borderColor: "#4a86c5" } },
      series: [],
    });
    chart.on("click", p => {
      if (p.data && p.data.warning) handlers.onWarning(p.data.warning);
      else if (p.data && p.data.site) handlers.onSite(p.data.site);
    });
    window.addEventListener("resize", () => chart.resize());
    return chart;
  }

  function legend(element, view) {
    const t = T();
    const swatch = (colour, text, shape = "dot") => `<li><i class="sw ${shape}" style="--c:${colour}"></i>${text}</li>`;
    const colours = view === "risk"
      ? [["red", t.risk.major], ["orange", t.risk.significant], ["yellow", t.risk.general], ["blue", t.risk.low]]
      : [["red", t.tier.red], ["orange", t.tier.orange], ["yellow", t.tier.yellow], ["blue", t.tier.blue],
         ["normal", t.tier.normal], ["offline", t.tier.offline]];
    element.innerHTML = `<h3>${t.ui.legend}</h3>
      <p>${view === "risk" ? t.ui.legendRisk : t.ui.legendAlarms}</p>
      <ul>${colours.map(([c, text]) => swatch(COLOUR[c], text)).join("")}</ul>
      <p>${t.ui.legendSymbols}</p>
      <ul>${swatch("#9fb3c8", t.ui.symSite)}${swatch(COLOUR.red, t.ui.symUrgent, "ripple")}
          ${swatch(COLOUR.orange, t.ui.symRing, "ring")}${swatch(COLOUR.orange, t.ui.symArea, "area")}</ul>`;
  }

  window.LW = window.LW || {};
  window.LW.mapLayer = { init, render, legend, COLOUR, circleRing };
})();

// What the history and statistics pages share: window.LW.report (load after lang.js and session.js).
//   LW.report.words(kind, key)  -> the word for a code in the page language; kind: priority | state | family | cause | county
//   LW.report.choices(kind)     -> [[code, word], ...] in display order (for <select>s)
//   LW.report.time(iso)         -> "2026-11-02 08:00:00" (the API's times are already Beijing time, +08:00)
//   LW.report.duration(s)       -> "2 分 30 秒" / "2 min 30 s"; "—" for null
//   LW.report.translate(root, texts) -> sets every [data-t] element's text and [data-tp] placeholder from texts[lang]
//   LW.report.download(path)    -> fetches path with the sign-in and saves the answer as the file it names
//   LW.report.clock(el)         -> a ticking Beijing-time clock in el
(function () {
  "use strict";
  const lang = () => window.LW.lang.current();
  const WORDS = {
    priority: { urgent: ["紧急报警", "Urgent"], high: ["高报警", "High"], medium: ["中报警", "Medium"], low: ["低报警", "Low"] },
    state: { active: ["未确认", "Unacknowledged"], acknowledged: ["已确认", "Acknowledged"],
             resolved: ["已恢复待消警", "Cleared, to close"], closed: ["已消警", "Closed"], shelved: ["已搁置", "Shelved"] },
    family: { hazard: ["重大危险源", "Major hazard"], gas: ["气体泄漏", "Gas leak"], forest: ["森林火灾", "Forest fire"],
              system: ["系统", "System"] },
    cause: { false_alarm: ["误报", "False alarm"], instrument_fault: ["仪表故障", "Instrument fault"],
             process_upset: ["工艺波动", "Process upset"], maintenance: ["检修作业", "Maintenance work"],
             real_incident: ["真实险情", "Real incident"], unspecified: ["未注明", "Unspecified"] },
    county: { "东昌府区": ["东昌府区", "Dongchangfu"], "茌平区": ["茌平区", "Chiping"], "临清市": ["临清市", "Linqing"],
              "阳谷县": ["阳谷县", "Yanggu"], "莘县": ["莘县", "Shenxian"], "东阿县": ["东阿县", "Dong'e"],
              "冠县": ["冠县", "Guanxian"], "高唐县": ["高唐县", "Gaotang"], city: ["市级", "City"] },
  };
  const ORDER = { priority: ["urgent", "high", "medium", "low"] };

  function words(kind, key) {
    const pair = (WORDS[kind] || {})[key];
    return pair ? pair[lang() === "en" ? 1 : 0] : (key ?? "");
  }

  function choices(kind) {
    return (ORDER[kind] || Object.keys(WORDS[kind])).map(k => [k, words(kind, k)]);
  }

  function time(iso) { return iso ? iso.slice(0, 19).replace("T", " ") : "—"; }

  function duration(s) {
    if (s === null || s === undefined) return "—";
    const en = lang() === "en";
    const units = en ? [[86400, " d"], [3600, " h"], [60, " min"], [1, " s"]] : [[86400, " 天"], [3600, " 小时"], [60, " 分"], [1, " 秒"]];
    const parts = [];
    let rest = Math.round(s);
    for (const [size, name] of units) {
      if (rest >= size || (size === 1 && parts.length === 0)) { parts.push(Math.floor(rest / size) + name); rest %= size; }
      if (parts.length === 2) break;
    }
    return parts.join(" ");
  }

  function translate(root, texts) {
    const t = texts[lang()];
    root.querySelectorAll("[data-t]").forEach(el => { if (t[el.dataset.t] !== undefined) el.textContent = t[el.dataset.t]; });
    root.querySelectorAll("[data-tp]").forEach(el => { if (t[el.dataset.tp] !== undefined) el.placeholder = t[el.dataset.tp]; });
  }

  async function download(path) {
    const response = await fetch(path, { headers: window.LW.session.authHeader() });
    if (!response.ok) {
      const body = await response.json().catch(() => ({}));
      throw new Error(typeof body.detail === "string" ? body.detail : response.statusText);
    }
    const named = /filename="?([^";]+)"?/.exec(response.headers.get("Content-Disposition") || "");
    const url = URL.createObjectURL(await response.blob());
    const link = Object.assign(document.createElement("a"), { href: url, download: named ? named[1] : "liaowang-export" });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60_000);  // after the browser has taken the file
  }

  function clock(el) {
    const draw = () => {
      const beijing = new Date(Date.now() + 8 * 3600_000).toISOString().slice(0, 19).replace("T", " ");
      el.textContent = beijing + (lang() === "en" ? " Beijing" : " 北京时间");
    };
    draw();
    setInterval(draw, 1000);
    window.LW.lang.onChange(draw);
  }

  window.LW = window.LW || {};
  window.LW.report = { words, choices, time, duration, translate, download, clock };
})();

// Words the site view and the alarm detail share, in Chinese and English: window.LW.words (load after lang.js).
//   LW.words.t(group, key)        -> the word for key in the current language (the key itself if unknown)
//   LW.words.sensorName(sensor)   -> the configured (Chinese) name, or in English "<quantity> <short id>"
//   LW.words.subjectName(alert, sensorsById) -> what an alarm is about by name (sensor, detector zone), else its id
//   LW.words.alertText(alert, sensorsById) -> the alarm's one-line message: the server's {zh, en} text when it
//                                    sends one, else the Chinese message, else (English) one built from fields
//   LW.words.time(iso)            -> "MM-DD HH:MM:SS" in the browser's zone; LW.words.ago(iso) -> "12 s" / "3 分钟"
//   LW.words.COLOURS              -> the priority colours (same as the map)
(function () {
  "use strict";
  const COLOURS = { red: "#e02020", orange: "#ff8c00", yellow: "#f5c400", blue: "#1e6fff", normal: "#2fb344",
                    offline: "#8a8f98" };
  const W = {
    zh: {
      tier: { red: "紧急报警", orange: "高报警", yellow: "中报警", blue: "低报警", normal: "正常", offline: "离线" },
      isa: { unacknowledged: "未确认", acknowledged: "已确认", returned_unacknowledged: "已恢复·未确认",
             shelved: "已搁置", suppressed: "检修抑制", normal: "已恢复", out_of_service: "停用" },
      state: { active: "报警中", acknowledged: "已确认", resolved: "已恢复待消警", closed: "已消警", shelved: "已搁置" },
      level: { level1: "一级", level2: "二级", H: "高", HH: "高高", L: "低", LL: "低低", bypassed: "旁路",
               esd_tripped: "紧急切断", fire_suspected: "疑似火情", fire_confirmed: "确认火情", confirmed: "多点确认",
               fault: "故障", over_range: "超量程" },
      event: { raised: "报警", reactivated: "再次报警", escalated: "升级", deescalated: "降级", acknowledged: "确认",
               resolved: "恢复正常", closed: "消警", shelved: "搁置", unshelved: "解除搁置", returned: "恢复(待确认)",
               source_lost: "信号丢失", source_restored: "信号恢复", chattering: "频繁报警",
               notification_escalated: "逐级上报" },
      ago: ["秒", "分钟", "小时", "天"],
    },
    en: {
      tier: { red: "Urgent", orange: "High", yellow: "Medium", blue: "Low", normal: "Normal", offline: "Offline" },
      isa: { unacknowledged: "unacknowledged", acknowledged: "acknowledged", returned_unacknowledged: "cleared, unacknowledged",
             shelved: "shelved", suppressed: "suppressed (maintenance)", normal: "cleared", out_of_service: "out of service" },
      state: { active: "active", acknowledged: "acknowledged", resolved: "cleared, to close", closed: "closed",
               shelved: "shelved" },
      level: { level1: "1st level", level2: "2nd level", H: "H", HH: "HH", L: "L", LL: "LL", bypassed: "bypassed",
               esd_tripped: "ESD tripped", fire_suspected: "fire suspected", fire_confirmed: "fire confirmed",
               confirmed: "confirmed by neighbours", fault: "fault", over_range: "over range" },
      event: { raised: "raised", reactivated: "raised again", escalated: "escalated", deescalated: "de-escalated",
               acknowledged: "acknowledged", resolved: "cleared", closed: "closed", shelved: "shelved",
               unshelved: "unshelved", returned: "cleared (to acknowledge)", source_lost: "signal lost",
               source_restored: "signal back", chattering: "chattering", notification_escalated: "escalated to the next receiver" },
      quantity: { combustible_gas: "Combustible gas detector", h2s: "H2S detector", nh3: "NH3 detector",
                  co: "CO detector", cl2: "Cl2 detector", o2: "O2 detector", tank_level: "Tank level",
                  temperature: "Temperature", pressure: "Pressure", flow: "Flow", interlock_bypass: "Interlock bypass",
                  esd_state: "Emergency shut-off", smoke: "Smoke", flame: "Flame", rain: "Rain",
                  relative_humidity: "Humidity", wind_speed: "Wind speed" },
      unit: { "状态": "state", "个": "detectors", "分": "points" },
      ago: [" s", " min", " h", " d"],
    },
  };
  const QUANTITY_ZH = { combustible_gas: "可燃气体", h2s: "硫化氢", nh3: "氨气", co: "一氧化碳", cl2: "氯气", o2: "氧气" };
  const lang = () => window.LW.lang.current();

  function t(group, key) {
    const table = W[lang()][group] || W.zh[group] || {};
    return table[key] ?? key;
  }

  // "LC-LUXI-GD-01" of site "LC-LUXI" -> "GD-01"
  function shortId(sensor) {
    return sensor.id.startsWith(sensor.site_id + "-") ? sensor.id.slice(sensor.site_id.length + 1) : sensor.id;
  }

  function sensorName(sensor) {
    if (lang() === "zh") return sensor.name;
    if (sensor.name_en) return sensor.name_en;  // sensors.yaml name_en, where the configuration gives one
    return `${W.en.quantity[sensor.quantity] || sensor.quantity.replace(/_/g, " ")} ${shortId(sensor)}`;
  }

  // What an alarm is about, by name: a sensor, a detector zone ("{site}-{quantity}-Z{n}", rules/confirm.py) or the id.
  function subjectName(alert, sensorsById) {
    const sensor = sensorsById && sensorsById[alert.subject];
    if (sensor) return sensorName(sensor);
    const zone = alert.subject.startsWith(alert.site_id + "-") && alert.subject.slice(alert.site_id.length + 1).match(/^(.+)-Z(\d+)$/);
    if (zone) {
      const quantity = zone[1].replace(/-/g, "_");
      return lang() === "zh" ? `${QUANTITY_ZH[quantity] || quantity} Z${zone[2]} 区域`
                             : `${W.en.quantity[quantity] || quantity} zone Z${zone[2]}`.replace(" detector zone", " zone");
    }
    return alert.subject;
  }

  function unit(u) { return lang() === "en" ? (W.en.unit[u] ?? u) : u; }

  function number(v) {
    if (v === null || v === undefined) return "—";
    if (Number.isInteger(v)) return String(v);
    return Math.abs(v) >= 100 ? v.toFixed(0) : Math.abs(v) >= 10 ? v.toFixed(1) : v.toFixed(2);
  }

  function alertText(alert, sensorsById) {
    if (alert.text) return window.LW.lang.pick(alert.text);
    if (lang() === "zh") return alert.message;
    const what = subjectName(alert, sensorsById);
    const level = alert.level ? ` · ${t("level", alert.level)}` : "";
    return `${what}${level} · ${number(alert.value)} ${unit(alert.unit)}`;
  }

  function time(iso) {
    if (!iso) return "—";
    const d = new Date(iso);
    const p = n => String(n).padStart(2, "0");
    return `${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
  }

  function ago(iso) {
    const s = Math.max(0, (Date.now() - Date.parse(iso)) / 1000);
    const [sec, min, hour, day] = W[lang()].ago;
    if (s < 60) return Math.floor(s) + sec;
    if (s < 3600) return Math.floor(s / 60) + min;
    if (s < 86400) return Math.floor(s / 3600) + hour;
    return Math.floor(s / 86400) + day;
  }

  window.LW = window.LW || {};
  window.LW.words = { t, sensorName, subjectName, unit, number, alertText, time, ago, shortId, COLOURS };
})();

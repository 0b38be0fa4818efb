// Acting on alarms from any page: window.LW.actions (load after session.js and lang.js).
//   LW.actions.run(kind, alerts) -> Promise<{done: [id], failed: [{id, error}], cancelled: bool}>
//     kind: "ack" | "close" | "shelve" | "unshelve"; alerts: alert objects (id, and name fields for the dialog);
//     opens a dialog (note; close: 消警 cause + note; shelve: duration within the configured maximum + reason),
//     then acts on every alert and reports each failure in a dialog — nothing is dropped silently;
//     many acknowledgements go in one request (POST /api/v1/alerts/ack, an outcome per id).
//   LW.actions.configure({maxShelveS, ackNoteRequired}) -> the shelving maximum (alerting.yaml shelving.max_s; it is
//     always one of the durations offered) and whether an acknowledgement needs a note (ack_note_required)
(function () {
  "use strict";
  const CAUSES = [["false_alarm", "误报", "False alarm"], ["instrument_fault", "仪表故障", "Instrument fault"],
                  ["process_upset", "工艺波动", "Process upset"], ["maintenance", "检修作业", "Maintenance work"],
                  ["real_incident", "真实险情", "Real incident"]];
  const DURATIONS = [900, 1800, 3600, 7200, 14400, 28800];
  const TEXT = {
    zh: { ack: "确认报警", close: "消警", shelve: "搁置报警", unshelve: "解除搁置", note: "说明", noteRequired: "说明 (必填)",
          cause: "消警原因", duration: "搁置时长", reason: "搁置原因 (必填)", ok: "确定", cancel: "取消", count: n => `共 ${n} 条报警`,
          min: "分钟", hour: "小时", failed: "未完成" },
    en: { ack: "Acknowledge", close: "Close (消警)", shelve: "Shelve", unshelve: "Unshelve", note: "Note",
          noteRequired: "Note (required)", cause: "Cause", duration: "Duration", reason: "Reason (required)", ok: "OK",
          cancel: "Cancel", count: n => `${n} alarm${n === 1 ? "" : "s"}`, min: "min", hour: "h", failed: "not done" },
  };
  let maxShelveS = 8 * 3600;
  let ackNoteRequired = false;
  const t = () => TEXT[window.LW.lang.current()];

  function field(labelText, control) {
    const label = document.createElement("label");
    label.append(Object.assign(document.createElement("span"), { textContent: labelText }), control);
    return label;
  }

  function dialog(kind, alerts) {
    return new Promise(resolve => {
      const d = Object.assign(document.createElement("dialog"), { className: "lw-dialog" });
      d.dataset.kind = kind;
      const form = Object.assign(document.createElement("form"), { method: "dialog" });
      form.append(Object.assign(document.createElement("h3"), { textContent: t()[kind] }),
                  Object.assign(document.createElement("p"), { className: "lw-count", textContent: t().count(alerts.length) }));
      const names = Object.assign(document.createElement("ul"), { className: "lw-names" });
      alerts.slice(0, 5).forEach(a => names.append(Object.assign(document.createElement("li"), {
        textContent: a.displayTitle || window.LW.lang.pick(a.title) || a.subject || a.id })));
      if (alerts.length > 5) names.append(Object.assign(document.createElement("li"), { textContent: "…" }));
      form.append(names);
      const values = {};
      if (kind === "close") {
        const cause = Object.assign(document.createElement("select"), { name: "cause", required: true });
        CAUSES.forEach(([v, zh, en]) => cause.append(new Option(window.LW.lang.current() === "en" ? en : zh, v)));
        form.append(field(t().cause, cause));
        values.cause = cause;
      }
      if (kind === "shelve") {
        const duration = Object.assign(document.createElement("select"), { name: "duration_s" });
        DURATIONS.filter(s => s < maxShelveS).concat([maxShelveS]).forEach(s => duration.append(
          new Option(s < 3600 ? `${Math.round(s / 60)} ${t().min}` : `${+(s / 3600).toFixed(1)} ${t().hour}`, String(s))));
        duration.value = String(Math.min(3600, maxShelveS));
        form.append(field(t().duration, duration));
        values.duration_s = duration;
      }
      if (kind !== "unshelve") {
        const required = kind === "close" || kind === "shelve" || (kind === "ack" && ackNoteRequired);
        const note = Object.assign(document.createElement("textarea"), { name: "note", rows: 3, required, maxLength: 2000 });
        form.append(field(kind === "shelve" ? t().reason : required ? t().noteRequired : t().note, note));
        values.note = note;
      }
      const ok = Object.assign(document.createElement("button"), { type: "submit", value: "ok", textContent: t().ok, className: "lw-ok" });
      const cancel = Object.assign(document.createElement("button"), { type: "button", textContent: t().cancel, className: "lw-cancel" });
      cancel.onclick = () => d.close("cancel");
      form.append(Object.assign(document.createElement("menu"), {}), ok, cancel);
      d.append(form);
      d.addEventListener("close", () => {
        const result = d.returnValue === "ok" ? Object.fromEntries(Object.entries(values).map(([k, el]) => [k, el.value.trim()])) : null;
        d.remove();
        resolve(result);
      });
      document.body.append(d);
      d.showModal();
    });
  }

  function request(kind, alert, v) {
    const path = `/api/v1/alerts/${encodeURIComponent(alert.id)}/${kind}`;
    const body = { ack: { note: v.note || null }, close: { note: v.note, cause: v.cause },
                   shelve: { reason: v.note, duration_s: Number(v.duration_s) }, unshelve: undefined }[kind];
    return window.LW.session.fetch(path, { method: "POST", json: body });
  }

  // Many acknowledgements in one request (POST /api/v1/alerts/ack): the server answers for each id.
  async function bulkAck(alerts, v) {
    try {
      const body = await window.LW.session.fetch("/api/v1/alerts/ack",
                                                 { method: "POST", json: { ids: alerts.map(a => a.id), note: v.note || null } });
      return { done: body.results.filter(r => r.ok).map(r => r.id),
               failed: body.results.filter(r => !r.ok).map(r => ({ id: r.id, error: r.error })) };
    } catch (err) {
      return { done: [], failed: alerts.map(a => ({ id: a.id, error: err.message })) };
    }
  }

  // What was not done, in a dialog of its own (never a blocking window.alert while alarms sound).
  function report(kind, failed, alerts) {
    const names = new Map(alerts.map(a => [a.id, a.displayTitle || a.id]));
    const d = Object.assign(document.createElement("dialog"), { className: "lw-dialog lw-report" });
    const form = Object.assign(document.createElement("form"), { method: "dialog" });
    const list = document.createElement("ul");
    failed.forEach(f => list.append(Object.assign(document.createElement("li"), { textContent: `${names.get(f.id)}: ${f.error}` })));
    form.append(Object.assign(document.createElement("h3"), { textContent: `${t()[kind]} · ${t().failed} (${failed.length})` }), list,
                Object.assign(document.createElement("button"), { type: "submit", textContent: t().ok, className: "lw-ok" }));
    d.append(form);
    d.addEventListener("close", () => d.remove());
    document.body.append(d);
    d.showModal();
  }

  async function run(kind, alerts) {
    const values = await dialog(kind, alerts);
    if (values === null) return { done: [], failed: [], cancelled: true };
    let done = [], failed = [];
    if (kind === "ack" && alerts.length > 1) {
      ({ done, failed } = await bulkAck(alerts, values));
    } else {
      for (const alert of alerts) {  // one by one: the server's answer for each is kept
        try { await request(kind, alert, values); done.push(alert.id); }
        catch (err) { failed.push({ id: alert.id, error: err.message }); }
      }
    }
    if (failed.length) report(kind, failed, alerts);
    return { done, failed, cancelled: false };
  }

  window.LW = window.LW || {};
  window.LW.actions = { run, configure: opts => {
    if (opts.maxShelveS) maxShelveS = opts.maxShelveS;
    if (opts.ackNoteRequired !== undefined) ackNoteRequired = !!opts.ackNoteRequired;
  } };
})();
